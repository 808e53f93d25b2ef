/**
 * UsageService: totals and records of provider calls from `usage_records`. Callers with
 * `usage.read` across the organization see all of it; a caller allowed only on some teams
 * sees those teams' calls (calls billed to no team need the organization-wide permission).
 *
 * Money sums are exact: summed as numeric in SQL and formatted from the decimal text, so
 * they stay exact beyond JavaScript's 2^53.
 */
import { create } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  ListUsageRecordsResponseSchema,
  QueryUsageResponseSchema,
  UsageGroupSchema,
  type ListUsageRecordsRequest,
  type QueryUsageRequest,
  type UsageGroup,
} from "../../../gen/proto/fabric/v1/usage_pb.js";
import { TokenUsageSchema } from "../../../gen/proto/fabric/v1/providers_pb.js";
import type { Db } from "../../db/database.js";
import { sumUsage, sumUsageByGroup, usageGroupKeys, usageRecordsPage, type UsageGroupKey, type UsageScope, type UsageSums } from "../../db/usage-report.js";
import { invalidArgument, type Issue } from "../../domain/errors.js";
import { readableTeams } from "../access/permission-checks.js";
import { isUuid, type CallContext } from "../call-context.js";
import { pageSize } from "../pagination.js";
import { usageGroupMessage, usageRecordMessage } from "./usage-messages.js";

const groupFields: Record<UsageGroupKey, keyof UsageGroup> = { team: "teamId", principal: "principalId", api_key: "apiKeyId", run: "runId", workflow: "workflowName", provider: "provider", model: "model", operation: "operation", day: "day" };

export const usageLimits = { maxGroups: 10_000 } as const;

interface Filters {
  startTime?: Timestamp;
  endTime?: Timestamp;
  teamId: string;
  principalId: string;
  apiKeyId: string;
  runId: string;
  provider: string;
  model: string;
}

export function createUsageService(deps: { db: Db }) {
  const { db } = deps;

  /** The records the report reads: organization, visibility, filters; null when the caller can see nothing. */
  function scopeOf(ctx: CallContext, f: Filters): UsageScope | null {
    const issues: Issue[] = [];
    for (const [field, value] of [
      ["team_id", f.teamId],
      ["principal_id", f.principalId],
      ["api_key_id", f.apiKeyId],
      ["run_id", f.runId],
    ] as const) {
      if (value && !isUuid(value)) issues.push({ path: `/${field}`, code: "invalid_value", message: `${field} must be a UUID` });
    }
    const start = f.startTime ? timestampDate(f.startTime) : undefined;
    const end = f.endTime ? timestampDate(f.endTime) : undefined;
    if (start && end && start > end) issues.push({ path: "/start_time", code: "invalid_value", message: "start_time must not be after end_time" });
    if (issues.length) throw invalidArgument(issues.map((i) => i.message).join("; "), issues);
    const visible = readableTeams(ctx, "usage.read");
    if (!visible.all && visible.teamIds.length === 0) return null;
    const scope: UsageScope = { organizationId: ctx.caller.organizationId, teams: visible.all ? "all" : visible.teamIds };
    if (start) scope.start = start;
    if (end) scope.end = end;
    for (const key of ["teamId", "principalId", "apiKeyId", "runId", "provider", "model"] as const) if (f[key]) scope[key] = f[key];
    return scope;
  }

  return {
    async queryUsage(ctx: CallContext, req: QueryUsageRequest) {
      const keys = parseGroupBy(req.groupBy);
      const scope = scopeOf(ctx, req);
      const empty = create(UsageGroupSchema, { usage: create(TokenUsageSchema, {}), costUsd: "0", reservedUsd: "0" });
      if (!scope) return create(QueryUsageResponseSchema, { groups: [], total: empty });
      const total = await sumUsage(db, scope);
      let groups: UsageGroup[] = [];
      if (keys.length) {
        const rows = await sumUsageByGroup(db, scope, keys, usageLimits.maxGroups + 1);
        if (rows.length > usageLimits.maxGroups) {
          throw invalidArgument(`more than ${usageLimits.maxGroups} groups: narrow the time range or group by fewer keys`, [{ path: "/group_by", code: "too_many_groups", message: `more than ${usageLimits.maxGroups} groups` }]);
        }
        groups = rows.map((r) => {
          const g = groupOf(r);
          keys.forEach((k, i) => ((g as any)[groupFields[k]] = r[`g${i}`] ?? ""));
          return g;
        });
      }
      return create(QueryUsageResponseSchema, { groups, total: total ? groupOf(total) : empty });
    },

    async listUsageRecords(ctx: CallContext, req: ListUsageRecordsRequest) {
      const size = pageSize(req.pageSize);
      let before: bigint | undefined;
      if (req.pageToken) {
        if (!/^\d{1,18}$/.test(req.pageToken)) throw invalidArgument("page_token is not a token this list returned", [{ path: "/page_token", code: "invalid_value", message: "unknown page token" }]);
        before = BigInt(req.pageToken);
      }
      const scope = scopeOf(ctx, req);
      if (!scope) return create(ListUsageRecordsResponseSchema, {});
      const rows = await usageRecordsPage(db, scope, before, size + 1);
      const page = rows.slice(0, size);
      return create(ListUsageRecordsResponseSchema, { records: page.map(usageRecordMessage), nextPageToken: rows.length > size ? String(page.at(-1)!.id) : "" });
    },
  };
}

function parseGroupBy(raw: string): UsageGroupKey[] {
  if (!raw.trim()) return [];
  const keys: UsageGroupKey[] = [];
  const issues: Issue[] = [];
  for (const part of raw.split(",").map((s) => s.trim())) {
    if (part === "organization") continue; // the organization is always the scope
    if (!(usageGroupKeys as string[]).includes(part)) issues.push({ path: "/group_by", code: "invalid_value", message: `cannot group by ${JSON.stringify(part)}; use ${usageGroupKeys.join(", ")}` });
    else if (!keys.includes(part as UsageGroupKey)) keys.push(part as UsageGroupKey);
  }
  if (issues.length) throw invalidArgument(issues.map((i) => i.message).join("; "), issues);
  return keys;
}

/** A row of the sums query (numeric sums as decimal text) as a group: the keys are filled in by the caller. */
function groupOf(r: UsageSums): UsageGroup {
  return usageGroupMessage({
    calls: r.calls,
    failedCalls: r.failed,
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    cachedInputTokens: r.cached,
    cacheWriteTokens: r.cache_write,
    costNanoUsd: r.cost,
    reservedNanoUsd: r.reserved,
  });
}
