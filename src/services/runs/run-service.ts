/**
 * Runs: start (idempotent per organization), read, list, control (cancel, pause,
 * resume, signal, rerun) and watch. Control operations take the run lock first, like
 * every run writer (see db/run-state.ts).
 *
 * A run belongs to its workflow's team (copied at start; a job's run, to the job's team,
 * kept by reruns). Every operation on a loaded run checks its action on that team
 * (`requirePermission`), lists show only the teams the caller may read, and every
 * change writes one audit entry — named after its use case (`runAuditActions`) — in the
 * transaction that makes it.
 */
import { and, asc, desc, eq, gt, gte, lt, lte, or, sql } from "drizzle-orm";
import { create, toJson, type JsonObject } from "@bufbuild/protobuf";
import { timestampDate, ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  CancelRunResponseSchema,
  GetRunResponseSchema,
  ListRunsResponseSchema,
  PauseRunResponseSchema,
  RerunRunResponseSchema,
  ResumeRunResponseSchema,
  SignalRunResponseSchema,
  StartRunResponseSchema,
  type CancelRunRequest,
  type Event,
  type GetRunRequest,
  type ListRunsRequest,
  type PauseRunRequest,
  type RerunRunRequest,
  type ResumeRunRequest,
  type SignalRunRequest,
  type StartRunRequest,
  type WatchRunRequest,
} from "../../../gen/proto/fabric/v1/run_pb.js";
import type { Db, Tx } from "../../db/database.js";
import { completeNodes } from "../../db/complete-nodes.js";
import { insertRun as insertRunRows } from "../../db/insert-run.js";
import { boundedLabel, metrics } from "../../telemetry/metrics.js";
import { markSpan } from "../../telemetry/tracing.js";
import { pauseRun, resumeRun } from "../../db/pause-run.js";
import { runEndedBy } from "../../db/run-events.js";
import { readRunContexts } from "../../db/run-context.js";
import { activeRunStatuses, finishRun, lockRun, terminalRunEventKinds, type LockedRun } from "../../db/run-state.js";
import { events, runStatuses, workflowDefinitions, workflowRunNodes, workflowRuns } from "../../db/schema.js";
import type { WorkflowCache } from "../../db/workflow-specs.js";
import type { CompiledWorkflow } from "../../domain/compiled-workflow.js";
import { DomainError, failedPrecondition, invalidArgument, notFound } from "../../domain/errors.js";
import type { Action } from "../../domain/permissions.js";
import { isReservedWorkflowName, limits } from "../../domain/workflow-spec.js";
import { defaultSizeLimits, jsonBytes, type SizeLimits } from "../../domain/size-limits.js";
import { recordAudit } from "../access/record-audit.js";
import { readableTeamsCondition, requirePermission } from "../access/permission-checks.js";
import { isUuid, type CallContext } from "../call-context.js";
import { SubscriberOverflow, type EventHub, type EventRow } from "../../delivery/event-hub.js";
import type { AccessWatch } from "../../delivery/access-watch.js";
import { watchStreamAccess } from "../access/stream-access.js";
import { eventMessage, runMessage } from "./run-messages.js";
import { decodeCursor, olderThan, pageOf, pageSize } from "../pagination.js";

type RunRow = typeof workflowRuns.$inferSelect;


/** The audit entries RunService writes: one action per use case. */
export const runAuditActions = { start: "run.start", cancel: "run.cancel", pause: "run.pause", resume: "run.resume", signal: "run.signal", rerun: "run.rerun" } as const;
type RunAuditAction = (typeof runAuditActions)[keyof typeof runAuditActions];

export type RunService = ReturnType<typeof createRunService>;

const maxRunQueryLength = 200;

/** ListRuns' text search: a run id prefix, or a part of the workflow name or idempotency key (case-insensitive, wildcards taken literally). */
function runTextMatch(text: string) {
  const t = workflowRuns;
  const like = `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const idPrefix = /^[0-9a-f-]{1,36}$/i.test(text) ? sql`${t.id}::text LIKE ${`${text.toLowerCase()}%`}` : undefined;
  return or(idPrefix, sql`lower(${t.workflowName}) LIKE ${like}`, sql`lower(coalesce(${t.idempotencyKey}, '')) LIKE ${like}`);
}

const terminalEventKinds = new Set(terminalRunEventKinds);

/**
 * Inserts a run of `def` with its nodes and first events (in the caller's transaction,
 * db/insert-run.ts); `null` when the idempotency key already exists. The run belongs to
 * the definition's team unless `teamId` says otherwise (a job's team). A rerun
 * (`rerunOf`) takes the source's state and deadline length, not `req.state` and
 * `deadline`. Shared by runs and jobs.
 */
export async function insertRun(
  tx: Tx,
  ctx: CallContext,
  args: {
    def: typeof workflowDefinitions.$inferSelect;
    wf: CompiledWorkflow;
    req: Pick<StartRunRequest, "priority" | "failFast" | "state" | "metadata" | "idempotencyKey">;
    context: JsonObject;
    input: JsonObject;
    deadline: Date | null;
    /** The run's team; default: the definition's. */
    teamId?: string | null;
    rerunOf?: RunRow;
    reuse?: Map<string, typeof workflowRunNodes.$inferSelect>;
  },
) {
  const { def, wf, req } = args;
  // The run's own span, under the request's: every node attempt of the run continues it.
  const traceContext = markSpan("fabric.run", { "fabric.workflow": def.name, "fabric.workflow_version": def.version, "fabric.organization_id": ctx.caller.organizationId });
  const inserted = await insertRunRows(tx, {
    traceContext,
    organizationId: ctx.caller.organizationId,
    teamId: args.teamId !== undefined ? args.teamId : def.teamId,
    workflow: def,
    compiled: wf,
    priority: req.priority ?? 50,
    failFast: req.failFast ?? true,
    input: args.input,
    context: args.context,
    metadata: req.metadata ?? {},
    idempotencyKey: req.idempotencyKey ?? null,
    createdBy: ctx.caller.principalId,
    apiKeyId: ctx.caller.apiKeyId ?? null,
    requestId: ctx.requestId,
    origin: args.rerunOf ? { rerunOf: args.rerunOf.id, reuse: args.reuse ?? new Map() } : { state: req.state ? toJson(ValueSchema, req.state) : null, deadline: args.deadline },
  });
  if (inserted) metrics.runsCreated.inc({ workflow: boundedLabel("workflow", def.name) });
  return inserted && runMessage(inserted.run, inserted.nodes);
}

export function createRunService(deps: { db: Db; workflows: WorkflowCache; hub: EventHub; limits?: SizeLimits; access?: AccessWatch; recheckMs?: number }) {
  const { db, workflows, hub } = deps;
  const sizeLimits = deps.limits ?? defaultSizeLimits;

  /** A run of the caller's organization (another tenant's is "not found"), with `action` checked on its team. */
  async function loadRun(ex: Db | Tx, ctx: CallContext, id: string, action: Action | null): Promise<RunRow> {
    const row = isUuid(id) ? (await ex.select().from(workflowRuns).where(and(eq(workflowRuns.id, id), eq(workflowRuns.organizationId, ctx.caller.organizationId))))[0] : undefined;
    if (!row) throw notFound("run", id);
    if (action) requirePermission(ctx, action, { teamId: row.teamId });
    return row;
  }

  /** The run with its nodes; `action` null when the caller's operation already checked it. */
  async function fullRun(ex: Db | Tx, ctx: CallContext, id: string, action: Action | null) {
    const row = await loadRun(ex, ctx, id, action);
    const nodes = await ex.select().from(workflowRunNodes).where(eq(workflowRunNodes.runId, row.id)).orderBy(asc(workflowRunNodes.position));
    const numbered = nodes.flatMap((n) => (n.outputSeq === null ? [] : [{ runId: n.runId, nodeKey: n.nodeKey, output: n.output as JsonObject | null, outputSeq: n.outputSeq }]));
    const context = (await readRunContexts(ex, [row], numbered)).get(row.id);
    return runMessage({ ...row, context }, nodes);
  }

  /** Locks a run of the caller's organization (another tenant's run is "not found") and checks `action` on its team. */
  async function lockOwnRun(tx: Tx, ctx: CallContext, id: string, action: Action): Promise<LockedRun> {
    const run = isUuid(id) ? await lockRun(tx, id) : null;
    if (!run || run.organizationId !== ctx.caller.organizationId) throw notFound("run", id);
    const [owner] = await tx.select({ teamId: workflowRuns.teamId }).from(workflowRuns).where(eq(workflowRuns.id, run.id));
    requirePermission(ctx, action, { teamId: owner!.teamId });
    return run;
  }

  const audit = (tx: Tx, ctx: CallContext, action: RunAuditAction, runId: string, summary: Record<string, unknown>) => recordAudit(tx, ctx, { action, resource: `run:${runId}`, summary });

  async function resolveDefinition(ctx: CallContext, req: StartRunRequest) {
    const t = workflowDefinitions;
    const org = ctx.caller.organizationId;
    if (req.workflowId) {
      const [def] = isUuid(req.workflowId) ? await db.select().from(t).where(and(eq(t.id, req.workflowId), eq(t.organizationId, org))) : [];
      if (!def) throw notFound("workflow", req.workflowId);
      return def;
    }
    if (!req.workflowName) throw invalidArgument("workflow_id or workflow_name is required", [{ path: "/workflow_id", code: "required", message: "workflow_id or workflow_name is required" }]);
    const [def] = await db
      .select()
      .from(t)
      .where(and(eq(t.organizationId, org), eq(t.name, req.workflowName), req.workflowVersion !== undefined ? eq(t.version, req.workflowVersion) : undefined))
      .orderBy(desc(t.version))
      .limit(1);
    if (!def) throw notFound("workflow", req.workflowVersion !== undefined ? `${req.workflowName}@${req.workflowVersion}` : req.workflowName);
    return def;
  }

  return {
    async startRun(ctx: CallContext, req: StartRunRequest) {
      const issues = [];
      if (req.priority !== undefined && (req.priority < 0 || req.priority > 100)) issues.push({ path: "/priority", code: "invalid_value", message: "priority must be within 0..100" });
      if (req.timeoutMs !== undefined && (req.timeoutMs < 1 || req.timeoutMs > limits.maxTimeoutMs)) issues.push({ path: "/timeout_ms", code: "invalid_value", message: `timeout_ms must be within 1..${limits.maxTimeoutMs}` });
      if (req.idempotencyKey !== undefined && (req.idempotencyKey.length < 1 || req.idempotencyKey.length > 255)) issues.push({ path: "/idempotency_key", code: "invalid_value", message: "idempotency_key must be 1..255 characters" });
      // A Value with no kind set (possible over gRPC) has no JSON form: toJson would throw an internal error.
      if (req.state && req.state.kind.case === undefined) issues.push({ path: "/state", code: "invalid_value", message: "state must hold a value (null, a number, a string, a bool, a list or an object)" });
      const inputBytes = req.input ? jsonBytes(req.input) : 0;
      if (inputBytes > sizeLimits.runInputBytes) issues.push({ path: "/input", code: "too_large", message: `input is ${inputBytes} bytes, over the limit of ${sizeLimits.runInputBytes} bytes` });
      if (issues.length) throw invalidArgument(issues.map((i) => i.message).join("; "), issues);
      const def = await resolveDefinition(ctx, req);
      // The built-in definitions run jobs, with the job's team and checks: POST /v1/jobs.
      if (isReservedWorkflowName(def.name)) {
        throw invalidArgument(`${def.name} is a built-in workflow of jobs: create a job (POST /v1/jobs) instead`, [{ path: req.workflowId ? "/workflow_id" : "/workflow_name", code: "reserved_name", message: "a built-in workflow of jobs" }]);
      }
      requirePermission(ctx, "run.create", { teamId: def.teamId });
      const wf = await workflows.get(db, def.id);
      const timeout = req.timeoutMs ?? wf.spec.runTimeoutMs;
      const input = req.input ?? {};
      const created = await db.transaction(async (tx) => {
        const run = await insertRun(tx, ctx, { def, wf, req, input, context: input, deadline: timeout ? new Date(Date.now() + timeout) : null });
        if (run) {
          await audit(tx, ctx, runAuditActions.start, run.id, {
            operation: "start",
            workflow_id: def.id,
            workflow_name: def.name,
            workflow_version: def.version,
            team_id: def.teamId,
            idempotency_key: req.idempotencyKey ?? null,
          });
        }
        return run;
      });
      if (created) return create(StartRunResponseSchema, { run: created, created: true });
      // The idempotency key names an existing run: answer it to those who may see it.
      const [existing] = await db.select().from(workflowRuns).where(and(eq(workflowRuns.organizationId, ctx.caller.organizationId), eq(workflowRuns.idempotencyKey, req.idempotencyKey!)));
      return create(StartRunResponseSchema, { run: await fullRun(db, ctx, existing!.id, "run.read"), created: false });
    },

    async getRun(ctx: CallContext, req: GetRunRequest) {
      return create(GetRunResponseSchema, { run: await fullRun(db, ctx, req.id, "run.read") });
    },

    async listRuns(ctx: CallContext, req: ListRunsRequest) {
      if (req.status && !(runStatuses as readonly string[]).includes(req.status)) throw invalidArgument(`status must be one of ${runStatuses.join(", ")}`, [{ path: "/status", code: "invalid_value", message: "unknown status" }]);
      const after = req.createdAfter ? timestampDate(req.createdAfter) : undefined;
      const before = req.createdBefore ? timestampDate(req.createdBefore) : undefined;
      if (after && before && after > before) throw invalidArgument("created_after must not be after created_before", [{ path: "/created_after", code: "invalid_value", message: "after created_before" }]);
      const text = req.query.trim();
      if ([...text].length > maxRunQueryLength) throw invalidArgument(`query must be at most ${maxRunQueryLength} characters`, [{ path: "/query", code: "too_long", message: `at most ${maxRunQueryLength} characters` }]);
      const size = pageSize(req.pageSize);
      const cursor = decodeCursor(req.pageToken);
      const t = workflowRuns;
      // An id that cannot exist matches nothing (as another organization's would).
      if ((req.workflowId && !isUuid(req.workflowId)) || (req.teamId && !isUuid(req.teamId))) return create(ListRunsResponseSchema, {});
      const teamCondition = readableTeamsCondition(ctx, "run.read", t.teamId);
      if (teamCondition === null) return create(ListRunsResponseSchema, {});
      const rows = await db
        .select()
        .from(t)
        .where(
          and(
            eq(t.organizationId, ctx.caller.organizationId),
            teamCondition,
            req.status ? eq(t.status, req.status as RunRow["status"]) : undefined,
            req.workflowId ? eq(t.workflowId, req.workflowId) : undefined,
            req.workflowName ? eq(t.workflowName, req.workflowName) : undefined,
            req.teamId ? eq(t.teamId, req.teamId) : undefined,
            after ? gte(t.createdAt, after) : undefined,
            before ? lt(t.createdAt, before) : undefined,
            text ? runTextMatch(text) : undefined,
            olderThan(t.createdAt, t.id, cursor),
          ),
        )
        .orderBy(desc(t.createdAt), desc(t.id))
        .limit(size + 1);
      const { page, nextPageToken } = pageOf(rows, size);
      const contexts = await readRunContexts(db, page);
      return create(ListRunsResponseSchema, { runs: page.map((r) => runMessage({ ...r, context: contexts.get(r.id) })), nextPageToken });
    },

    async cancelRun(ctx: CallContext, req: CancelRunRequest) {
      const message = await db.transaction(async (tx) => {
        const run = await lockOwnRun(tx, ctx, req.id, "run.cancel");
        // Already cancelled: nothing changes, nothing to audit.
        if (run.status !== "cancelled") {
          if (!activeRunStatuses.includes(run.status)) throw failedPrecondition(`run is already ${run.status}`, "run_finished");
          await finishRun(tx, run, "cancelled", { code: "cancelled", message: req.reason || "cancelled by request" });
          await audit(tx, ctx, runAuditActions.cancel, run.id, { operation: "cancel", previous_status: run.status, reason: req.reason || null });
        }
        return fullRun(tx, ctx, req.id, null);
      });
      return create(CancelRunResponseSchema, { run: message });
    },

    async pauseRun(ctx: CallContext, req: PauseRunRequest) {
      const message = await db.transaction(async (tx) => {
        const run = await lockOwnRun(tx, ctx, req.id, "run.control");
        // Already paused: nothing changes, nothing to audit.
        if (run.status !== "paused") {
          if (!activeRunStatuses.includes(run.status)) throw failedPrecondition(`run is already ${run.status}`, "run_finished");
          const previous = run.status;
          await pauseRun(tx, run);
          await audit(tx, ctx, runAuditActions.pause, run.id, { operation: "pause", previous_status: previous });
        }
        return fullRun(tx, ctx, req.id, null);
      });
      return create(PauseRunResponseSchema, { run: message });
    },

    async resumeRun(ctx: CallContext, req: ResumeRunRequest) {
      const message = await db.transaction(async (tx) => {
        const run = await lockOwnRun(tx, ctx, req.id, "run.control");
        if (run.status !== "paused") throw failedPrecondition(`run is ${run.status}, not paused`, "run_not_paused");
        const status = await resumeRun(tx, run);
        await audit(tx, ctx, runAuditActions.resume, run.id, { operation: "resume", status });
        return fullRun(tx, ctx, req.id, null);
      });
      return create(ResumeRunResponseSchema, { run: message });
    },

    async signalRun(ctx: CallContext, req: SignalRunRequest) {
      const run = await loadRun(db, ctx, req.id, "run.control");
      const waiting = await db.select({ key: workflowRunNodes.nodeKey }).from(workflowRunNodes).where(and(eq(workflowRunNodes.runId, run.id), eq(workflowRunNodes.status, "waiting")));
      let key = req.nodeKey;
      if (!key) {
        if (waiting.length !== 1) throw failedPrecondition(waiting.length ? `${waiting.length} nodes are waiting; name one in node_key` : "no node of this run is waiting for a signal", "not_waiting");
        key = waiting[0]!.key;
      } else if (!waiting.some((w) => w.key === key)) {
        throw failedPrecondition(`node ${JSON.stringify(key)} is not waiting for a signal`, "not_waiting");
      }
      const wf = await workflows.get(db, run.workflowId);
      // completeNodes opens its own transaction; given ours, it becomes a savepoint inside it,
      // so the completion and its audit entry commit together (or not at all).
      // The answer is the run as the signal left it, read in its transaction: an executor
      // may take the next node the moment it commits.
      const { outcome, message } = await db.transaction(async (tx) => {
        const [o] = await completeNodes(tx, [{ runId: run.id, node: wf.nodes.get(key)!, guard: { waiting: true }, output: req.payload ?? {}, eventPayload: { signal: true, request_id: ctx.requestId } }], sizeLimits);
        if (o !== "applied") return { outcome: o, message: undefined };
        await audit(tx, ctx, runAuditActions.signal, run.id, { operation: "signal", node_key: key });
        return { outcome: o, message: await fullRun(tx, ctx, req.id, null) };
      });
      if (outcome === "lost") throw failedPrecondition(`node ${JSON.stringify(key)} is no longer waiting`, "not_waiting");
      if (typeof outcome === "object") throw invalidArgument(outcome.tooLarge.message, [{ path: "/payload", code: "too_large", message: outcome.tooLarge.message }]);
      return create(SignalRunResponseSchema, { run: message });
    },

    async rerunRun(ctx: CallContext, req: RerunRunRequest) {
      const source = await loadRun(db, ctx, req.id, "run.create");
      if (source.status !== "failed" && source.status !== "cancelled") throw failedPrecondition(`only failed or cancelled runs can be rerun; this one is ${source.status}`, "run_not_failed");
      const [def] = await db.select().from(workflowDefinitions).where(eq(workflowDefinitions.id, source.workflowId));
      const wf = await workflows.get(db, source.workflowId);
      const old = await db.select().from(workflowRunNodes).where(eq(workflowRunNodes.runId, source.id));
      const reuse = new Map(old.map((n) => [n.nodeKey, n]));
      // The source is finished, so its stored context is its final one (db/run-context.ts).
      const sourceContext = (await readRunContexts(db, [source])).get(source.id)!;
      const fakeReq = { priority: source.priority, failFast: source.failFast, state: undefined, metadata: source.metadata } as unknown as StartRunRequest;
      const run = await db.transaction(async (tx) => {
        // The rerun keeps the source's state and the length of its deadline: the timeout_ms
        // it was started with (StartRun's, a job's), else its workflow's run_timeout_ms,
        // else none (db/insert-run.ts).
        const r = await insertRun(tx, ctx, { def: def!, wf, req: fakeReq, input: source.input as JsonObject, context: sourceContext, deadline: null, teamId: source.teamId, rerunOf: source, reuse });
        await audit(tx, ctx, runAuditActions.rerun, r!.id, { operation: "rerun", rerun_of: source.id, workflow_id: def!.id, workflow_version: def!.version, team_id: source.teamId });
        return r!;
      });
      return create(RerunRunResponseSchema, { run: await fullRun(db, ctx, run.id, null) });
    },

    /**
     * Replays the run's events after `after_id`, then follows live; ends after the
     * terminal event. Resolves only once the run is known to be visible, so a missing
     * run is an error before any stream starts.
     */
    async watchRun(ctx: CallContext, req: WatchRunRequest): Promise<AsyncGenerator<Event>> {
      const run = await loadRun(db, ctx, req.id, "run.read");
      return runEvents({ db, hub, access: deps.access, recheckMs: deps.recheckMs }, run.id, Number(req.afterId), ctx);
    },
  };
}

/**
 * A run's events for a watcher: the history after `afterId` (up to the hub's watermark),
 * then live, ending after the terminal event (at once when resuming after it). The hub
 * subscription is taken before the history is read, so nothing falls between the two.
 * Shared by RunService.WatchRun and JobService.WatchJob.
 */
export function runEvents(deps: { db: Db; hub: EventHub; access?: AccessWatch; recheckMs?: number }, runId: string, afterId: number, ctx: CallContext): AsyncGenerator<Event> {
  const { db, hub } = deps;
  const signal = ctx.signal;
  const access = watchStreamAccess(ctx, deps.access, deps.recheckMs ?? 15_000);
  const sub = hub.subscribe((e) => e.runId === runId);
  return (async function* () {
    try {
      let last = afterId;
      if (await runEndedBy(db, runId, last)) return;
      const history = await db
        .select()
        .from(events)
        .where(and(eq(events.runId, runId), gt(events.id, last), lte(events.id, sub.startCursor)))
        .orderBy(asc(events.id));
      for (const e of history) {
        yield eventMessage(e);
        last = Number(e.id);
        if (terminalEventKinds.has(e.kind)) return;
      }
      while (!signal.aborted) {
        const tick = access.waitSignal();
        let batch: EventRow[];
        try {
          batch = await sub.next(tick.signal);
        } catch (err) {
          if (err instanceof SubscriberOverflow) throw new DomainError("unavailable", `${err.message} (last delivered event ${last})`, { code: "subscriber_overflow" });
          throw err;
        } finally {
          tick.done();
        }
        // A logout, revoked key or removal ends the stream (access/stream-access.ts).
        await access.verify();
        if (batch.length === 0 && !tick.signal.aborted) return; // the hub is shutting down
        for (const e of batch) {
          if (Number(e.id) <= last) continue;
          await access.verify();
          yield eventMessage(e);
          last = Number(e.id);
          if (terminalEventKinds.has(e.kind)) return;
        }
      }
    } finally {
      access.close();
      sub.close();
    }
  })();
}
