import { describe, expect, it } from "vitest";
import { createProviders } from "../providers/registry.js";
import { createCircuitBreakers } from "./circuit-breaker.js";
import { DEFAULT_PRICE_TABLE, withPriceOverrides } from "./pricing.js";
import {
  candidatesFromProviders,
  DEFAULT_ROUTING_STRATEGY,
  isRoutingStrategy,
  qualityOf,
  route,
  RoutingError,
  updateLatencyEwma,
  type Candidate,
  type RouteOptions,
  type RouteRequest,
  type RoutingStrategy,
} from "./routing.js";

/** A fixed catalogue, in registry order (echo, openai, anthropic, ollama). */
const catalogue: Candidate[] = candidatesFromProviders([
  { name: "echo", tier: "basic", local: true, models: ["echo-1"], embeddingModels: ["echo-embed-1"], operations: ["ai.generate", "ai.embed"] },
  { name: "openai", tier: "premium", local: false, models: ["gpt-4.1-mini", "gpt-4.1", "gpt-4.1-nano"], embeddingModels: ["text-embedding-3-small"], operations: ["ai.generate", "ai.embed"] },
  { name: "anthropic", tier: "premium", local: false, models: ["claude-sonnet-4-6", "claude-haiku-4-5"], embeddingModels: [], operations: ["ai.generate"] },
  { name: "ollama", tier: "basic", local: true, models: ["llama3.2", "qwen2.5"], embeddingModels: ["nomic-embed-text"], operations: ["ai.generate", "ai.embed"] },
]);

const generate: RouteRequest = { operation: "ai.generate", inputTokens: 1000, maxOutputTokens: 500 };
const keys = (cs: readonly Candidate[]) => cs.map((c) => `${c.provider}/${c.model}`);

function routingError(fn: () => unknown): RoutingError {
  try {
    fn();
  } catch (err) {
    if (err instanceof RoutingError) return err;
    throw err;
  }
  throw new Error("expected a RoutingError");
}

describe("candidatesFromProviders", () => {
  it("lists chat models for ai.generate and embedding models for ai.embed, echo marked as a stub", () => {
    expect(catalogue.slice(0, 3)).toEqual([
      { provider: "echo", model: "echo-1", operations: ["ai.generate"], local: true, tier: "basic", stub: true },
      { provider: "echo", model: "echo-embed-1", operations: ["ai.embed"], local: true, tier: "basic", stub: true },
      { provider: "openai", model: "gpt-4.1-mini", operations: ["ai.generate"], local: false, tier: "premium" },
    ]);
    expect(keys(catalogue.filter((c) => c.operations.includes("ai.embed")))).toEqual(["echo/echo-embed-1", "openai/text-embedding-3-small", "ollama/nomic-embed-text"]);
  });

  it("routes the real registry: echo alone by default, a real local model once Ollama is enabled", () => {
    const alone = route({ operation: "ai.generate" }, candidatesFromProviders(createProviders({})));
    expect(keys(alone.chosen)).toEqual(["echo/echo-1"]);
    const all = candidatesFromProviders(createProviders({ OPENAI_API_KEY: "k", ANTHROPIC_API_KEY: "k", OLLAMA_ENABLED: true }));
    const d = route({ operation: "ai.generate" }, all);
    expect(keys(d.chosen)[0]).toBe("ollama/llama3.2");
    expect(keys(d.chosen)).not.toContain("echo/echo-1");
  });
});

describe("strategies (routing table)", () => {
  // Ollama's llama3.2 is charged back internally, so "local" and "cheapest" disagree.
  const prices = withPriceOverrides(DEFAULT_PRICE_TABLE, { providers: { ollama: { "llama3.2": { input: "0.50", output: "0.50" } } } });
  const latencyMs = { "openai/gpt-4.1-nano": 300, "anthropic/claude-haiku-4-5": 250, "ollama/llama3.2": 900, "openai/gpt-4.1-mini": 300 };
  const options: RouteOptions = { prices, latencyMs };
  // estimated cost (nUSD) for 1000 in / 500 out: qwen2.5 0 · nano 300k · llama3.2 750k · mini 1.2M
  //   · haiku 3.5M · gpt-4.1 6M · sonnet 10.5M
  const table: [RoutingStrategy, string[]][] = [
    ["local_first", ["ollama/qwen2.5", "ollama/llama3.2", "openai/gpt-4.1-nano", "openai/gpt-4.1-mini", "anthropic/claude-haiku-4-5", "openai/gpt-4.1", "anthropic/claude-sonnet-4-6"]],
    ["cheapest", ["ollama/qwen2.5", "openai/gpt-4.1-nano", "ollama/llama3.2", "openai/gpt-4.1-mini", "anthropic/claude-haiku-4-5", "openai/gpt-4.1", "anthropic/claude-sonnet-4-6"]],
    // observed first (ties by cost), then the unknown by cost
    ["fastest", ["anthropic/claude-haiku-4-5", "openai/gpt-4.1-nano", "openai/gpt-4.1-mini", "ollama/llama3.2", "ollama/qwen2.5", "openai/gpt-4.1", "anthropic/claude-sonnet-4-6"]],
    ["best_quality", ["anthropic/claude-sonnet-4-6", "openai/gpt-4.1", "anthropic/claude-haiku-4-5", "openai/gpt-4.1-mini", "openai/gpt-4.1-nano", "ollama/qwen2.5", "ollama/llama3.2"]],
    // scores (cost + latency + quality positions): nano 1+1+4=6, haiku 4+0+2=6, mini 3+1+3=7, qwen 0+4+5=9,
    // gpt-4.1 5+4+1=10, sonnet 6+4+0=10, llama 2+3+6=11; ties by cost
    ["balanced", ["openai/gpt-4.1-nano", "anthropic/claude-haiku-4-5", "openai/gpt-4.1-mini", "ollama/qwen2.5", "openai/gpt-4.1", "anthropic/claude-sonnet-4-6", "ollama/llama3.2"]],
  ];

  it.each(table)("%s", (strategy, expected) => {
    const d = route({ ...generate, strategy }, catalogue, options);
    expect(keys(d.chosen)).toEqual(expected);
    expect(d.explanation.strategy).toBe(strategy);
    expect(d.explanation.candidates.filter((c) => c.eligible).map((c) => `${c.provider}/${c.model}`)).toEqual(expected);
  });

  it("explains the balanced score of each candidate", () => {
    const d = route({ ...generate, strategy: "balanced" }, catalogue, options);
    const nano = d.explanation.candidates.find((c) => c.model === "gpt-4.1-nano")!;
    expect(nano.score).toBe(6);
    expect(nano.reasons).toContain("balanced score 6 = cost position 1×1 + latency position 1×1 + quality position 4×1");
    const weighted = route({ ...generate, strategy: "balanced" }, catalogue, { ...options, balancedWeights: { cost: 0, latency: 0, quality: 1 } });
    expect(keys(weighted.chosen)[0]).toBe("anthropic/claude-sonnet-4-6");
  });

  it("defaults to local_first; a per-request strategy beats the deployment's", () => {
    expect(DEFAULT_ROUTING_STRATEGY).toBe("local_first");
    expect(route(generate, catalogue).explanation.strategy).toBe("local_first");
    expect(route(generate, catalogue, { strategy: "cheapest" }).explanation.strategy).toBe("cheapest");
    expect(route({ ...generate, strategy: "best_quality" }, catalogue, { strategy: "cheapest" }).explanation.strategy).toBe("best_quality");
    expect(isRoutingStrategy("balanced")).toBe(true);
    expect(isRoutingStrategy("random")).toBe(false);
  });

  it("prefers a requested tier without requiring it", () => {
    const d = route({ ...generate, tier: "premium" }, catalogue);
    expect(keys(d.chosen).slice(0, 2)).toEqual(["openai/gpt-4.1-nano", "openai/gpt-4.1-mini"]);
    expect(keys(d.chosen).slice(-2)).toEqual(["ollama/llama3.2", "ollama/qwen2.5"]);
    expect(d.explanation.why).toContain("prefers tier premium");
  });

  it("sorts unpriced models last on cost, with a reason", () => {
    const cs: Candidate[] = [
      { provider: "openai", model: "gpt-9-preview", operations: ["ai.generate"], local: false, tier: "premium" },
      { provider: "openai", model: "gpt-4.1", operations: ["ai.generate"], local: false, tier: "premium" },
    ];
    const d = route({ ...generate, strategy: "cheapest" }, cs);
    expect(keys(d.chosen)).toEqual(["openai/gpt-4.1", "openai/gpt-9-preview"]);
    const unpriced = d.explanation.candidates[1]!;
    expect(unpriced.estimatedCostNanoUsd).toBeNull();
    expect(unpriced.reasons.some((r) => r.startsWith("unpriced"))).toBe(true);
  });

  it("ranks embedding models for ai.embed only", () => {
    const d = route({ operation: "ai.embed", inputChars: 400 }, catalogue);
    expect(keys(d.chosen)).toEqual(["ollama/nomic-embed-text", "openai/text-embedding-3-small"]);
  });
});

describe("request validation", () => {
  it.each([{ inputTokens: -1 }, { inputChars: 1.5 }, { maxOutputTokens: Number.NaN }])("refuses %j as invalid_argument", (bad) => {
    expect(() => route({ operation: "ai.generate", ...bad }, catalogue)).toThrow(expect.objectContaining({ kind: "invalid_argument" }));
  });
});

describe("determinism", () => {
  it("breaks ties by input order, and the same inputs give the same decision", () => {
    const twins: Candidate[] = [
      { provider: "a", model: "m", operations: ["ai.generate"], local: true, tier: "basic" },
      { provider: "b", model: "m", operations: ["ai.generate"], local: true, tier: "basic" },
    ];
    const prices = withPriceOverrides(DEFAULT_PRICE_TABLE, { providers: { a: { m: { input: "1", output: "1" } }, b: { m: { input: "1", output: "1" } } } });
    for (const strategy of ["local_first", "cheapest", "fastest", "best_quality", "balanced"] as const) {
      expect(keys(route({ ...generate, strategy }, twins, { prices }).chosen)).toEqual(["a/m", "b/m"]);
      expect(keys(route({ ...generate, strategy }, [...twins].reverse(), { prices }).chosen)).toEqual(["b/m", "a/m"]);
    }
    expect(route(generate, catalogue)).toEqual(route(generate, catalogue));
  });
});

describe("stubs (echo)", () => {
  it("is not chosen, nor a fallback, while a real provider is eligible", () => {
    const d = route({ ...generate, strategy: "cheapest" }, catalogue);
    expect(keys(d.chosen)).not.toContain("echo/echo-1");
    const echo = d.explanation.candidates.find((c) => c.provider === "echo" && c.model === "echo-1")!;
    expect(echo.eligible).toBe(false);
    expect(echo.reasons).toContain("echo is a stub, used only when no real provider serves the request");
  });

  it("is chosen when no real provider serves the request, or when pinned", () => {
    expect(keys(route(generate, catalogue.filter((c) => c.provider === "echo")).chosen)).toEqual(["echo/echo-1"]);
    const realOnesDisabled = catalogue.map((c) => (c.provider === "echo" ? c : { ...c, enabled: false }));
    expect(keys(route(generate, realOnesDisabled).chosen)).toEqual(["echo/echo-1"]);
    expect(keys(route({ ...generate, provider: "echo" }, catalogue).chosen)).toEqual(["echo/echo-1"]);
    expect(keys(route({ ...generate, model: "echo-1" }, catalogue).chosen)).toEqual(["echo/echo-1"]);
  });

  it("does not stand in for real providers that are down or forbidden: that is an error", () => {
    const breakers = createCircuitBreakers({ consecutiveFailures: 1, now: () => 0 });
    for (const c of catalogue) if (c.provider !== "echo") breakers.recordFailure(c.provider, c.model, { retryable: true });
    const down = routingError(() => route(generate, catalogue, { breakers }));
    expect([down.kind, down.code]).toEqual(["unavailable", "no_healthy_provider"]);
    expect(down.message).not.toContain("echo");
    const forbidden = routingError(() => route(generate, catalogue, { policies: [{ allowedModels: ["gpt-5"] }] }));
    expect([forbidden.kind, forbidden.code]).toEqual(["permission_denied", "model_not_allowed"]);
  });
});

describe("pinning", () => {
  it("by model: only the providers serving it, fallbacks included", () => {
    const mirror: Candidate = { provider: "azure", model: "gpt-4.1-mini", operations: ["ai.generate"], local: false, tier: "premium" };
    const d = route({ ...generate, model: "gpt-4.1-mini" }, [...catalogue, mirror]);
    expect(keys(d.chosen)).toEqual(["openai/gpt-4.1-mini", "azure/gpt-4.1-mini"]);
    expect(d.explanation.pinned).toEqual({ model: "gpt-4.1-mini" });
    expect(d.explanation.why).toContain("pinned to model gpt-4.1-mini");
    const other = d.explanation.candidates.find((c) => c.model === "gpt-4.1")!;
    expect(other.reasons).toContain("not the requested model gpt-4.1-mini");
  });

  it("by a dated model name: served by the base model's provider, called with the dated name", () => {
    const d = route({ ...generate, model: "gpt-4.1-mini-2025-04-14" }, catalogue);
    expect(d.chosen).toEqual([{ provider: "openai", model: "gpt-4.1-mini-2025-04-14", operations: ["ai.generate"], local: false, tier: "premium" }]);
    expect(d.explanation.candidates[0]!.estimatedCostNanoUsd).toBe(1000 * 400 + 500 * 1600);
  });

  it("by provider: that provider's models, ranked by the strategy", () => {
    const d = route({ ...generate, provider: "anthropic" }, catalogue);
    expect(keys(d.chosen)).toEqual(["anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-6"]);
    expect(route({ ...generate, provider: "anthropic", strategy: "best_quality" }, catalogue).chosen[0]!.model).toBe("claude-sonnet-4-6");
  });

  it("calls a provider+model once even when it is listed twice (or as a snapshot and its base)", () => {
    const snapshot: Candidate = { provider: "openai", model: "gpt-4.1-mini-2025-04-14", operations: ["ai.generate"], local: false, tier: "premium" };
    const d = route({ ...generate, model: "gpt-4.1-mini-2025-04-14" }, [...catalogue, snapshot]);
    expect(keys(d.chosen)).toEqual(["openai/gpt-4.1-mini-2025-04-14"]);
    expect(d.explanation.candidates.find((c) => c.reasons.includes("same call as the earlier-listed openai/gpt-4.1-mini-2025-04-14"))).toBeDefined();
    expect(keys(route(generate, [...catalogue, ...catalogue]).chosen)).toEqual(keys(route(generate, catalogue).chosen));
  });

  it("by provider and model together", () => {
    expect(keys(route({ ...generate, provider: "openai", model: "gpt-4.1" }, catalogue).chosen)).toEqual(["openai/gpt-4.1"]);
  });

  it.each([
    [{ model: "gpt-9" }, "model_not_served"],
    [{ model: "gpt-4.1-mini", operation: "ai.embed" as const }, "model_not_served"],
    [{ provider: "mistral-cloud" }, "provider_not_enabled"],
    [{ provider: "anthropic", operation: "ai.embed" as const }, "provider_not_enabled"],
  ])("refuses a pin nothing serves: %j → invalid_argument %s", (pin, code) => {
    const err = routingError(() => route({ ...generate, ...pin }, catalogue));
    expect(err.kind).toBe("invalid_argument");
    expect(err.code).toBe(code);
    expect(err.explanation.candidates.every((c) => !c.eligible)).toBe(true);
    expect(err.explanation.why).toBe(err.message);
  });

  it("refuses an operation no candidate supports", () => {
    const chatOnly = catalogue.filter((c) => c.operations.includes("ai.generate"));
    const err = routingError(() => route({ operation: "ai.embed" }, chatOnly));
    expect([err.kind, err.code]).toEqual(["invalid_argument", "operation_not_supported"]);
    expect(err.message).toContain("available for ai.embed: none");
  });
});

describe("policy", () => {
  it("requires every policy to allow a candidate (the tightest wins) and says which one refused", () => {
    const policies = [
      { source: "organization", allowedProviders: ["openai", "ollama"] },
      { source: "team", allowedModels: ["gpt-4.1-mini", "llama3.2", "claude-haiku-4-5"] },
    ];
    const d = route(generate, catalogue, { policies });
    expect(keys(d.chosen)).toEqual(["ollama/llama3.2", "openai/gpt-4.1-mini"]);
    const haiku = d.explanation.candidates.find((c) => c.model === "claude-haiku-4-5")!;
    expect(haiku.reasons).toEqual(["provider anthropic not allowed by organization policy"]);
    const sonnet = d.explanation.candidates.find((c) => c.model === "claude-sonnet-4-6")!;
    expect(sonnet.reasons).toEqual(["provider anthropic not allowed by organization policy", "model claude-sonnet-4-6 not allowed by team policy"]);
  });

  it("treats an empty allow-list as allowing nothing, and an absent one as no restriction", () => {
    const err = routingError(() => route(generate, catalogue, { policies: [{ allowedModels: [] }] }));
    expect([err.kind, err.code]).toEqual(["permission_denied", "model_not_allowed"]);
    expect(route(generate, catalogue, { policies: [{}] }).chosen).toHaveLength(7);
  });

  it("allows a dated snapshot of an allowed model, not the reverse", () => {
    expect(keys(route({ ...generate, model: "gpt-4.1-mini-2025-04-14" }, catalogue, { policies: [{ allowedModels: ["gpt-4.1-mini"] }] }).chosen)).toEqual(["openai/gpt-4.1-mini-2025-04-14"]);
    const err = routingError(() => route({ ...generate, model: "gpt-4.1-mini" }, catalogue, { policies: [{ allowedModels: ["gpt-4.1-mini-2025-04-14"] }] }));
    expect(err.code).toBe("model_not_allowed");
  });

  it("refuses a pinned model the policy forbids with permission_denied / model_not_allowed", () => {
    const err = routingError(() => route({ ...generate, model: "claude-sonnet-4-6" }, catalogue, { policies: [{ source: "team", allowedProviders: ["openai"] }] }));
    expect(err.kind).toBe("permission_denied");
    expect(err.code).toBe("model_not_allowed");
    expect(err.message).toContain("anthropic/claude-sonnet-4-6: provider anthropic not allowed by team policy");
  });
});

describe("disabled candidates", () => {
  it("are ineligible, and a pin to one is failed_precondition / provider_disabled", () => {
    const cs = catalogue.map((c) => (c.provider === "anthropic" ? { ...c, enabled: false } : c));
    const d = route({ ...generate, strategy: "best_quality" }, cs);
    expect(keys(d.chosen)[0]).toBe("openai/gpt-4.1");
    expect(d.explanation.candidates.find((c) => c.provider === "anthropic")!.reasons).toEqual(["provider anthropic is disabled"]);
    const err = routingError(() => route({ ...generate, provider: "anthropic" }, cs));
    expect([err.kind, err.code]).toEqual(["failed_precondition", "provider_disabled"]);
  });
});

describe("circuit breakers", () => {
  function withBreakers() {
    const clock = { t: 5_000_000 };
    const breakers = createCircuitBreakers({ consecutiveFailures: 2, cooldownMs: 30_000, now: () => clock.t });
    const trip = (provider: string, model: string) => {
      breakers.recordFailure(provider, model, { retryable: true, errorClass: "overloaded" });
      breakers.recordFailure(provider, model, { retryable: true, errorClass: "overloaded" });
    };
    return { clock, breakers, trip };
  }

  it("closed: no effect on the decision", () => {
    const { breakers } = withBreakers();
    expect(route(generate, catalogue, { breakers })).toEqual(route(generate, catalogue));
  });

  it("open: the candidate is skipped (with the breaker's reason) and the next one leads", () => {
    const { breakers, trip } = withBreakers();
    trip("ollama", "llama3.2");
    const d = route(generate, catalogue, { breakers });
    expect(keys(d.chosen).slice(0, 2)).toEqual(["ollama/qwen2.5", "openai/gpt-4.1-nano"]);
    const llama = d.explanation.candidates.find((c) => c.model === "llama3.2")!;
    expect(llama).toMatchObject({ eligible: false, breaker: "open" });
    expect(llama.reasons[0]).toMatch(/^breaker open: 2 consecutive retryable failures \(last: overloaded\)/);
  });

  it("open on a pinned model: unavailable / no_healthy_provider with retry-after", () => {
    const { clock, breakers, trip } = withBreakers();
    trip("anthropic", "claude-haiku-4-5");
    clock.t += 10_500;
    const err = routingError(() => route({ ...generate, model: "claude-haiku-4-5" }, catalogue, { breakers }));
    expect([err.kind, err.code]).toEqual(["unavailable", "no_healthy_provider"]);
    expect(err.options.retryAfterSeconds).toBe(20);
  });

  it("half-open: eligible for one probe; once the probe is taken, skipped until it reports", () => {
    const { clock, breakers, trip } = withBreakers();
    trip("ollama", "llama3.2");
    clock.t += 30_000;
    const probing = route(generate, catalogue, { breakers });
    expect(keys(probing.chosen)[0]).toBe("ollama/llama3.2");
    const first = probing.explanation.candidates[0]!;
    expect(first.breaker).toBe("half_open");
    expect(first.reasons.some((r) => r.startsWith("breaker half_open"))).toBe(true);

    expect(breakers.tryAcquire("ollama", "llama3.2").allowsRequest).toBe(true);
    const during = route(generate, catalogue, { breakers });
    expect(keys(during.chosen)[0]).toBe("ollama/qwen2.5");
    expect(during.explanation.candidates.find((c) => c.model === "llama3.2")!.reasons[0]).toContain("probe is in flight");

    breakers.recordSuccess("ollama", "llama3.2");
    const after = route(generate, catalogue, { breakers });
    expect(keys(after.chosen)[0]).toBe("ollama/llama3.2");
    expect(after.explanation.candidates[0]!.breaker).toBe("closed");
  });
});

describe("fallback order and explanation", () => {
  it("falls back along the same ranking, minus the first", () => {
    const d = route({ ...generate, strategy: "cheapest" }, catalogue);
    const ranked = d.explanation.candidates.filter((c) => c.eligible);
    expect(ranked.map((c) => c.rank)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(keys(d.chosen.slice(1))).toEqual(ranked.slice(1).map((c) => `${c.provider}/${c.model}`));
    // removing the first (say it failed and its breaker opened) promotes the fallbacks in order
    const without = route({ ...generate, strategy: "cheapest" }, catalogue.filter((c) => !(c.provider === d.chosen[0]!.provider && c.model === d.chosen[0]!.model)));
    expect(keys(without.chosen)).toEqual(keys(d.chosen.slice(1)));
  });

  it("lists every candidate: eligible in rank order with their facts, then the ineligible with every failed check", () => {
    const d = route({ ...generate, provider: "openai" }, catalogue, { policies: [{ source: "team", allowedModels: ["gpt-4.1-nano", "gpt-4.1-mini"] }] });
    expect(d.explanation.candidates.map((c) => [`${c.provider}/${c.model}`, c.eligible])).toEqual([
      ["openai/gpt-4.1-nano", true],
      ["openai/gpt-4.1-mini", true],
      ...catalogue.filter((c) => !["gpt-4.1-nano", "gpt-4.1-mini"].includes(c.model)).map((c) => [`${c.provider}/${c.model}`, false]),
    ]);
    const first = d.explanation.candidates[0]!;
    expect(first).toMatchObject({ rank: 1, estimatedCostNanoUsd: 300_000, breaker: "closed", quality: 48, latencyMs: null });
    expect(first.reasons).toEqual(["remote", "estimated cost $0.0003"]);
    const echoEmbed = d.explanation.candidates.find((c) => c.model === "echo-embed-1")!;
    expect(echoEmbed.reasons).toEqual(["does not support ai.generate", "not the requested provider openai", "model echo-embed-1 not allowed by team policy"]);
    const gpt41 = d.explanation.candidates.find((c) => c.model === "gpt-4.1")!;
    expect(gpt41.reasons).toEqual(["model gpt-4.1 not allowed by team policy"]);
    expect(d.explanation.why).toBe(
      "local_first: pinned to provider openai; no local candidate is eligible; openai/gpt-4.1-nano is the cheapest remote one ($0.0003). 2 of 11 candidates eligible; fallbacks: openai/gpt-4.1-mini.",
    );
  });

  it("says why the first won, per strategy", () => {
    const latencyMs = { "openai/gpt-4.1-nano": 120.4 };
    expect(route(generate, catalogue).explanation.why).toBe(
      "local_first: ollama/llama3.2 is the cheapest local candidate ($0; ties keep the given order). 7 of 11 candidates eligible; fallbacks: ollama/qwen2.5, openai/gpt-4.1-nano, openai/gpt-4.1-mini, anthropic/claude-haiku-4-5, openai/gpt-4.1, anthropic/claude-sonnet-4-6.",
    );
    expect(route({ ...generate, strategy: "cheapest" }, catalogue).explanation.why).toMatch(/^cheapest: ollama\/llama3\.2 has the lowest estimated cost \(\$0\)/);
    expect(route({ ...generate, strategy: "fastest" }, catalogue, { latencyMs }).explanation.why).toMatch(/^fastest: openai\/gpt-4\.1-nano has the lowest observed latency \(~120 ms\)/);
    expect(route({ ...generate, strategy: "fastest" }, catalogue).explanation.why).toMatch(/^fastest: no eligible candidate has an observed latency; ollama\/llama3\.2 is the cheapest/);
    expect(route({ ...generate, strategy: "best_quality" }, catalogue).explanation.why).toMatch(/^best_quality: anthropic\/claude-sonnet-4-6 has the highest quality rank \(92\)/);
    expect(route({ ...generate, strategy: "balanced" }, catalogue).explanation.why).toMatch(/^balanced: \S+ has the lowest balanced score \(\d+; lower is better\)/);
  });

  it("says when there is no fallback", () => {
    expect(route({ ...generate, model: "gpt-4.1" }, catalogue).explanation.why).toMatch(/1 of 11 candidates eligible; no fallback\.$/);
  });
});

describe("helpers", () => {
  it("declares quality by base model name", () => {
    expect(qualityOf("claude-haiku-4-5-20251001")).toBe(qualityOf("claude-haiku-4-5"));
    expect(qualityOf("llama3.2:1b")).toBe(qualityOf("llama3.2"));
    expect(qualityOf("mystery")).toBeUndefined();
    expect(qualityOf("mystery", { mystery: 10 })).toBe(10);
  });

  it("smooths latency with an EWMA", () => {
    expect(updateLatencyEwma(undefined, 200)).toBe(200);
    expect(updateLatencyEwma(200, 300, 0.5)).toBe(250);
    expect(updateLatencyEwma(100, 200)).toBeCloseTo(130);
  });
});
