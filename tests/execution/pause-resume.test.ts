/**
 * Pause and resume against retries in their backoff (docs/execution-plane.md, "Pause and
 * resume"): a held node keeps when it was due (`resume_at`), so a resume does not cut a
 * backoff short, while a node that became ready during the pause runs at once. Real
 * workers. A second fabric without a worker of its own checks the rows a pause leaves
 * and a retry picked up, after a resume, by a worker that never saw the failure.
 *
 * Times are compared on the database clock: events' `created_at` and the node's due time
 * are both `now()` of their transactions.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { query } from "../../src/db/database.js";
import { startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { defineWorkflow, nodeOf, ofKind, providerRequest, runControl, runEvents, sleep, statuses, transports, waitForRun, type EventRow, type RunControl } from "./harness.js";

const POLL = 20;
const BACKOFF = 1500;
let fake: FakeServer;
let fabric: TestFabric;
beforeAll(async () => {
  fake = await startFakeOpenAI();
  fabric = await startTestFabric({ env: { OPENAI_API_KEY: "test", OPENAI_BASE_URL: fake.url }, worker: { WORKER_POLL_INTERVAL: POLL } });
});
afterAll(async () => {
  await fabric?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const generate = (key: string, extra: Record<string, unknown> = {}) => ({ key, operation: "ai.generate", config: { provider: "openai" }, inputs: { prompt: "$context.prompt" }, outputs: { text: `$context.${key}` }, ...extra });
/** One retry after exactly `ms`. */
const retryAfter = (ms: number, maxAttempts = 2) => ({ policy: { max_attempts: maxAttempts, backoff: { initial_ms: ms, factor: 1, max_ms: ms, jitter: 0 } } });

/** The node's claim columns: held (due never) while paused, and when it is due once resumed. */
async function claimState(f: TestFabric, runId: string, key: string) {
  const [r] = await query<any>(
    f.database.db,
    sql`SELECT status, available_at = 'infinity' AS held, CASE WHEN available_at <> 'infinity' THEN available_at END AS available_at, resume_at
        FROM workflow_run_nodes WHERE run_id = ${runId} AND node_key = ${key}`,
  );
  const date = (v: unknown) => (v === null ? null : new Date(v as string));
  return { status: r.status as string, held: r.held as boolean, availableAt: date(r.available_at), resumeAt: date(r.resume_at) };
}

const retryingEvent = (f: TestFabric, runId: string, key: string) =>
  eventually(async () => ofKind(await runEvents(f, runId), "workflow.node.retrying", key)[0], 10_000, `${key} to fail its first attempt`);

const after = (later: EventRow, earlier: EventRow) => later.created_at.getTime() - earlier.created_at.getTime();

/** The second attempt's start, which must come no earlier than the backoff after the failure. */
function expectRetriedAfterBackoff(events: EventRow[], key: string) {
  const [retrying] = ofKind(events, "workflow.node.retrying", key);
  const starts = ofKind(events, "workflow.node.started", key);
  expect(starts.map((e) => e.payload.attempt)).toEqual([1, 2]);
  expect(retrying!.payload).toMatchObject({ attempt: 1, next_attempt: 2, delay_ms: BACKOFF });
  expect(after(starts[1]!, retrying!)).toBeGreaterThanOrEqual(BACKOFF);
  // ... and soon after it: the worker's retry timer (or its poll) picks it up.
  expect(after(starts[1]!, retrying!)).toBeLessThan(BACKOFF + 1000);
}

describe.each(transports)("over %s", (via) => {
  it("a retry paused and resumed during its backoff still waits out the backoff", async () => {
    fake.script([{ status: 500 }]);
    const wf = await defineWorkflow(fabric, { nodes: [generate("flaky", retryAfter(BACKOFF))] });
    const ctl = runControl(fabric, via);
    const { run: started } = await ctl.start({ workflow_id: wf, input: { prompt: "later" } });
    const retrying = await retryingEvent(fabric, started.id, "flaky");

    await ctl.pause(started.id);
    // Held, with the end of its backoff kept: exactly the failure's time plus the delay.
    const held = await claimState(fabric, started.id, "flaky");
    expect(held).toMatchObject({ status: "ready", held: true });
    expect(held.resumeAt!.getTime()).toBe(retrying.created_at.getTime() + BACKOFF);

    const resumed = await ctl.resume(started.id);
    expect(nodeOf(resumed, "flaky").status).toBe("ready");
    const due = await claimState(fabric, started.id, "flaky");
    expect(due).toMatchObject({ held: false, resumeAt: null });
    expect(due.availableAt!.getTime()).toBe(retrying.created_at.getTime() + BACKOFF);
    const [resumedEv] = ofKind(await runEvents(fabric, started.id), "workflow.run.resumed");
    // The resume came well within the backoff, or this test would prove nothing.
    expect(after(resumedEv!, retrying)).toBeLessThan(BACKOFF - 500);

    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("completed");
    expect(run.context.flaky).toBe("later");
    expect(fake.requests).toHaveLength(2);
    expectRetriedAfterBackoff(await runEvents(fabric, run.id), "flaky");
  });

  it("a step failing while its run is paused is retried after its backoff, not at the resume", async () => {
    fake.script([{ delayMs: 600, status: 500 }]);
    const wf = await defineWorkflow(fabric, { nodes: [generate("flaky", retryAfter(BACKOFF))] });
    const ctl = runControl(fabric, via);
    const { run: started } = await ctl.start({ workflow_id: wf, input: { prompt: "paused failure" } });
    await providerRequest(fake);
    const paused = await ctl.pause(started.id);
    expect(nodeOf(paused, "flaky").status).toBe("running");

    const retrying = await retryingEvent(fabric, started.id, "flaky");
    const [pausedEv] = ofKind(await runEvents(fabric, started.id), "workflow.run.paused");
    expect(retrying.id).toBeGreaterThan(pausedEv!.id);
    // The retry scheduled while paused is held and keeps its due time; the event says the real delay.
    const held = await claimState(fabric, started.id, "flaky");
    expect(held).toMatchObject({ status: "ready", held: true });
    expect(held.resumeAt!.getTime()).toBe(retrying.created_at.getTime() + BACKOFF);
    expect(retrying.payload.delay_ms).toBe(BACKOFF);

    await ctl.resume(started.id);
    const [resumedEv] = ofKind(await runEvents(fabric, started.id), "workflow.run.resumed");
    expect(after(resumedEv!, retrying)).toBeLessThan(BACKOFF - 500);
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("completed");
    expectRetriedAfterBackoff(await runEvents(fabric, run.id), "flaky");
  });

  it("a node that became ready while paused runs right after the resume", async () => {
    fake.script([{ delayMs: 600 }]);
    const wf = await defineWorkflow(fabric, { nodes: [generate("first"), { key: "second", operation: "text.transform_basic", depends_on: ["first"], config: { op: "upper" }, inputs: { text: "$context.first" }, outputs: { text: "$context.second" } }] });
    const ctl = runControl(fabric, via);
    const { run: started } = await ctl.start({ workflow_id: wf, input: { prompt: "held" } });
    await providerRequest(fake);
    await ctl.pause(started.id);
    await waitForRun(fabric, started.id, (r) => nodeOf(r, "first").status === "succeeded", 10_000, "first to finish");

    // Became ready while paused: held, due as of the moment it became ready.
    const [ready] = ofKind(await runEvents(fabric, started.id), "workflow.node.ready", "second");
    const held = await claimState(fabric, started.id, "second");
    expect(held).toMatchObject({ status: "ready", held: true });
    expect(held.resumeAt!.getTime()).toBe(ready!.created_at.getTime());
    await sleep(POLL * 10);
    expect(statuses(await ctl.get(started.id))).toEqual({ first: "succeeded", second: "ready" });

    await ctl.resume(started.id);
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("completed");
    expect(run.context.second).toBe("HELD");
    const events = await runEvents(fabric, run.id);
    const [resumedEv] = ofKind(events, "workflow.run.resumed");
    const [second] = ofKind(events, "workflow.node.started", "second");
    expect(second!.id).toBeGreaterThan(resumedEv!.id);
    expect(after(second!, resumedEv!)).toBeLessThan(1000);
  });
});

describe("with a worker started on demand", () => {
  let bare: TestFabric;
  let ctl: RunControl;
  beforeAll(async () => {
    bare = await startTestFabric({ env: { OPENAI_API_KEY: "test", OPENAI_BASE_URL: fake.url }, worker: false });
    ctl = runControl(bare, "rest");
  });
  afterAll(() => bare?.close());

  it("pause and resume of a run with nothing in backoff: held, then due at once, as before", async () => {
    const wf = await defineWorkflow(bare, { nodes: [{ key: "a", operation: "workflow.noop", inputs: { v: "$context.v" }, outputs: { v: "$context.out" } }] });
    const { run: started } = await ctl.start({ workflow_id: wf, input: { v: 1 } });
    const before = await claimState(bare, started.id, "a");
    expect(before).toMatchObject({ status: "ready", held: false, resumeAt: null });

    await ctl.pause(started.id);
    const held = await claimState(bare, started.id, "a");
    expect(held).toMatchObject({ held: true, resumeAt: before.availableAt });

    await ctl.resume(started.id);
    const [{ now }] = await query<any>(bare.database.db, sql`SELECT now() AS now`);
    const due = await claimState(bare, started.id, "a");
    expect(due).toMatchObject({ status: "ready", held: false, resumeAt: null });
    expect(due.availableAt!.getTime()).toBeGreaterThan(before.availableAt!.getTime());
    expect(due.availableAt!.getTime()).toBeLessThanOrEqual(new Date(now).getTime());

    const worker = await bare.startWorker({ WORKER_POLL_INTERVAL: POLL });
    try {
      const run = await waitForRun(bare, started.id);
      expect(run.status).toBe("completed");
      expect(run.context.out).toBe(1);
    } finally {
      await worker.stop();
    }
  });

  it("a node held before resume_at existed (NULL) is due at the resume", async () => {
    const wf = await defineWorkflow(bare, { nodes: [{ key: "a", operation: "workflow.noop" }] });
    const { run: started } = await ctl.start({ workflow_id: wf });
    await ctl.pause(started.id);
    // What a pause wrote before migration 0007.
    await query(bare.database.db, sql`UPDATE workflow_run_nodes SET resume_at = NULL WHERE run_id = ${started.id}`);
    await ctl.resume(started.id);
    expect(await claimState(bare, started.id, "a")).toMatchObject({ status: "ready", held: false, resumeAt: null });
    const worker = await bare.startWorker({ WORKER_POLL_INTERVAL: POLL });
    try {
      expect((await waitForRun(bare, started.id)).status).toBe("completed");
    } finally {
      await worker.stop();
    }
  });

  it("after a resume, a worker that never saw the failure picks the retry up by polling once it is due", async () => {
    fake.script([{ status: 500 }]);
    const wf = await defineWorkflow(bare, { nodes: [generate("flaky", retryAfter(BACKOFF))] });
    const { run: started } = await ctl.start({ workflow_id: wf, input: { prompt: "polled" } });
    // The worker that fails the step (and would nudge itself when the backoff ends) goes away.
    const first = await bare.startWorker({ WORKER_POLL_INTERVAL: POLL });
    const retrying = await retryingEvent(bare, started.id, "flaky");
    await first.stop();

    await ctl.pause(started.id);
    await ctl.resume(started.id);
    // Another worker, woken by the resume's NOTIFY too early, finds the retry only by polling.
    const second = await bare.startWorker({ WORKER_POLL_INTERVAL: 100 });
    try {
      const run = await waitForRun(bare, started.id);
      expect(run.status).toBe("completed");
      const events = await runEvents(bare, run.id);
      const [resumedEv] = ofKind(events, "workflow.run.resumed");
      expect(after(resumedEv!, retrying)).toBeLessThan(BACKOFF - 500);
      expectRetriedAfterBackoff(events, "flaky");
      expect(ofKind(events, "workflow.node.started", "flaky").map((e) => e.payload.worker_id)).toEqual([first.id, second.id]);
    } finally {
      await second.stop();
    }
  });
});

describe("pause and resume toggled at random while retries back off", () => {
  it("no retry starts before its backoff, every run completes, and nothing stays held", async () => {
    const RUNS = 12;
    const DELAY = 300;
    const extra = await fabric.startWorker({ WORKER_POLL_INTERVAL: POLL });
    try {
      fake.script(Array.from({ length: RUNS + 6 }, () => ({ status: 500, delayMs: 20 })));
      const wf = await defineWorkflow(fabric, { nodes: [generate("flaky", retryAfter(DELAY, 6))] });
      const ctl = runControl(fabric, "rest");
      const ids = await Promise.all(Array.from({ length: RUNS }, async (_, i) => (await ctl.start({ workflow_id: wf, input: { prompt: `p${i}` } })).run.id));

      const until = Date.now() + 2500;
      const toggle = async () => {
        while (Date.now() < until) {
          const id = ids[Math.floor(Math.random() * ids.length)]!;
          // Refused when finished (pause) or not paused (resume): both are fine here.
          await (Math.random() < 0.5 ? ctl.pause(id) : ctl.resume(id)).catch(() => undefined);
          await sleep(Math.random() * 30);
        }
      };
      await Promise.all([toggle(), toggle(), toggle()]);
      for (const id of ids) await ctl.resume(id).catch(() => undefined);

      for (const id of ids) {
        const run = await waitForRun(fabric, id, undefined, 20_000);
        expect(run.status).toBe("completed");
        const events = await runEvents(fabric, id);
        const starts = ofKind(events, "workflow.node.started", "flaky");
        for (const r of ofKind(events, "workflow.node.retrying", "flaky")) {
          const next = starts.find((s) => s.payload.attempt === r.payload.next_attempt);
          expect(next, `attempt ${r.payload.next_attempt} of run ${id}`).toBeDefined();
          expect(after(next!, r)).toBeGreaterThanOrEqual(r.payload.delay_ms);
        }
      }
      const [left] = await query<{ n: number }>(
        fabric.database.db,
        sql`SELECT count(*)::int AS n FROM workflow_run_nodes WHERE run_id IN (${sql.join(ids.map((id) => sql`${id}::uuid`), sql`, `)}) AND (resume_at IS NOT NULL OR available_at = 'infinity')`,
      );
      expect(left!.n).toBe(0);
      expect(fake.requests.filter((r) => r.behaviour.status === 500).length).toBe(RUNS + 6);
    } finally {
      await extra.stop();
    }
  }, 40_000);
});
