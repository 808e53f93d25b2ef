/**
 * Provider nodes go through the router, end to end: the real OpenAI and Anthropic SDKs against
 * their fakes. A retryable failure on OpenAI falls back to Anthropic within one attempt, and the
 * node's output says so (`routing.attempts`); `cheapest` picks the cheaper model; the node's
 * `cost` is the exact estimate and actual from the price table.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startFakeAnthropic, startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { defineWorkflow, nodeOf, ofKind, runControl, runEvents, waitForRun } from "./harness.js";

let openai: FakeServer;
let anthropic: FakeServer;
let fabric: TestFabric;
beforeAll(async () => {
  openai = await startFakeOpenAI();
  anthropic = await startFakeAnthropic();
  fabric = await startTestFabric({
    worker: { WORKER_POLL_INTERVAL: 20 },
    env: { OPENAI_API_KEY: "test", OPENAI_BASE_URL: openai.url, ANTHROPIC_API_KEY: "test", ANTHROPIC_BASE_URL: anthropic.url },
  });
});
afterAll(async () => {
  await fabric?.close();
  await openai?.close();
  await anthropic?.close();
});
beforeEach(() => {
  openai.reset();
  anthropic.reset();
});

// 16 characters: 4 input tokens; the fakes echo it back, so 4 output tokens too.
const PROMPT = "route me please!";

async function runGenerate(config: Record<string, unknown>, policy?: Record<string, unknown>) {
  const wf = await defineWorkflow(fabric, {
    nodes: [{ key: "gen", operation: "ai.generate", config, inputs: { prompt: "$context.prompt" }, outputs: { text: "$context.text" }, ...(policy ? { policy } : {}) }],
  });
  const { run } = await runControl(fabric, "rest").start({ workflow_id: wf, input: { prompt: PROMPT } });
  return waitForRun(fabric, run.id);
}

describe("routing in provider nodes", () => {
  it("OpenAI answering 503 falls back to Anthropic in the same attempt; output.routing shows both", async () => {
    openai.script([{ status: 503 }]);
    const run = await runGenerate({ max_tokens: 50 }, { max_attempts: 1 });
    expect(run.status).toBe("completed");
    expect(run.context.text).toBe(PROMPT);
    const node = nodeOf(run, "gen");
    expect(node).toMatchObject({ status: "succeeded", attempt: 1 });
    const out = node.output;
    expect(out).toMatchObject({ provider: "anthropic", model: "claude-haiku-4-5", usage: { input_tokens: "4", output_tokens: "4" } });
    expect(out.routing).toMatchObject({ strategy: "local_first", provider: "anthropic", model: "claude-haiku-4-5" });
    expect(out.routing.attempts).toHaveLength(2);
    expect(out.routing.attempts[0]).toMatchObject({ provider: "openai", model: "gpt-4.1-nano" });
    expect(out.routing.attempts[0].error).toMatch(/^overloaded: /);
    expect(out.routing.attempts[1]).toEqual({ provider: "anthropic", model: "claude-haiku-4-5" });
    expect(out.routing.why).toMatch(/^local_first: no local candidate is eligible; openai\/gpt-4\.1-nano is the cheapest remote one/);
    // claude-haiku-4-5: $1 / $5 per 1M tokens. Estimate 4 in + 50 out (max_tokens); actual 4 + 4.
    expect(out.cost).toEqual({ estimated_usd: "0.000254", actual_usd: "0.000024", price_table: "2026-11-01" });
    expect(openai.requests.map((r) => r.body.model)).toEqual(["gpt-4.1-nano"]);
    expect(anthropic.requests.map((r) => r.body.model)).toEqual(["claude-haiku-4-5"]);
    // Streaming still reports through the fallback: the node completed with its text.
    expect(ofKind(await runEvents(fabric, run.id), "workflow.node.completed", "gen")).toHaveLength(1);
  });

  it("cheapest picks the cheaper model, with exact estimated and actual cost", async () => {
    const run = await runGenerate({ strategy: "cheapest", max_tokens: 50 });
    expect(run.status).toBe("completed");
    const out = nodeOf(run, "gen").output;
    expect(out.routing).toMatchObject({ strategy: "cheapest", provider: "openai", model: "gpt-4.1-nano", attempts: [{ provider: "openai", model: "gpt-4.1-nano" }] });
    expect(out.routing.why).toContain("openai/gpt-4.1-nano has the lowest estimated cost");
    expect(openai.requests.at(-1)!.body.model).toBe("gpt-4.1-nano");
    expect(anthropic.requests).toHaveLength(0);
    // gpt-4.1-nano: $0.10 / $0.40 per 1M. Estimate 4 in + 50 out; actual 4 + 4.
    expect(out.cost).toEqual({ estimated_usd: "0.0000204", actual_usd: "0.000002", price_table: "2026-11-01" });
  });

  it("best_quality per node picks Anthropic's top model; a pinned model is served as asked", async () => {
    const best = await runGenerate({ strategy: "best_quality", max_tokens: 50 });
    expect(nodeOf(best, "gen").output.routing).toMatchObject({ strategy: "best_quality", provider: "anthropic", model: "claude-opus-4-6" });
    const pinned = await runGenerate({ model: "gpt-4o", stream: false });
    expect(nodeOf(pinned, "gen").output).toMatchObject({ provider: "openai", model: "gpt-4o", routing: { provider: "openai", model: "gpt-4o" } });
    expect(openai.requests.at(-1)!.body).toMatchObject({ model: "gpt-4o" });
  });

  it("a 400 from OpenAI fails the node at once: no fallback, no retry", async () => {
    openai.script([{ status: 400 }]);
    const run = await runGenerate({}, { max_attempts: 3 });
    expect(run.status).toBe("failed");
    expect(nodeOf(run, "gen")).toMatchObject({ status: "failed", attempt: 1 });
    expect(openai.requests).toHaveLength(1);
    expect(anthropic.requests).toHaveLength(0);
  });

  it("echo pinned by provider still answers the smoke prompt", async () => {
    const run = await runGenerate({ provider: "echo" });
    expect(run.status).toBe("completed");
    expect(nodeOf(run, "gen").output).toMatchObject({ text: PROMPT, provider: "echo", routing: { provider: "echo", model: "echo-1" }, cost: { estimated_usd: "0", actual_usd: "0" } });
    expect(openai.requests.length + anthropic.requests.length).toBe(0);
  });
});

describe("FABRIC_ROUTING_STRATEGY", () => {
  it("reaches the executor's router: the deployment default, which config.strategy still overrides", async () => {
    const other = await startTestFabric({
      worker: { WORKER_POLL_INTERVAL: 20, FABRIC_ROUTING_STRATEGY: "best_quality" },
      env: { OPENAI_API_KEY: "test", OPENAI_BASE_URL: openai.url, ANTHROPIC_API_KEY: "test", ANTHROPIC_BASE_URL: anthropic.url },
    });
    try {
      const start = async (config: Record<string, unknown>) => {
        const wf = await defineWorkflow(other, { nodes: [{ key: "gen", operation: "ai.generate", config, inputs: { prompt: "$context.prompt" } }] });
        const { run } = await runControl(other, "rest").start({ workflow_id: wf, input: { prompt: PROMPT } });
        return nodeOf(await waitForRun(other, run.id), "gen").output.routing;
      };
      expect(await start({ max_tokens: 20 })).toMatchObject({ strategy: "best_quality", provider: "anthropic", model: "claude-opus-4-6" });
      expect(await start({ max_tokens: 20, strategy: "cheapest" })).toMatchObject({ strategy: "cheapest", provider: "openai", model: "gpt-4.1-nano" });
    } finally {
      await other.close();
    }
  });
});
