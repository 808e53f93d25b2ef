/**
 * Claims up to `limit` ready, due nodes for one worker, in one statement.
 *
 * Why it is safe with any number of workers: the inner SELECT locks candidate rows
 * `FOR UPDATE SKIP LOCKED`, so two claims never lock the same row; a row another
 * transaction changed meanwhile is re-checked against `status = 'ready'` before it is
 * locked. Each claimed row gets this worker as lease owner, a lease expiry and
 * `attempt + 1`; every later write is conditional on (lease_owner, attempt).
 *
 * The run's pending → running transition is taken only if the run row is free
 * (`SKIP LOCKED` again): writers of runs lock the run row before node rows, and a
 * claim must never wait on a run while holding node locks. A completion finishes the
 * transition when the claim skipped it.
 *
 * `workflow_run_nodes_claimable` (partial, status = 'ready') makes the candidate scan
 * independent of how many finished rows the table holds. The claim returns no context:
 * the step reads what its bindings need afterwards (run-context.ts `readStepContext`), so
 * a claim costs the same however much the run has produced.
 */
import { sql } from "drizzle-orm";
import { query, type Executor } from "./database.js";

export interface ClaimedNode {
  id: number;
  runId: string;
  organizationId: string;
  nodeKey: string;
  operation: string;
  attempt: number;
  maxAttempts: number;
  workflowId: string;
  /** The run's team and starter (principal, API key). */
  teamId: string | null;
  createdBy: string | null;
  apiKeyId: string | null;
  /** The run's W3C `traceparent`, continued by the node's span; null without tracing. */
  traceContext: string | null;
  /** Seconds the node waited ready and due before this claim. */
  queueWaitSeconds: number;
}

export async function claimNodes(ex: Executor, opts: { workerId: string; limit: number; leaseSeconds: number; runId?: string }): Promise<ClaimedNode[]> {
  const onlyRun = opts.runId ? sql`AND run_id = ${opts.runId}` : sql``;
  const rows = await query<any>(
    ex,
    sql`
    WITH candidates AS (
      SELECT id FROM workflow_run_nodes
      WHERE status = 'ready' AND available_at <= now() ${onlyRun}
      ORDER BY priority DESC, available_at, id
      LIMIT ${opts.limit}
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE workflow_run_nodes n
      SET status = 'running', attempt = n.attempt + 1, lease_owner = ${opts.workerId},
          lease_expires_at = now() + make_interval(secs => ${opts.leaseSeconds}), started_at = now()
      FROM candidates c WHERE n.id = c.id
      RETURNING n.id, n.run_id, n.organization_id, n.node_key, n.operation, n.attempt, n.max_attempts, n.lease_expires_at,
                extract(epoch from now() - n.available_at)::float8 AS queue_wait
    ), started AS (
      UPDATE workflow_runs r SET status = 'running', started_at = now()
      WHERE r.id IN (
        SELECT id FROM workflow_runs WHERE id IN (SELECT run_id FROM claimed) AND status = 'pending'
        FOR UPDATE SKIP LOCKED
      )
      RETURNING r.id, r.organization_id
    ), ev AS (
      INSERT INTO events (organization_id, run_id, node_key, kind, payload)
      SELECT organization_id, id, NULL, 'workflow.run.started', '{}'::jsonb FROM started
      UNION ALL
      SELECT organization_id, run_id, node_key, 'workflow.node.started',
             jsonb_build_object('attempt', attempt, 'worker_id', ${opts.workerId}::text, 'lease_expires_at', lease_expires_at)
      FROM claimed
      RETURNING id
    )
    SELECT c.id::float8 AS id, c.run_id, c.organization_id, c.node_key, c.operation, c.attempt, c.max_attempts,
           r.workflow_id, r.team_id, r.created_by, r.api_key_id, r.trace_context, c.queue_wait,
           (SELECT pg_notify('fabric_events', '') FROM (SELECT count(*) FROM ev) x) IS NULL AS notified
    FROM claimed c JOIN workflow_runs r ON r.id = c.run_id`,
  );
  return rows.map((r) => ({
    id: Number(r.id),
    runId: r.run_id,
    organizationId: r.organization_id,
    nodeKey: r.node_key,
    operation: r.operation,
    attempt: Number(r.attempt),
    maxAttempts: Number(r.max_attempts),
    workflowId: r.workflow_id,
    teamId: r.team_id ?? null,
    createdBy: r.created_by ?? null,
    apiKeyId: r.api_key_id ?? null,
    traceContext: r.trace_context ?? null,
    queueWaitSeconds: Math.max(0, Number(r.queue_wait) || 0),
  }));
}
