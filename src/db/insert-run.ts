/**
 * Inserts a run with its nodes and first events, in the caller's transaction. Nothing is
 * locked: the run is new, and no other transaction sees it before this one commits. The
 * idempotency key is unique per organization (`workflow_runs_idempotency`): when it
 * already names a run, ON CONFLICT DO NOTHING inserts nothing and the caller answers the
 * existing run — two concurrent starts with one key create one run.
 *
 * Nodes with no dependency start `ready` (due now: `NOTIFY fabric_work` at commit wakes
 * the workers), the others `blocked` with their dependency count. A rerun copies the
 * source's succeeded nodes as they were (output, attempts, times) and counts only the
 * others as pending or as dependencies; their outputs are in the starting context (the
 * source's final one) already, so they are not numbered (db/run-context.ts).
 */
import { randomUUID } from "node:crypto";
import { sql, type SQL } from "drizzle-orm";
import type { CompiledWorkflow } from "../domain/compiled-workflow.js";
import type { JsonObject } from "../domain/context.js";
import { jsonBytes } from "../domain/size-limits.js";
import type { Tx } from "./database.js";
import { channels, emitEvents, notify, type NewEvent } from "./events.js";
import type { EventKind } from "../domain/event-kinds.js";
import { workflowRunNodes, workflowRuns, type NodeStatus } from "./schema.js";

export type RunRow = typeof workflowRuns.$inferSelect;
export type RunNodeRow = typeof workflowRunNodes.$inferSelect;

export interface NewRun {
  organizationId: string;
  /** The run's team: its workflow's, or a job's. */
  teamId: string | null;
  workflow: { id: string; name: string; version: number };
  compiled: CompiledWorkflow;
  priority: number;
  failFast: boolean;
  input: JsonObject;
  /** The starting context (the input, or for a rerun the source's final context). */
  context: JsonObject;
  metadata: JsonObject;
  idempotencyKey: string | null;
  /** Who started it: principal and API key. */
  createdBy: string | null;
  apiKeyId: string | null;
  /** Recorded in `workflow.run.created`. */
  requestId: string;
  /** W3C `traceparent` the run's nodes continue (telemetry/tracing.ts); null without tracing. */
  traceContext?: string | null;
  /**
   * A new run: the caller's `state` (JSON, echoed in the terminal event) and deadline.
   * A rerun of a finished run: the source's state and the length of its deadline
   * (`deadline_at − created_at`), counted from the rerun's creation on the database clock
   * the reaper checks against; `reuse` holds the source's nodes by key.
   */
  origin: { state: unknown; deadline: Date | null } | { rerunOf: string; reuse: ReadonlyMap<string, RunNodeRow> };
}

/** The run and its nodes in definition order; null when the idempotency key already names a run. */
export async function insertRun(tx: Tx, args: NewRun): Promise<{ run: RunRow; nodes: RunNodeRow[] } | null> {
  const runId = randomUUID();
  const spec = args.compiled.spec;
  const rerun = "rerunOf" in args.origin ? args.origin : null;
  const reuse: ReadonlyMap<string, RunNodeRow> = rerun?.reuse ?? new Map();
  const pending = spec.nodes.filter((n) => reuse.get(n.key)?.status !== "succeeded").length;
  const inserted = await tx
    .insert(workflowRuns)
    .values({
      id: runId,
      organizationId: args.organizationId,
      teamId: args.teamId,
      workflowId: args.workflow.id,
      workflowName: args.workflow.name,
      workflowVersion: args.workflow.version,
      status: "pending",
      priority: args.priority,
      failFast: args.failFast,
      input: args.input,
      context: args.context,
      contextBytes: jsonBytes(args.context),
      metadata: args.metadata,
      idempotencyKey: args.idempotencyKey,
      rerunOf: rerun?.rerunOf ?? null,
      nodesPending: pending,
      createdBy: args.createdBy,
      apiKeyId: args.apiKeyId,
      traceContext: args.traceContext ?? null,
      ...stateAndDeadline(args.origin),
    })
    .onConflictDoNothing({ target: [workflowRuns.organizationId, workflowRuns.idempotencyKey], where: sql`idempotency_key IS NOT NULL` })
    .returning();
  const run = inserted[0];
  if (!run) return null;

  const rows: (typeof workflowRunNodes.$inferInsert)[] = spec.nodes.map((n, position) => {
    const base = { runId, organizationId: args.organizationId, nodeKey: n.key, position, operation: n.operation, priority: args.priority };
    const old = reuse.get(n.key);
    if (old?.status === "succeeded") {
      return { ...base, status: "succeeded", attempt: old.attempt, maxAttempts: old.maxAttempts, depsRemaining: 0, output: old.output, startedAt: old.startedAt, finishedAt: old.finishedAt };
    }
    const deps = n.dependsOn.filter((d) => reuse.get(d)?.status !== "succeeded").length;
    const status: NodeStatus = deps === 0 ? "ready" : "blocked";
    return { ...base, status, maxAttempts: n.policy?.maxAttempts ?? 0, depsRemaining: deps };
  });
  const nodes = await tx.insert(workflowRunNodes).values(rows).returning();
  const ev = (kind: EventKind, payload: Record<string, unknown> = {}, nodeKey?: string): NewEvent => ({ organizationId: args.organizationId, runId, nodeKey, kind, payload });
  await emitEvents(tx, [
    ev("workflow.run.created", { workflow_id: args.workflow.id, workflow_name: args.workflow.name, workflow_version: args.workflow.version, priority: args.priority, rerun_of: rerun?.rerunOf ?? null, request_id: args.requestId }),
    ev("workflow.run.queued"),
    ...nodes.filter((n) => n.status === "ready").map((n) => ev("workflow.node.ready", {}, n.nodeKey)),
  ]);
  await notify(tx, channels.work);
  nodes.sort((a, b) => a.position - b.position);
  return { run, nodes };
}

function stateAndDeadline(origin: NewRun["origin"]): { state: unknown; deadlineAt: Date | SQL | null } {
  if (!("rerunOf" in origin)) return { state: origin.state ?? null, deadlineAt: origin.deadline };
  // The source is finished: its state and deadline no longer change, so it needs no lock.
  // `created_at` defaults to now(), the transaction's start, as is now() here: the
  // deadline counts from the rerun's `created_at`.
  return {
    state: sql`(SELECT state FROM workflow_runs WHERE id = ${origin.rerunOf})`,
    deadlineAt: sql`now() + (SELECT deadline_at - created_at FROM workflow_runs WHERE id = ${origin.rerunOf})`,
  };
}
