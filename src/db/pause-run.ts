/**
 * Pausing and resuming a run. The caller holds the run lock (`lockRun`) and has checked
 * that the transition applies; the run row is written, then its nodes (the lock order),
 * and the event in the same transaction. What happens to the nodes is the paused hold
 * (paused-nodes.ts).
 */
import { sql } from "drizzle-orm";
import { query, type Executor } from "./database.js";
import { channels, emitEvents, notify } from "./events.js";
import { holdReadyNodes, releaseHeldNodes } from "./paused-nodes.js";
import type { LockedRun } from "./run-state.js";
import type { RunStatus } from "./schema.js";

/** An active run → paused: its ready nodes are held; steps in flight finish. */
export async function pauseRun(tx: Executor, run: LockedRun): Promise<void> {
  const previous = run.status;
  await tx.execute(sql`UPDATE workflow_runs SET status = 'paused' WHERE id = ${run.id}`);
  await holdReadyNodes(tx, run.id);
  await emitEvents(tx, [{ organizationId: run.organizationId, runId: run.id, kind: "workflow.run.paused", payload: { previous_status: previous } }]);
  run.status = "paused";
}

/**
 * A paused run → what it would be without the pause: `waiting` while a node waits for a
 * signal, else `running` once started, else `pending`. Its held nodes become due, and
 * `fabric_work` wakes the workers for those due now. Returns the new status.
 */
export async function resumeRun(tx: Executor, run: LockedRun): Promise<RunStatus> {
  const [s] = await query<{ waiting: boolean; started: boolean }>(
    tx,
    sql`SELECT EXISTS (SELECT 1 FROM workflow_run_nodes WHERE run_id = ${run.id} AND status = 'waiting') AS waiting,
               (SELECT started_at IS NOT NULL FROM workflow_runs WHERE id = ${run.id}) AS started`,
  );
  const status: RunStatus = s?.waiting ? "waiting" : s?.started ? "running" : "pending";
  await tx.execute(sql`UPDATE workflow_runs SET status = ${status} WHERE id = ${run.id}`);
  await releaseHeldNodes(tx, run.id);
  await emitEvents(tx, [{ organizationId: run.organizationId, runId: run.id, kind: "workflow.run.resumed", payload: { reason: "resume", status } }]);
  await notify(tx, channels.work);
  run.status = status;
  return status;
}
