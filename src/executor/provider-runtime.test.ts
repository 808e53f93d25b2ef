/**
 * The provider runtime over stub providers: routing order and fallback, the breaker opening
 * and being routed around, pins, per-node strategy, no fail-over once a stream produced text,
 * non-retryable errors failing at once, and the routing/cost fields of the output.
 */
import { describe, expect, it } from "vitest";
import type { JsonObject } from "../domain/context.js";
import { createEchoProvider } from "../providers/echo/index.js";
import { ProviderError, type ProviderErrorClass } from "../providers/errors.js";
import type { GenerateRequest, GenerateResult, Provider, StreamChunk } from "../providers/provider.js";
import { createProviderRuntime } from "./provider-runtime.js";
import { StepError, type Step } from "./step.js";

/** What a stub does on one call: answer, fail with a class, or stream some text then fail. */
type Behaviour = "ok" | { fail: ProviderErrorClass } | { deltasThenFail: ProviderErrorClass };

interface Stub extends Provider {
  calls: { model: string | undefined; streamed: boolean }[];
}

function stub(name: string, models: string[], script: Behaviour[] = [], extra: Partial<Provider> = {}): Stub {
  const calls: Stub["calls"] = [];
  const next = (): Behaviour => script.shift() ?? "ok";
  const result = (req: GenerateRequest): GenerateResult => ({ text: `${name}:${req.prompt}`, model: req.model ?? models[0]!, provider: name, usage: { inputTokens: 10, outputTokens: 5 } });
  const error = (cls: ProviderErrorClass) => new ProviderError({ provider: name, errorClass: cls, message: `${name}: scripted ${cls}` });
  return {
    name,
    tier: "premium",
    local: false,
    models,
    embeddingModels: [],
    operations: ["ai.generate"],
    calls,
    async generate(req) {
      calls.push({ model: req.model, streamed: false });
      const b = next();
      if (b !== "ok") throw error("fail" in b ? b.fail : b.deltasThenFail);
      return result(req);
    },
    async *stream(req): AsyncIterable<StreamChunk> {
      calls.push({ model: req.model, streamed: true });
      const b = next();
      if (b !== "ok" && "fail" in b) throw error(b.fail);
      yield { type: "delta", text: `${name}:` };
      if (b !== "ok") throw error(b.deltasThenFail);
      yield { type: "delta", text: req.prompt ?? "" };
      yield { type: "done", result: result(req) };
    },
    ...extra,
  };
}

function step(config: JsonObject = {}, inputs: JsonObject = { prompt: "hi" }, operation = "ai.generate"): Step & { progressed: JsonObject[] } {
  const progressed: JsonObject[] = [];
  return {
    runId: "r",
    organizationId: "o",
    node: { spec: { key: "gen", operation, config, inputs }, position: 0, dependents: [], merge: "replace" } as unknown as Step["node"],
    attempt: 1,
    inputs,
    context: {},
    config,
    signal: new AbortController().signal,
    db: undefined as unknown as Step["db"],
    progress: async (p) => {
      progressed.push(p);
    },
    progressed,
  };
}

async function run(runtime: ReturnType<typeof createProviderRuntime>, s: Step): Promise<JsonObject> {
  const r = await runtime.execute(s);
  if (!("output" in r)) throw new Error("expected an output");
  return r.output;
}

async function failure(p: Promise<unknown>): Promise<StepError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(StepError);
    return err as StepError;
  }
  throw new Error("expected the step to fail");
}

const routing = (out: JsonObject) => out["routing"] as { strategy: string; provider: string; model: string; attempts: { provider: string; model: string; error?: string }[]; why: string };

describe("provider runtime routing", () => {
  it("falls back on a retryable error, to another provider before the failed one's other models", async () => {
    const a = stub("alpha", ["a1", "a2"], [{ fail: "overloaded" }]);
    const b = stub("beta", ["b1"]);
    const runtime = createProviderRuntime([a, b]);
    const out = await run(runtime, step());
    expect(out["text"]).toBe("beta:hi");
    expect(routing(out)).toMatchObject({ strategy: "local_first", provider: "beta", model: "b1" });
    expect(routing(out).attempts).toEqual([{ provider: "alpha", model: "a1", error: "overloaded: alpha: scripted overloaded" }, { provider: "beta", model: "b1" }]);
    expect(routing(out).why).toMatch(/^local_first: .*fallbacks: alpha\/a2, beta\/b1/);
    expect(a.calls.map((c) => c.model)).toEqual(["a1"]);
  });

  it("tries the failed provider's other models last, and fails with every attempt named when all fail", async () => {
    const a = stub("alpha", ["a1", "a2"], [{ fail: "transient" }, "ok"]);
    const b = stub("beta", ["b1"], [{ fail: "rate_limited" }]);
    const out = await run(createProviderRuntime([a, b]), step({ stream: false }));
    expect(routing(out).attempts.map((x) => [x.provider, x.model, x.error !== undefined])).toEqual([
      ["alpha", "a1", true],
      ["beta", "b1", true],
      ["alpha", "a2", false],
    ]);

    const c = stub("gamma", ["c1"], [{ fail: "transient" }]);
    const d = stub("delta", ["d1"], [{ fail: "timeout" }]);
    const err = await failure(createProviderRuntime([c, d]).execute(step()));
    expect(err).toMatchObject({ code: "provider_timeout", errorClass: "timeout" });
    expect(err.message).toContain("gamma/c1 ✗ transient");
    expect(err.message).toContain("delta/d1 ✗ timeout");
  });

  it("opens a breaker after repeated failures and routes around it, then reports it", async () => {
    const a = stub("alpha", ["a1"], [{ fail: "overloaded" }, { fail: "overloaded" }, { fail: "overloaded" }]);
    const b = stub("beta", ["b1"]);
    const runtime = createProviderRuntime([a, b], { breakers: { consecutiveFailures: 2, cooldownMs: 60_000 } });
    await run(runtime, step());
    await run(runtime, step());
    expect(runtime.breakers.inspect("alpha", "a1").state).toBe("open");
    expect(a.calls).toHaveLength(2);

    const out = await run(runtime, step());
    expect(a.calls).toHaveLength(2); // skipped: its breaker is open
    expect(routing(out).attempts).toEqual([{ provider: "beta", model: "b1" }]);
    expect(routing(out).why).toContain("1 of 2 candidates eligible");
    expect(runtime.breakers.inspect("beta", "b1")).toMatchObject({ state: "closed", consecutiveFailures: 0 });
  });

  it("treats the breaker as advisory when only one candidate serves the request", async () => {
    const a = stub("alpha", ["a1"], [{ fail: "transient" }, { fail: "transient" }]);
    const runtime = createProviderRuntime([a], { breakers: { consecutiveFailures: 1, cooldownMs: 60_000 } });
    expect((await failure(runtime.execute(step()))).errorClass).toBe("transient");
    expect(runtime.breakers.inspect("alpha", "a1").state).toBe("open");
    expect((await failure(runtime.execute(step()))).code).toBe("provider_transient");
    const out = await run(runtime, step());
    expect(out["text"]).toBe("alpha:hi");
    expect(routing(out).why).toContain("breaker is open but advisory");
    expect(a.calls).toHaveLength(3);
    // A success outside a probe does not cut the cooldown short (the breaker's rule).
    expect(runtime.breakers.inspect("alpha", "a1").state).toBe("open");
  });

  it("with several candidates all behind open breakers, fails as transient without calling any", async () => {
    const a = stub("alpha", ["a1"], [{ fail: "transient" }]);
    const b = stub("beta", ["b1"], [{ fail: "transient" }]);
    const runtime = createProviderRuntime([a, b], { breakers: { consecutiveFailures: 1, cooldownMs: 60_000 } });
    await failure(runtime.execute(step()));
    const err = await failure(runtime.execute(step()));
    expect(err).toMatchObject({ code: "no_healthy_provider", errorClass: "transient" });
    expect(a.calls.length + b.calls.length).toBe(2);
  });

  it("pins by provider and by model, and rejects a pin nothing serves", async () => {
    const a = stub("alpha", ["a1", "a2"]);
    const b = stub("beta", ["b1"]);
    const runtime = createProviderRuntime([a, b]);
    expect(routing(await run(runtime, step({ provider: "beta" })))).toMatchObject({ provider: "beta", model: "b1" });
    const pinned = routing(await run(runtime, step({ model: "a2" })));
    expect(pinned).toMatchObject({ provider: "alpha", model: "a2" });
    expect(pinned.why).toContain("pinned to model a2");
    expect(a.calls.map((c) => c.model)).toEqual(["a2"]);
    // A provider pin alone means its default model, whatever the strategy, with no fallback to its others.
    const flaky = stub("gamma", ["g-default", "g-cheap"], [{ fail: "transient" }]);
    const pinnedProvider = createProviderRuntime([flaky], { strategy: "cheapest" });
    expect((await failure(pinnedProvider.execute(step({ provider: "gamma" })))).code).toBe("provider_transient");
    expect(routing(await run(pinnedProvider, step({ provider: "gamma" })))).toMatchObject({ provider: "gamma", model: "g-default" });
    expect(flaky.calls.map((c) => c.model)).toEqual(["g-default", "g-default"]);
    const err = await failure(runtime.execute(step({ model: "zz" })));
    expect(err).toMatchObject({ code: "model_not_served", errorClass: "invalid_input" });
    expect((await failure(runtime.execute(step({ strategy: "random" })))).errorClass).toBe("invalid_input");
  });

  it("a pinned model with a retryable failure and nothing else serving it fails, not swaps models", async () => {
    const a = stub("alpha", ["a1", "a2"], [{ fail: "overloaded" }]);
    const err = await failure(createProviderRuntime([a]).execute(step({ model: "a1" })));
    expect(err).toMatchObject({ code: "provider_overloaded", errorClass: "transient" });
    expect(a.calls.map((c) => c.model)).toEqual(["a1"]);
  });

  it("never fails over once the stream produced text: the attempt fails as transient", async () => {
    const a = stub("alpha", ["a1"], [{ deltasThenFail: "transient" }]);
    const b = stub("beta", ["b1"]);
    const err = await failure(createProviderRuntime([a, b], { progressEveryMs: 0 }).execute(step()));
    expect(err).toMatchObject({ code: "provider_transient", errorClass: "transient" });
    expect(err.message).toContain("not failed over");
    expect(b.calls).toHaveLength(0);
  });

  it("fails at once on invalid_request and auth (invalid_input, no fallback)", async () => {
    for (const cls of ["invalid_request", "auth"] as const) {
      const a = stub("alpha", ["a1"], [{ fail: cls }]);
      const b = stub("beta", ["b1"]);
      const runtime = createProviderRuntime([a, b]);
      const err = await failure(runtime.execute(step()));
      expect(err).toMatchObject({ code: `provider_${cls}`, errorClass: "invalid_input" });
      expect(b.calls).toHaveLength(0);
      // The caller's mistake says nothing about alpha's health.
      expect(runtime.breakers.inspect("alpha", "a1").consecutiveFailures).toBe(0);
    }
  });

  it("per-node strategy wins over the deployment's; fastest follows observed latency", async () => {
    let t = 0;
    const slow = stub("alpha", ["a1"], [], {});
    const fast = stub("beta", ["b1"]);
    const slowGenerate = slow.stream.bind(slow);
    slow.stream = async function* (req) {
      t += 500;
      yield* slowGenerate(req);
    };
    const fastStream = fast.stream.bind(fast);
    fast.stream = async function* (req) {
      t += 20;
      yield* fastStream(req);
    };
    const runtime = createProviderRuntime([slow, fast], { strategy: "cheapest", now: () => t });
    await run(runtime, step({ provider: "alpha" }));
    await run(runtime, step({ provider: "beta" }));
    expect(runtime.latencies()).toEqual({ "alpha/a1": 500, "beta/b1": 20 });
    expect(routing(await run(runtime, step())).provider).toBe("alpha"); // cheapest: a tie, input order
    const out = routing(await run(runtime, step({ strategy: "fastest" })));
    expect(out).toMatchObject({ strategy: "fastest", provider: "beta" });
    expect(out.why).toContain("lowest observed latency");
  });

  it("cheapest picks the cheaper model; cost is estimated and actual, exact", async () => {
    const openai = stub("openai", ["gpt-4.1-mini", "gpt-4.1-nano"]);
    const runtime = createProviderRuntime([createEchoProvider(), openai], { strategy: "cheapest" });
    const out = await run(runtime, step({ max_tokens: 100 }, { prompt: "12345678" }));
    expect(routing(out)).toMatchObject({ strategy: "cheapest", provider: "openai", model: "gpt-4.1-nano" });
    // nano: $0.10 / $0.40 per 1M. Estimate: 2 input tokens (8 chars ÷ 4) + 100 output;
    // actual: 10 input + 5 output (the stub's usage).
    expect(out["cost"]).toEqual({ estimated_usd: "0.0000402", actual_usd: "0.000003", price_table: "2026-11-01" });
  });

  it("an unpriced model reports null costs with the reason", async () => {
    const out = await run(createProviderRuntime([stub("alpha", ["a1"])]), step());
    expect(out["cost"]).toMatchObject({ estimated_usd: null, actual_usd: null, price_table: "2026-11-01" });
    expect((out["cost"] as JsonObject)["estimated_unpriced_reason"]).toContain("no price for alpha/a1");
  });

  it("echo pinned by provider behaves as before, streaming progress included", async () => {
    const runtime = createProviderRuntime([createEchoProvider(), stub("openai", ["gpt-4.1-mini"])]);
    const s = step({ provider: "echo" }, { prompt: "HELLO WORLD" });
    const out = await run(runtime, s);
    expect(out).toMatchObject({ text: "HELLO WORLD", provider: "echo", routing: { provider: "echo", model: "echo-1", attempts: [{ provider: "echo", model: "echo-1" }] } });
    expect(out["cost"]).toMatchObject({ estimated_usd: "0", actual_usd: "0" });
  });

  it("streams progress whose deltas concatenate to the text", async () => {
    const s = step({}, { prompt: "abc" });
    const out = await run(createProviderRuntime([stub("alpha", ["a1"])], { progressEveryMs: 0 }), s);
    expect(s.progressed.map((p) => p["delta"]).join("")).toBe(out["text"]);
  });
});
