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
import { sql, type SQL } from "drizzle-orm";
import {
  ListUsageRecordsResponseSchema,
  QueryUsageResponseSchema,
  UsageGroupSchema,
  type ListUsageRecordsRequest,
  type QueryUsageRequest,
  type UsageGroup,
} from "../../../gen/proto/fabric/v1/usage_pb.js";
import { TokenUsageSchema } from "../../../gen/proto/fabric/v1/providers_pb.js";
import { query, type Db } from "../../db/database.js";
import { invalidArgument, type Issue } from "../../domain/errors.js";
import { readableTeams } from "../access/permission-checks.js";
import { isUuid, type CallContext } from "../call-context.js";
import { pageSize } from "../pagination.js";
import { usageGroupMessage, usageRecordMessage } from "./usage-messages.js";
import { usageRecords } from "../../db/schema.js";

/** group_by names → the column (or expression) they group on. */
const groupColumns = {
  team: sql`team_id::text`,
  principal: sql`principal_id::text`,
  api_key: sql`api_key_id::text`,
  run: sql`run_id::text`,
  // The run's workflow (a job's built-in one for jobs); NULL, shown as empty, for direct calls.
  workflow: sql`(SELECT r.workflow_name FROM workflow_runs r WHERE r.id = usage_records.run_id)`,
  provider: sql`provider`,
  model: sql`model`,
  operation: sql`operation`,
  day: sql`to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
} as const;
type GroupKey = keyof typeof groupColumns;
const groupFields: Record<GroupKey, keyof UsageGroup> = { team: "teamId", principal: "principalId", api_key: "apiKeyId", run: "runId", workflow: "workflowName", provider: "provider", model: "model", operation: "operation", day: "day" };

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

  /** The WHERE clause: organization, visibility, filters; null when the caller can see nothing. */
  function where(ctx: CallContext, f: Filters): SQL | null {
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
    const parts: SQL[] = [sql`organization_id = ${ctx.caller.organizationId}`];
    const visible = readableTeams(ctx, "usage.read");
    if (!visible.all) {
      if (visible.teamIds.length === 0) return null;
      parts.push(sql`team_id IN (${sql.join(
        visible.teamIds.map((t) => sql`${t}::uuid`),
        sql`, `,
      )})`);
    }
    // As text: a raw `sql` parameter is not mapped by a column, and postgres.js cannot bind a Date.
    if (start) parts.push(sql`created_at >= ${start.toISOString()}::timestamptz`);
    if (end) parts.push(sql`created_at < ${end.toISOString()}::timestamptz`);
    if (f.teamId) parts.push(sql`team_id = ${f.teamId}`);
    if (f.principalId) parts.push(sql`principal_id = ${f.principalId}`);
    if (f.apiKeyId) parts.push(sql`api_key_id = ${f.apiKeyId}`);
    if (f.runId) parts.push(sql`run_id = ${f.runId}`);
    if (f.provider) parts.push(sql`provider = ${f.provider}`);
    if (f.model) parts.push(sql`model = ${f.model}`);
    return sql.join(parts, sql` AND `);
  }

  return {
    async queryUsage(ctx: CallContext, req: QueryUsageRequest) {
      const keys = parseGroupBy(req.groupBy);
      const cond = where(ctx, req);
      const empty = create(UsageGroupSchema, { usage: create(TokenUsageSchema, {}), costUsd: "0", reservedUsd: "0" });
      if (!cond) return create(QueryUsageResponseSchema, { groups: [], total: empty });
      const sums = sql`count(*)::text AS calls, count(*) FILTER (WHERE status = 'failed')::text AS failed,
        coalesce(sum(input_tokens), 0)::text AS input_tokens, coalesce(sum(output_tokens), 0)::text AS output_tokens,
        coalesce(sum(cached_input_tokens), 0)::text AS cached, coalesce(sum(cache_write_tokens), 0)::text AS cache_write,
        coalesce(sum(actual_nano_usd) FILTER (WHERE status <> 'reserved'), 0)::text AS cost,
        coalesce(sum(estimated_nano_usd) FILTER (WHERE status = 'reserved'), 0)::text AS reserved`;
      const [total] = await query<Record<string, string>>(db, sql`SELECT ${sums} FROM usage_records WHERE ${cond}`);
      let groups: UsageGroup[] = [];
      if (keys.length) {
        const cols = keys.map((k, i) => sql`${groupColumns[k]} AS ${sql.raw(`g${i}`)}`);
        const by = sql.join(
          keys.map((_, i) => sql.raw(`g${i}`)),
          sql`, `,
        );
        const rows = await query<Record<string, string | null>>(
          db,
          sql`SELECT ${sql.join(cols, sql`, `)}, ${sums} FROM usage_records WHERE ${cond} GROUP BY ${by} ORDER BY ${by} LIMIT ${usageLimits.maxGroups + 1}`,
        );
        if (rows.length > usageLimits.maxGroups) {
          throw invalidArgument(`more than ${usageLimits.maxGroups} groups: narrow the time range or group by fewer keys`, [{ path: "/group_by", code: "too_many_groups", message: `more than ${usageLimits.maxGroups} groups` }]);
        }
        groups = rows.map((r) => {
          const g = groupOf(r as Record<string, string>);
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
      const cond = where(ctx, req);
      if (!cond) return create(ListUsageRecordsResponseSchema, {});
      const rows = await db
        .select()
        .from(usageRecords)
        .where(sql`${cond}${before !== undefined ? sql` AND id < ${String(before)}` : sql``}`)
        .orderBy(sql`id DESC`)
        .limit(size + 1);
      const page = rows.slice(0, size);
      return create(ListUsageRecordsResponseSchema, { records: page.map(usageRecordMessage), nextPageToken: rows.length > size ? String(page.at(-1)!.id) : "" });
    },
  };
}

function parseGroupBy(raw: string): GroupKey[] {
  if (!raw.trim()) return [];
  const keys: GroupKey[] = [];
  const issues: Issue[] = [];
  for (const part of raw.split(",").map((s) => s.trim())) {
    if (part === "organization") continue; // the organization is always the scope
    if (!(part in groupColumns)) issues.push({ path: "/group_by", code: "invalid_value", message: `cannot group by ${JSON.stringify(part)}; use ${Object.keys(groupColumns).join(", ")}` });
    else if (!keys.includes(part as GroupKey)) keys.push(part as GroupKey);
  }
  if (issues.length) throw invalidArgument(issues.map((i) => i.message).join("; "), issues);
  return keys;
}

/** A row of the sums query (numeric sums as decimal text) as a group: the keys are filled in by the caller. */
function groupOf(r: Record<string, string>): UsageGroup {
  return usageGroupMessage({
    calls: r["calls"],
    failedCalls: r["failed"],
    inputTokens: r["input_tokens"],
    outputTokens: r["output_tokens"],
    cachedInputTokens: r["cached"],
    cacheWriteTokens: r["cache_write"],
    costNanoUsd: r["cost"],
    reservedNanoUsd: r["reserved"],
  });
}
