/**
 * Retention: deletes finished runs older than their organization's retention, with
 * everything that hangs off them — nodes (ON DELETE CASCADE), events, the webhook
 * deliveries of those events and the usage records of the run (the usage detail; budget
 * totals live in `budget_ledger` and are untouched).
 *
 * One batch is one short transaction:
 * - `pg_try_advisory_xact_lock` makes the pruner one at a time across control planes: a
 *   replica that does not get the lock does nothing this round (and never waits);
 * - the runs are picked oldest-finished first through `workflow_runs_finished` (a partial
 *   index of finished runs), `FOR UPDATE SKIP LOCKED`, at most `batch` of them — a
 *   finished run is written by nothing else, so the locks only keep a rare concurrent
 *   writer (a rerun reading its source) from seeing half a deletion;
 * - deletes go by index (`events_run`, `usage_records_run`, `webhook_deliveries_event`,
 *   the nodes' run key), so a batch touches only its runs' rows: no long locks, no scan.
 *
 * An organization's `retention_seconds` wins over the server default; 0 means forever.
 * Events not tied to a run (tenancy, API keys, webhooks) and the audit log are kept.
 */
import { sql } from "drizzle-orm";
import { query, type Db } from "./database.js";

/** The advisory lock of the pruner ("FPru"). */
export const pruneLockKey = 0x46507275;

export interface PruneResult {
  /** False when another process holds the pruner's lock (this batch did nothing). */
  locked: boolean;
  runs: number;
  events: number;
  usageRecords: number;
  deliveries: number;
}

export async function pruneFinishedRuns(db: Db, opts: { defaultRetentionSeconds: number; batch: number }): Promise<PruneResult> {
  return db.transaction(async (tx) => {
    const [lock] = await query<{ ok: boolean }>(tx, sql`SELECT pg_try_advisory_xact_lock(${pruneLockKey}::bigint) AS ok`);
    if (!lock?.ok) return { locked: false, runs: 0, events: 0, usageRecords: 0, deliveries: 0 };
    const [r] = await query<{ runs: number; events: number; usage: number; deliveries: number }>(
      tx,
      sql`
      WITH victims AS (
        SELECT r.id FROM workflow_runs r JOIN organizations o ON o.id = r.organization_id
        WHERE r.status IN ('completed', 'failed', 'cancelled')
          AND coalesce(o.retention_seconds, ${opts.defaultRetentionSeconds}::int) > 0
          AND r.finished_at < now() - make_interval(secs => coalesce(o.retention_seconds, ${opts.defaultRetentionSeconds}::int))
        ORDER BY r.finished_at
        LIMIT ${opts.batch}
        FOR UPDATE OF r SKIP LOCKED
      ),
      ev AS (DELETE FROM events e USING victims v WHERE e.run_id = v.id RETURNING e.id),
      wd AS (DELETE FROM webhook_deliveries d USING ev WHERE d.event_id = ev.id RETURNING 1),
      us AS (DELETE FROM usage_records u USING victims v WHERE u.run_id = v.id RETURNING 1),
      ru AS (DELETE FROM workflow_runs r USING victims v WHERE r.id = v.id RETURNING 1)
      SELECT (SELECT count(*) FROM ru)::int AS runs, (SELECT count(*) FROM ev)::int AS events,
             (SELECT count(*) FROM us)::int AS usage, (SELECT count(*) FROM wd)::int AS deliveries`,
    );
    return { locked: true, runs: r!.runs, events: r!.events, usageRecords: r!.usage, deliveries: r!.deliveries };
  });
}
