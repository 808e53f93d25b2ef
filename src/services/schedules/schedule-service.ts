/**
 * ScheduleService: schedules of workflow runs (cron patterns in a time zone, or one-off
 * start times) with their overlap and catch-up policies; the control planes' schedulers
 * fire them (control-plane/scheduler.ts, db/fire-schedules.ts).
 *
 * A schedule belongs to its workflow's team: creating or changing one needs
 * `schedule.write` and `run.create` there (the runs it starts are that team's); reading
 * needs `schedule.read`. A schedule starts its runs on its own authority (as its creator,
 * `created_by`), like a service account: pausing or deleting it is how to stop it. Every
 * change emits `schedule.created|updated|deleted` and writes one audit entry in the same
 * transaction; `next_fire_at` is computed again from now when the timing or `enabled`
 * changes (a resumed schedule does not catch up the time it was paused).
 */
import { randomUUID } from "node:crypto";
import { and, asc, desc, eq } from "drizzle-orm";
import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  CreateScheduleResponseSchema,
  DeleteScheduleResponseSchema,
  GetScheduleResponseSchema,
  ListScheduleFiresResponseSchema,
  ListSchedulesResponseSchema,
  ScheduleFireSchema,
  ScheduleSchema,
  UpdateScheduleResponseSchema,
  type CreateScheduleRequest,
  type DeleteScheduleRequest,
  type GetScheduleRequest,
  type ListScheduleFiresRequest,
  type ListSchedulesRequest,
  type Schedule,
  type ScheduleFire,
  type UpdateScheduleRequest,
} from "../../../gen/proto/fabric/v1/schedules_pb.js";
import type { Db, Executor, Tx } from "../../db/database.js";
import { emitEvents } from "../../db/events.js";
import { timingOf } from "../../db/schedule-rows.js";
import { scheduleFires, schedules, workflowDefinitions } from "../../db/schema.js";
import { DomainError, invalidArgument, notFound, type Issue } from "../../domain/errors.js";
import { catchUpPolicies, compileCron, fireOutcomes, fireTimesFrom, isTimeZone, nextFireAfter, overlapPolicies, scheduleLimits, type CatchUpPolicy, type OverlapPolicy, type Timing } from "../../domain/schedule-timing.js";
import { defaultSizeLimits, jsonBytes, type SizeLimits } from "../../domain/size-limits.js";
import { isReservedWorkflowName } from "../../domain/workflow-spec.js";
import { recordAudit } from "../access/record-audit.js";
import { readableTeamsCondition, requirePermission } from "../access/permission-checks.js";
import { isUuid, type CallContext } from "../call-context.js";

type ScheduleRow = typeof schedules.$inferSelect;
type FireRow = typeof scheduleFires.$inferSelect;

export const scheduleAuditActions = { create: "schedule.create", update: "schedule.update", delete: "schedule.delete" } as const;

/** At most this many schedules in one list (the newest names first are not a page: lists are bounded, not paged). */
export const maxListedSchedules = 1000;

const ts = (d: Date | null | undefined) => (d ? timestampFromDate(d) : undefined);

export function scheduleMessage(row: ScheduleRow): Schedule {
  const next = row.enabled && row.nextFireAt ? fireTimesFrom(timingOf(row), row.nextFireAt, scheduleLimits.nextFireTimes) : [];
  return create(ScheduleSchema, {
    id: row.id,
    organizationId: row.organizationId,
    teamId: row.teamId ?? "",
    name: row.name,
    description: row.description,
    workflowName: row.workflowName,
    workflowVersion: row.workflowVersion ?? undefined,
    input: row.input as JsonObject,
    cron: row.cron,
    timezone: row.timezone,
    startTime: ts(row.startAt),
    enabled: row.enabled,
    overlapPolicy: row.overlapPolicy,
    catchUpPolicy: row.catchUpPolicy,
    catchUpLimit: row.catchUpLimit,
    nextFireTimes: next.map((d) => timestampFromDate(d)),
    lastFireTime: ts(row.lastFireAt),
    lastRunId: row.lastRunId ?? "",
    queuedFires: row.queuedFires,
    createTime: ts(row.createdAt),
    updateTime: ts(row.updatedAt),
  });
}

function fireMessage(row: FireRow): ScheduleFire {
  return create(ScheduleFireSchema, {
    scheduleId: row.scheduleId,
    fireTime: ts(row.fireAt),
    outcome: row.outcome,
    runId: row.runId ?? "",
    cancelledRunId: row.cancelledRunId ?? "",
    error: row.error,
    createTime: ts(row.createdAt),
  });
}

/** What audit entries and events say about a schedule (not its input, which may be large). */
const describe = (row: ScheduleRow) => ({
  schedule_id: row.id,
  team_id: row.teamId,
  name: row.name,
  workflow_name: row.workflowName,
  workflow_version: row.workflowVersion,
  cron: row.cron,
  timezone: row.timezone,
  start_time: row.startAt?.toISOString() ?? null,
  enabled: row.enabled,
  overlap_policy: row.overlapPolicy,
  catch_up_policy: row.catchUpPolicy,
});

interface Checked {
  issues: Issue[];
  add(path: string, code: string, message: string): void;
}
const checker = (): Checked => {
  const issues: Issue[] = [];
  return { issues, add: (path, code, message) => issues.push({ path, code, message }) };
};
const throwIssues = (c: Checked) => {
  if (c.issues.length) throw invalidArgument(c.issues.map((i) => i.message).join("; "), c.issues);
};

function checkPolicies(c: Checked, p: { overlap?: string; catchUp?: string; limit?: number }) {
  if (p.overlap !== undefined && !(overlapPolicies as readonly string[]).includes(p.overlap)) c.add("/overlap_policy", "invalid_value", `overlap_policy must be one of ${overlapPolicies.join(", ")}`);
  if (p.catchUp !== undefined && !(catchUpPolicies as readonly string[]).includes(p.catchUp)) c.add("/catch_up_policy", "invalid_value", `catch_up_policy must be one of ${catchUpPolicies.join(", ")}`);
  if (p.limit !== undefined && (!Number.isInteger(p.limit) || p.limit < 1 || p.limit > scheduleLimits.catchUpLimitMax)) c.add("/catch_up_limit", "invalid_value", `catch_up_limit must be within 1..${scheduleLimits.catchUpLimitMax}`);
}

function checkDescription(c: Checked, d: string | undefined) {
  if (d !== undefined && d.length > scheduleLimits.descriptionMaxLength) c.add("/description", "too_long", `description must be at most ${scheduleLimits.descriptionMaxLength} characters`);
}

function checkInput(c: Checked, input: JsonObject | undefined, limits: SizeLimits) {
  const bytes = input ? jsonBytes(input) : 0;
  if (bytes > limits.runInputBytes) c.add("/input", "too_large", `input is ${bytes} bytes, over the limit of ${limits.runInputBytes} bytes`);
}

/** The timing a request asks for: a cron pattern in a valid zone, or a start time not already past. */
function checkTiming(c: Checked, cron: string, timezone: string, startTime: Date | undefined, now: Date): Timing | null {
  if (cron && startTime) {
    c.add("/cron", "invalid_value", "give cron or start_time, not both");
    return null;
  }
  if (!cron && !startTime) {
    c.add("/cron", "required", "cron or start_time is required");
    return null;
  }
  if (!isTimeZone(timezone)) {
    c.add("/timezone", "invalid_value", `timezone ${JSON.stringify(timezone.slice(0, 64))} is not an IANA time zone`);
    return null;
  }
  if (startTime) {
    if (Number.isNaN(startTime.getTime()) || startTime.getTime() < now.getTime() - scheduleLimits.graceMs) {
      c.add("/start_time", "invalid_value", "start_time is in the past");
      return null;
    }
    return { startAt: startTime };
  }
  const compiled = compileCron(cron, timezone);
  if (typeof compiled === "string") {
    c.add("/cron", "invalid_cron", `cron: ${compiled}`);
    return null;
  }
  return { cron, timezone };
}

/** The first fire time of a schedule (re)started at `now`. */
const firstFire = (t: Timing, now: Date) => ("startAt" in t ? t.startAt : nextFireAfter(t, now));

export function createScheduleService(deps: { db: Db; limits?: SizeLimits; /** Wakes the local scheduler (a schedule changed). */ kick?: () => void }) {
  const { db } = deps;
  const sizeLimits = deps.limits ?? defaultSizeLimits;

  /** A schedule of the caller's organization (another tenant's is "not found"), with `action` checked on its team. */
  async function loadSchedule(ex: Executor, ctx: CallContext, id: string, action: "schedule.read" | "schedule.write", lock = false): Promise<ScheduleRow> {
    const q = isUuid(id) ? ex.select().from(schedules).where(and(eq(schedules.id, id), eq(schedules.organizationId, ctx.caller.organizationId))) : null;
    const [row] = q ? await (lock ? q.for("update") : q) : [];
    if (!row) throw notFound("schedule", id);
    requirePermission(ctx, action, { teamId: row.teamId });
    return row;
  }

  /** The workflow a schedule names (its pinned version, else the latest), and the checks on its team. */
  async function workflowFor(ex: Executor, ctx: CallContext, name: string, version: number | null) {
    if (isReservedWorkflowName(name)) throw invalidArgument(`${name} is a built-in workflow of jobs and cannot be scheduled`, [{ path: "/workflow_name", code: "reserved_name", message: "a built-in workflow of jobs" }]);
    const t = workflowDefinitions;
    const [def] = name
      ? await ex
          .select({ teamId: t.teamId, name: t.name, version: t.version })
          .from(t)
          .where(and(eq(t.organizationId, ctx.caller.organizationId), eq(t.name, name), version !== null ? eq(t.version, version) : undefined))
          .orderBy(desc(t.version))
          .limit(1)
      : [];
    if (!def) throw notFound("workflow", version !== null ? `${name}@${version}` : name);
    requirePermission(ctx, "schedule.write", { teamId: def.teamId });
    requirePermission(ctx, "run.create", { teamId: def.teamId });
    return def;
  }

  async function changed(tx: Tx, ctx: CallContext, kind: "schedule.created" | "schedule.updated" | "schedule.deleted", action: `${string}.${string}`, row: ScheduleRow, extra: Record<string, unknown> = {}) {
    const summary = { ...describe(row), ...extra };
    await emitEvents(tx, [{ organizationId: row.organizationId, kind, payload: { ...summary, request_id: ctx.requestId } }]);
    await recordAudit(tx, ctx, { action, resource: `schedule:${row.id}`, summary });
  }

  return {
    async createSchedule(ctx: CallContext, req: CreateScheduleRequest) {
      const c = checker();
      const now = new Date();
      const name = req.name.trim();
      if (!name) c.add("/name", "required", "name is required");
      else if (name.length > scheduleLimits.nameMaxLength) c.add("/name", "too_long", `name must be at most ${scheduleLimits.nameMaxLength} characters`);
      if (!req.workflowName) c.add("/workflow_name", "required", "workflow_name is required");
      if (req.workflowVersion !== undefined && req.workflowVersion < 1) c.add("/workflow_version", "invalid_value", "workflow_version must be at least 1");
      checkDescription(c, req.description);
      checkInput(c, req.input, sizeLimits);
      const overlap = (req.overlapPolicy || "skip") as OverlapPolicy;
      const catchUp = (req.catchUpPolicy || (req.startTime ? "latest" : "none")) as CatchUpPolicy;
      checkPolicies(c, { overlap, catchUp, limit: req.catchUpLimit });
      const timezone = req.timezone || "UTC";
      const timing = checkTiming(c, req.cron.trim(), timezone, req.startTime ? timestampDate(req.startTime) : undefined, now);
      throwIssues(c);
      const enabled = req.enabled ?? true;
      const created = await db.transaction(async (tx) => {
        const def = await workflowFor(tx, ctx, req.workflowName, req.workflowVersion ?? null);
        const [row] = await tx
          .insert(schedules)
          .values({
            id: randomUUID(),
            organizationId: ctx.caller.organizationId,
            teamId: def.teamId,
            name,
            description: req.description,
            workflowName: def.name,
            workflowVersion: req.workflowVersion ?? null,
            input: req.input ?? {},
            cron: "cron" in timing! ? timing.cron : "",
            timezone,
            startAt: "startAt" in timing! ? timing.startAt : null,
            enabled,
            overlapPolicy: overlap,
            catchUpPolicy: catchUp,
            catchUpLimit: req.catchUpLimit ?? scheduleLimits.catchUpLimitDefault,
            nextFireAt: enabled ? firstFire(timing!, now) : null,
            createdBy: ctx.caller.principalId,
          })
          .onConflictDoNothing({ target: [schedules.organizationId, schedules.name] })
          .returning();
        if (!row) throw new DomainError("already_exists", `a schedule named ${JSON.stringify(name)} already exists`);
        await changed(tx, ctx, "schedule.created", scheduleAuditActions.create, row);
        return row;
      });
      deps.kick?.();
      return create(CreateScheduleResponseSchema, { schedule: scheduleMessage(created) });
    },

    async getSchedule(ctx: CallContext, req: GetScheduleRequest) {
      return create(GetScheduleResponseSchema, { schedule: scheduleMessage(await loadSchedule(db, ctx, req.id, "schedule.read")) });
    },

    async listSchedules(ctx: CallContext, req: ListSchedulesRequest) {
      const teams = readableTeamsCondition(ctx, "schedule.read", schedules.teamId);
      if (teams === null) return create(ListSchedulesResponseSchema, {});
      const rows = await db
        .select()
        .from(schedules)
        .where(and(eq(schedules.organizationId, ctx.caller.organizationId), teams, req.workflowName ? eq(schedules.workflowName, req.workflowName) : undefined))
        .orderBy(asc(schedules.name))
        .limit(maxListedSchedules);
      return create(ListSchedulesResponseSchema, { schedules: rows.map(scheduleMessage) });
    },

    async updateSchedule(ctx: CallContext, req: UpdateScheduleRequest) {
      const c = checker();
      const now = new Date();
      checkDescription(c, req.description);
      checkInput(c, req.input, sizeLimits);
      checkPolicies(c, { overlap: req.overlapPolicy, catchUp: req.catchUpPolicy, limit: req.catchUpLimit });
      if (req.workflowVersion !== undefined && req.workflowVersion < 0) c.add("/workflow_version", "invalid_value", "workflow_version must be at least 1 (0 unpins)");
      if (req.cron !== undefined && req.startTime !== undefined) c.add("/cron", "invalid_value", "give cron or start_time, not both");
      throwIssues(c);
      const updated = await db.transaction(async (tx) => {
        const row = await loadSchedule(tx, ctx, req.id, "schedule.write", true);
        const version = req.workflowVersion === undefined ? row.workflowVersion : req.workflowVersion === 0 ? null : req.workflowVersion;
        await workflowFor(tx, ctx, row.workflowName, version);
        const timingChanged = req.cron !== undefined || req.timezone !== undefined || req.startTime !== undefined;
        const cron = req.startTime !== undefined ? "" : (req.cron?.trim() ?? row.cron);
        const timezone = req.timezone ?? row.timezone;
        const startTime = req.cron !== undefined ? undefined : req.startTime !== undefined ? timestampDate(req.startTime) : (row.startAt ?? undefined);
        const tc = checker();
        // An unchanged one-off start time may be past (it fired): only a new one is checked against now.
        const timing = timingChanged ? checkTiming(tc, cron, timezone, startTime, now) : timingOf(row);
        throwIssues(tc);
        const enabled = req.enabled ?? row.enabled;
        const restart = timingChanged || (enabled && !row.enabled);
        const nextFireAt = !enabled ? row.nextFireAt : restart ? firstFire(timing!, now) : row.nextFireAt;
        const [after] = await tx
          .update(schedules)
          .set({
            description: req.description,
            input: req.input,
            cron: timingChanged ? ("cron" in timing! ? timing.cron : "") : undefined,
            timezone: timingChanged ? timezone : undefined,
            startAt: timingChanged ? ("startAt" in timing! ? timing.startAt : null) : undefined,
            enabled,
            overlapPolicy: req.overlapPolicy as OverlapPolicy | undefined,
            catchUpPolicy: req.catchUpPolicy as CatchUpPolicy | undefined,
            catchUpLimit: req.catchUpLimit,
            workflowVersion: version,
            nextFireAt,
            updatedAt: now,
          })
          .where(eq(schedules.id, row.id))
          .returning();
        const fields = Object.keys(req).filter((k) => !["id", "$typeName"].includes(k) && (req as unknown as Record<string, unknown>)[k] !== undefined);
        await changed(tx, ctx, "schedule.updated", scheduleAuditActions.update, after!, { changed: fields });
        return after!;
      });
      deps.kick?.();
      return create(UpdateScheduleResponseSchema, { schedule: scheduleMessage(updated) });
    },

    async deleteSchedule(ctx: CallContext, req: DeleteScheduleRequest) {
      const row = await db.transaction(async (tx) => {
        const r = await loadSchedule(tx, ctx, req.id, "schedule.write", true);
        await tx.delete(schedules).where(eq(schedules.id, r.id)); // its fire records cascade; its runs stay
        await changed(tx, ctx, "schedule.deleted", scheduleAuditActions.delete, r);
        return r;
      });
      return create(DeleteScheduleResponseSchema, { schedule: scheduleMessage({ ...row, enabled: false }) });
    },

    async listScheduleFires(ctx: CallContext, req: ListScheduleFiresRequest) {
      const s = await loadSchedule(db, ctx, req.scheduleId, "schedule.read");
      if (req.outcome && !(fireOutcomes as readonly string[]).includes(req.outcome)) throw invalidArgument(`outcome must be one of ${fireOutcomes.join(", ")}`, [{ path: "/outcome", code: "invalid_value", message: "unknown outcome" }]);
      const rows = await db
        .select()
        .from(scheduleFires)
        .where(and(eq(scheduleFires.scheduleId, s.id), req.outcome ? eq(scheduleFires.outcome, req.outcome as FireRow["outcome"]) : undefined))
        .orderBy(desc(scheduleFires.fireAt))
        .limit(100);
      return create(ListScheduleFiresResponseSchema, { fires: rows.map(fireMessage) });
    },
  };
}
