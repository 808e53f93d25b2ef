/**
 * AuditService: reads the append-only audit log of one organization (the guard requires
 * `audit.read` there). Filters: actor, action, resource (exact), and a time window
 * [since, until) in RFC 3339; newest first, keyset-paginated on the entry id with an
 * opaque token.
 */
import { and, desc, eq, lt, sql } from "drizzle-orm";
import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AuditEntrySchema, ListAuditEntriesResponseSchema, type AuditEntry, type ListAuditEntriesRequest, type ListAuditEntriesResponse } from "../../../gen/proto/fabric/v1/access_pb.js";
import { auditLog } from "../../db/schema.js";
import { invalidArgument, type Issue } from "../../domain/errors.js";
import { isUuid, type CallContext } from "../call-context.js";
import { pageSize } from "../pagination.js";
import type { ServiceDeps } from "../service-deps.js";

export type AuditService = ReturnType<typeof createAuditService>;

type AuditRow = typeof auditLog.$inferSelect;

export function auditEntryMessage(row: AuditRow): AuditEntry {
  return create(AuditEntrySchema, {
    id: BigInt(row.id),
    organizationId: row.organizationId,
    actorPrincipalId: row.actorPrincipalId ?? undefined,
    apiKeyId: row.apiKeyId ?? undefined,
    action: row.action,
    resource: row.resource,
    requestId: row.requestId,
    clientAddress: row.clientAddress,
    summary: row.summary as JsonObject,
    createTime: timestampFromDate(row.createdAt),
  });
}

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/;

/**
 * An RFC 3339 date-time, normalised for Postgres (`T`, `Z` upper-case; sub-microsecond
 * digits dropped), or `null` when it is not one — including impossible dates such as
 * February 30th, which Postgres would refuse at query time.
 */
export function parseRfc3339(s: string): string | null {
  const m = rfc3339.exec(s);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return null;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return null;
  const fraction = m[7] ? m[7].slice(0, 7) : "";
  const zone = m[8]!.toUpperCase();
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${fraction}${zone}`;
}

const encodeToken = (id: number) => Buffer.from(JSON.stringify({ a: id })).toString("base64url");

function decodeToken(token: string): number | undefined {
  if (!token) return undefined;
  try {
    const v = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Number.isSafeInteger(v?.a) && v.a > 0) return v.a;
  } catch {
    // fall through
  }
  throw invalidArgument("page_token is not a token this server issued", [{ path: "/page_token", code: "invalid_value", message: "invalid page_token" }]);
}

export function createAuditService(deps: ServiceDeps) {
  const { db } = deps;
  return {
    async listAuditEntries(ctx: CallContext, req: ListAuditEntriesRequest): Promise<ListAuditEntriesResponse> {
      const issues: Issue[] = [];
      if (req.actorPrincipalId && !isUuid(req.actorPrincipalId)) issues.push({ path: "/actor_principal_id", code: "invalid_value", message: "actor_principal_id must be a principal id (UUID)" });
      const since = req.since ? parseRfc3339(req.since) : null;
      if (req.since && !since) issues.push({ path: "/since", code: "invalid_value", message: "since must be an RFC 3339 date-time, e.g. 2025-01-31T12:00:00Z" });
      const until = req.until ? parseRfc3339(req.until) : null;
      if (req.until && !until) issues.push({ path: "/until", code: "invalid_value", message: "until must be an RFC 3339 date-time, e.g. 2025-01-31T12:00:00Z" });
      if (issues.length) throw invalidArgument(issues.map((i) => i.message).join("; "), issues);
      const size = pageSize(req.pageSize);
      const before = decodeToken(req.pageToken);

      const t = auditLog;
      const rows = await db
        .select()
        .from(t)
        .where(
          and(
            eq(t.organizationId, ctx.caller.organizationId),
            req.actorPrincipalId ? eq(t.actorPrincipalId, req.actorPrincipalId.toLowerCase()) : undefined,
            req.action ? eq(t.action, req.action) : undefined,
            req.resource ? eq(t.resource, req.resource) : undefined,
            since ? sql`${t.createdAt} >= ${since}::timestamptz` : undefined,
            until ? sql`${t.createdAt} < ${until}::timestamptz` : undefined,
            before !== undefined ? lt(t.id, before) : undefined,
          ),
        )
        .orderBy(desc(t.id))
        .limit(size + 1);
      const page = rows.slice(0, size);
      const last = page.at(-1);
      return create(ListAuditEntriesResponseSchema, {
        entries: page.map(auditEntryMessage),
        nextPageToken: rows.length > size && last ? encodeToken(Number(last.id)) : "",
      });
    },
  };
}
