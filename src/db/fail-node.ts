/**
 * Commits a failed attempt, in one transaction, conditional on the guard like every
 * node write. Either the node goes back to `ready` after a backoff (a retry), or it
 * fails for good: then with `fail_fast` the run fails and its other nodes are
 * cancelled; without it, the nodes that depend on the failed one are skipped and
 * independent branches go on, the run failing once everything is terminal.
 */
import { sql } from "drizzle-orm";
import { transitiveDependents, type CompiledNode, type CompiledWorkflow } from "../domain/compiled-workflow.js";
import { query, sqlIn, type Db } from "./database.js";
import { channels, emitEvents, notify, type NewEvent } from "./events.js";
import type { EventKind } from "../domain/event-kinds.js";
import { readyTimes } from "./paused-nodes.js";
import { ensureStarted, finishRun, guardSql, lockRun, type NodeGuard, type RunErrorJson } from "./run-state.js";

export interface NodeFailure {
  code: string;
  message: string;
  /** Error class, for `retry_on`: timeout | transient | lease_expired | error | invalid_input. */
  class: string;
}

export type FailureOutcome = "retrying" | "failed" | "lost";

export async function failNodeAttempt(
  db: Db,
  args: { runId: string; workflow: CompiledWorkflow; node: CompiledNode; guard: NodeGuard; attempt: number; failure: NodeFailure; retryDelayMs: number | null },
): Promise<FailureOutcome> {
  return db.transaction(async (tx) => {
    const run = await lockRun(tx, args.runId);
    if (!run) return "lost";
    const key = args.node.spec.key;
    const error = { code: args.failure.code, message: args.failure.message, class: args.failure.class, attempt: args.attempt };
    const events: NewEvent[] = [];
    const nodeEvent = (kind: EventKind, payload: Record<string, unknown>) => events.push({ organizationId: run.organizationId, runId: run.id, nodeKey: key, kind, payload });

    if (args.retryDelayMs !== null) {
      // The backoff ends at `due` even if the run is paused now: then the node is held
      // and `resume_at` keeps `due` for the resume, so `delay_ms` stays true.
      const paused = run.status === "paused";
      const ready = readyTimes(paused, sql`now() + make_interval(secs => ${args.retryDelayMs / 1000})`);
      const rows = await query(
        tx,
        sql`UPDATE workflow_run_nodes SET status = 'ready', available_at = ${ready.availableAt}, resume_at = ${ready.resumeAt},
                   lease_owner = NULL, lease_expires_at = NULL, error = ${JSON.stringify(error)}::jsonb
            WHERE run_id = ${run.id} AND node_key = ${key} AND ${guardSql(args.guard)} RETURNING id`,
      );
      if (rows.length === 0) return "lost";
      // Like a completion, a failed attempt finishes the run's start when the claim skipped it.
      await ensureStarted(tx, run, events);
      nodeEvent("workflow.node.retrying", { attempt: args.attempt, next_attempt: args.attempt + 1, delay_ms: args.retryDelayMs, error });
      await emitEvents(tx, events);
      if (args.retryDelayMs === 0 && !paused) await notify(tx, channels.work);
      return "retrying";
    }

    const rows = await query(
      tx,
      sql`UPDATE workflow_run_nodes SET status = 'failed', error = ${JSON.stringify(error)}::jsonb, finished_at = now(),
                 lease_owner = NULL, lease_expires_at = NULL
          WHERE run_id = ${run.id} AND node_key = ${key} AND ${guardSql(args.guard)} RETURNING id`,
    );
    if (rows.length === 0) return "lost";
    await ensureStarted(tx, run, events);
    nodeEvent("workflow.node.failed", { attempt: args.attempt, error });
    const runError: RunErrorJson = { code: "node_failed", message: `node ${key} failed: ${args.failure.message}`, node_key: key };

    if (run.failFast) {
      await finishRun(tx, run, "failed", runError, events);
      return "failed";
    }
    const downstream = transitiveDependents(args.workflow, key);
    const skipped = downstream.length
      ? await query<{ node_key: string }>(
          tx,
          sql`UPDATE workflow_run_nodes SET status = 'skipped', finished_at = now()
              WHERE run_id = ${run.id} AND status = 'blocked' AND node_key IN ${sqlIn(downstream)} RETURNING node_key`,
        )
      : [];
    for (const s of skipped) events.push({ organizationId: run.organizationId, runId: run.id, nodeKey: s.node_key, kind: "workflow.node.skipped", payload: { because: key } });
    const pending = run.nodesPending - 1 - skipped.length;
    run.error = run.error ?? runError;
    if (pending <= 0) {
      await finishRun(tx, run, "failed", run.error, events);
    } else {
      let status = run.status;
      if (status === "waiting") {
        const waiting = await query(tx, sql`SELECT 1 FROM workflow_run_nodes WHERE run_id = ${run.id} AND status = 'waiting' LIMIT 1`);
        if (waiting.length === 0) {
          status = "running";
          events.push({ organizationId: run.organizationId, runId: run.id, kind: "workflow.run.resumed", payload: { reason: args.failure.code } });
        }
      }
      await tx.execute(sql`UPDATE workflow_runs SET nodes_pending = ${pending}, error = ${JSON.stringify(run.error)}::jsonb, status = ${status} WHERE id = ${run.id}`);
      await emitEvents(tx, events);
    }
    return "failed";
  });
}
