/**
 * The paused hold: how pausing a run reaches its nodes. Every statement and fragment that
 * holds a node or releases it is here.
 *
 * Invariant: while a run is paused, each of its `ready` nodes is held — `available_at =
 * 'infinity'`, so the claim (`available_at <= now()`) never finds it due — and its
 * `resume_at` is when it would have been due had the run not been paused. On every other
 * row `resume_at` is NULL. Steps already running when the pause came finish normally.
 *
 * Who keeps it, each under the run lock (so none can miss a pause or a resume that
 * commits meanwhile):
 * - pausing holds the run's ready nodes, each keeping its `available_at` (e.g. the end of
 *   a retry's backoff) in `resume_at` (`holdReadyNodes`);
 * - every writer that makes a node ready — a completion releasing dependents, a failed
 *   attempt scheduling a retry (also from the reaper), a worker handing a lease back at
 *   shutdown — reads the run's status under the lock and writes `readyTimes(paused, due)`;
 * - resuming makes held nodes due at `greatest(now(), resume_at)` and clears `resume_at`
 *   (`releaseHeldNodes`): a node that became ready while paused is due at once, a retry
 *   still in its backoff waits the rest of it, so a retry's `delay_ms` stays true;
 * - ending a run cancels its unfinished nodes and clears their `resume_at` (`finishRun`).
 */
import { sql, type SQL } from "drizzle-orm";
import type { Executor } from "./database.js";

export interface ReadyTimes {
  /** The node's `available_at`. */
  availableAt: SQL;
  /** The node's `resume_at`. */
  resumeAt: SQL;
}

/**
 * `available_at` and `resume_at` of a node made ready, due at `due` (e.g. `now()`, or the
 * end of a backoff): that, or held while its run is `paused` — a JavaScript boolean read
 * under the run lock, or an SQL boolean when a statement covers several runs.
 */
export function readyTimes(paused: boolean | SQL, due: SQL): ReadyTimes {
  if (typeof paused === "boolean") return paused ? { availableAt: sql`'infinity'::timestamptz`, resumeAt: due } : { availableAt: due, resumeAt: sql`NULL` };
  return {
    availableAt: sql`CASE WHEN ${paused} THEN 'infinity'::timestamptz ELSE ${due} END`,
    resumeAt: sql`CASE WHEN ${paused} THEN ${due} END`,
  };
}

/** Holds the ready nodes of a run being paused; the caller holds the run lock. */
export async function holdReadyNodes(tx: Executor, runId: string): Promise<void> {
  // SET reads the old row: resume_at gets the available_at from before the hold.
  await tx.execute(sql`UPDATE workflow_run_nodes SET available_at = 'infinity', resume_at = available_at WHERE run_id = ${runId} AND status = 'ready'`);
}

/**
 * Releases the held nodes of a run being resumed; the caller holds the run lock. Nothing
 * wakes a worker for a node due later (a retry's backoff): its poll finds it. GREATEST
 * skips a NULL `resume_at` (a node held before the column existed): due now.
 */
export async function releaseHeldNodes(tx: Executor, runId: string): Promise<void> {
  await tx.execute(sql`UPDATE workflow_run_nodes SET available_at = greatest(now(), resume_at), resume_at = NULL WHERE run_id = ${runId} AND status = 'ready'`);
}
