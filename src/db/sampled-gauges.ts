/**
 * Gauges sampled on a metrics scrape (telemetry/metrics.ts caches them for a few seconds).
 * Both read only rows of partial indexes, so they cost as much as the backlog is long,
 * however much history the tables hold. No locks: a snapshot is what a gauge wants.
 */
import { sql } from "drizzle-orm";
import { periodOf } from "../domain/policy.js";
import { query, type Executor } from "./database.js";

/** Ready, due nodes and the age of the oldest (`workflow_run_nodes_claimable`). */
export async function readyQueueStats(ex: Executor): Promise<{ depth: number; oldestAgeSeconds: number }> {
  const [row] = await query<{ depth: number; oldest: number | null }>(
    ex,
    sql`SELECT count(*)::float8 AS depth, extract(epoch from now() - min(available_at))::float8 AS oldest
        FROM workflow_run_nodes WHERE status = 'ready' AND available_at <= now()`,
  );
  return { depth: Number(row?.depth ?? 0), oldestAgeSeconds: Math.max(0, Number(row?.oldest ?? 0)) };
}

/** Webhook deliveries still to be attempted (`webhook_deliveries_due`). */
export async function webhookBacklog(ex: Executor): Promise<number> {
  const [row] = await query<{ n: number }>(ex, sql`SELECT count(*)::float8 AS n FROM webhook_deliveries WHERE status = 'pending'`);
  return Number(row?.n ?? 0);
}

/**
 * Budgets of the current day and month (the periods budget reservation keys them by, domain/policy.ts):
 * the highest committed / limit ratio, and how many stand at 80 % or more of their limit.
 * One row per budget and period in `budget_ledger`, so this reads as many rows as there are
 * budgets with spend this period.
 */
export async function budgetUtilization(ex: Executor, now = new Date()): Promise<{ maxRatio: number; nearCap: number }> {
  const day = periodOf("day", now).start;
  const month = periodOf("month", now).start;
  const [row] = await query<{ max_ratio: number | null; near: number }>(
    ex,
    sql`SELECT max(committed_nano_usd::float8 / limit_nano_usd) AS max_ratio,
               count(*) FILTER (WHERE committed_nano_usd >= 0.8 * limit_nano_usd)::float8 AS near
        FROM budget_ledger
        WHERE period IN ('day', 'month') AND limit_nano_usd > 0
          AND period_start IN (${day}, ${month})`,
  );
  return { maxRatio: Number(row?.max_ratio ?? 0), nearCap: Number(row?.near ?? 0) };
}
