/**
 * Worker-level behaviour with explicitly started workers (the fabric has none of its
 * own): claims in priority order, a lost lease (the result is discarded and the reaper
 * recovers the node), and graceful shutdown (grace period, then the node is released).
 */
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Worker, WorkerConfig } from "../../src/executor/worker.js";
import { startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";
import { engine } from "../helpers/database.js";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { closedWithin, defineWorkflow, providerRequest, kindsOf, nodeOf, nodeRow, ofKind, runControl, runEvents, waitForRun } from "./harness.js";

let fake: FakeServer;
let fabric: TestFabric;
const running: Worker[] = [];
beforeAll(async () => {
  fake = await startFakeOpenAI();
  fabric = await startTestFabric({ worker: false, env: { OPENAI_API_KEY: "test", OPENAI_BASE_URL: fake.url } });
});
afterAll(async () => {
  await fabric?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());
afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.stop()));
});

async function worker(overrides: Partial<WorkerConfig>): Promise<Worker> {
  const w = await fabric.startWorker({ WORKER_POLL_INTERVAL: 20, ...overrides });
  running.push(w);
  return w;
}

const slowNode = { key: "slow", operation: "ai.generate", config: { provider: "openai" }, inputs: { prompt: "$context.prompt" }, outputs: { text: "$context.answer" } };


const inFlight = (n = 1) => providerRequest(fake, n);

describe("priority", () => {
  it("claims queued runs highest priority first, then oldest first", async () => {
    const wf = await defineWorkflow(fabric, { nodes: [{ key: "only", operation: "workflow.noop" }] });
    const ids: Record<string, string> = {};
    for (const [name, priority, via] of [["p10", 10, "rest"], ["p90", 90, "grpc"], ["p50", 50, "rest"], ["p50b", 50, "grpc"]] as const) {
      const { run } = await runControl(fabric, via).start({ workflow_id: wf, priority });
      expect(run.priority).toBe(priority);
      ids[name] = run.id;
    }
    await worker({ WORKER_CONCURRENCY: 1 });
    const runs = await Promise.all(Object.values(ids).map((id) => waitForRun(fabric, id)));
    expect(runs.map((r) => r.status)).toEqual(["completed", "completed", "completed", "completed"]);

    const startedAt = async (id: string) => ofKind(await runEvents(fabric, id), "workflow.node.started")[0]!.id;
    const order = Object.entries(ids);
    const firstStarts = await Promise.all(order.map(async ([name, id]) => [name, await startedAt(id)] as const));
    expect(firstStarts.sort((a, b) => a[1] - b[1]).map(([name]) => name)).toEqual(["p90", "p50", "p50b", "p10"]);
  });
});

describe("lease loss", () => {
  it("aborts the step whose lease was taken, discards its result, and the reaper recovers the node", async () => {
    fake.script([{ delayMs: 10_000 }]);
    const w = await worker({ WORKER_LEASE_SECONDS: 3 });
    const wf = await defineWorkflow(fabric, { nodes: [slowNode, { key: "after", operation: "workflow.noop", depends_on: ["slow"] }] });
    const { run: started } = await runControl(fabric, "rest").start({ workflow_id: wf, input: { prompt: "once" } });
    const first = await inFlight(1);
    const held = await nodeRow(fabric, started.id, "slow");
    expect(held).toMatchObject({ status: "running", attempt: 1, lease_owner: w.id });

    // Another owner takes the lease (as after a pause in this process longer than the lease).
    await fabric.database.db.execute(sql`UPDATE workflow_run_nodes SET lease_owner = 'ghost-worker' WHERE id = ${held.id}`);
    await closedWithin(first); // the heartbeat noticed and aborted the provider call
    expect(first.closedByClient).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    // Nothing was written for the aborted attempt.
    expect(await nodeRow(fabric, started.id, "slow")).toMatchObject({ status: "running", attempt: 1, lease_owner: "ghost-worker" });
    expect(kindsOf(await runEvents(fabric, started.id), "slow")).toEqual(["workflow.node.ready", "workflow.node.started"]);

    // The ghost's lease runs out: the reaper hands the node back and it runs again.
    await fabric.database.db.execute(sql`UPDATE workflow_run_nodes SET lease_expires_at = now() - interval '1 second' WHERE id = ${held.id}`);
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("completed");
    expect(run.context.answer).toBe("once");
    expect(nodeOf(run, "slow")).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(fake.requests).toHaveLength(2);

    const events = await runEvents(fabric, started.id);
    expect(kindsOf(events, "slow")).toEqual(["workflow.node.ready", "workflow.node.started", "workflow.node.retrying", "workflow.node.started", "workflow.node.completed"]);
    expect(ofKind(events, "workflow.node.retrying", "slow")[0]!.payload).toMatchObject({ attempt: 1, next_attempt: 2, delay_ms: 0, error: { code: "lease_expired", class: "lease_expired" } });
    expect(ofKind(events, "workflow.node.retrying", "slow")[0]!.payload.error.message).toMatch(/ghost-worker/);
    expect(ofKind(events, "workflow.node.completed", "slow")).toHaveLength(1);
    expect(ofKind(events, "workflow.node.completed", "slow")[0]!.payload.attempt).toBe(2);
  });

  it("discards the result of a step that finishes after its lease was taken", async () => {
    // A long lease: the heartbeat does not notice in time, so the commit itself must refuse.
    fake.script([{ delayMs: 600, reply: "stale" }, { reply: "fresh" }]);
    await worker({ WORKER_LEASE_SECONDS: 30 });
    const wf = await defineWorkflow(fabric, { nodes: [slowNode] });
    const { run: started } = await runControl(fabric, "grpc").start({ workflow_id: wf, input: { prompt: "p" } });
    const first = await inFlight(1);
    const held = await nodeRow(fabric, started.id, "slow");
    await fabric.database.db.execute(sql`UPDATE workflow_run_nodes SET lease_owner = 'ghost-worker' WHERE id = ${held.id}`);
    await first.closed;
    expect(first.closedByClient).toBe(false); // the step ran to its end…
    await new Promise((r) => setTimeout(r, 150));
    // …and its commit changed nothing.
    expect(await nodeRow(fabric, started.id, "slow")).toMatchObject({ status: "running", attempt: 1, lease_owner: "ghost-worker" });
    expect((await runControl(fabric, "rest").get(started.id)).context.answer).toBeUndefined();

    await fabric.database.db.execute(sql`UPDATE workflow_run_nodes SET lease_expires_at = now() - interval '1 second' WHERE id = ${held.id}`);
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("completed");
    expect(run.context.answer).toBe("fresh");
    const completed = ofKind(await runEvents(fabric, started.id), "workflow.node.completed", "slow");
    expect(completed).toHaveLength(1);
    expect(completed[0]!.payload).toMatchObject({ attempt: 2, output: { text: "fresh" } });
  });
});

describe("graceful shutdown", () => {
  it("releases a step that outlasts the grace period to ready, and another worker finishes it", async () => {
    fake.script([{ delayMs: 10_000 }]);
    const w1 = await worker({ WORKER_SHUTDOWN_GRACE: 300 });
    const wf = await defineWorkflow(fabric, { nodes: [slowNode] });
    const { run: started } = await runControl(fabric, "grpc").start({ workflow_id: wf, input: { prompt: "handed over" } });
    const first = await inFlight(1);

    const t0 = Date.now();
    await w1.stop();
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(5000);
    await closedWithin(first);
    expect(first.closedByClient).toBe(true);
    // Released, and the interrupted attempt is not counted.
    expect(await nodeRow(fabric, started.id, "slow")).toMatchObject({ status: "ready", attempt: 0, lease_owner: null });
    const released = ofKind(await runEvents(fabric, started.id), "workflow.node.ready", "slow").at(-1)!;
    expect(released.payload).toEqual({ reason: "released", worker_id: w1.id });

    const w2 = await worker({});
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("completed");
    expect(run.context.answer).toBe("handed over");
    expect(nodeOf(run, "slow")).toMatchObject({ status: "succeeded", attempt: 1 });
    const events = await runEvents(fabric, started.id);
    expect(kindsOf(events, "slow")).toEqual(["workflow.node.ready", "workflow.node.started", "workflow.node.ready", "workflow.node.started", "workflow.node.completed"]);
    expect(ofKind(events, "workflow.node.started", "slow").map((e) => e.payload.worker_id)).toEqual([w1.id, w2.id]);
  });

  it("a node released from a paused run stays held until the run is resumed", async () => {
    fake.script([{ delayMs: 10_000 }]);
    const w1 = await worker({ WORKER_SHUTDOWN_GRACE: 100 });
    const wf = await defineWorkflow(fabric, { nodes: [slowNode] });
    const ctl = runControl(fabric, "rest");
    const { run: started } = await ctl.start({ workflow_id: wf, input: { prompt: "held" } });
    await inFlight(1);
    expect((await ctl.pause(started.id)).status).toBe("paused");
    await w1.stop();
    expect(await nodeRow(fabric, started.id, "slow")).toMatchObject({ status: "ready", attempt: 0 });

    await worker({});
    await new Promise((r) => setTimeout(r, 400));
    expect(fake.requests).toHaveLength(1);
    expect(await nodeRow(fabric, started.id, "slow")).toMatchObject({ status: "ready", attempt: 0 });
    expect((await ctl.get(started.id)).status).toBe("paused");

    await ctl.resume(started.id);
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("completed");
    expect(run.context.answer).toBe("held");
    const events = await runEvents(fabric, started.id);
    expect(ofKind(events, "workflow.node.started", "slow")[1]!.id).toBeGreaterThan(ofKind(events, "workflow.run.resumed")[0]!.id);
  });

  it("lets a step that ends within the grace period commit, keeping its lease alive meanwhile", async () => {
    // The step outlives the lease (2 s): only heartbeats during the grace period keep the
    // other worker's reaper from taking the node over.
    fake.script([{ delayMs: 2500 }]);
    const w1 = await worker({ WORKER_SHUTDOWN_GRACE: 6000, WORKER_LEASE_SECONDS: 2 });
    const wf = await defineWorkflow(fabric, { nodes: [slowNode] });
    const { run: started } = await runControl(fabric, "rest").start({ workflow_id: wf, input: { prompt: "in time" } });
    await inFlight(1);
    await worker({ WORKER_LEASE_SECONDS: 2 });
    await w1.stop();
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("completed");
    expect(nodeOf(run, "slow")).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(fake.requests).toHaveLength(1);
    const events = await runEvents(fabric, started.id);
    expect(kindsOf(events, "slow")).toEqual(["workflow.node.ready", "workflow.node.started", "workflow.node.completed"]);
    expect(ofKind(events, "workflow.node.started", "slow")[0]!.payload.worker_id).toBe(w1.id);
  });
});

// PGlite runs one transaction at a time, so a claim there never finds the run row locked.
describe.skipIf(engine !== "postgres")("claim protocol on a locked run row", () => {
  it("a failed attempt finishes the run's pending → running transition the claim had to skip", async () => {
    const wf = await defineWorkflow(fabric, { nodes: [{ key: "bad", operation: "workflow.validate_context", config: { schema: { required: ["missing"] } } }] });
    const { run: started } = await runControl(fabric, "rest").start({ workflow_id: wf });
    const other = postgres(fabric.database.url!, { max: 1, onnotice: () => {} });
    try {
      await other.begin(async (tx) => {
        // Holding the run row (as a control operation would) while the worker claims.
        await tx`SELECT id FROM workflow_runs WHERE id = ${started.id} FOR UPDATE`;
        await worker({});
        await eventually(async () => ((await nodeRow(fabric, started.id, "bad")).status === "running" ? true : undefined), 10_000, "the claim");
      });
    } finally {
      await other.end();
    }
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("failed");
    expect(run.start_time).toBeTruthy();
    expect(kindsOf(await runEvents(fabric, started.id), null)).toEqual(["workflow.run.created", "workflow.run.queued", "workflow.run.started", "workflow.run.failed"]);
  });
});
