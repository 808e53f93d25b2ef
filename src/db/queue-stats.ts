/**
 * Gauges sampled on a metrics scrape (telemetry/metrics.ts caches them for a few seconds).
 * Both read only rows of partial indexes, so they cost as much as the backlog is long,
 * however much history the tables hold. No locks: a snapshot is what a gauge wants.
 */
import { sql } from "drizzle-orm";
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
