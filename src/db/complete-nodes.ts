/**
 * Commits many node successes in one transaction — the executor's hot path. Same rules
 * as `completeNode` (one success at a time, used for signals), batched so that a busy
 * executor pays a handful of statements and one commit per batch instead of per step:
 *
 * 1. lock every run of the batch, in id order (the global lock order: runs before
 *    nodes, and runs by id among themselves — so two batches never deadlock);
 * 2. one conditional UPDATE marks the nodes succeeded where (lease owner, attempt) still
 *    hold; an item whose lease was lost changes nothing and is reported `lost`;
 * 3. per run, outputs are bound into the context in batch order, dependents' counts
 *    decremented (one UPDATE for the batch) and those reaching zero made ready;
 * 4. one UPDATE writes the runs, one INSERT the events; runs with no node left finish.
 */
import { sql } from "drizzle-orm";
import { applyOutputs, type JsonObject } from "../domain/context.js";
import type { CompiledNode } from "../domain/compiled-workflow.js";
import { query, type Db } from "./database.js";
import { channels, emitEvents, notify, type NewEvent } from "./events.js";
import { readyTimes } from "./paused-nodes.js";
import { finishRun, lockRuns, type LockedRun } from "./run-state.js";
import type { CompletionOutcome } from "./complete-node.js";

export interface LeasedCompletion {
  runId: string;
  node: CompiledNode;
  owner: string;
  attempt: number;
  output: JsonObject;
}

export async function completeNodes(db: Db, items: readonly LeasedCompletion[]): Promise<CompletionOutcome[]> {
  if (items.length === 0) return [];
  return db.transaction(async (tx) => {
    const runIds = [...new Set(items.map((i) => i.runId))].sort();
    const runs = new Map((await lockRuns(tx, items.map((i) => i.runId))).map((r) => [r.id, r]));

    const values = items.map((i) => sql`(${i.runId}::uuid, ${i.node.spec.key}, ${i.owner}, ${i.attempt}::int, ${JSON.stringify(i.output)}::jsonb)`);
    const applied = await query<{ run_id: string; node_key: string }>(
      tx,
      sql`UPDATE workflow_run_nodes n
          SET status = 'succeeded', output = v.output, error = NULL, finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
          FROM (VALUES ${sql.join(values, sql`, `)}) AS v(run_id, node_key, owner, attempt, output)
          WHERE n.run_id = v.run_id AND n.node_key = v.node_key AND n.status = 'running' AND n.lease_owner = v.owner AND n.attempt = v.attempt
          RETURNING n.run_id, n.node_key`,
    );
    const appliedKeys = new Set(applied.map((a) => `${a.run_id}/${a.node_key}`));
    const outcomes: CompletionOutcome[] = items.map((i) => (appliedKeys.has(`${i.runId}/${i.node.spec.key}`) ? "applied" : "lost"));

    const events: NewEvent[] = [];
    const decrements = new Map<string, { runId: string; key: string; by: number; paused: boolean }>();
    const touched = new Set<LockedRun>();
    items.forEach((item, idx) => {
      if (outcomes[idx] !== "applied") return;
      const run = runs.get(item.runId)!;
      touched.add(run);
      if (run.status === "pending") {
        run.status = "running";
        events.push({ organizationId: run.organizationId, runId: run.id, kind: "workflow.run.started", payload: {} });
      }
      events.push({ organizationId: run.organizationId, runId: run.id, nodeKey: item.node.spec.key, kind: "workflow.node.completed", payload: { output: item.output, attempt: item.attempt } });
      run.context = applyOutputs(run.context as JsonObject, item.output, item.node.spec.outputs, item.node.merge);
      run.nodesPending -= 1;
      for (const d of item.node.dependents) {
        const k = `${run.id}/${d}`;
        const cur = decrements.get(k) ?? { runId: run.id, key: d, by: 0, paused: run.status === "paused" };
        cur.by += 1;
        decrements.set(k, cur);
      }
    });
    if (touched.size === 0) return outcomes;

    if (decrements.size) {
      const rows = [...decrements.values()].map((d) => sql`(${d.runId}::uuid, ${d.key}, ${d.by}::int, ${d.paused}::boolean)`);
      const times = readyTimes(sql`v.paused`, sql`now()`);
      const ready = await query<{ run_id: string; node_key: string; organization_id: string; paused: boolean }>(
        tx,
        sql`UPDATE workflow_run_nodes n
            SET deps_remaining = n.deps_remaining - v.by,
                status = CASE WHEN n.deps_remaining = v.by THEN 'ready' ELSE n.status END,
                available_at = CASE WHEN n.deps_remaining = v.by THEN ${times.availableAt} ELSE n.available_at END,
                resume_at = CASE WHEN n.deps_remaining = v.by THEN ${times.resumeAt} ELSE n.resume_at END
            FROM (VALUES ${sql.join(rows, sql`, `)}) AS v(run_id, node_key, by, paused)
            WHERE n.run_id = v.run_id AND n.node_key = v.node_key AND n.status = 'blocked'
            RETURNING n.run_id, n.node_key, n.organization_id, n.status, v.paused`,
      );
      const made = ready.filter((r: any) => r.status === "ready");
      for (const r of made) events.push({ organizationId: r.organization_id, runId: r.run_id, nodeKey: r.node_key, kind: "workflow.node.ready", payload: {} });
      if (made.some((r) => !r.paused)) await notify(tx, channels.work);
    }

    const live = [...touched].filter((r) => r.nodesPending > 0);
    if (live.length) {
      const rows = live.map((r) => sql`(${r.id}::uuid, ${JSON.stringify(r.context)}::jsonb, ${r.nodesPending}::int, ${r.status})`);
      await tx.execute(
        sql`UPDATE workflow_runs r SET context = v.context, nodes_pending = v.pending, status = v.status, started_at = coalesce(r.started_at, now())
            FROM (VALUES ${sql.join(rows, sql`, `)}) AS v(id, context, pending, status)
            WHERE r.id = v.id`,
      );
    }
    await emitEvents(tx, events);
    for (const run of touched) {
      if (run.nodesPending > 0) continue;
      await tx.execute(sql`UPDATE workflow_runs SET context = ${JSON.stringify(run.context)}::jsonb WHERE id = ${run.id}`);
      await finishRun(tx, run, run.error ? "failed" : "completed", run.error);
    }
    return outcomes;
  });
}
