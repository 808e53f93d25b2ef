/**
 * Commits node successes, in one transaction: the one completion. The executor commits
 * its finished steps in batches (completion-batcher.ts: a handful of statements and one
 * commit per batch instead of per step); a signal is a batch of one, guarded by the
 * node's wait instead of a lease.
 *
 * 1. lock every run of the batch (`lockRuns`, in id order: the global lock order is runs
 *    before nodes, and runs by id among themselves — so two batches never deadlock);
 * 2. one conditional UPDATE per kind of guard (a batch has one in practice) marks the
 *    nodes succeeded where their guard still holds — for the executor, (lease owner,
 *    attempt); an item whose guard no longer holds changes nothing and is reported
 *    `lost`;
 * 3. per run, in batch order: a pending run the claim could not start is started; each
 *    output that binds something is numbered (`output_seq`, the order it is bound into the
 *    context, run-context.ts) — the context document is neither read nor rewritten, so a
 *    completion costs the same however large the context has grown;
 * 4. dependents' counts are decremented (one UPDATE for the batch) and those reaching zero
 *    made ready: due now, or held while their run is paused (paused-nodes.ts);
 * 5. a waiting run none of whose nodes waits any more (its signal arrived) runs again;
 * 6. one UPDATE writes the runs; runs with no node left finish (`finishRuns`: two
 *    statements for all of them); one INSERT writes every event of the batch and sends the
 *    notifications (`fabric_events`, and `fabric_work` when nodes became due).
 *
 * Sizes are checked before anything is marked (domain/size-limits.ts): an item whose
 * output or `workflow.node.completed` payload is over its limit, or whose bound values
 * would grow its run's `context_bytes` past the context limit (in batch order), changes
 * nothing and is reported `{ tooLarge }` for its caller to fail the
 * node — the executor produced it, so the executor records the failure.
 */
import { sql, type SQL } from "drizzle-orm";
import { boundBytes, type JsonObject } from "../domain/context.js";
import { defaultSizeLimits, jsonBytes, SizeLimitError, type SizeLimits } from "../domain/size-limits.js";
import type { CompiledNode } from "../domain/compiled-workflow.js";
import { query, sqlIn, type Db, type Executor } from "./database.js";
import { channels, emitEvents, notify, type NewEvent } from "./events.js";
import { readyTimes } from "./paused-nodes.js";
import { finishRuns, guardSql, leaseGuardSql, lockRuns, type LockedRun, type NodeGuard } from "./run-state.js";

export interface NodeCompletion {
  runId: string;
  node: CompiledNode;
  /** What the node's row must still be for the completion to apply: the executor's lease, or a signal's wait. */
  guard: NodeGuard;
  output: JsonObject;
  /** Fields of the `workflow.node.completed` event besides `output` (the attempt; a signal's request id). */
  eventPayload?: Record<string, unknown>;
}

/**
 * Per item: `applied`, `lost` when its guard no longer held, or `{ tooLarge }` when a size
 * limit refused it (nothing was written for the last two).
 */
export type CompletionOutcome = "applied" | "lost" | { tooLarge: SizeLimitError };

export async function completeNodes(db: Db, items: readonly NodeCompletion[], limits: Pick<SizeLimits, "nodeOutputBytes" | "runContextBytes" | "eventPayloadBytes"> = defaultSizeLimits): Promise<CompletionOutcome[]> {
  if (items.length === 0) return [];
  return db.transaction(async (tx) => {
    const runs = new Map((await lockRuns(tx, items.map((i) => i.runId))).map((r) => [r.id, r]));
    const refused = new Map<number, SizeLimitError>();
    const contextBytes = new Map<string, number>();
    const added = new Map<number, number>();
    const seqs = new Map<number, number>();
    const lastSeq = new Map<string, number>();
    items.forEach((item, idx) => {
      const output = jsonBytes(item.output);
      if (output > limits.nodeOutputBytes) return void refused.set(idx, new SizeLimitError(`the output of node ${item.node.spec.key}`, output, limits.nodeOutputBytes));
      const payload = jsonBytes({ output: item.output, ...item.eventPayload });
      if (payload > limits.eventPayloadBytes) return void refused.set(idx, new SizeLimitError(`the completion event of node ${item.node.spec.key}`, payload, limits.eventPayloadBytes));
      const run = runs.get(item.runId);
      if (!run) return;
      const bytes = boundBytes(item.output, item.node.spec.outputs);
      const context = (contextBytes.get(run.id) ?? run.contextBytes) + bytes;
      if (context > limits.runContextBytes) return void refused.set(idx, new SizeLimitError(`the context of run ${run.id} after node ${item.node.spec.key}`, context, limits.runContextBytes));
      contextBytes.set(run.id, context);
      added.set(idx, bytes);
      // Numbered in batch order: the order its outputs are bound into the context.
      if (Object.keys(item.node.spec.outputs).length) {
        const seq = (lastSeq.get(run.id) ?? run.outputSeq) + 1;
        lastSeq.set(run.id, seq);
        seqs.set(idx, seq);
      }
    });
    const applied = await markSucceeded(
      tx,
      items,
      items.map((_, idx) => idx).filter((idx) => !refused.has(idx)),
      seqs,
    );
    const outcomes: CompletionOutcome[] = items.map((_, idx) => (refused.has(idx) ? { tooLarge: refused.get(idx)! } : applied.has(idx) ? "applied" : "lost"));

    const events: NewEvent[] = [];
    const decrements = new Map<string, { runId: string; key: string; by: number; paused: boolean }>();
    const touched = new Set<LockedRun>();
    const wasWaiting = new Set<LockedRun>();
    items.forEach((item, idx) => {
      if (outcomes[idx] !== "applied") return;
      // A node is updated only under its run, so an applied item's run exists and is locked.
      const run = runs.get(item.runId)!;
      touched.add(run);
      if (run.status === "waiting") wasWaiting.add(run);
      if (run.status === "pending") {
        run.status = "running";
        events.push({ organizationId: run.organizationId, runId: run.id, kind: "workflow.run.started", payload: {} });
      }
      events.push({ organizationId: run.organizationId, runId: run.id, nodeKey: item.node.spec.key, kind: "workflow.node.completed", payload: { output: item.output, ...item.eventPayload } });
      run.contextBytes += added.get(idx) ?? 0;
      run.outputSeq = Math.max(run.outputSeq, seqs.get(idx) ?? 0);
      run.nodesPending -= 1;
      for (const d of item.node.dependents) {
        const k = `${run.id}/${d}`;
        const cur = decrements.get(k) ?? { runId: run.id, key: d, by: 0, paused: run.status === "paused" };
        cur.by += 1;
        decrements.set(k, cur);
      }
    });
    if (touched.size === 0) return outcomes;

    let wake = false;
    if (decrements.size) {
      const rows = [...decrements.values()].map((d) => sql`(${d.runId}::uuid, ${d.key}, ${d.by}::int, ${d.paused}::boolean)`);
      const ready = readyTimes(sql`v.paused`, sql`now()`);
      const released = await query<{ run_id: string; node_key: string; organization_id: string; status: string; paused: boolean }>(
        tx,
        sql`UPDATE workflow_run_nodes n
            SET deps_remaining = n.deps_remaining - v.by,
                status = CASE WHEN n.deps_remaining = v.by THEN 'ready' ELSE n.status END,
                available_at = CASE WHEN n.deps_remaining = v.by THEN ${ready.availableAt} ELSE n.available_at END,
                resume_at = CASE WHEN n.deps_remaining = v.by THEN ${ready.resumeAt} ELSE n.resume_at END
            FROM (VALUES ${sql.join(rows, sql`, `)}) AS v(run_id, node_key, by, paused)
            WHERE n.run_id = v.run_id AND n.node_key = v.node_key AND n.status = 'blocked'
            RETURNING n.run_id, n.node_key, n.organization_id, n.status, v.paused`,
      );
      const made = released.filter((r) => r.status === "ready");
      for (const r of made) events.push({ organizationId: r.organization_id, runId: r.run_id, nodeKey: r.node_key, kind: "workflow.node.ready", payload: {} });
      if (made.some((r) => !r.paused)) wake = true;
    }

    if (wasWaiting.size) {
      const stillWaiting = new Set(
        (await query<{ run_id: string }>(tx, sql`SELECT DISTINCT run_id FROM workflow_run_nodes WHERE run_id IN ${sqlIn([...wasWaiting].map((r) => r.id))} AND status = 'waiting'`)).map((r) => r.run_id),
      );
      for (const run of wasWaiting) {
        if (stillWaiting.has(run.id)) continue;
        run.status = "running";
        events.push({ organizationId: run.organizationId, runId: run.id, kind: "workflow.run.resumed", payload: { reason: "signal" } });
      }
    }

    const rows = [...touched].map((r) => sql`(${r.id}::uuid, ${r.outputSeq}::int, ${r.contextBytes}::bigint, ${r.nodesPending}::int, ${r.status})`);
    await tx.execute(
      sql`UPDATE workflow_runs r SET output_seq = v.output_seq, context_bytes = v.context_bytes, nodes_pending = v.pending, status = v.status, started_at = coalesce(r.started_at, now())
          FROM (VALUES ${sql.join(rows, sql`, `)}) AS v(id, output_seq, context_bytes, pending, status)
          WHERE r.id = v.id`,
    );
    const finished = [...touched].filter((run) => run.nodesPending === 0).map((run) => ({ run, status: run.error ? ("failed" as const) : ("completed" as const), error: run.error }));
    events.push(...(await finishRuns(tx, finished)));
    await emitEvents(tx, events, wake ? [channels.work] : []);
    return outcomes;
  });
}

/**
 * Marks the items' nodes succeeded where their guards hold; returns the indexes of the
 * items that applied. Items are grouped by kind of guard: the lease guard takes its owner
 * and attempt from each VALUES row, the others have no parameters. Each row carries its
 * item's index, so that two items for one node (a stale attempt beside the current one)
 * are told apart: only the one whose guard matched is returned.
 */
async function markSucceeded(tx: Executor, items: readonly NodeCompletion[], candidates: readonly number[], seqs: ReadonlyMap<number, number>): Promise<Set<number>> {
  const groups = new Map<string, number[]>();
  candidates.forEach((idx) => {
    const item = items[idx]!;
    const kind = "owner" in item.guard ? "lease" : "waiting" in item.guard ? "waiting" : "expired";
    const group = groups.get(kind);
    if (group) group.push(idx);
    else groups.set(kind, [idx]);
  });
  const applied = new Set<number>();
  for (const [kind, indexes] of groups) {
    const values = indexes.map((idx) => {
      const i = items[idx]!;
      const lease = "owner" in i.guard ? i.guard : null;
      return sql`(${idx}::int, ${i.runId}::uuid, ${i.node.spec.key}, ${JSON.stringify(i.output)}::jsonb, ${seqs.get(idx) ?? null}::int, ${lease?.owner ?? null}::text, ${lease?.attempt ?? null}::int)`;
    });
    // The guard's unqualified columns (status, lease_owner, attempt, lease_expires_at) are
    // the node's: v's columns are named apart from them.
    const guard: SQL = kind === "lease" ? leaseGuardSql(sql`v.guard_owner`, sql`v.guard_attempt`) : guardSql(items[indexes[0]!]!.guard);
    const rows = await query<{ idx: number }>(
      tx,
      sql`UPDATE workflow_run_nodes n
          SET status = 'succeeded', output = v.output, output_seq = v.output_seq, error = NULL, finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
          FROM (VALUES ${sql.join(values, sql`, `)}) AS v(idx, item_run_id, item_node_key, output, output_seq, guard_owner, guard_attempt)
          WHERE n.run_id = v.item_run_id AND n.node_key = v.item_node_key AND ${guard}
          RETURNING v.idx`,
    );
    for (const r of rows) applied.add(Number(r.idx));
  }
  return applied;
}
