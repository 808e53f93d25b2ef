/**
 * Run-level writes shared by completions, failures, cancellation, pause/resume and the
 * reaper.
 *
 * Lock order (prevents deadlocks): the run rows first (`lockRuns`, in id order), then
 * their node rows. Every writer of a run follows it except the claim, which never waits
 * (SKIP LOCKED).
 */
import { sql, type SQL } from "drizzle-orm";
import { query, sqlIn, type Executor } from "./database.js";
import { channels, emitEvents, notify, type NewEvent } from "./events.js";
import { finalContext } from "./run-context.js";
import type { EventKind } from "../domain/event-kinds.js";
import { terminalRunStatuses, type RunStatus } from "./schema.js";

export interface LockedRun {
  id: string;
  organizationId: string;
  workflowId: string;
  status: RunStatus;
  /** The last output number `context` includes, and the last one given (db/run-context.ts); the context itself is not read under the lock. */
  contextSeq: number;
  outputSeq: number;
  /** The context's size as limited: starting context plus every bound value. */
  contextBytes: number;
  nodesPending: number;
  failFast: boolean;
  state: unknown;
  error: RunErrorJson | null;
}

export interface RunErrorJson {
  code: string;
  message: string;
  node_key?: string;
}

export const activeRunStatuses: readonly RunStatus[] = ["pending", "running", "paused", "waiting"];

/** The kinds of the event `finishRun` writes last: a run's stream ends with one of them. */
export const terminalRunEventKinds: readonly string[] = terminalRunStatuses.map((s) => `workflow.run.${s}`);

interface RunLockRow {
  id: string;
  organization_id: string;
  workflow_id: string;
  status: RunStatus;
  context_seq: number | string;
  output_seq: number | string;
  context_bytes: number | string;
  nodes_pending: number | string;
  fail_fast: boolean;
  state: unknown;
  error: RunErrorJson | null;
}

/**
 * Locks the runs `runIds` (`FOR UPDATE`) and reads what their writers need, in id order:
 * the row locks are taken as the sorted rows come out, so every multi-run writer takes
 * them in the same order and two of them never wait on each other in a cycle. Runs that
 * do not exist are left out. The one run-lock query: every writer of a run starts here.
 */
export async function lockRuns(tx: Executor, runIds: readonly string[]): Promise<LockedRun[]> {
  if (runIds.length === 0) return [];
  const rows = await query<RunLockRow>(
    tx,
    sql`SELECT id, organization_id, workflow_id, status, context_seq, output_seq, context_bytes, nodes_pending, fail_fast, state, error
        FROM workflow_runs WHERE id IN ${sqlIn([...new Set(runIds)])} ORDER BY id FOR UPDATE`,
  );
  return rows.map((r) => ({
    id: r.id,
    organizationId: r.organization_id,
    workflowId: r.workflow_id,
    status: r.status,
    contextSeq: Number(r.context_seq),
    outputSeq: Number(r.output_seq),
    contextBytes: Number(r.context_bytes),
    nodesPending: Number(r.nodes_pending),
    failFast: r.fail_fast,
    state: r.state,
    error: r.error,
  }));
}

/** Locks one run (see `lockRuns`); null when it does not exist. */
export async function lockRun(tx: Executor, runId: string): Promise<LockedRun | null> {
  return (await lockRuns(tx, [runId]))[0] ?? null;
}

/** Which row state a node write is conditional on. */
export type NodeGuard =
  /** The caller holds the lease of this attempt. */
  | { owner: string; attempt: number }
  /** The node waits for a signal. */
  | { waiting: true }
  /** The lease (or signal wait) has expired. */
  | { expired: true };

/**
 * The guard as a condition on a `workflow_run_nodes` row. Its columns are unqualified, so
 * that it reads the same in a one-row UPDATE and in an UPDATE … FROM (VALUES …): other
 * relations in the statement must not have columns of these names.
 */
export function guardSql(g: NodeGuard): SQL {
  if ("owner" in g) return leaseGuardSql(g.owner, g.attempt);
  // A signal after the wait's deadline is refused even before the reaper has run.
  if ("waiting" in g) return sql`status = 'waiting' AND (lease_expires_at IS NULL OR lease_expires_at > now())`;
  return sql`status IN ('running', 'waiting') AND lease_expires_at < now()`;
}

/** The lease guard, its owner and attempt given as values or as SQL (a batch's VALUES columns). */
export function leaseGuardSql(owner: string | SQL, attempt: number | SQL): SQL {
  return sql`status = 'running' AND lease_owner = ${owner} AND attempt = ${attempt}`;
}

const runEvent = (run: LockedRun, kind: EventKind, payload: Record<string, unknown> = {}): NewEvent => ({ organizationId: run.organizationId, runId: run.id, kind, payload });

/** One run to end, and the events to write before its own (`finishRuns`). */
export interface RunFinish {
  run: LockedRun;
  status: "completed" | "failed" | "cancelled";
  error: RunErrorJson | null;
  extra?: NewEvent[];
}

/**
 * Ends runs: status, error, finish time, the final context (its numbered outputs folded
 * in once, db/run-context.ts), and per run `extra`, a `workflow.node.cancelled` for each
 * node not yet terminal (cancelled here: their owners' conditional writes then fail, and
 * executors abort them on the `fabric_cancel` notification), and the terminal event
 * echoing the caller's `state`. Two statements for any number of runs (plus one read per
 * run whose context has outputs to fold); returns the events for the caller to write with
 * its own, in one INSERT. The runs must be locked.
 */
export async function finishRuns(tx: Executor, finishes: readonly RunFinish[]): Promise<NewEvent[]> {
  if (finishes.length === 0) return [];
  const cancelled = await query<{ run_id: string; node_key: string }>(
    tx,
    sql`UPDATE workflow_run_nodes SET status = 'cancelled', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL, resume_at = NULL
        WHERE run_id IN ${sqlIn(finishes.map((f) => f.run.id))} AND status IN ('blocked', 'ready', 'running', 'waiting')
        RETURNING run_id, node_key`,
  );
  const rows: SQL[] = [];
  for (const f of finishes) {
    const context = await finalContext(tx, f.run);
    rows.push(sql`(${f.run.id}::uuid, ${f.status}, ${f.error ? JSON.stringify(f.error) : null}::jsonb, ${context ? JSON.stringify(context) : null}::jsonb, ${context ? f.run.outputSeq : null}::int)`);
    if (context) f.run.contextSeq = f.run.outputSeq;
  }
  await tx.execute(
    sql`UPDATE workflow_runs r SET status = v.status, error = v.error, nodes_pending = 0, finished_at = now(),
               context = coalesce(v.context, r.context), context_seq = coalesce(v.context_seq, r.context_seq)
        FROM (VALUES ${sql.join(rows, sql`, `)}) AS v(id, status, error, context, context_seq)
        WHERE r.id = v.id`,
  );
  const events: NewEvent[] = [];
  for (const f of finishes) {
    const mine = cancelled.filter((n) => n.run_id === f.run.id);
    events.push(
      ...(f.extra ?? []),
      ...mine.map((n) => ({ organizationId: f.run.organizationId, runId: f.run.id, nodeKey: n.node_key, kind: "workflow.node.cancelled" as const, payload: {} })),
      runEvent(f.run, `workflow.run.${f.status}`, { status: f.status, error: f.error, state: f.run.state ?? null }),
    );
    if (mine.length) await notify(tx, channels.cancel, f.run.id);
    f.run.status = f.status;
  }
  return events;
}

/** Ends one run (`finishRuns`) and writes its events. */
export async function finishRun(tx: Executor, run: LockedRun, status: "completed" | "failed" | "cancelled", error: RunErrorJson | null, extra: NewEvent[] = []): Promise<void> {
  await emitEvents(tx, await finishRuns(tx, [{ run, status, error, extra }]));
}

/** Marks a pending run running when the claim could not (its row was locked then). */
export async function ensureStarted(tx: Executor, run: LockedRun, events: NewEvent[]): Promise<void> {
  if (run.status !== "pending") return;
  await tx.execute(sql`UPDATE workflow_runs SET status = 'running', started_at = coalesce(started_at, now()) WHERE id = ${run.id}`);
  run.status = "running";
  events.push(runEvent(run, "workflow.run.started"));
}
