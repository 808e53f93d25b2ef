/**
 * Commits a node whose condition (`when`) was false, in one transaction, conditional on
 * the lease like every node write:
 *
 * 1. lock the run (runs before nodes, the global lock order);
 * 2. the node → `skipped` where the lease still holds (zero rows: the lease was lost and
 *    nothing is written); its outputs are not bound — they stay absent from the context;
 * 3. its dependents' counts are decremented. A dependent reaching zero whose
 *    dependencies are all `skipped` is skipped too (and its own dependents are visited
 *    the same way); one with at least one dependency that ran becomes ready, and runs
 *    with the skipped dependencies' outputs absent;
 * 4. one UPDATE of the run (pending count), the events, and the run finishes when no
 *    node is left — failed if an earlier node failed under `fail_fast: false`, else
 *    completed.
 */
import { sql } from "drizzle-orm";
import type { CompiledWorkflow } from "../domain/compiled-workflow.js";
import { query, sqlIn, type Db } from "./database.js";
import { channels, emitEvents, notify, type NewEvent } from "./events.js";
import { readyTimes } from "./paused-nodes.js";
import { ensureStarted, finishRun, guardSql, lockRun, type NodeGuard } from "./run-state.js";
import type { EventKind } from "../domain/event-kinds.js";

export type SkipOutcome = "skipped" | "lost";

export async function skipNodeByCondition(db: Db, args: { runId: string; workflow: CompiledWorkflow; nodeKey: string; guard: NodeGuard; attempt: number }): Promise<SkipOutcome> {
  return db.transaction(async (tx) => {
    const run = await lockRun(tx, args.runId);
    if (!run) return "lost";
    const node = args.workflow.nodes.get(args.nodeKey);
    if (!node) return "lost";
    const rows = await query(
      tx,
      sql`UPDATE workflow_run_nodes SET status = 'skipped', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
          WHERE run_id = ${run.id} AND node_key = ${args.nodeKey} AND ${guardSql(args.guard)} RETURNING id`,
    );
    if (rows.length === 0) return "lost";
    const events: NewEvent[] = [];
    await ensureStarted(tx, run, events);
    const event = (nodeKey: string, kind: EventKind, payload: Record<string, unknown>) => events.push({ organizationId: run.organizationId, runId: run.id, nodeKey, kind, payload });
    event(args.nodeKey, "workflow.node.skipped", { reason: "condition", when: node.spec.when, attempt: args.attempt });

    let finished = 1;
    let madeReady = false;
    const paused = run.status === "paused";
    const ready = readyTimes(paused, sql`now()`);
    const queue = [args.nodeKey];
    while (queue.length) {
      const from = queue.shift()!;
      const dependents = args.workflow.nodes.get(from)?.dependents ?? [];
      if (dependents.length === 0) continue;
      const released = await query<{ node_key: string; deps_remaining: number | string }>(
        tx,
        sql`UPDATE workflow_run_nodes SET deps_remaining = deps_remaining - 1
            WHERE run_id = ${run.id} AND node_key IN ${sqlIn(dependents)} AND status = 'blocked'
            RETURNING node_key, deps_remaining`,
      );
      for (const r of released) {
        if (Number(r.deps_remaining) !== 0) continue;
        const deps = args.workflow.nodes.get(r.node_key)!.spec.dependsOn;
        const [ran] = await query<{ n: number | string }>(tx, sql`SELECT count(*) AS n FROM workflow_run_nodes WHERE run_id = ${run.id} AND node_key IN ${sqlIn(deps)} AND status <> 'skipped'`);
        if (Number(ran!.n) === 0) {
          await tx.execute(sql`UPDATE workflow_run_nodes SET status = 'skipped', finished_at = now() WHERE run_id = ${run.id} AND node_key = ${r.node_key}`);
          event(r.node_key, "workflow.node.skipped", { reason: "dependencies_skipped", because: from });
          finished += 1;
          queue.push(r.node_key);
        } else {
          await tx.execute(sql`UPDATE workflow_run_nodes SET status = 'ready', available_at = ${ready.availableAt}, resume_at = ${ready.resumeAt} WHERE run_id = ${run.id} AND node_key = ${r.node_key}`);
          event(r.node_key, "workflow.node.ready", {});
          madeReady = true;
        }
      }
    }

    const pending = run.nodesPending - finished;
    if (pending <= 0) {
      await finishRun(tx, run, run.error ? "failed" : "completed", run.error, events);
      return "skipped";
    }
    await tx.execute(sql`UPDATE workflow_runs SET nodes_pending = ${pending} WHERE id = ${run.id}`);
    await emitEvents(tx, events);
    if (madeReady && !paused) await notify(tx, channels.work);
    return "skipped";
  });
}
