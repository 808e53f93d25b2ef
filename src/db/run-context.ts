/**
 * A run's context, stored so that a step's cost does not grow with it.
 *
 * `workflow_runs.context` holds the context as of `context_seq`: the starting context (the
 * run's input, or a rerun's source context) while the run is active, the final context once
 * it has finished. A completion does not rewrite it: it numbers the node's output
 * (`workflow_run_nodes.output_seq`, from the run's `output_seq` counter) and stores it in
 * the node's row only. The context at any moment is `context` with the outputs numbered
 * above `context_seq` bound into it in their order, each with its node's `outputs` map and
 * merge policy (domain/context.ts `foldOutputs`) — what binding them one completion at a
 * time wrote before. `finishRun` folds them once and stores the final context
 * (`materialiseContext`), so a finished run reads as one row.
 *
 * Reads need no lock and no common snapshot: a numbered output never changes, `context`
 * only ever moves forward to a later `context_seq`, and each row carries its own — so a
 * run row read before its nodes gives the context as of the nodes' read or earlier,
 * never a mix. A step reads only what its bindings need: the base at those paths and the
 * outputs of the nodes whose targets overlap them (`readStepContext`), in one statement.
 */
import { sql, type SQL } from "drizzle-orm";
import type { CompiledNode, CompiledWorkflow } from "../domain/compiled-workflow.js";
import { foldOutputs, inputPaths, outputTargets, pickPaths, readPlan, type BoundOutput, type Json, type JsonObject } from "../domain/context.js";
import { query, sqlIn, type Executor } from "./database.js";
import { createWorkflowCache, type WorkflowCache } from "./workflow-specs.js";

/** Definitions are immutable per id: one cache serves every run of the process. */
const compiled: WorkflowCache = createWorkflowCache();

/** A numbered output of one of a run's nodes. */
export interface NumberedOutput {
  nodeKey: string;
  output: JsonObject | null;
  outputSeq: number;
}

/** The context: `base` (as of `contextSeq`) with the outputs numbered above it bound in, in order. */
export function assembleContext(wf: CompiledWorkflow, base: JsonObject, contextSeq: number, outputs: readonly NumberedOutput[]): JsonObject {
  const bound: BoundOutput[] = [];
  for (const o of [...outputs].filter((o) => o.outputSeq > contextSeq).sort((a, b) => a.outputSeq - b.outputSeq)) {
    const node = wf.nodes.get(o.nodeKey);
    if (node && o.output) bound.push({ output: o.output, outputs: node.spec.outputs, merge: node.merge });
  }
  return foldOutputs(base, bound);
}

/** What a run read needs to have its context assembled. */
export interface StoredRunContext {
  id: string;
  workflowId: string;
  context: unknown;
  contextSeq: number;
  outputSeq: number;
}

/**
 * The runs' contexts, by run id: a run whose context is up to date (every finished run)
 * costs nothing; the others' numbered outputs are read in one statement (or taken from
 * `nodes` when the caller has read them already).
 */
export async function readRunContexts(ex: Executor, runs: readonly StoredRunContext[], nodes?: readonly (NumberedOutput & { runId: string })[]): Promise<Map<string, JsonObject>> {
  const out = new Map<string, JsonObject>();
  const behind = runs.filter((r) => r.outputSeq > r.contextSeq);
  for (const r of runs) out.set(r.id, r.context as JsonObject);
  if (behind.length === 0) return out;
  const rows =
    nodes ??
    (
      await query<{ run_id: string; node_key: string; output: JsonObject | null; output_seq: number }>(
        ex,
        sql`SELECT run_id, node_key, output, output_seq FROM workflow_run_nodes WHERE run_id IN ${sqlIn(behind.map((r) => r.id))} AND output_seq IS NOT NULL`,
      )
    ).map((n) => ({ runId: n.run_id, nodeKey: n.node_key, output: n.output, outputSeq: Number(n.output_seq) }));
  for (const r of behind) {
    const wf = await compiled.get(ex, r.workflowId);
    const mine = rows.filter((n) => n.runId === r.id && n.outputSeq !== null && n.outputSeq !== undefined);
    out.set(r.id, assembleContext(wf, r.context as JsonObject, r.contextSeq, mine));
  }
  return out;
}

/** Whether a node reads the whole context: a `when` condition, `workflow.validate_context` without `inputs.value`, or a `$context` binding. */
function readsWholeContext(node: CompiledNode): boolean {
  if (node.when) return true;
  if (node.spec.operation === "workflow.validate_context" && !Object.hasOwn(node.spec.inputs ?? {}, "value")) return true;
  return inputPaths(node.spec.inputs as JsonObject | undefined).some((p) => p.length === 0);
}

/**
 * The part of a run's context that `node` reads, as a context: its input bindings' paths
 * (the whole context for a condition, `workflow.validate_context` or a `$context`
 * binding). One statement, whatever the run has produced: the base at those paths — at a
 * shorter path where another node writes above them, so that its merge applies to the
 * same value — and the numbered outputs of the nodes whose targets overlap them.
 */
export async function readStepContext(ex: Executor, runId: string, wf: CompiledWorkflow, node: CompiledNode): Promise<JsonObject> {
  const reads = readsWholeContext(node) ? [[]] : inputPaths(node.spec.inputs as JsonObject | undefined);
  if (reads.length === 0) return {};
  const { basePaths: minimal, writers } = readPlan(reads, new Map([...wf.nodes].map(([key, n]) => [key, outputTargets(n.spec.outputs)])));
  const picks = minimal.map((p) => (p.length === 0 ? sql`jsonb_build_object('v', r.context)` : sql`CASE WHEN r.context #> ${textArray(p)} IS NULL THEN NULL ELSE jsonb_build_object('v', r.context #> ${textArray(p)}) END`));
  const outputs = writers.length
    ? sql`(SELECT coalesce(jsonb_agg(jsonb_build_array(n.node_key, n.output) ORDER BY n.output_seq), '[]'::jsonb)
           FROM workflow_run_nodes n WHERE n.run_id = r.id AND n.node_key IN ${sqlIn(writers)} AND n.output_seq > r.context_seq)`
    : sql`'[]'::jsonb`;
  const [row] = await query<{ base: ({ v: Json } | null)[]; outputs: [string, JsonObject | null][] }>(
    ex,
    sql`SELECT jsonb_build_array(${sql.join(picks, sql`, `)}) AS base, ${outputs} AS outputs FROM workflow_runs r WHERE r.id = ${runId}`,
  );
  if (!row) return {};
  const base = pickPaths(
    row.base.map((b) => (b ? b.v : undefined)),
    minimal,
  );
  const bound: BoundOutput[] = [];
  for (const [key, output] of row.outputs) {
    const n = wf.nodes.get(key);
    if (n && output) bound.push({ output, outputs: n.spec.outputs, merge: n.merge });
  }
  return foldOutputs(base, bound);
}

function textArray(path: readonly string[]): SQL {
  return sql`ARRAY[${sql.join(
    path.map((p) => sql`${p}`),
    sql`, `,
  )}]::text[]`;
}

/**
 * The run's final context, for `finishRun` to store: its numbered outputs above
 * `context_seq` folded into `context` (null when there are none — the stored context is
 * already final). Called under the run's lock.
 */
export async function finalContext(ex: Executor, run: { id: string; workflowId: string; outputSeq: number; contextSeq: number }): Promise<JsonObject | null> {
  if (run.outputSeq <= run.contextSeq) return null;
  const [row] = await query<{ context: JsonObject; outputs: [string, JsonObject | null, number][] }>(
    ex,
    sql`SELECT r.context,
               (SELECT coalesce(jsonb_agg(jsonb_build_array(n.node_key, n.output, n.output_seq) ORDER BY n.output_seq), '[]'::jsonb)
                FROM workflow_run_nodes n WHERE n.run_id = r.id AND n.output_seq > r.context_seq) AS outputs
        FROM workflow_runs r WHERE r.id = ${run.id}`,
  );
  if (!row) return null;
  const wf = await compiled.get(ex, run.workflowId);
  return assembleContext(
    wf,
    row.context,
    run.contextSeq,
    row.outputs.map(([nodeKey, output, outputSeq]) => ({ nodeKey, output, outputSeq: Number(outputSeq) })),
  );
}
