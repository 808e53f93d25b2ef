/**
 * Commits a node's success, in one transaction: the node → succeeded with its output
 * (only if the guard still holds — a worker that lost its lease changes nothing), the
 * output bound into the run context with the node's merge policy, dependents released,
 * events written, and the run completed when no node is left.
 */
import { sql } from "drizzle-orm";
import { applyOutputs, type JsonObject } from "../domain/context.js";
import type { CompiledNode } from "../domain/compiled-workflow.js";
import { query, type Db } from "./database.js";
import { emitEvents, type NewEvent } from "./events.js";
import { ensureStarted, finishRun, guardSql, lockRun, releaseDependents, type NodeGuard } from "./run-state.js";

export type CompletionOutcome = "applied" | "lost";

export async function completeNode(db: Db, args: { runId: string; node: CompiledNode; guard: NodeGuard; output: JsonObject; eventPayload?: Record<string, unknown> }): Promise<CompletionOutcome> {
  return db.transaction(async (tx) => {
    const run = await lockRun(tx, args.runId);
    if (!run) return "lost";
    const key = args.node.spec.key;
    const updated = await query(
      tx,
      sql`UPDATE workflow_run_nodes
          SET status = 'succeeded', output = ${JSON.stringify(args.output)}::jsonb, error = NULL, finished_at = now(),
              lease_owner = NULL, lease_expires_at = NULL
          WHERE run_id = ${args.runId} AND node_key = ${key} AND ${guardSql(args.guard)}
          RETURNING id`,
    );
    if (updated.length === 0) return "lost";

    const events: NewEvent[] = [];
    const wasWaiting = run.status === "waiting";
    await ensureStarted(tx, run, events);
    events.push({ organizationId: run.organizationId, runId: run.id, nodeKey: key, kind: "workflow.node.completed", payload: { output: args.output, ...args.eventPayload } });
    const context = applyOutputs(run.context as JsonObject, args.output, args.node.spec.outputs, args.node.merge);
    run.context = context;
    await releaseDependents(tx, run, args.node.dependents, events);

    const pending = run.nodesPending - 1;
    let status = run.status;
    if (wasWaiting && !(await anyWaiting(tx, run.id))) {
      status = "running";
      events.push({ organizationId: run.organizationId, runId: run.id, kind: "workflow.run.resumed", payload: { reason: "signal" } });
    }
    await tx.execute(sql`UPDATE workflow_runs SET context = ${JSON.stringify(context)}::jsonb, nodes_pending = ${pending}, status = ${status} WHERE id = ${run.id}`);
    run.status = status;
    if (pending === 0) {
      await finishRun(tx, run, run.error ? "failed" : "completed", run.error, events);
    } else {
      await emitEvents(tx, events);
    }
    return "applied";
  });
}

async function anyWaiting(tx: Parameters<typeof lockRun>[0], runId: string): Promise<boolean> {
  const rows = await query(tx, sql`SELECT 1 FROM workflow_run_nodes WHERE run_id = ${runId} AND status = 'waiting' LIMIT 1`);
  return rows.length > 0;
}
