/**
 * Firing schedules, exactly once with any number of control planes.
 *
 * A control plane claims due schedules with `SELECT … FOR UPDATE SKIP LOCKED` (a row
 * another one holds is skipped, never waited for) and, in that same transaction, starts
 * the runs of the due fire times, records one `schedule_fires` row per fire time (primary
 * key (schedule, fire time)), and moves `next_fire_at` past now. A control plane that read
 * the row before that commit re-checks it when it gets the lock (READ COMMITTED re-reads
 * a locked row's newest version against the WHERE clause) and finds it no longer due. The
 * run's idempotency key `schedule:<id>:<fire time>` is a second guard: a fire time can
 * create one run only.
 *
 * Lock order: the schedule row, then (overlap `cancel_previous`) the previous run
 * (db/run-state.ts `lockRun`), then its nodes — no run writer takes a schedule lock.
 *
 * Each fire runs in a savepoint: a fire that cannot start (its workflow was deleted…) is
 * recorded as `failed` with the reason, and the schedule moves on.
 */
import { and, asc, eq, gt, isNotNull, lt, lte, ne, sql } from "drizzle-orm";
import type { JsonObject } from "../domain/context.js";
import { dueFires, scheduleLimits, type FireOutcome } from "../domain/schedule-timing.js";
import { isReservedWorkflowName } from "../domain/workflow-spec.js";
import { query, type Db, type Tx } from "./database.js";
import { emitEvents, type NewEvent } from "./events.js";
import { insertRun } from "./insert-run.js";
import { activeRunStatuses, finishRun, lockRun } from "./run-state.js";
import { scheduleFires, schedules, workflowDefinitions, workflowRuns } from "./schema.js";
import type { WorkflowCache } from "./workflow-specs.js";
import { timingOf } from "./schedule-rows.js";

export type ScheduleRow = typeof schedules.$inferSelect;

export interface FireDeps {
  workflows: WorkflowCache;
  /** A fire time later than this when claimed was missed (default scheduleLimits.graceMs). */
  graceMs?: number;
}

/** How long fire records are kept (queued ones until they start). */
const fireRecordDays = 7;

interface Fire {
  fireAt: Date;
  outcome: FireOutcome;
  runId: string | null;
  cancelledRunId: string | null;
  error: string;
}

const runKey = (scheduleId: string, fireAt: Date) => `schedule:${scheduleId}:${fireAt.toISOString()}`;

async function dbNow(tx: Tx): Promise<Date> {
  const [row] = await query<{ now: Date | string }>(tx, sql`SELECT now() AS now`);
  return new Date(row!.now);
}

async function runIsActive(tx: Tx, runId: string | null): Promise<boolean> {
  if (!runId) return false;
  const [run] = await tx.select({ status: workflowRuns.status }).from(workflowRuns).where(eq(workflowRuns.id, runId));
  return !!run && activeRunStatuses.includes(run.status);
}

/** Starts the run of one fire time in a savepoint; `failed` with the reason when it cannot. */
async function startRun(tx: Tx, deps: FireDeps, s: ScheduleRow, fireAt: Date, now: Date): Promise<Pick<Fire, "outcome" | "runId" | "error">> {
  try {
    return await tx.transaction(async (sp) => {
      const t = workflowDefinitions;
      const [def] = await sp
        .select()
        .from(t)
        .where(and(eq(t.organizationId, s.organizationId), eq(t.name, s.workflowName), s.workflowVersion !== null ? eq(t.version, s.workflowVersion) : undefined))
        .orderBy(sql`${t.version} DESC`)
        .limit(1);
      if (!def || isReservedWorkflowName(def.name)) return { outcome: "failed" as const, runId: null, error: `workflow ${s.workflowName}${s.workflowVersion !== null ? `@${s.workflowVersion}` : ""} not found` };
      const wf = await deps.workflows.get(sp, def.id);
      const key = runKey(s.id, fireAt);
      const timeout = wf.spec.runTimeoutMs;
      const inserted = await insertRun(sp, {
        organizationId: s.organizationId,
        teamId: def.teamId,
        workflow: def,
        compiled: wf,
        priority: 50,
        failFast: true,
        input: s.input as JsonObject,
        context: s.input as JsonObject,
        metadata: { schedule_id: s.id, schedule_name: s.name, fire_time: fireAt.toISOString() },
        idempotencyKey: key,
        createdBy: s.createdBy,
        apiKeyId: null,
        requestId: `schedule:${s.id}`,
        origin: { state: null, deadline: timeout ? new Date(now.getTime() + timeout) : null },
      });
      if (inserted) return { outcome: "started" as const, runId: inserted.run.id, error: "" };
      const [existing] = await sp.select({ id: workflowRuns.id }).from(workflowRuns).where(and(eq(workflowRuns.organizationId, s.organizationId), eq(workflowRuns.idempotencyKey, key)));
      return { outcome: "started" as const, runId: existing?.id ?? null, error: "" };
    });
  } catch (err) {
    return { outcome: "failed", runId: null, error: String((err as Error)?.message ?? err).slice(0, 500) };
  }
}

/** Cancels the schedule's previous run when it is still active; its id, or null. */
async function cancelPrevious(tx: Tx, s: ScheduleRow, runId: string | null): Promise<string | null> {
  if (!runId) return null;
  const run = await lockRun(tx, runId);
  if (!run || !activeRunStatuses.includes(run.status)) return null;
  await finishRun(tx, run, "cancelled", { code: "cancelled", message: `cancelled by schedule ${s.name}: a newer fire started (overlap policy cancel_previous)` });
  return run.id;
}

function fireEvent(s: ScheduleRow, f: Fire, extra: Record<string, unknown> = {}): NewEvent {
  return {
    organizationId: s.organizationId,
    kind: "schedule.fired",
    payload: { schedule_id: s.id, team_id: s.teamId, fire_time: f.fireAt.toISOString(), outcome: f.outcome, run_id: f.runId, cancelled_run_id: f.cancelledRunId, ...(f.error ? { error: f.error } : {}), ...extra },
  };
}

async function fireOne(tx: Tx, deps: FireDeps, s: ScheduleRow, now: Date): Promise<void> {
  const due = dueFires(timingOf(s), s.nextFireAt!, now, s.catchUpPolicy, s.catchUpLimit, deps.graceMs);
  const fires: Fire[] = due.missed.map((fireAt) => ({ fireAt, outcome: "missed", runId: null, cancelledRunId: null, error: "" }));
  let lastRunId = s.lastRunId;
  let queued = s.queuedFires;
  for (const fireAt of due.start) {
    const fire: Fire = { fireAt, outcome: "started", runId: null, cancelledRunId: null, error: "" };
    const active = await runIsActive(tx, lastRunId);
    if (active && s.overlapPolicy === "skip") {
      fire.outcome = "skipped";
      fire.error = "the previous run is still active";
    } else if ((active || queued > 0) && s.overlapPolicy === "queue") {
      if (queued < scheduleLimits.queuedMax) {
        fire.outcome = "queued";
        queued++;
      } else {
        fire.outcome = "skipped";
        fire.error = `${scheduleLimits.queuedMax} fires are already queued`;
      }
    } else {
      if (active && s.overlapPolicy === "cancel_previous") fire.cancelledRunId = await cancelPrevious(tx, s, lastRunId);
      Object.assign(fire, await startRun(tx, deps, s, fireAt, now));
      if (fire.runId) lastRunId = fire.runId;
    }
    fires.push(fire);
  }
  if (fires.length) {
    await tx
      .insert(scheduleFires)
      .values(fires.map((f) => ({ scheduleId: s.id, fireAt: f.fireAt, outcome: f.outcome, runId: f.runId, cancelledRunId: f.cancelledRunId, error: f.error })))
      .onConflictDoNothing();
  }
  const lastFire = due.start.at(-1) ?? s.lastFireAt;
  await tx.update(schedules).set({ nextFireAt: due.next, lastFireAt: lastFire, lastRunId, queuedFires: queued }).where(eq(schedules.id, s.id));
  const events = fires.filter((f) => f.outcome !== "missed").map((f) => fireEvent(s, f));
  if (due.missedCount > 0) events.unshift(fireEvent(s, { fireAt: due.missed[0] ?? s.nextFireAt!, outcome: "missed", runId: null, cancelledRunId: null, error: "" }, { missed_count: due.missedCount, catch_up_policy: s.catchUpPolicy }));
  await emitEvents(tx, events);
  // Old records go (bounded: one schedule's, by its primary key); queued ones wait to start.
  await tx.delete(scheduleFires).where(and(eq(scheduleFires.scheduleId, s.id), lt(scheduleFires.fireAt, new Date(now.getTime() - fireRecordDays * 86_400_000)), ne(scheduleFires.outcome, "queued")));
}

/**
 * Claims up to `batch` due schedules (earliest first, SKIP LOCKED) and fires them in one
 * transaction; how many it claimed.
 */
export async function fireDueSchedules(db: Db, deps: FireDeps, batch = 20): Promise<number> {
  return db.transaction(async (tx) => {
    const now = await dbNow(tx);
    const due = await tx
      .select()
      .from(schedules)
      .where(and(eq(schedules.enabled, true), isNotNull(schedules.nextFireAt), lte(schedules.nextFireAt, now)))
      .orderBy(asc(schedules.nextFireAt))
      .limit(batch)
      .for("update", { skipLocked: true });
    for (const s of due) await fireOne(tx, deps, s, now);
    return due.length;
  });
}

/**
 * Starts the oldest queued fire of schedules (overlap `queue`) whose previous run has
 * ended; up to `batch` schedules, SKIP LOCKED like the claim. How many fires it started.
 */
export async function startQueuedFires(db: Db, deps: FireDeps, batch = 20): Promise<number> {
  return db.transaction(async (tx) => {
    const now = await dbNow(tx);
    const rows = await tx
      .select()
      .from(schedules)
      .where(and(gt(schedules.queuedFires, 0), eq(schedules.enabled, true)))
      .limit(batch)
      .for("update", { skipLocked: true });
    let started = 0;
    for (const s of rows) {
      if (await runIsActive(tx, s.lastRunId)) continue;
      const [next] = await tx
        .select()
        .from(scheduleFires)
        .where(and(eq(scheduleFires.scheduleId, s.id), eq(scheduleFires.outcome, "queued")))
        .orderBy(asc(scheduleFires.fireAt))
        .limit(1);
      if (!next) {
        await tx.update(schedules).set({ queuedFires: 0 }).where(eq(schedules.id, s.id));
        continue;
      }
      const result = await startRun(tx, deps, s, next.fireAt, now);
      started++;
      await tx.update(scheduleFires).set(result).where(and(eq(scheduleFires.scheduleId, s.id), eq(scheduleFires.fireAt, next.fireAt)));
      await tx
        .update(schedules)
        .set({ queuedFires: s.queuedFires - 1, lastRunId: result.runId ?? s.lastRunId })
        .where(eq(schedules.id, s.id));
      await emitEvents(tx, [fireEvent(s, { fireAt: next.fireAt, cancelledRunId: null, ...result }, { queued: true })]);
    }
    return started;
  });
}

/** Milliseconds until the earliest enabled schedule is due (≤ 0: due now); null when none is. */
export async function msUntilNextFire(db: Db): Promise<number | null> {
  const [row] = await query<{ ms: number | string | null }>(db, sql`SELECT EXTRACT(EPOCH FROM (min(next_fire_at) - now())) * 1000 AS ms FROM schedules WHERE enabled AND next_fire_at IS NOT NULL`);
  return row?.ms === null || row?.ms === undefined ? null : Number(row.ms);
}
