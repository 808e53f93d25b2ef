import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ANTHROPIC_MODELS } from "../providers/anthropic/index.js";
import { ECHO_EMBEDDING_MODELS, ECHO_MODELS, estimateTokens as echoEstimateTokens } from "../providers/echo/index.js";
import { OLLAMA_EMBEDDING_MODELS, OLLAMA_MODELS } from "../providers/ollama/index.js";
import { OPENAI_EMBEDDING_MODELS, OPENAI_MODELS } from "../providers/openai/index.js";
import { DomainError } from "./errors.js";
import {
  actualCost,
  baseModelName,
  compilePrice,
  DEFAULT_ESTIMATE_MAX_OUTPUT_TOKENS,
  DEFAULT_PRICE_TABLE,
  describePrice,
  estimateCost,
  estimateTokens,
  formatUsd,
  lookupPrice,
  parseUsdPerMTok,
  PRICE_TABLE_VERSION,
  requirePriced,
  withPriceOverrides,
  type Cost,
  type PricedCost,
} from "./pricing.js";

const M = 1_000_000;

function priced(cost: Cost): PricedCost {
  if (cost.status !== "priced") throw new Error(`expected a priced cost, got: ${cost.reason}`);
  return cost;
}

const actual = (provider: string, model: string, usage: { inputTokens: number; outputTokens: number; cachedInputTokens?: number; cacheWriteTokens?: number }) =>
  priced(actualCost({ provider, model, usage }));

describe("exact money", () => {
  it("parses USD per 1M tokens into integer nano-dollars per token", () => {
    expect(parseUsdPerMTok("0.40")).toBe(400);
    expect(parseUsdPerMTok("0.025")).toBe(25);
    expect(parseUsdPerMTok("15")).toBe(15_000);
    expect(parseUsdPerMTok("0")).toBe(0);
    expect(parseUsdPerMTok(0.075)).toBe(75); // a JSON number, as written
    expect(parseUsdPerMTok(2.5)).toBe(2_500);
  });

  it("refuses prices it cannot hold exactly, rather than rounding them", () => {
    for (const bad of ["0.0001", "-1", "1e-3", "abc", "", "1.", ".5", 0.0001, -2, Number.NaN]) {
      expect(() => parseUsdPerMTok(bad), String(bad)).toThrow(RangeError);
    }
  });

  it("formats nano-dollars as an exact decimal", () => {
    expect(formatUsd(400_000_000)).toBe("0.4");
    expect(formatUsd(0)).toBe("0");
    expect(formatUsd(1)).toBe("0.000000001");
    expect(formatUsd(12_000_345_000)).toBe("12.000345");
  });

  it("describes a compiled price back in the form it was written", () => {
    expect(describePrice(compilePrice({ input: "2.00", cachedInput: "0.50", output: "8.00" }))).toEqual({ input: "2", cachedInput: "0.5", output: "8" });
    expect(describePrice(compilePrice({ input: "0.025", output: "0", cacheWrite: "1.25" }))).toEqual({ input: "0.025", output: "0", cacheWrite: "1.25" });
  });

  it("sums many tiny costs with no drift (0.1 + 0.2 style errors cannot happen)", () => {
    // 1 cached token of gpt-4.1-nano costs $0.000000025; ten thousand of them, one call each:
    let total = 0;
    for (let i = 0; i < 10_000; i++) total += actual("openai", "gpt-4.1-nano", { inputTokens: 1, cachedInputTokens: 1, outputTokens: 0 }).totalNanoUsd;
    expect(total).toBe(250_000);
    expect(formatUsd(total)).toBe("0.00025");
  });
});

describe("the built-in table", () => {
  it("is versioned", () => {
    expect(PRICE_TABLE_VERSION).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(DEFAULT_PRICE_TABLE.version).toBe(PRICE_TABLE_VERSION);
    expect(actual("openai", "gpt-4.1", { inputTokens: 1, outputTokens: 1 }).priceTableVersion).toBe(PRICE_TABLE_VERSION);
  });

  it("prices every model the adapters list", () => {
    const listed: [string, readonly string[]][] = [
      ["openai", [...OPENAI_MODELS, ...OPENAI_EMBEDDING_MODELS]],
      ["anthropic", ANTHROPIC_MODELS],
      ["ollama", [...OLLAMA_MODELS, ...OLLAMA_EMBEDDING_MODELS]],
      ["echo", [...ECHO_MODELS, ...ECHO_EMBEDDING_MODELS]],
    ];
    for (const [provider, models] of listed) {
      for (const model of models) expect(lookupPrice(DEFAULT_PRICE_TABLE, provider, model), `${provider}/${model}`).toBeDefined();
    }
  });

  it.each([
    ["openai", "gpt-4.1", 2_000_000_000, 8_000_000_000],
    ["openai", "gpt-4.1-mini", 400_000_000, 1_600_000_000],
    ["openai", "gpt-4.1-nano", 100_000_000, 400_000_000],
    ["openai", "gpt-4o", 2_500_000_000, 10_000_000_000],
    ["openai", "gpt-4o-mini", 150_000_000, 600_000_000],
    ["anthropic", "claude-opus-4-6", 5_000_000_000, 25_000_000_000],
    ["anthropic", "claude-sonnet-4-6", 3_000_000_000, 15_000_000_000],
    ["anthropic", "claude-haiku-4-5", 1_000_000_000, 5_000_000_000],
  ])("1M input / 1M output tokens of %s/%s cost exactly the list price", (provider, model, inNano, outNano) => {
    expect(actual(provider, model, { inputTokens: M, outputTokens: 0 }).totalNanoUsd).toBe(inNano);
    expect(actual(provider, model, { inputTokens: 0, outputTokens: M }).totalNanoUsd).toBe(outNano);
  });

  it("gives list prices as exact USD strings", () => {
    expect(actual("openai", "gpt-4.1-mini", { inputTokens: M, outputTokens: 0 }).usd).toBe("0.4");
    expect(actual("openai", "text-embedding-3-small", { inputTokens: M, outputTokens: 0 }).usd).toBe("0.02");
    expect(actual("anthropic", "claude-sonnet-4-6", { inputTokens: M, outputTokens: M }).usd).toBe("18");
  });

  it("makes local models free, whatever is pulled", () => {
    for (const model of [...OLLAMA_MODELS, "phi4:14b", "nomic-embed-text"]) {
      const c = actual("ollama", model, { inputTokens: 123_456, outputTokens: 7_890 });
      expect(c.totalNanoUsd).toBe(0);
      expect(c.pricedAs).toBe("ollama/*");
    }
    expect(actual("echo", "echo-1", { inputTokens: 10, outputTokens: 10 }).usd).toBe("0");
  });
});

describe("actualCost", () => {
  it("bills cached input at the cache-read price, the rest at the input price", () => {
    // inputTokens includes the cached ones: 400 uncached × 400 + 600 cached × 100 + 200 out × 1600
    const c = actual("openai", "gpt-4.1-mini", { inputTokens: 1000, cachedInputTokens: 600, outputTokens: 200 });
    expect(c.tokens).toEqual({ uncachedInput: 400, cachedInput: 600, cacheWrite: 0, output: 200 });
    expect(c.breakdown).toEqual({ inputNanoUsd: 160_000, cachedInputNanoUsd: 60_000, cacheWriteNanoUsd: 0, outputNanoUsd: 320_000 });
    expect(c.totalNanoUsd).toBe(540_000);
    expect(c.usd).toBe("0.00054");
  });

  it("bills Anthropic cache writes at the cache-write price and cache reads at the read price", () => {
    const c = actual("anthropic", "claude-sonnet-4-6", { inputTokens: 10_000, cachedInputTokens: 4_000, cacheWriteTokens: 5_000, outputTokens: 1_000 });
    expect(c.breakdown).toEqual({
      inputNanoUsd: 1_000 * 3_000,
      cachedInputNanoUsd: 4_000 * 300,
      cacheWriteNanoUsd: 5_000 * 3_750,
      outputNanoUsd: 1_000 * 15_000,
    });
    expect(c.usd).toBe("0.03795");
    expect(actual("anthropic", "claude-haiku-4-5", { inputTokens: M, cacheWriteTokens: M, outputTokens: 0 }).usd).toBe("1.25");
    expect(actual("anthropic", "claude-haiku-4-5", { inputTokens: M, cachedInputTokens: M, outputTokens: 0 }).usd).toBe("0.1");
  });

  it("bills cached tokens at the input price for a model without a cache price", () => {
    expect(actual("openai", "gpt-4o-2024-05-13", { inputTokens: M, cachedInputTokens: M, outputTokens: 0 }).usd).toBe("5");
  });

  it("refuses usage that contradicts its own definition", () => {
    expect(() => actualCost({ provider: "openai", model: "gpt-4.1", usage: { inputTokens: 10, cachedInputTokens: 8, cacheWriteTokens: 3, outputTokens: 0 } })).toThrow(/inconsistent/);
    expect(() => actualCost({ provider: "openai", model: "gpt-4.1", usage: { inputTokens: -1, outputTokens: 0 } })).toThrow(RangeError);
    expect(() => actualCost({ provider: "openai", model: "gpt-4.1", usage: { inputTokens: 1.5, outputTokens: 0 } })).toThrow(RangeError);
  });
});

describe("model names", () => {
  it("maps dated and tagged names to their base", () => {
    expect(baseModelName("gpt-4.1-mini-2025-04-14")).toBe("gpt-4.1-mini");
    expect(baseModelName("claude-haiku-4-5-20251001")).toBe("claude-haiku-4-5");
    expect(baseModelName("llama3.2:3b")).toBe("llama3.2");
    expect(baseModelName("gpt-4.1-mini")).toBe("gpt-4.1-mini");
    expect(baseModelName("claude-sonnet-4-6")).toBe("claude-sonnet-4-6");
  });

  it("bills a dated snapshot as its base model", () => {
    const dated = actual("openai", "gpt-4.1-mini-2025-04-14", { inputTokens: M, outputTokens: 0 });
    expect(dated.pricedAs).toBe("openai/gpt-4.1-mini");
    expect(dated.model).toBe("gpt-4.1-mini-2025-04-14");
    expect(dated.usd).toBe("0.4");
    expect(actual("anthropic", "claude-haiku-4-5-20251001", { inputTokens: 0, outputTokens: M }).usd).toBe("5");
  });

  it("lets an explicit entry for a snapshot win over its base name", () => {
    const old = actual("openai", "gpt-4o-2024-05-13", { inputTokens: M, outputTokens: M });
    expect(old.pricedAs).toBe("openai/gpt-4o-2024-05-13");
    expect(old.usd).toBe("20");
    expect(actual("openai", "gpt-4o-2024-08-06", { inputTokens: M, outputTokens: M }).usd).toBe("12.5");
  });
});

describe("unknown models", () => {
  it("are a clearly marked unpriced result, not a guess and not an exception", () => {
    const c = actualCost({ provider: "openai", model: "gpt-9", usage: { inputTokens: 100, outputTokens: 5 } });
    expect(c.status).toBe("unpriced");
    expect(c).not.toHaveProperty("totalNanoUsd");
    expect(c.tokens).toEqual({ uncachedInput: 100, cachedInput: 0, cacheWrite: 0, output: 5 });
    if (c.status === "unpriced") expect(c.reason).toContain("openai/gpt-9");
    expect(estimateCost({ provider: "mystery", model: "m", inputTokens: 1 }).status).toBe("unpriced");
  });

  it("can be required to be priced, with a stable error", () => {
    const c = estimateCost({ provider: "openai", model: "gpt-9", inputTokens: 1 });
    expect(() => requirePriced(c)).toThrow(DomainError);
    try {
      requirePriced(c);
    } catch (err) {
      expect((err as DomainError).kind).toBe("failed_precondition");
      expect((err as DomainError).code).toBe("model_unpriced");
    }
    const ok = estimateCost({ provider: "openai", model: "gpt-4.1", inputTokens: 1 });
    expect(requirePriced(ok)).toBe(ok);
  });
});

describe("estimateCost", () => {
  it("uses the same chars/4 token rule as echo", () => {
    for (const chars of [0, 1, 3, 4, 5, 8, 9, 1001]) expect(estimateTokens(chars)).toBe(echoEstimateTokens(chars));
  });

  it("prices input from characters and output from maxOutputTokens", () => {
    const c = priced(estimateCost({ provider: "openai", model: "gpt-4.1-mini", inputChars: 4001, maxOutputTokens: 100 }));
    expect(c.kind).toBe("estimate");
    expect(c.tokens).toEqual({ uncachedInput: 1001, cachedInput: 0, cacheWrite: 0, output: 100 });
    expect(c.totalNanoUsd).toBe(1001 * 400 + 100 * 1600);
  });

  it("assumes the default output limit when none is given, and no output for embeddings", () => {
    expect(priced(estimateCost({ provider: "anthropic", model: "claude-haiku-4-5", inputTokens: 0 })).tokens.output).toBe(DEFAULT_ESTIMATE_MAX_OUTPUT_TOKENS);
    const e = priced(estimateCost({ provider: "openai", model: "text-embedding-3-large", operation: "ai.embed", inputTokens: M, maxOutputTokens: 500 }));
    expect(e.tokens.output).toBe(0);
    expect(e.usd).toBe("0.13");
  });

  it("is never below the actual cost of a call within its limits (OpenAI: caching only lowers the bill)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...OPENAI_MODELS),
        fc.nat(200_000),
        fc.nat(50_000),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (model, inputTokens, maxOutputTokens, usedOut, cachedShare, inShare) => {
          const usedIn = Math.floor(inputTokens * inShare);
          const usage = { inputTokens: usedIn, cachedInputTokens: Math.floor(usedIn * cachedShare), outputTokens: Math.floor(maxOutputTokens * usedOut) };
          const est = priced(estimateCost({ provider: "openai", model, inputTokens, maxOutputTokens }));
          expect(actual("openai", model, usage).totalNanoUsd).toBeLessThanOrEqual(est.totalNanoUsd);
        },
      ),
    );
  });
});

describe("organization overrides", () => {
  const acme = withPriceOverrides(DEFAULT_PRICE_TABLE, {
    version: "acme-7",
    providers: {
      openai: { "gpt-4.1-mini": { input: "0.30" }, "ft-acme-support": { input: "1.00", output: "4.00" } },
      ollama: { "llama3.2": { input: "0.05", output: "0.05" } },
    },
  });

  it("records the merged table's version", () => {
    expect(acme.version).toBe(`${PRICE_TABLE_VERSION}+acme-7`);
    expect(withPriceOverrides(DEFAULT_PRICE_TABLE, { providers: {} }).version).toBe(`${PRICE_TABLE_VERSION}+org`);
    expect(withPriceOverrides(DEFAULT_PRICE_TABLE, undefined)).toBe(DEFAULT_PRICE_TABLE);
  });

  it("changes the given fields and inherits the rest", () => {
    const c = priced(actualCost({ provider: "openai", model: "gpt-4.1-mini", usage: { inputTokens: M, cachedInputTokens: M / 2, outputTokens: M } }, acme));
    expect(c.breakdown).toEqual({ inputNanoUsd: 150_000_000, cachedInputNanoUsd: 50_000_000, cacheWriteNanoUsd: 0, outputNanoUsd: 1_600_000_000 });
    expect(c.priceTableVersion).toBe(acme.version);
  });

  it("applies to the base model's dated snapshots too", () => {
    expect(priced(actualCost({ provider: "openai", model: "gpt-4.1-mini-2025-04-14", usage: { inputTokens: M, outputTokens: 0 } }, acme)).usd).toBe("0.3");
  });

  it("adds models and can price a local model for internal charge-back", () => {
    expect(priced(actualCost({ provider: "openai", model: "ft-acme-support", usage: { inputTokens: M, outputTokens: M } }, acme)).usd).toBe("5");
    expect(priced(actualCost({ provider: "ollama", model: "llama3.2:latest", usage: { inputTokens: M, outputTokens: M } }, acme)).usd).toBe("0.1");
    expect(priced(actualCost({ provider: "ollama", model: "qwen2.5", usage: { inputTokens: M, outputTokens: M } }, acme)).usd).toBe("0");
  });

  it("leaves the built-in table and other organizations untouched", () => {
    expect(actual("openai", "gpt-4.1-mini", { inputTokens: M, outputTokens: 0 }).usd).toBe("0.4");
    expect(lookupPrice(DEFAULT_PRICE_TABLE, "openai", "ft-acme-support")).toBeUndefined();
  });

  it.each([
    [{ openai: { "brand-new": { input: "1" } } }, "incomplete_price"],
    [{ openai: { "gpt-4.1": { input: "0.00001" } } }, "invalid_price"],
    [{ openai: { "gpt-4.1": { output: "-3" } } }, "invalid_price"],
    [JSON.parse('{"__proto__": {"x": {"input": "1", "output": "1"}}}'), "reserved_name"],
  ])("refuses a malformed override with invalid_argument (%j)", (providers, issueCode) => {
    try {
      withPriceOverrides(DEFAULT_PRICE_TABLE, { providers });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(DomainError);
      expect((err as DomainError).kind).toBe("invalid_argument");
      expect((err as DomainError).options.issues?.[0]?.code).toBe(issueCode);
    }
    expect(({} as Record<string, unknown>)["x"]).toBeUndefined();
  });
});
