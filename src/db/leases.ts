/**
 * Lease upkeep: heartbeats extend the leases a live worker holds; the reaper (any
 * worker) finds expired ones; a worker shutting down releases what it still holds.
 */
import { sql } from "drizzle-orm";
import { query, sqlIn, type Executor } from "./database.js";
import { channels, emitEvents, notify } from "./events.js";
import { readyTimes } from "./paused-nodes.js";
import { lockRuns } from "./run-state.js";

/** Extends the leases of `nodeIds` still held by `workerId`; returns the ids still held (the rest were lost). */
export async function extendLeases(ex: Executor, workerId: string, nodeIds: readonly number[], leaseSeconds: number): Promise<Set<number>> {
  if (nodeIds.length === 0) return new Set();
  const rows = await query<{ id: number }>(
    ex,
    sql`UPDATE workflow_run_nodes SET lease_expires_at = now() + make_interval(secs => ${leaseSeconds})
        WHERE id IN ${sqlIn(nodeIds)} AND lease_owner = ${workerId} AND status = 'running'
        RETURNING id::float8 AS id`,
  );
  return new Set(rows.map((r) => Number(r.id)));
}

export interface ExpiredNode {
  runId: string;
  nodeKey: string;
  status: "running" | "waiting";
  attempt: number;
  maxAttempts: number;
  workflowId: string;
  leaseOwner: string | null;
}

/**
 * Nodes whose lease (or signal wait) has expired, oldest first, at most `limit`. Read
 * without locks: each is then settled in its own transaction that takes the run lock
 * first (the lock order every run writer follows) and re-checks the expiry in its
 * conditional update, so two reapers racing for one node commit it once.
 */
export async function findExpiredNodes(ex: Executor, limit: number): Promise<ExpiredNode[]> {
  const rows = await query<any>(
    ex,
    sql`SELECT n.run_id, n.node_key, n.status, n.attempt, n.max_attempts, n.lease_owner, r.workflow_id
        FROM workflow_run_nodes n JOIN workflow_runs r ON r.id = n.run_id
        WHERE n.status IN ('running', 'waiting') AND n.lease_expires_at < now()
        ORDER BY n.lease_expires_at LIMIT ${limit}`,
  );
  return rows.map((r) => ({ runId: r.run_id, nodeKey: r.node_key, status: r.status, attempt: Number(r.attempt), maxAttempts: Number(r.max_attempts), workflowId: r.workflow_id, leaseOwner: r.lease_owner }));
}

/**
 * Hands nodes back on shutdown: `ready` again, due now — or never while the run is
 * paused, with `resume_at = now()` so that it is due as soon as the run resumes — and the
 * attempt not counted (it was interrupted, not failed). Conditional on the lease, like
 * every node write. The runs are locked first (the lock order), so a pause cannot slip in
 * between reading the run's status and releasing its node.
 */
export async function releaseLeases(ex: Executor, workerId: string, nodeIds: readonly number[]): Promise<number> {
  if (nodeIds.length === 0) return 0;
  return ex.transaction(async (tx) => {
    // A node's run never changes: reading it before the lock is safe.
    const runIds = await query<{ run_id: string }>(tx, sql`SELECT DISTINCT run_id FROM workflow_run_nodes WHERE id IN ${sqlIn(nodeIds)}`);
    const runs = await lockRuns(tx, runIds.map((r) => r.run_id));
    const paused = runs.filter((r) => r.status === "paused").map((r) => r.id);
    const ready = readyTimes(paused.length ? sql`run_id IN ${sqlIn(paused)}` : false, sql`now()`);
    const rows = await query<{ organization_id: string; run_id: string; node_key: string; attempt: number }>(
      tx,
      sql`UPDATE workflow_run_nodes
          SET status = 'ready', available_at = ${ready.availableAt}, resume_at = ${ready.resumeAt},
              attempt = attempt - 1, lease_owner = NULL, lease_expires_at = NULL
          WHERE id IN ${sqlIn(nodeIds)} AND lease_owner = ${workerId} AND status = 'running'
          RETURNING organization_id, run_id, node_key, attempt`,
    );
    await emitEvents(
      tx,
      rows.map((r) => ({ organizationId: r.organization_id, runId: r.run_id, nodeKey: r.node_key, kind: "workflow.node.ready", payload: { reason: "released", worker_id: workerId } })),
    );
    if (rows.length) await notify(tx, channels.work);
    return rows.length;
  });
}

/**
 * How many times the node's lease has expired before (each a `workflow.node.retrying`
 * event with code `lease_expired`): an executor died, or stalled past its lease, while
 * running it. The reaper quarantines a node that keeps doing this instead of handing it
 * to the next executor. Reads the run's events through `events_run`.
 */
export async function countLeaseExpirations(ex: Executor, runId: string, nodeKey: string): Promise<number> {
  const [row] = await query<{ n: number }>(
    ex,
    sql`SELECT count(*)::int AS n FROM events
        WHERE run_id = ${runId} AND node_key = ${nodeKey} AND kind = 'workflow.node.retrying' AND payload->'error'->>'code' = 'lease_expired'`,
  );
  return Number(row?.n ?? 0);
}
