/**
 * Failure handling on the execution plane, with `ai.generate` on the OpenAI adapter
 * pointed at the scripted fake: retries with backoff, exhausted attempts, `retry_on`,
 * step timeouts that really abort the request, fail_fast on and off, and a cancel
 * (over REST and over gRPC) that reaches the in-flight provider call.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { closedWithin, defineWorkflow, providerRequest, kindsOf, nodeOf, ofKind, runControl, runEvents, statuses, transports, waitForRun } from "./harness.js";

let fake: FakeServer;
let fabric: TestFabric;
beforeAll(async () => {
  fake = await startFakeOpenAI({ apiKey: "test" });
  fabric = await startTestFabric({ env: { OPENAI_API_KEY: "test", OPENAI_BASE_URL: fake.url }, worker: { WORKER_POLL_INTERVAL: 20 } });
});
afterAll(async () => {
  await fabric?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const generate = (key: string, extra: Record<string, unknown> = {}) => ({
  key,
  operation: "ai.generate",
  config: { provider: "openai", model: "gpt-4.1-mini" },
  inputs: { prompt: "$context.prompt" },
  outputs: { text: `$context.${key}` },
  ...extra,
});


const inFlight = (n = 1) => providerRequest(fake, n);

describe("retries", () => {
  it("retries a retryable failure with the policy's backoff until an attempt succeeds", async () => {
    fake.script([{ status: 500 }, { status: 503 }, { status: 500 }]);
    const wf = await defineWorkflow(fabric, { nodes: [generate("answer", { policy: { max_attempts: 4, backoff: { initial_ms: 100, factor: 2, max_ms: 300, jitter: 0 } } })] });
    const { run: started } = await runControl(fabric, "rest").start({ workflow_id: wf, input: { prompt: "third time lucky" } });
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("completed");
    expect(run.context.answer).toBe("third time lucky");
    expect(nodeOf(run, "answer")).toMatchObject({ status: "succeeded", attempt: 4, max_attempts: 4 });
    expect(fake.requests).toHaveLength(4);

    const events = await runEvents(fabric, run.id);
    const retrying = ofKind(events, "workflow.node.retrying", "answer");
    expect(retrying.map((e) => [e.payload.attempt, e.payload.next_attempt, e.payload.delay_ms])).toEqual([
      [1, 2, 100],
      [2, 3, 200],
      [3, 4, 300], // capped by max_ms
    ]);
    expect(retrying.map((e) => [e.payload.error.code, e.payload.error.class])).toEqual([
      ["provider_transient", "transient"],
      ["provider_overloaded", "transient"],
      ["provider_transient", "transient"],
    ]);
    const starts = ofKind(events, "workflow.node.started", "answer");
    expect(starts.map((e) => e.payload.attempt)).toEqual([1, 2, 3, 4]);
    // The next attempt is not claimed before its backoff is over (both stamps are the database's clock).
    retrying.forEach((r, i) => {
      const waited = starts[i + 1]!.created_at.getTime() - r.created_at.getTime();
      expect(waited).toBeGreaterThanOrEqual(r.payload.delay_ms - 1);
      expect(waited).toBeLessThan(r.payload.delay_ms + 2000);
    });
    expect(kindsOf(events, "answer")).toEqual([
      "workflow.node.ready",
      ...[1, 2, 3].flatMap(() => ["workflow.node.started", "workflow.node.retrying"]),
      "workflow.node.started",
      "workflow.node.completed",
    ]);
    expect(ofKind(events, "workflow.node.completed", "answer")[0]!.payload.attempt).toBe(4);
  });

  it("fails the node and the run once max_attempts are spent", async () => {
    fake.script(Array.from({ length: 6 }, () => ({ status: 500 })));
    // Full jitter at the cap: max_ms still bounds every delay.
    const backoff = { initial_ms: 60, max_ms: 60, jitter: 1 };
    const wf = await defineWorkflow(fabric, { nodes: [generate("answer", { policy: { max_attempts: 6, backoff } }), { key: "after", operation: "workflow.noop", depends_on: ["answer"] }] });
    const { run: started } = await runControl(fabric, "grpc").start({ workflow_id: wf, input: { prompt: "never" } });
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ code: "node_failed", node_key: "answer" });
    expect(nodeOf(run, "answer")).toMatchObject({ status: "failed", attempt: 6, error: { code: "provider_transient" } });
    expect(nodeOf(run, "after").status).toBe("cancelled");
    expect(fake.requests).toHaveLength(6);

    const events = await runEvents(fabric, run.id);
    const retrying = ofKind(events, "workflow.node.retrying", "answer");
    expect(retrying.map((e) => e.payload.attempt)).toEqual([1, 2, 3, 4, 5]);
    for (const r of retrying) expect(r.payload.delay_ms).toBeLessThanOrEqual(backoff.max_ms);
    expect(ofKind(events, "workflow.node.failed", "answer").map((e) => e.payload.attempt)).toEqual([6]);
    const failed = ofKind(events, "workflow.run.failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]!.payload.error).toMatchObject({ code: "node_failed", node_key: "answer" });
  });

  it("retries only the classes in retry_on", async () => {
    // Attempt 1 times out (retried: `timeout` is listed); attempt 2 is a 500 (`transient` is not).
    fake.script([{ delayMs: 10_000 }, { status: 500 }, {}]);
    const wf = await defineWorkflow(fabric, { nodes: [generate("answer", { policy: { max_attempts: 5, timeout_ms: 600, retry_on: ["timeout"], backoff: { initial_ms: 10, jitter: 0 } } })] });
    const { run: started } = await runControl(fabric, "rest").start({ workflow_id: wf, input: { prompt: "p" } });
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("failed");
    expect(nodeOf(run, "answer")).toMatchObject({ status: "failed", attempt: 2, error: { code: "provider_transient" } });
    const events = await runEvents(fabric, run.id);
    expect(ofKind(events, "workflow.node.retrying").map((e) => e.payload.error.class)).toEqual(["timeout"]);
    expect(ofKind(events, "workflow.node.failed")[0]!.payload.error).toMatchObject({ class: "transient", attempt: 2 });
    expect(fake.requests).toHaveLength(2);

    // invalid_input (a 400 from the provider) is never retried, whatever retry_on says.
    fake.reset();
    fake.script([{ status: 400 }]);
    const wf2 = await defineWorkflow(fabric, { nodes: [generate("answer", { policy: { max_attempts: 5 } })] });
    const run2 = await waitForRun(fabric, (await runControl(fabric, "grpc").start({ workflow_id: wf2, input: { prompt: "p" } })).run.id);
    expect(nodeOf(run2, "answer")).toMatchObject({ status: "failed", attempt: 1, error: { code: "provider_invalid_request" } });
    expect(ofKind(await runEvents(fabric, run2.id), "workflow.node.retrying")).toHaveLength(0);
  });
});

describe("step timeout", () => {
  it("aborts the provider request at timeout_ms and retries the attempt", async () => {
    fake.script([{ delayMs: 10_000 }]);
    const wf = await defineWorkflow(fabric, { nodes: [generate("answer", { policy: { timeout_ms: 600, max_attempts: 2, backoff: { initial_ms: 50, jitter: 0 } } })] });
    const t0 = Date.now();
    const { run: started } = await runControl(fabric, "grpc").start({ workflow_id: wf, input: { prompt: "slow then fast" } });
    const first = await inFlight(1);
    await closedWithin(first);
    expect(first.closedByClient).toBe(true);
    const run = await waitForRun(fabric, started.id);
    expect(Date.now() - t0).toBeLessThan(8000); // far below the fake's 10 s: the first attempt did not wait it out
    expect(run.status).toBe("completed");
    expect(run.context.answer).toBe("slow then fast");
    expect(nodeOf(run, "answer")).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(fake.requests).toHaveLength(2);

    const events = await runEvents(fabric, run.id);
    const [retry] = ofKind(events, "workflow.node.retrying", "answer");
    expect(retry!.payload).toMatchObject({ attempt: 1, next_attempt: 2, delay_ms: 50, error: { code: "timeout", class: "timeout", attempt: 1 } });
    const [s1, s2] = ofKind(events, "workflow.node.started", "answer");
    const ranFor = retry!.created_at.getTime() - s1!.created_at.getTime();
    expect(ranFor).toBeGreaterThanOrEqual(590);
    expect(s2!.created_at.getTime() - retry!.created_at.getTime()).toBeGreaterThanOrEqual(49);
  });
});

describe("fail_fast", () => {
  const failing = { key: "bad", operation: "workflow.validate_context", depends_on: ["a"], config: { schema: { type: "object", required: ["missing"] } } };

  it("true (the default): the first failed node fails the run and cancels every other node", async () => {
    const wf = await defineWorkflow(fabric, {
      nodes: [
        { key: "a", operation: "workflow.noop" },
        failing,
        { key: "after", operation: "workflow.noop", depends_on: ["bad"] },
        { key: "sibling", operation: "workflow.wait_signal" },
        { key: "tail", operation: "workflow.noop", depends_on: ["sibling"] },
      ],
    });
    const { run: started } = await runControl(fabric, "rest").start({ workflow_id: wf, state: [1, "two"] });
    expect(started.fail_fast).toBe(true);
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ code: "node_failed", node_key: "bad" });
    expect(statuses(run)).toEqual({ a: "succeeded", bad: "failed", after: "cancelled", sibling: "cancelled", tail: "cancelled" });

    const events = await runEvents(fabric, run.id);
    expect(ofKind(events, "workflow.node.cancelled").map((e) => e.node_key).sort()).toEqual(["after", "sibling", "tail"]);
    const last = events.at(-1)!;
    expect(last.kind).toBe("workflow.run.failed");
    expect(last.payload).toMatchObject({ status: "failed", state: [1, "two"], error: { code: "node_failed", node_key: "bad" } });
    expect(ofKind(events, "workflow.node.skipped")).toHaveLength(0);
  });

  it("false: the independent branch completes, dependents of the failed node are skipped, the run fails at the end", async () => {
    fake.script([{ delayMs: 1000 }]);
    const wf = await defineWorkflow(fabric, {
      nodes: [
        { key: "a", operation: "workflow.noop" },
        failing,
        { key: "d1", operation: "workflow.noop", depends_on: ["bad"] },
        { key: "d2", operation: "workflow.noop", depends_on: ["d1"] },
        generate("slow"),
        { key: "indep", operation: "text.transform_basic", depends_on: ["slow"], config: { op: "upper" }, inputs: { text: "$context.slow" }, outputs: { text: "$context.loud" } },
        { key: "join", operation: "workflow.noop", depends_on: ["d2", "indep"] },
      ],
    });
    const ctl = runControl(fabric, "grpc");
    const { run: started } = await ctl.start({ workflow_id: wf, fail_fast: false, input: { prompt: "independent" } });
    expect(started.fail_fast).toBe(false);

    // Once `bad` has failed, the run is still going: `slow` is in flight.
    const midway = await waitForRun(fabric, started.id, (r) => nodeOf(r, "bad").status === "failed", 10_000, "bad to fail");
    expect(midway.status).toBe("running");
    expect(statuses(midway)).toMatchObject({ d1: "skipped", d2: "skipped", join: "skipped" });

    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ code: "node_failed", node_key: "bad" });
    expect(statuses(run)).toEqual({ a: "succeeded", bad: "failed", d1: "skipped", d2: "skipped", slow: "succeeded", indep: "succeeded", join: "skipped" });
    expect(run.context.loud).toBe("INDEPENDENT");

    const events = await runEvents(fabric, run.id);
    expect(ofKind(events, "workflow.node.skipped").map((e) => [e.node_key, e.payload.because]).sort()).toEqual([
      ["d1", "bad"],
      ["d2", "bad"],
      ["join", "bad"],
    ]);
    expect(ofKind(events, "workflow.node.cancelled")).toHaveLength(0);
    const failedRun = ofKind(events, "workflow.run.failed");
    expect(failedRun).toHaveLength(1);
    expect(failedRun[0]!.id).toBe(events.at(-1)!.id);
    expect(failedRun[0]!.id).toBeGreaterThan(ofKind(events, "workflow.node.completed", "indep")[0]!.id);
  });
});

describe.each(transports)("cancel over %s", (via) => {
  it("aborts the in-flight provider call, cancels the nodes and echoes the run's state", async () => {
    fake.script([{ delayMs: 20_000 }]);
    const wf = await defineWorkflow(fabric, { nodes: [generate("slow"), { key: "next", operation: "workflow.noop", depends_on: ["slow"] }] });
    const ctl = runControl(fabric, via);
    const state = { caller: via, n: 7 };
    const { run: started } = await ctl.start({ workflow_id: wf, input: { prompt: "forever" }, state });
    const req = await inFlight(1);

    const cancelled = await ctl.cancel(started.id, `stopped over ${via}`);
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.error).toMatchObject({ code: "cancelled", message: `stopped over ${via}` });
    expect(statuses(cancelled)).toEqual({ slow: "cancelled", next: "cancelled" });

    await closedWithin(req);
    expect(req.closedByClient).toBe(true);

    // The event stream on the same transport replays to the terminal event and ends.
    const kinds = await ctl.watchKinds(started.id);
    expect(kinds.at(-1)).toBe("workflow.run.cancelled");

    const events = await runEvents(fabric, started.id);
    const terminal = ofKind(events, "workflow.run.cancelled");
    expect(terminal).toHaveLength(1);
    expect(terminal[0]!.payload).toEqual({ status: "cancelled", state, error: { code: "cancelled", message: `stopped over ${via}` } });
    expect(kinds).toEqual(events.map((e) => e.kind));
    // The aborted step wrote nothing after the cancel: no failure, no retry.
    await new Promise((r) => setTimeout(r, 100));
    expect(kindsOf(await runEvents(fabric, started.id), "slow")).toEqual(["workflow.node.ready", "workflow.node.started", "workflow.node.cancelled"]);
    const after = await ctl.get(started.id);
    expect(after.status).toBe("cancelled");
    expect(nodeOf(after, "slow").status).toBe("cancelled");
  });
});
