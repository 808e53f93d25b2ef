/**
 * Run control over both transports while the executor works: pause/resume, signals
 * (and a wait that times out), rerun from a failure, and the run deadline. The lease is
 * short so the reaper, which enforces wait timeouts and deadlines, ticks every second.
 */
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { defineWorkflow, expectRejected, kindsOf, nodeOf, ofKind, runControl, runEvents, sleep, statuses, transports, waitForRun, type RunJson } from "./harness.js";

const POLL = 20;
let fake: FakeServer;
let fabric: TestFabric;
beforeAll(async () => {
  fake = await startFakeOpenAI();
  fabric = await startTestFabric({ env: { OPENAI_API_KEY: "test", OPENAI_BASE_URL: fake.url }, worker: { WORKER_POLL_INTERVAL: POLL, WORKER_LEASE_SECONDS: 2 } });
});
afterAll(async () => {
  await fabric?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const generate = (key: string, extra: Record<string, unknown> = {}) => ({ key, operation: "ai.generate", config: { provider: "openai" }, inputs: { prompt: "$context.prompt" }, outputs: { text: `$context.${key}` }, ...extra });

describe.each(transports)("over %s", (via) => {
  it("pause holds back the next node until resume; the in-flight step finishes", async () => {
    fake.script([{ delayMs: 700 }]);
    const wf = await defineWorkflow(fabric, { nodes: [generate("first"), { key: "second", operation: "text.transform_basic", depends_on: ["first"], config: { op: "upper" }, inputs: { text: "$context.first" }, outputs: { text: "$context.second" } }] });
    const ctl = runControl(fabric, via);
    const { run: started } = await ctl.start({ workflow_id: wf, input: { prompt: "paused" } });
    await eventually(async () => (fake.requests.length ? true : undefined), 10_000, "the first step in flight");

    const paused = await ctl.pause(started.id);
    expect(paused.status).toBe("paused");
    expect(nodeOf(paused, "first").status).toBe("running");
    // Pausing twice is a no-op.
    expect((await ctl.pause(started.id)).status).toBe("paused");

    // The in-flight step completes; its dependent becomes ready but is not claimed while paused.
    const held = await waitForRun(fabric, started.id, (r) => nodeOf(r, "first").status === "succeeded", 10_000, "first to finish");
    expect(held.status).toBe("paused");
    await sleep(POLL * 15);
    const still = await ctl.get(started.id);
    expect(still.status).toBe("paused");
    expect(statuses(still)).toEqual({ first: "succeeded", second: "ready" });
    expect(ofKind(await runEvents(fabric, started.id), "workflow.node.started", "second")).toHaveLength(0);

    const resumed = await ctl.resume(started.id);
    expect(resumed.status).toBe("running");
    await expectRejected(ctl.resume(started.id), { http: 409, grpc: Code.FailedPrecondition, code: "run_not_paused" });
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("completed");
    expect(run.context.second).toBe("PAUSED");

    const events = await runEvents(fabric, run.id);
    const [pausedEv] = ofKind(events, "workflow.run.paused");
    const [resumedEv] = ofKind(events, "workflow.run.resumed");
    expect(ofKind(events, "workflow.run.paused")).toHaveLength(1);
    expect(pausedEv!.payload).toEqual({ previous_status: "running" });
    expect(resumedEv!.payload).toEqual({ reason: "resume", status: "running" });
    expect(ofKind(events, "workflow.node.completed", "first")[0]!.id).toBeGreaterThan(pausedEv!.id);
    expect(ofKind(events, "workflow.node.started", "second")[0]!.id).toBeGreaterThan(resumedEv!.id);
  });

  it("a wait_signal node parks the run as waiting; the signal's payload is bound into the context", async () => {
    const wf = await defineWorkflow(fabric, {
      nodes: [
        { key: "prep", operation: "workflow.noop", inputs: { ticket: "$context.ticket" }, outputs: { ticket: "$context.prepared" } },
        { key: "approve", operation: "workflow.wait_signal", depends_on: ["prep"], outputs: { approved: "$context.approval.ok", by: "$context.approval.by" } },
        { key: "finish", operation: "text.transform_basic", depends_on: ["approve"], config: { op: "template", template: "{{ticket}} approved by {{by}}" }, inputs: { ticket: "$context.prepared", by: "$context.approval.by" }, outputs: { text: "$context.result" } },
      ],
    });
    const ctl = runControl(fabric, via);
    const { run: started } = await ctl.start({ workflow_id: wf, input: { ticket: "T-1" } });
    const waiting = await waitForRun(fabric, started.id, (r) => r.status === "waiting", 10_000, "the run to wait");
    expect(statuses(waiting)).toEqual({ prep: "succeeded", approve: "waiting", finish: "blocked" });
    await expectRejected(ctl.signal(started.id, {}, "finish"), { http: 409, grpc: Code.FailedPrecondition, code: "not_waiting" });

    const signalled = await ctl.signal(started.id, { approved: true, by: `ops-${via}` }, via === "grpc" ? "approve" : undefined);
    expect(signalled.status).not.toBe("waiting");
    expect(nodeOf(signalled, "approve")).toMatchObject({ status: "succeeded", output: { approved: true, by: `ops-${via}` } });
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("completed");
    expect(run.context.approval).toEqual({ ok: true, by: `ops-${via}` });
    expect(run.context.result).toBe(`T-1 approved by ops-${via}`);
    await expectRejected(ctl.signal(started.id, { late: true }), { http: 409, grpc: Code.FailedPrecondition, code: "not_waiting" });

    const events = await runEvents(fabric, run.id);
    expect(kindsOf(events, "approve")).toEqual(["workflow.node.ready", "workflow.node.started", "workflow.node.waiting", "workflow.node.completed"]);
    expect(ofKind(events, "workflow.node.waiting")[0]!.payload).toEqual({ timeout_ms: null });
    expect(ofKind(events, "workflow.node.completed", "approve")[0]!.payload).toMatchObject({ signal: true, output: { approved: true, by: `ops-${via}` } });
    expect(kindsOf(events, null)).toEqual(["workflow.run.created", "workflow.run.queued", "workflow.run.started", "workflow.run.waiting", "workflow.run.resumed", "workflow.run.completed"]);
    expect(ofKind(events, "workflow.run.resumed")[0]!.payload).toEqual({ reason: "signal" });
  });

  it("a wait that sees no signal before config.timeout_ms fails with signal_timeout", async () => {
    const wf = await defineWorkflow(fabric, { nodes: [{ key: "approve", operation: "workflow.wait_signal", config: { timeout_ms: 200 } }, { key: "after", operation: "workflow.noop", depends_on: ["approve"] }] });
    const ctl = runControl(fabric, via);
    const { run: started } = await ctl.start({ workflow_id: wf });
    await waitForRun(fabric, started.id, (r) => r.status === "waiting" || r.status === "failed", 10_000, "the run to wait");
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ code: "node_failed", node_key: "approve" });
    expect(nodeOf(run, "approve")).toMatchObject({ status: "failed", attempt: 1, error: { code: "signal_timeout" } });
    expect(nodeOf(run, "after").status).toBe("cancelled");
    const events = await runEvents(fabric, run.id);
    expect(ofKind(events, "workflow.node.waiting")[0]!.payload).toEqual({ timeout_ms: 200 });
    const [failed] = ofKind(events, "workflow.node.failed", "approve");
    expect(failed!.payload.error).toMatchObject({ code: "signal_timeout", class: "timeout" });
    expect(failed!.created_at.getTime() - ofKind(events, "workflow.node.waiting")[0]!.created_at.getTime()).toBeGreaterThanOrEqual(199);
    await expectRejected(ctl.signal(started.id, {}), { http: 409, grpc: Code.FailedPrecondition, code: "not_waiting" });
  });

  it("rerun keeps the outputs of the nodes that succeeded and executes the rest", async () => {
    fake.script([{ status: 500 }]);
    const wf = await defineWorkflow(fabric, {
      nodes: [
        { key: "n1", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.word" }, outputs: { text: "$context.one" } },
        { key: "n2", operation: "text.transform_basic", depends_on: ["n1"], config: { op: "suffix", value: "!" }, inputs: { text: "$context.one" }, outputs: { text: "$context.prompt" } },
        generate("n3", { depends_on: ["n2"], policy: { max_attempts: 1 } }),
        { key: "n4", operation: "text.transform_basic", depends_on: ["n3"], config: { op: "length" }, inputs: { text: "$context.n3" }, outputs: { length: "$context.len" } },
      ],
    });
    const ctl = runControl(fabric, via);
    const { run: started } = await ctl.start({ workflow_id: wf, input: { word: "again" }, state: { ticket: via } });
    const source = await waitForRun(fabric, started.id);
    expect(source.status).toBe("failed");
    expect(source.error).toMatchObject({ code: "node_failed", node_key: "n3" });
    expect(statuses(source)).toEqual({ n1: "succeeded", n2: "succeeded", n3: "failed", n4: "cancelled" });
    await expectRejected(ctl.rerun(crypto.randomUUID()), { http: 404, grpc: Code.NotFound, code: "not_found" });

    const rerun = await ctl.rerun(source.id);
    expect(rerun.id).not.toBe(source.id);
    expect(rerun.rerun_of).toBe(source.id);
    expect(statuses(rerun)).toMatchObject({ n1: "succeeded", n2: "succeeded" });
    const run = await waitForRun(fabric, rerun.id);
    expect(run.status).toBe("completed");
    for (const k of ["n1", "n2"]) expect(nodeOf(run, k).output).toEqual(nodeOf(source, k).output);
    expect(run.context).toMatchObject({ word: "again", one: "AGAIN", prompt: "AGAIN!", n3: "AGAIN!", len: 6 });
    expect(statuses(run)).toEqual({ n1: "succeeded", n2: "succeeded", n3: "succeeded", n4: "succeeded" });
    expect(fake.requests).toHaveLength(2);
    await expectRejected(ctl.rerun(run.id), { http: 409, grpc: Code.FailedPrecondition, code: "run_not_failed" });

    const events = await runEvents(fabric, run.id);
    expect(ofKind(events, "workflow.node.started").map((e) => e.node_key)).toEqual(["n3", "n4"]);
    expect(ofKind(events, "workflow.run.created")[0]!.payload).toMatchObject({ rerun_of: source.id });
    expect(ofKind(events, "workflow.run.completed")[0]!.payload.state).toEqual({ ticket: via });
    // The source run is untouched.
    expect(statuses(await ctl.get(source.id))).toEqual(statuses(source));
  });

  it("a rerun keeps the length of the source's deadline: its timeout_ms, else the workflow's run_timeout_ms", async () => {
    const nodes = [generate("only", { policy: { max_attempts: 1 } })];
    const timed = await defineWorkflow(fabric, { nodes, run_timeout_ms: 30_000 });
    const plain = await defineWorkflow(fabric, { nodes });
    const ctl = runControl(fabric, via);
    const length = (r: RunJson) => (r.deadline ? Date.parse(r.deadline) - Date.parse(r.create_time) : null);
    const cases = [
      { workflow_id: timed, timeout_ms: 45_000, want: 45_000 },
      { workflow_id: timed, want: 30_000 },
      { workflow_id: plain, timeout_ms: 20_000, want: 20_000 },
      { workflow_id: plain, want: null },
    ];
    for (const { want, ...args } of cases) {
      fake.script([{ status: 500 }]);
      const { run: started } = await ctl.start({ ...args, input: { prompt: "p" } });
      const source = await waitForRun(fabric, started.id);
      expect(source.status).toBe("failed");
      const rerun = await ctl.rerun(source.id);
      if (want === null) {
        expect(source.deadline).toBeUndefined();
        expect(rerun.deadline).toBeUndefined();
      } else {
        // The source's deadline was set from the API's clock just before its insert; the
        // rerun's is as long as that, on the database clock (to the rounding of the two
        // creation times to milliseconds).
        expect(Math.abs(length(source)! - want)).toBeLessThan(1000);
        expect(Math.abs(length(rerun)! - length(source)!)).toBeLessThanOrEqual(1);
      }
      expect((await waitForRun(fabric, rerun.id)).status).toBe("completed");
    }
  });

  it("a run past its timeout_ms fails with error code timeout, aborting what is in flight", async () => {
    fake.script([{ delayMs: 20_000 }]);
    const wf = await defineWorkflow(fabric, { nodes: [{ key: "prep", operation: "workflow.noop" }, { key: "hold", operation: "workflow.wait_signal", depends_on: ["prep"] }, generate("slow")] });
    const ctl = runControl(fabric, via);
    const { run: started } = await ctl.start({ workflow_id: wf, timeout_ms: 400, state: "deadline", input: { prompt: "p" } });
    expect(started.deadline).toBeTruthy();
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ code: "timeout" });
    expect(statuses(run)).toEqual({ prep: "succeeded", hold: "cancelled", slow: "cancelled" });
    await eventually(async () => (fake.requests[0]?.closedByClient ? true : undefined), 5000, "the in-flight request to be aborted");
    const events = await runEvents(fabric, run.id);
    const [failed] = ofKind(events, "workflow.run.failed");
    expect(failed!.payload).toMatchObject({ status: "failed", state: "deadline", error: { code: "timeout" } });
    expect(failed!.created_at.getTime()).toBeGreaterThanOrEqual(new Date(started.deadline).getTime() - 1);
    expect(ofKind(events, "workflow.node.cancelled").map((e) => e.node_key).sort()).toEqual(["hold", "slow"]);
    expect(kindsOf(events, "slow")).toEqual(["workflow.node.ready", "workflow.node.started", "workflow.node.cancelled"]);
  });
});

describe("a wait timing out with fail_fast off", () => {
  it("returns the run from waiting to running, with an event, while the other branch goes on", async () => {
    // The other branch must still be running when the wait's timeout is found (by the
    // reaper): its provider call takes long enough for that on a loaded machine too.
    fake.script([{ delayMs: 8000 }]);
    const wf = await defineWorkflow(fabric, {
      nodes: [
        { key: "approve", operation: "workflow.wait_signal", config: { timeout_ms: 100 } },
        { key: "after", operation: "workflow.noop", depends_on: ["approve"] },
        generate("other"),
      ],
    });
    const { run: started } = await runControl(fabric, "rest").start({ workflow_id: wf, fail_fast: false, input: { prompt: "goes on" } });
    const midway = await waitForRun(fabric, started.id, (r) => nodeOf(r, "approve").status === "failed", 30_000, "the wait to time out");
    expect(midway.status).toBe("running");
    expect(statuses(midway)).toEqual({ approve: "failed", after: "skipped", other: "running" });
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ code: "node_failed", node_key: "approve" });
    expect(run.context.other).toBe("goes on");
    const events = await runEvents(fabric, run.id);
    expect(kindsOf(events, null)).toEqual(["workflow.run.created", "workflow.run.queued", "workflow.run.started", "workflow.run.waiting", "workflow.run.resumed", "workflow.run.failed"]);
    const [resumed] = ofKind(events, "workflow.run.resumed");
    expect(resumed!.payload).toEqual({ reason: "signal_timeout" });
    expect(resumed!.id).toBeGreaterThan(ofKind(events, "workflow.node.failed", "approve")[0]!.id);
  });
});
