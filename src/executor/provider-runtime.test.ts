/**
 * The provider runtime: the adapter from a workflow step to the provider gateway. Step →
 * request mapping (config, overridden by a `params` input; validation before any call),
 * attribution from the step, the output's fields, streamed progress whose deltas concatenate
 * to the final text, and every failure mapped to a StepError of the right class. The routing
 * itself is proved in gateway/provider-gateway.test.ts; here it runs end to end once more
 * over stub providers and a real database, to check what a node sees.
 */
import { randomUUID } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../tests/helpers/database.js";
import type { JsonObject } from "../domain/context.js";
import { organizations, policies, usageRecords } from "../db/schema.js";
import { DomainError } from "../domain/errors.js";
import { RoutingError } from "../domain/routing.js";
import { createEchoProvider } from "../providers/echo/index.js";
import { stub } from "../providers/fakes/scripted.js";
import { ProviderError, type ProviderErrorClass } from "../providers/errors.js";
import type { Provider } from "../providers/provider.js";
import { createProviderGateway, ProviderCallError, type CallResult, type GatewayOptions, type ProviderGateway } from "../gateway/index.js";
import { createProviderRuntime, type ProviderRuntimeOptions } from "./provider-runtime.js";
import { StepError, type Step } from "./step.js";


let database: TestDatabase;
let orgId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  orgId = await newOrg();
});
afterAll(() => database?.close());

async function newOrg(): Promise<string> {
  const id = randomUUID();
  await database.db.insert(organizations).values({ id, slug: `rt-${id.slice(0, 8)}`, name: "Runtime" });
  return id;
}

function runtime(providers: Provider[], options: GatewayOptions & ProviderRuntimeOptions = {}) {
  const { progressEveryMs, ...gatewayOptions } = options;
  const gateway = createProviderGateway({ db: database.db, providers }, gatewayOptions);
  return { gateway, runtime: createProviderRuntime(gateway, progressEveryMs !== undefined ? { progressEveryMs } : {}) };
}

type TestStep = Step & { progressed: JsonObject[] };

function step(config: JsonObject = {}, inputs: JsonObject = { prompt: "hi" }, opts: { operation?: string; org?: string; signal?: AbortSignal; who?: Partial<Pick<Step, "teamId" | "principalId" | "apiKeyId">> } = {}): TestStep {
  const progressed: JsonObject[] = [];
  const operation = opts.operation ?? "ai.generate";
  return {
    runId: randomUUID(),
    organizationId: opts.org ?? orgId,
    ...opts.who,
    node: { spec: { key: "gen", operation, config, inputs }, position: 0, dependents: [], merge: "replace" } as unknown as Step["node"],
    attempt: 1,
    inputs,
    context: {},
    config,
    signal: opts.signal ?? new AbortController().signal,
    db: database.db,
    progress: async (p) => {
      progressed.push(p);
    },
    progressed,
  };
}

async function run(rt: ReturnType<typeof createProviderRuntime>, s: Step): Promise<JsonObject> {
  const r = await rt.execute(s);
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

/** A gateway that records what it was asked and answers (or throws) as told. */
function fakeGateway(outcome: () => CallResult | Promise<CallResult> = () => fakeResult()) {
  const calls: Parameters<ProviderGateway["call"]>[0][] = [];
  const gateway = {
    async call(args: Parameters<ProviderGateway["call"]>[0]) {
      calls.push(args);
      return outcome();
    },
  } as unknown as ProviderGateway;
  return { gateway, calls };
}

function fakeResult(): CallResult {
  return {
    provider: "alpha",
    model: "a1",
    generate: { text: "ok", model: "a1", provider: "alpha", usage: { inputTokens: 1, outputTokens: 1 } },
    usage: { inputTokens: 1, outputTokens: 1 },
    estimate: { status: "unpriced", kind: "estimate", provider: "alpha", model: "a1", priceTableVersion: "t", tokens: { uncachedInput: 1, cachedInput: 0, cacheWrite: 0, output: 1 }, reason: "no price" },
    actual: { status: "unpriced", kind: "actual", provider: "alpha", model: "a1", priceTableVersion: "t", tokens: { uncachedInput: 1, cachedInput: 0, cacheWrite: 0, output: 1 }, reason: "no price" },
    priceTable: "t",
    decision: { chosen: [], explanation: { strategy: "local_first", operation: "ai.generate", pinned: {}, candidates: [], why: "because" } },
    attempts: [{ provider: "alpha", model: "a1" }],
    usageRecordId: 7,
  };
}

describe("provider runtime: step → request", () => {
  it("maps config and inputs to the request, and the step to the attribution", async () => {
    const { gateway, calls } = fakeGateway();
    const rt = createProviderRuntime(gateway);
    const who = { teamId: randomUUID(), principalId: randomUUID(), apiKeyId: randomUUID() };
    const s = step({ provider: "openai", model: "gpt-4.1-nano", strategy: "cheapest", tier: "premium", max_tokens: 50, temperature: 0.2, system: "be brief" }, { prompt: "hi" }, { who });
    await run(rt, s);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toEqual({
      request: { operation: "ai.generate", provider: "openai", model: "gpt-4.1-nano", strategy: "cheapest", tier: "premium", prompt: "hi", system: "be brief", maxTokens: 50, temperature: 0.2 },
      attribution: { organizationId: orgId, ...who, runId: s.runId, nodeKey: "gen" },
      signal: s.signal,
      stream: true,
      onDelta: expect.any(Function),
    });

    // Messages instead of a prompt; an inputs.system wins over config.system; stream: false means no progress callback.
    const messages = [{ role: "user", content: "hello" }];
    const s2 = step({ stream: false, system: "cfg" }, { messages, system: "input" });
    await run(rt, s2);
    expect(calls[1]).toEqual({
      request: { operation: "ai.generate", messages, system: "input" },
      attribution: { organizationId: orgId, teamId: null, principalId: null, apiKeyId: null, runId: s2.runId, nodeKey: "gen" },
      signal: s2.signal,
      stream: false,
    });

    // Embeddings: a string or a list of strings, never streamed.
    await run(rt, step({ model: "e1" }, { input: "one" }, { operation: "ai.embed" }));
    await run(rt, step({}, { input: ["a", "b"] }, { operation: "ai.embed" }));
    expect(calls.slice(2).map((c) => [c.request, c.stream])).toEqual([
      [{ operation: "ai.embed", model: "e1", texts: ["one"] }, false],
      [{ operation: "ai.embed", texts: ["a", "b"] }, false],
    ]);
  });

  it("a params input overrides config field by field", async () => {
    const { gateway, calls } = fakeGateway();
    const rt = createProviderRuntime(gateway);
    await run(rt, step({ model: "a1", max_tokens: 10, temperature: 0.5, stream: false }, { prompt: "hi", params: { model: "b1", max_tokens: 20, stream: true } }));
    expect(calls[0]!.request).toEqual({ operation: "ai.generate", model: "b1", prompt: "hi", maxTokens: 20, temperature: 0.5 });
    expect(calls[0]!.stream).toBe(true);
    // A null params means config alone.
    await run(rt, step({ model: "a1" }, { prompt: "hi", params: null }));
    expect(calls[1]!.request).toEqual({ operation: "ai.generate", model: "a1", prompt: "hi" });
    // Params are validated like config.
    expect(await failure(rt.execute(step({}, { prompt: "hi", params: { strategy: "random" } })))).toMatchObject({ code: "invalid_input", errorClass: "invalid_input" });
    expect(await failure(rt.execute(step({}, { prompt: "hi", params: ["model"] })))).toMatchObject({ code: "invalid_input", errorClass: "invalid_input" });
    expect(calls).toHaveLength(2);
  });

  it("rejects invalid settings and inputs as invalid_input without calling the gateway", async () => {
    const { gateway, calls } = fakeGateway();
    const rt = createProviderRuntime(gateway);
    const bad: [JsonObject, JsonObject, string?][] = [
      [{ strategy: "random" }, { prompt: "hi" }],
      [{ tier: "gold" }, { prompt: "hi" }],
      [{ max_tokens: 0 }, { prompt: "hi" }],
      [{ max_tokens: 1.5 }, { prompt: "hi" }],
      [{ max_tokens: 200_001 }, { prompt: "hi" }],
      [{ temperature: "hot" }, { prompt: "hi" }],
      // The rule the API and jobs apply (domain/provider-call.ts), the strictest of the three
      // the runtime, jobs and the API once had: a temperature within 0..2, a boolean stream
      // (and none for an embedding), a null setting is not an unset one.
      [{ temperature: 2.5 }, { prompt: "hi" }],
      [{ stream: "yes" }, { prompt: "hi" }],
      [{ stream: true }, { input: "a" }, "ai.embed"],
      [{ model: null }, { prompt: "hi" }],
      [{ provider: "" }, { prompt: "hi" }],
      [{ model: 3 }, { prompt: "hi" }],
      [{ system: 1 }, { prompt: "hi" }],
      [{}, {}],
      [{}, { messages: [{ role: "robot", content: "x" }] }],
      [{}, { input: 3 }, "ai.embed"],
    ];
    for (const [config, inputs, operation] of bad) {
      const err = await failure(rt.execute(step(config, inputs, operation ? { operation } : {})));
      expect(err).toMatchObject({ code: "invalid_input", errorClass: "invalid_input" });
    }
    expect(calls).toHaveLength(0);
  });
});

describe("provider runtime: output and progress", () => {
  it("echo pinned by provider: text, routing, cost and the usage record's id", async () => {
    const { runtime: rt } = runtime([createEchoProvider(), stub("openai", ["gpt-4.1-mini"])]);
    const s = step({ provider: "echo" }, { prompt: "HELLO WORLD" });
    const out = await run(rt, s);
    expect(out).toMatchObject({
      text: "HELLO WORLD",
      model: "echo-1",
      provider: "echo",
      usage: { input_tokens: "3", output_tokens: "3" },
      finish_reason: "stop",
      routing: { strategy: "local_first", provider: "echo", model: "echo-1", attempts: [{ provider: "echo", model: "echo-1" }] },
    });
    expect(routing(out).why).toContain("pinned to provider echo");
    expect(out["cost"]).toEqual({ estimated_usd: "0", actual_usd: "0", price_table: "2026-11-01" });
    // The record is attributed to the step's run and node.
    const [rec] = await database.db
      .select()
      .from(usageRecords)
      .where(and(eq(usageRecords.runId, s.runId), eq(usageRecords.nodeKey, "gen")));
    expect(rec).toMatchObject({ organizationId: orgId, provider: "echo", status: "succeeded" });
    expect(out["usage_record_id"]).toBe(String(rec!.id));
  });

  it("cost is exact decimal USD; an unpriced model reports null costs with the reason", async () => {
    const priced = await run(runtime([stub("openai", ["gpt-4.1-nano"])]).runtime, step({ max_tokens: 100 }, { prompt: "12345678" }));
    // nano: $0.10 / $0.40 per 1M. Estimate 2 × 100 + 100 × 400 nUSD; actual 10 × 100 + 5 × 400.
    expect(priced["cost"]).toEqual({ estimated_usd: "0.0000402", actual_usd: "0.000003", price_table: "2026-11-01" });
    const out = await run(runtime([stub("alpha", ["a1"])]).runtime, step());
    expect(out["cost"]).toMatchObject({ estimated_usd: null, actual_usd: null, price_table: "2026-11-01" });
    expect((out["cost"] as JsonObject)["estimated_unpriced_reason"]).toContain("no price for alpha/a1");
    expect((out["cost"] as JsonObject)["actual_unpriced_reason"]).toContain("no price for alpha/a1");
  });

  it("streams progress whose deltas concatenate to the text", async () => {
    const s = step({}, { prompt: "abc" });
    const out = await run(runtime([stub("alpha", ["a1"])], { progressEveryMs: 0 }).runtime, s);
    expect(s.progressed.length).toBeGreaterThan(0);
    expect(s.progressed.map((p) => p["delta"]).join("")).toBe(out["text"]);
    expect(s.progressed.at(-1)!["chars"]).toBe((out["text"] as string).length);

    // Echo's word chunks too, after a fallback whose stream failed before producing text.
    const s2 = step({}, { prompt: "the quick  brown\nfox" });
    const out2 = await run(runtime([stub("alpha", ["a1"], [{ fail: "overloaded" }]), stub("beta", ["b1"])], { progressEveryMs: 0 }).runtime, s2);
    expect(out2["text"]).toBe("beta:the quick  brown\nfox");
    expect(s2.progressed.map((p) => p["delta"]).join("")).toBe(out2["text"]);
  });

  it("a generation that arrives within one interval reports no progress; stream: false none either", async () => {
    const s = step({}, { prompt: "abc" });
    await run(runtime([stub("alpha", ["a1"])], { progressEveryMs: 60_000 }).runtime, s);
    expect(s.progressed).toEqual([]);
    const a = stub("alpha", ["a1"]);
    const s2 = step({ stream: false });
    await run(runtime([a], { progressEveryMs: 0 }).runtime, s2);
    expect(s2.progressed).toEqual([]);
    expect(a.calls).toEqual([{ model: "a1", streamed: false }]);
  });
});

describe("provider runtime: failures", () => {
  it("falls back, and when every candidate fails names every attempt (class of the last)", async () => {
    const out = await run(runtime([stub("alpha", ["a1", "a2"], [{ fail: "overloaded" }]), stub("beta", ["b1"])]).runtime, step());
    expect(out["text"]).toBe("beta:hi");
    expect(routing(out).attempts).toEqual([{ provider: "alpha", model: "a1", error: "overloaded: alpha: scripted overloaded" }, { provider: "beta", model: "b1" }]);
    expect(routing(out).why).toMatch(/^local_first: .*fallbacks: alpha\/a2, beta\/b1/);

    const err = await failure(runtime([stub("gamma", ["c1"], [{ fail: "transient" }]), stub("delta", ["d1"], [{ fail: "timeout" }])]).runtime.execute(step()));
    expect(err).toMatchObject({ code: "provider_timeout", errorClass: "timeout" });
    expect(err.message).toContain("gamma/c1 ✗ transient");
    expect(err.message).toContain("delta/d1 ✗ timeout");
  });

  it("invalid_request and auth are invalid_input, with no fallback", async () => {
    for (const cls of ["invalid_request", "auth"] as const) {
      const b = stub("beta", ["b1"]);
      const err = await failure(runtime([stub("alpha", ["a1"], [{ fail: cls }]), b]).runtime.execute(step()));
      expect(err).toMatchObject({ code: `provider_${cls}`, errorClass: "invalid_input" });
      expect(b.calls).toHaveLength(0);
    }
  });

  it("never fails over once the stream produced text: transient, and the published progress stands", async () => {
    const b = stub("beta", ["b1"]);
    const s = step();
    const err = await failure(runtime([stub("alpha", ["a1"], [{ deltasThenFail: "transient" }]), b], { progressEveryMs: 0 }).runtime.execute(s));
    expect(err).toMatchObject({ code: "provider_transient", errorClass: "transient" });
    expect(err.message).toContain("not failed over");
    expect(b.calls).toHaveLength(0);
    expect(s.progressed.map((p) => p["delta"])).toEqual(["alpha:"]);
  });

  it("breakers: the single candidate's is advisory; several behind open breakers fail as transient", async () => {
    const single = runtime([stub("alpha", ["a1"], [{ fail: "transient" }])], { breakers: { consecutiveFailures: 1, cooldownMs: 60_000 } });
    expect(await failure(single.runtime.execute(step()))).toMatchObject({ code: "provider_transient", errorClass: "transient" });
    expect(routing(await run(single.runtime, step())).why).toContain("breaker is open but advisory");

    const a = stub("alpha", ["a1"], [{ fail: "transient" }]);
    const b = stub("beta", ["b1"], [{ fail: "transient" }]);
    const several = runtime([a, b], { breakers: { consecutiveFailures: 1, cooldownMs: 60_000 } });
    await failure(several.runtime.execute(step()));
    expect(several.gateway.breakers.inspect("alpha", "a1").state).toBe("open");
    expect(await failure(several.runtime.execute(step()))).toMatchObject({ code: "no_healthy_provider", errorClass: "transient" });
    expect(a.calls.length + b.calls.length).toBe(2);
  });

  it("a pin nothing serves is invalid_input", async () => {
    const err = await failure(runtime([stub("alpha", ["a1"])]).runtime.execute(step({ model: "zz" })));
    expect(err).toMatchObject({ code: "model_not_served", errorClass: "invalid_input" });
  });

  it("an abort (timeout, cancel) reaches the provider and is cancelled, not retried elsewhere", async () => {
    const ac = new AbortController();
    const b = stub("beta", ["b1"]);
    const pending = runtime([stub("alpha", ["a1"], ["hang"]), b]).runtime.execute(step({}, { prompt: "hi" }, { signal: ac.signal }));
    setTimeout(() => ac.abort(), 20);
    expect(await failure(pending)).toMatchObject({ code: "provider_aborted", errorClass: "cancelled" });
    expect(b.calls).toHaveLength(0);
  });

  it("a budget refusal from the organization's policy fails the node as non-retryable invalid_input", async () => {
    const org = await newOrg();
    await database.db.insert(policies).values({ scopeKey: `org:${org}`, organizationId: org, dailyLimitNanoUsd: 40_000 });
    const openai = stub("openai", ["gpt-4.1-nano"]);
    const err = await failure(runtime([openai]).runtime.execute(step({ max_tokens: 100 }, { prompt: "12345678" }, { org })));
    expect(err).toMatchObject({ code: "budget_exceeded", errorClass: "invalid_input" });
    expect(err.message).toContain("daily budget");
    expect(openai.calls).toHaveLength(0);
    // Within the budget, the same node runs.
    expect((await run(runtime([openai]).runtime, step({ max_tokens: 10 }, { prompt: "12345678" }, { org })))["text"]).toBe("openai:12345678");
  });

  it("maps each gateway failure to its StepError class", async () => {
    const pe = (cls: ProviderErrorClass) => new ProviderError({ provider: "alpha", errorClass: cls, message: `scripted ${cls}` });
    const cases: [unknown, { code: string; errorClass: string }][] = [
      [new ProviderCallError(pe("invalid_request"), [], false), { code: "provider_invalid_request", errorClass: "invalid_input" }],
      [new ProviderCallError(pe("auth"), [], false), { code: "provider_auth", errorClass: "invalid_input" }],
      [new ProviderCallError(pe("timeout"), [], false), { code: "provider_timeout", errorClass: "timeout" }],
      [new ProviderCallError(pe("aborted"), [], false), { code: "provider_aborted", errorClass: "cancelled" }],
      [new ProviderCallError(pe("overloaded"), [], false), { code: "provider_overloaded", errorClass: "transient" }],
      [new ProviderCallError(pe("rate_limited"), [], false), { code: "provider_rate_limited", errorClass: "transient" }],
      [new ProviderCallError(pe("transient"), [], false), { code: "provider_transient", errorClass: "transient" }],
      // A timeout after the stream began is retried by the node's policy, not as a timeout.
      [new ProviderCallError(pe("timeout"), [], true), { code: "provider_timeout", errorClass: "transient" }],
      [new DomainError("resource_exhausted", "over budget", { code: "budget_exceeded", retryAfterSeconds: 60 }), { code: "budget_exceeded", errorClass: "invalid_input" }],
      [new DomainError("failed_precondition", "no price", { code: "model_unpriced" }), { code: "model_unpriced", errorClass: "invalid_input" }],
      [new DomainError("permission_denied", "not allowed", { code: "model_not_allowed" }), { code: "model_not_allowed", errorClass: "invalid_input" }],
      [new DomainError("unavailable", "all open", { code: "no_healthy_provider" }), { code: "no_healthy_provider", errorClass: "transient" }],
      [new DomainError("invalid_argument", "bad count"), { code: "invalid_argument", errorClass: "invalid_input" }],
      [new RoutingError("invalid_argument", "nothing serves zz", { code: "model_not_served" }, { strategy: "local_first", operation: "ai.generate", pinned: { model: "zz" }, candidates: [], why: "" }), { code: "model_not_served", errorClass: "invalid_input" }],
    ];
    for (const [thrown, expected] of cases) {
      const { gateway } = fakeGateway(() => {
        throw thrown;
      });
      const err = await failure(createProviderRuntime(gateway).execute(step()));
      expect(err, String(thrown)).toMatchObject(expected);
      if (thrown instanceof Error) expect(err.message).toContain(thrown.message);
    }

    // Anything else is a bug: passed on unchanged.
    const bug = new TypeError("boom");
    const { gateway } = fakeGateway(() => {
      throw bug;
    });
    await expect(createProviderRuntime(gateway).execute(step())).rejects.toBe(bug);
  });
});
