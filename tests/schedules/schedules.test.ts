/**
 * Schedules: CRUD, validation and permissions on both transports (the same answers, bad
 * input changes nothing), and firing in one control plane — one-off start times, cron
 * patterns, the overlap policies (skip, queue, cancel_previous) and the catch-up policies
 * after a downtime (none, latest, all). Exactly once across several control planes is
 * tests/multi-process/schedules.test.ts.
 */
import { randomUUID } from "node:crypto";
import { and, asc, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scheduleFires, schedules, workflowRuns } from "../../src/db/schema.js";
import { client, transports, type Actor } from "../helpers/calls.js";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { auditFor, eventsOfKind, expectNoAudit, expectOneAudit, insertTeam, member, setup } from "../helpers/fixtures.js";

let fabric: TestFabric;
let owner: Actor;
let viewer: Actor;
let readOnlyKey: Actor;
let other: Actor;
const quick = `sched-quick-${randomUUID().slice(0, 6)}`;
const waiting = `sched-wait-${randomUUID().slice(0, 6)}`;
let teamWorkflow = "";
let teamOnly: Actor;

beforeAll(async () => {
  fabric = await startTestFabric();
  owner = { key: fabric.apiKey };
  viewer = { key: (await member(fabric, fabric.organizationId, "viewer")).key };
  readOnlyKey = { key: (await member(fabric, fabric.organizationId, "admin", undefined, ["schedules:read"])).key };
  other = { key: (await fabric.otherOrg()).apiKey };
  await setup(fabric, "POST", "/v1/workflows", { name: quick, nodes: [{ key: "a", operation: "workflow.noop", inputs: { v: "$context.word" }, outputs: { v: "$context.echo" } }] }, 201);
  await setup(fabric, "POST", "/v1/workflows", { name: waiting, nodes: [{ key: "gate", operation: "workflow.wait_signal", config: { timeout_ms: 600_000 } }] }, 201);
  // A workflow of a team, and a maintainer of another team who may not schedule it.
  const team = await insertTeam(fabric, fabric.organizationId, { slugPrefix: "sched", name: "Sched" });
  const otherTeam = await insertTeam(fabric, fabric.organizationId, { slugPrefix: "sched-o", name: "Other" });
  teamWorkflow = `sched-team-${randomUUID().slice(0, 6)}`;
  await setup(fabric, "POST", "/v1/workflows", { name: teamWorkflow, team_id: team, nodes: [{ key: "a", operation: "workflow.noop" }] }, 201);
  teamOnly = { key: (await member(fabric, fabric.organizationId, null, { teamId: otherTeam, role: "maintainer" })).key };
});
afterAll(async () => {
  await fabric?.close();
});

const db = () => fabric.database.db;
const countSchedules = async () => (await db().select({ id: schedules.id }).from(schedules)).length;
const fires = (id: string) => db().select().from(scheduleFires).where(eq(scheduleFires.scheduleId, id)).orderBy(asc(scheduleFires.fireAt));
const runsOf = (id: string) => db().select().from(workflowRuns).where(eq(workflowRuns.idempotencyKey, workflowRuns.idempotencyKey)).then((rs) => rs.filter((r) => (r.metadata as any)?.schedule_id === id));
const berlinHour = (iso: string) => Number(new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/Berlin", hour: "2-digit", hourCycle: "h23" }).format(new Date(iso)));

describe.each(transports)("schedules over %s", (via) => {
  const c = () => client(fabric, via);
  const name = () => `s-${via}-${randomUUID().slice(0, 8)}`;

  it("create answers the schedule with its next fire times in its time zone, audited, with an event", async () => {
    const requestId = `sched-${randomUUID()}`;
    const s = await c().ok("ScheduleService/CreateSchedule", { name: name(), workflow_name: quick, cron: "0 9 * * 1-5", timezone: "Europe/Berlin", input: { word: "hi" } }, owner, requestId);
    expect(s).toMatchObject({ workflow_name: quick, cron: "0 9 * * 1-5", timezone: "Europe/Berlin", enabled: true, overlap_policy: "skip", catch_up_policy: "none", catch_up_limit: 10, input: { word: "hi" } });
    expect(s.next_fire_times).toHaveLength(5);
    const times = s.next_fire_times.map((t: string) => new Date(t).getTime());
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(times[0]).toBeGreaterThan(Date.now());
    for (const t of s.next_fire_times) expect(berlinHour(t)).toBe(9);
    for (const t of s.next_fire_times) expect([1, 2, 3, 4, 5]).toContain(new Date(t).getUTCDay());
    await expectOneAudit(fabric, requestId, { action: "schedule.create", resource: `schedule:${s.id}` });
    expect((await eventsOfKind(fabric, fabric.organizationId, "schedule.created")).some((e) => e.schedule_id === s.id && e.request_id === requestId)).toBe(true);
  });

  it("get, list, pause, resume, update and delete", async () => {
    const s = await c().ok("ScheduleService/CreateSchedule", { name: name(), workflow_name: quick, cron: "*/5 * * * *" }, owner);
    expect(await c().ok("ScheduleService/GetSchedule", { id: s.id }, owner)).toEqual(s);
    const listed = await c().ok("ScheduleService/ListSchedules", { workflow_name: quick }, owner);
    expect(listed.map((x: any) => x.id)).toContain(s.id);
    expect((await c().ok("ScheduleService/ListSchedules", { workflow_name: "no-such-workflow" }, owner)).length).toBe(0);

    const paused = await c().ok("ScheduleService/UpdateSchedule", { id: s.id, enabled: false }, owner);
    expect(paused).toMatchObject({ enabled: false, next_fire_times: [] });
    const resumed = await c().ok("ScheduleService/UpdateSchedule", { id: s.id, enabled: true, overlap_policy: "queue", catch_up_policy: "all", catch_up_limit: 3, description: "every five minutes" }, owner);
    expect(resumed).toMatchObject({ enabled: true, overlap_policy: "queue", catch_up_policy: "all", catch_up_limit: 3, description: "every five minutes" });
    expect(resumed.next_fire_times).toHaveLength(5);
    for (const t of resumed.next_fire_times) expect(new Date(t).getUTCMinutes() % 5).toBe(0);

    const oneOff = new Date(Date.now() + 3600_000).toISOString();
    const moved = await c().ok("ScheduleService/UpdateSchedule", { id: s.id, start_time: oneOff }, owner);
    expect(moved).toMatchObject({ cron: "" });
    expect(moved.next_fire_times.map((t: string) => new Date(t).getTime())).toEqual([new Date(oneOff).getTime()]);

    const requestId = `del-${randomUUID()}`;
    await c().ok("ScheduleService/DeleteSchedule", { id: s.id }, owner, requestId);
    await expectOneAudit(fabric, requestId, { action: "schedule.delete" });
    await c().fails("ScheduleService/GetSchedule", { id: s.id }, owner, 404, "not_found");
  });

  it("refuses bad input with stable codes and changes nothing", async () => {
    const before = await countSchedules();
    const bad: [Record<string, unknown>, number, string, string?][] = [
      [{ workflow_name: quick, cron: "* * * * *" }, 400, "invalid_argument", "/name"],
      [{ name: name(), cron: "* * * * *" }, 400, "invalid_argument", "/workflow_name"],
      [{ name: name(), workflow_name: quick }, 400, "invalid_argument", "/cron"],
      [{ name: name(), workflow_name: quick, cron: "61 * * * *" }, 400, "invalid_argument", "/cron"],
      [{ name: name(), workflow_name: quick, cron: "* * *" }, 400, "invalid_argument", "/cron"],
      [{ name: name(), workflow_name: quick, cron: "* * * * * * *" }, 400, "invalid_argument", "/cron"],
      [{ name: name(), workflow_name: quick, cron: "* * * * *", timezone: "Mars/Olympus" }, 400, "invalid_argument", "/timezone"],
      [{ name: name(), workflow_name: quick, cron: "* * * * *", start_time: new Date(Date.now() + 60_000).toISOString() }, 400, "invalid_argument", "/cron"],
      [{ name: name(), workflow_name: quick, start_time: "2001-01-01T00:00:00Z" }, 400, "invalid_argument", "/start_time"],
      [{ name: name(), workflow_name: quick, cron: "* * * * *", overlap_policy: "sometimes" }, 400, "invalid_argument", "/overlap_policy"],
      [{ name: name(), workflow_name: quick, cron: "* * * * *", catch_up_policy: "everything" }, 400, "invalid_argument", "/catch_up_policy"],
      [{ name: name(), workflow_name: quick, cron: "* * * * *", catch_up_limit: 0 }, 400, "invalid_argument", "/catch_up_limit"],
      [{ name: name(), workflow_name: quick, cron: "* * * * *", catch_up_limit: 101 }, 400, "invalid_argument", "/catch_up_limit"],
      [{ name: "x".repeat(101), workflow_name: quick, cron: "* * * * *" }, 400, "invalid_argument", "/name"],
      [{ name: name(), workflow_name: quick, cron: "* * * * *", description: "d".repeat(501) }, 400, "invalid_argument", "/description"],
      [{ name: name(), workflow_name: quick, cron: "* * * * *", input: { big: "x".repeat(300 << 10) } }, 400, "invalid_argument", "/input"],
      [{ name: name(), workflow_name: "no-such-workflow", cron: "* * * * *" }, 404, "not_found"],
      [{ name: name(), workflow_name: quick, workflow_version: 99, cron: "* * * * *" }, 404, "not_found"],
      [{ name: name(), workflow_name: "fabric.job.text", cron: "* * * * *" }, 400, "invalid_argument", "/workflow_name"],
    ];
    for (const [fields, status, code, path] of bad) {
      const f = await c().fails("ScheduleService/CreateSchedule", fields, owner, status);
      expect(f.code, JSON.stringify(fields).slice(0, 200)).toBe(code);
      if (path) expect(f.issues.map((i) => i.path), JSON.stringify(fields).slice(0, 200)).toContain(path);
    }
    const dup = name();
    await c().ok("ScheduleService/CreateSchedule", { name: dup, workflow_name: quick, cron: "* * * * *", enabled: false }, owner);
    await c().fails("ScheduleService/CreateSchedule", { name: dup, workflow_name: quick, cron: "*/2 * * * *" }, owner, 409, "already_exists");
    expect(await countSchedules()).toBe(before + 1);
    await c().fails("ScheduleService/GetSchedule", { id: "not-a-uuid" }, owner, 404, "not_found");
    await c().fails("ScheduleService/UpdateSchedule", { id: randomUUID(), enabled: false }, owner, 404, "not_found");
    await c().fails("ScheduleService/ListScheduleFires", { schedule_id: randomUUID() }, owner, 404, "not_found");
  });

  it("checks permissions in the one guard and on the workflow's team", async () => {
    const s = await c().ok("ScheduleService/CreateSchedule", { name: name(), workflow_name: quick, cron: "0 0 1 1 *" }, owner);
    const before = await countSchedules();
    // A viewer reads but may not write; a key scoped to schedules:read likewise.
    expect((await c().ok("ScheduleService/GetSchedule", { id: s.id }, viewer)).id).toBe(s.id);
    const requestId = `deny-${randomUUID()}`;
    const denied = await c().call("ScheduleService/CreateSchedule", { name: name(), workflow_name: quick, cron: "* * * * *" }, viewer, requestId);
    expect(denied).toMatchObject({ ok: false, status: 403, code: "permission_denied" });
    await expectNoAudit(fabric, requestId);
    await c().fails("ScheduleService/UpdateSchedule", { id: s.id, enabled: false }, viewer, 403, "permission_denied");
    await c().fails("ScheduleService/DeleteSchedule", { id: s.id }, viewer, 403, "permission_denied");
    expect((await c().ok("ScheduleService/ListSchedules", {}, readOnlyKey)).map((x: any) => x.id)).toContain(s.id);
    await c().fails("ScheduleService/CreateSchedule", { name: name(), workflow_name: quick, cron: "* * * * *" }, readOnlyKey, 403, "permission_denied");
    // Another organization cannot see it; no credentials, no answer.
    await c().fails("ScheduleService/GetSchedule", { id: s.id }, other, 404, "not_found");
    await c().fails("ScheduleService/DeleteSchedule", { id: s.id }, other, 404, "not_found");
    expect((await c().ok("ScheduleService/ListSchedules", {}, other)).map((x: any) => x.id)).not.toContain(s.id);
    await c().fails("ScheduleService/ListSchedules", {}, { key: "fab_nope" }, 401);
    // A maintainer of another team may write schedules somewhere, but not for this team's workflow.
    await c().fails("ScheduleService/CreateSchedule", { name: name(), workflow_name: teamWorkflow, cron: "* * * * *" }, teamOnly, 403, "permission_denied");
    expect(await countSchedules()).toBe(before);
    // Positive control: the owner may.
    await c().ok("ScheduleService/CreateSchedule", { name: name(), workflow_name: teamWorkflow, cron: "0 0 1 1 *", enabled: false }, owner);
  });
});

describe("firing", () => {
  const api = () => client(fabric, "rest");
  const create = (fields: Record<string, unknown>) => api().ok("ScheduleService/CreateSchedule", { name: `f-${randomUUID().slice(0, 8)}`, ...fields }, owner);
  const pause = (id: string) => api().ok("ScheduleService/UpdateSchedule", { id, enabled: false }, owner);

  it("a one-off start time starts one run with the schedule's input, then nothing is left", async () => {
    const s = await create({ workflow_name: quick, start_time: new Date(Date.now() + 1000).toISOString(), input: { word: "once" } });
    const [fire] = await eventually(async () => {
      const f = await fires(s.id);
      return f.length ? f : undefined;
    });
    expect(fire).toMatchObject({ outcome: "started" });
    const run = await eventually(async () => {
      const [r] = await db().select().from(workflowRuns).where(eq(workflowRuns.id, fire!.runId!));
      return r?.status === "completed" ? r : undefined;
    });
    expect(run.context).toMatchObject({ word: "once", echo: "once" });
    expect(run.metadata).toMatchObject({ schedule_id: s.id, fire_time: fire!.fireAt.toISOString() });
    expect(run.idempotencyKey).toBe(`schedule:${s.id}:${fire!.fireAt.toISOString()}`);
    const after = await api().ok("ScheduleService/GetSchedule", { id: s.id }, owner);
    expect(after).toMatchObject({ next_fire_times: [], last_run_id: run.id });
    const listed = await api().ok("ScheduleService/ListScheduleFires", { schedule_id: s.id }, owner);
    expect(listed).toEqual([expect.objectContaining({ outcome: "started", run_id: run.id })]);
    const ev = (await eventsOfKind(fabric, fabric.organizationId, "schedule.fired")).filter((e) => e.schedule_id === s.id);
    expect(ev).toEqual([expect.objectContaining({ outcome: "started", run_id: run.id })]);
    await fabric.controlPlane.scheduler.tickNow();
    expect(await fires(s.id)).toHaveLength(1);
  });

  it("overlap skip: while the run waits, later fires are skipped", async () => {
    const s = await create({ workflow_name: waiting, cron: "* * * * * *", overlap_policy: "skip" });
    await eventually(async () => ((await fires(s.id)).filter((f) => f.outcome === "skipped").length >= 2 ? true : undefined));
    await pause(s.id);
    const all = await fires(s.id);
    const started = all.filter((f) => f.outcome === "started");
    expect(started).toHaveLength(1);
    expect(all.filter((f) => f.outcome === "skipped").every((f) => f.fireAt > started[0]!.fireAt)).toBe(true);
    expect(await runsOf(s.id)).toHaveLength(1);
  });

  it("overlap queue: later fires wait, and the oldest starts when the run ends", async () => {
    const s = await create({ workflow_name: waiting, cron: "* * * * * *", overlap_policy: "queue" });
    await eventually(async () => ((await fires(s.id)).filter((f) => f.outcome === "queued").length >= 2 ? true : undefined));
    await pause(s.id);
    const before = await fires(s.id);
    const first = before.find((f) => f.outcome === "started")!;
    const oldestQueued = before.find((f) => f.outcome === "queued")!;
    expect((await api().ok("ScheduleService/GetSchedule", { id: s.id }, owner)).queued_fires).toBe(before.filter((f) => f.outcome === "queued").length);
    // Queued fires of a paused schedule wait: resume, then end the first run.
    await api().ok("ScheduleService/UpdateSchedule", { id: s.id, enabled: true, cron: "0 0 1 1 *" }, owner);
    await api().ok("RunService/SignalRun", { id: first.runId, payload: {} }, owner);
    const next = await eventually(async () => {
      const [f] = await db().select().from(scheduleFires).where(and(eq(scheduleFires.scheduleId, s.id), eq(scheduleFires.fireAt, oldestQueued.fireAt)));
      return f?.outcome === "started" ? f : undefined;
    });
    expect(next.runId).not.toBe(first.runId);
    expect((await runsOf(s.id)).map((r) => r.id).sort()).toEqual([first.runId, next.runId].sort());
    const ev = (await eventsOfKind(fabric, fabric.organizationId, "schedule.fired")).filter((e) => e.schedule_id === s.id && e.queued === true);
    expect(ev).toEqual([expect.objectContaining({ outcome: "started", run_id: next.runId })]);
    await pause(s.id);
  });

  it("overlap cancel_previous: each fire cancels the run before it", async () => {
    const s = await create({ workflow_name: waiting, cron: "* * * * * *", overlap_policy: "cancel_previous" });
    await eventually(async () => ((await fires(s.id)).filter((f) => f.outcome === "started").length >= 3 ? true : undefined));
    await pause(s.id);
    const started = (await fires(s.id)).filter((f) => f.outcome === "started");
    for (let i = 1; i < started.length; i++) expect(started[i]!.cancelledRunId).toBe(started[i - 1]!.runId);
    const runs = await runsOf(s.id);
    const byId = new Map(runs.map((r) => [r.id, r]));
    for (const f of started.slice(0, -1)) expect(byId.get(f.runId!)).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
    expect(runs.filter((r) => r.status === "waiting" || r.status === "running" || r.status === "pending")).toHaveLength(1);
  });

  describe.each([
    ["none", 1],
    ["latest", 2],
    ["all", 4],
  ] as const)("catch-up %s after a downtime", (policy, starts) => {
    it(`starts ${starts} fire(s): the on-time one and what the policy catches up`, async () => {
      // Every minute; the schedule's next fire time set 10 minutes back, as after a downtime.
      const s = await create({ workflow_name: quick, cron: "* * * * *", catch_up_policy: policy, catch_up_limit: 3, overlap_policy: "cancel_previous", enabled: false });
      const minute = Math.floor(Date.now() / 60_000) * 60_000;
      await db().update(schedules).set({ enabled: true, nextFireAt: new Date(minute - 10 * 60_000) }).where(eq(schedules.id, s.id));
      await fabric.controlPlane.scheduler.tickNow();
      const all = await eventually(async () => {
        const f = await fires(s.id);
        return f.length ? f : undefined;
      });
      await pause(s.id);
      const started = all.filter((f) => f.outcome === "started");
      const missed = all.filter((f) => f.outcome === "missed");
      expect(started.length).toBe(starts);
      expect(missed.length).toBeGreaterThanOrEqual(11 - starts - 1);
      // What started is the newest: every missed fire is older than every started one.
      expect(missed.every((m) => started.every((st) => m.fireAt < st.fireAt))).toBe(true);
      const ev = (await eventsOfKind(fabric, fabric.organizationId, "schedule.fired")).find((e) => e.schedule_id === s.id && e.outcome === "missed");
      expect(ev).toMatchObject({ catch_up_policy: policy });
      expect(ev!.missed_count).toBe(missed.length);
      const after = await api().ok("ScheduleService/GetSchedule", { id: s.id }, owner);
      expect(new Date(after.last_fire_time).getTime()).toBe(started.at(-1)!.fireAt.getTime());
    });
  });
});
