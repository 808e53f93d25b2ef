/**
 * Reads of `usage_records` for reports (QueryUsage, ListUsageRecords): sums, sums by group,
 * pages of records. Plain reads without locks — a report is a snapshot; reservations still
 * in flight show as `reserved`. Every read is scoped to one organization and, for a caller
 * allowed only on some teams, to those teams.
 */
import { sql, type SQL } from "drizzle-orm";
import { query, type Executor } from "./database.js";
import { usageRecords } from "./schema.js";

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
export type UsageGroupKey = keyof typeof groupColumns;
export const usageGroupKeys = Object.keys(groupColumns) as UsageGroupKey[];

/** Which records a report reads. */
export interface UsageScope {
  organizationId: string;
  /** The teams whose calls the caller may read, or "all" (calls billed to no team included). Never empty: callers check. */
  teams: "all" | readonly string[];
  start?: Date;
  end?: Date;
  teamId?: string;
  principalId?: string;
  apiKeyId?: string;
  runId?: string;
  provider?: string;
  model?: string;
}

/** Sums of a set of records, numeric sums as decimal text (exact beyond 2^53). */
export interface UsageSums {
  calls: string;
  failed: string;
  input_tokens: string;
  output_tokens: string;
  cached: string;
  cache_write: string;
  cost: string;
  reserved: string;
}

function where(s: UsageScope): SQL {
  const parts: SQL[] = [sql`organization_id = ${s.organizationId}`];
  if (s.teams !== "all") {
    parts.push(sql`team_id IN (${sql.join(
      s.teams.map((t) => sql`${t}::uuid`),
      sql`, `,
    )})`);
  }
  // As text: a raw `sql` parameter is not mapped by a column, and postgres.js cannot bind a Date.
  if (s.start) parts.push(sql`created_at >= ${s.start.toISOString()}::timestamptz`);
  if (s.end) parts.push(sql`created_at < ${s.end.toISOString()}::timestamptz`);
  if (s.teamId) parts.push(sql`team_id = ${s.teamId}`);
  if (s.principalId) parts.push(sql`principal_id = ${s.principalId}`);
  if (s.apiKeyId) parts.push(sql`api_key_id = ${s.apiKeyId}`);
  if (s.runId) parts.push(sql`run_id = ${s.runId}`);
  if (s.provider) parts.push(sql`provider = ${s.provider}`);
  if (s.model) parts.push(sql`model = ${s.model}`);
  return sql.join(parts, sql` AND `);
}

const sums = sql`count(*)::text AS calls, count(*) FILTER (WHERE status = 'failed')::text AS failed,
  coalesce(sum(input_tokens), 0)::text AS input_tokens, coalesce(sum(output_tokens), 0)::text AS output_tokens,
  coalesce(sum(cached_input_tokens), 0)::text AS cached, coalesce(sum(cache_write_tokens), 0)::text AS cache_write,
  coalesce(sum(actual_nano_usd) FILTER (WHERE status <> 'reserved'), 0)::text AS cost,
  coalesce(sum(estimated_nano_usd) FILTER (WHERE status = 'reserved'), 0)::text AS reserved`;

/** The sums of every record in `scope`. */
export async function sumUsage(ex: Executor, scope: UsageScope): Promise<UsageSums | undefined> {
  const [total] = await query<UsageSums>(ex, sql`SELECT ${sums} FROM usage_records WHERE ${where(scope)}`);
  return total;
}

/**
 * The sums by `keys`, ordered by the keys, at most `limit` groups: each row carries its
 * keys' values as `g0`, `g1`, … (null for a NULL column) beside the sums.
 */
export async function sumUsageByGroup(ex: Executor, scope: UsageScope, keys: readonly UsageGroupKey[], limit: number): Promise<(UsageSums & Record<string, string | null>)[]> {
  const cols = keys.map((k, i) => sql`${groupColumns[k]} AS ${sql.raw(`g${i}`)}`);
  const by = sql.join(
    keys.map((_, i) => sql.raw(`g${i}`)),
    sql`, `,
  );
  return query(ex, sql`SELECT ${sql.join(cols, sql`, `)}, ${sums} FROM usage_records WHERE ${where(scope)} GROUP BY ${by} ORDER BY ${by} LIMIT ${limit}`);
}

/** Records of `scope`, newest first, with an id below `before` when given, at most `limit`. */
export async function usageRecordsPage(ex: Executor, scope: UsageScope, before: bigint | undefined, limit: number): Promise<(typeof usageRecords.$inferSelect)[]> {
  return ex
    .select()
    .from(usageRecords)
    .where(sql`${where(scope)}${before !== undefined ? sql` AND id < ${String(before)}` : sql``}`)
    .orderBy(sql`id DESC`)
    .limit(limit);
}
