/**
 * Streamed generation shows up as `workflow.node.progress` events whose deltas add up
 * to the node's final text; `config.stream: false` makes one plain call instead.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { defineWorkflow, ofKind, runControl, runEvents, waitForRun } from "./harness.js";

describe("provider progress events", () => {
  let fabric: TestFabric;
  let fake: FakeServer;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
    fabric = await startTestFabric({ worker: { WORKER_POLL_INTERVAL: 50 }, env: { OPENAI_API_KEY: "test-key", OPENAI_BASE_URL: fake.url } });
  });
  afterAll(async () => {
    await fabric?.close();
    await fake?.close();
  });

  it("streams tokens as progress events that concatenate to the final text", async () => {
    const prompt = "one two three four five six seven eight nine ten";
    // Slow chunks: several progress flushes (every 200 ms) during one call.
    fake.script([{ chunkDelayMs: 70 }]);
    const wf = await defineWorkflow(fabric, { nodes: [{ key: "gen", operation: "ai.generate", config: { provider: "openai" }, inputs: { prompt: "$context.prompt" }, outputs: { text: "$context.text" } }] });
    const { run } = await runControl(fabric, "rest").start({ workflow_id: wf, input: { prompt } });
    const done = await waitForRun(fabric, run.id);
    expect(done.status).toBe("completed");
    expect(fake.requests.at(-1)!.body.stream).toBe(true);
    const events = await runEvents(fabric, run.id);
    const progress = ofKind(events, "workflow.node.progress", "gen");
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.map((e) => e.payload.delta).join("")).toBe(done.context.text);
    // Progress comes between the node's start and its completion.
    const started = ofKind(events, "workflow.node.started", "gen")[0]!.id;
    const completed = ofKind(events, "workflow.node.completed", "gen")[0]!.id;
    expect(progress.every((e) => e.id > started && e.id < completed)).toBe(true);
  });

  it("config.stream false makes one non-streaming call and no progress events", async () => {
    const wf = await defineWorkflow(fabric, { nodes: [{ key: "gen", operation: "ai.generate", config: { provider: "openai", stream: false }, inputs: { prompt: "$context.prompt" }, outputs: { text: "$context.text" } }] });
    const { run } = await runControl(fabric, "grpc").start({ workflow_id: wf, input: { prompt: "plain call" } });
    const done = await waitForRun(fabric, run.id);
    expect(done.context.text).toBe("plain call");
    expect(fake.requests.at(-1)!.body.stream).toBeFalsy();
    expect(ofKind(await runEvents(fabric, run.id), "workflow.node.progress")).toEqual([]);
  });
});
