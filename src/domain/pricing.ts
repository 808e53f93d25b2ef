/**
 * The price table and the two cost computations every provider call goes through: an
 * estimate before the call (reserved against budgets) and the actual cost after it (from the
 * provider's reported usage). Pure: no I/O, no clock.
 *
 * Money is exact. Prices are written as decimal strings in USD per 1M tokens, the unit every
 * price page uses, and compiled to integer **nano-dollars per token** (1 nUSD = 1e-9 USD;
 * "0.40" per 1M tokens = 400 nUSD per token). A cost is tokens × price summed in integers, so
 * it is exact with no rounding step at all, and sums of costs stay exact too (JS integers are
 * exact to 2^53 nUSD ≈ $9M; a Postgres bigint holds ≈ $9.2B). The price of that exactness: a
 * price may have at most 3 decimals per 1M tokens ($0.001 / 1M tokens); every published list
 * price does, and a finer override is refused rather than rounded. (Rejected: floats, which
 * drift when summed; micro-dollars per 1M tokens, which make the cost of a single token a
 * fraction again; bigint, which JSON and most callers cannot carry.)
 */
import type { ProviderOperation } from "./provider-capabilities.js";
import { DomainError } from "./errors.js";

/** Identifies the built-in table; recorded with every cost so old records can be re-derived. */
export const PRICE_TABLE_VERSION = "2026-11-01";

/**
 * Output tokens assumed by an estimate whose caller set no limit: the same 4096 the
 * Anthropic adapter sends when a request has no `maxTokens`.
 */
export const DEFAULT_ESTIMATE_MAX_OUTPUT_TOKENS = 4096;

/** A price as written: USD per 1M tokens, a decimal string (or a JSON number) with ≤ 3 decimals. */
export type UsdPerMTok = string | number;

/** The authoring / override form of a model's price. */
export interface PriceSpec {
  input: UsdPerMTok;
  output: UsdPerMTok;
  /** Input tokens served from a prompt cache. Absent: billed at the input price. */
  cachedInput?: UsdPerMTok;
  /** Input tokens written to a prompt cache (Anthropic). Absent: billed at the input price. */
  cacheWrite?: UsdPerMTok;
}

/** The compiled form: integer nano-dollars per token. */
export interface ModelPrice {
  inputNanoUsd: number;
  outputNanoUsd: number;
  cachedInputNanoUsd?: number;
  cacheWriteNanoUsd?: number;
}

export interface PriceTable {
  /** e.g. "2026-11-01", or "2026-11-01+acme-7" once an organization's overrides are merged. */
  readonly version: string;
  /**
   * provider → model → price. The model key `*` prices every model of that provider that has
   * no entry of its own (used for local providers, which are free whatever is pulled).
   */
  readonly providers: Readonly<Record<string, Readonly<Record<string, ModelPrice>>>>;
}

// ---------------------------------------------------------------------------------------------
// Exact money helpers

const PRICE_PATTERN = /^(\d{1,9})(?:\.(\d{1,3}))?$/;

/** "0.40" (USD per 1M tokens) → 400 (nano-dollars per token). Throws RangeError when not exact. */
export function parseUsdPerMTok(value: UsdPerMTok): number {
  // A JSON number prints back as the shortest decimal that round-trips, i.e. as it was written.
  const text = typeof value === "number" ? String(value) : value.trim();
  const m = PRICE_PATTERN.exec(text);
  if (!m) {
    throw new RangeError(`price ${JSON.stringify(value)} must be a non-negative USD amount per 1M tokens with at most 3 decimals, e.g. "0.40"`);
  }
  return Number(m[1]) * 1000 + Number((m[2] ?? "").padEnd(3, "0"));
}

const USD_PATTERN = /^(\d{1,9})(?:\.(\d{1,9}))?$/;

/** The largest amount `parseUsd` accepts: exact integer nano-dollars stop at 2^53 ($9,007,199.254740991). */
export const MAX_USD_NANO = Number.MAX_SAFE_INTEGER;

/** "12.50" (USD) → 12_500_000_000 (nano-dollars). Throws RangeError unless a non-negative amount with at most 9 decimals, at most $9,007,199.254740991. */
export function parseUsd(value: string): number {
  const m = USD_PATTERN.exec(value.trim());
  if (!m) throw new RangeError(`${JSON.stringify(value)} must be a non-negative USD amount with at most 9 decimals, e.g. "25.00"`);
  const nano = Number(m[1]) * 1e9 + Number((m[2] ?? "").padEnd(9, "0"));
  if (!Number.isSafeInteger(nano)) throw new RangeError(`${JSON.stringify(value)} is more than the largest amount Fabric counts exactly, $${formatUsd(MAX_USD_NANO)}`);
  return nano;
}

/** 400 (nano-dollars per token) → "0.4" (USD per 1M tokens). */
export function formatUsdPerMTok(nanoUsdPerToken: number): string {
  return formatDecimal(nanoUsdPerToken, 3);
}

/** An exact decimal USD string for an amount of nano-dollars: 1_234_500 → "0.0012345". */
export function formatUsd(nanoUsd: number): string {
  return formatDecimal(nanoUsd, 9);
}

function formatDecimal(units: number, decimals: number): string {
  if (!Number.isSafeInteger(units)) throw new RangeError(`not an exact integer amount: ${units}`);
  const sign = units < 0 ? "-" : "";
  const abs = Math.abs(units);
  const scale = 10 ** decimals;
  const whole = Math.floor(abs / scale);
  const frac = String(abs % scale).padStart(decimals, "0").replace(/0+$/, "");
  return `${sign}${whole}${frac ? `.${frac}` : ""}`;
}

export function compilePrice(spec: PriceSpec): ModelPrice {
  const price: ModelPrice = { inputNanoUsd: parseUsdPerMTok(spec.input), outputNanoUsd: parseUsdPerMTok(spec.output) };
  if (spec.cachedInput !== undefined) price.cachedInputNanoUsd = parseUsdPerMTok(spec.cachedInput);
  if (spec.cacheWrite !== undefined) price.cacheWriteNanoUsd = parseUsdPerMTok(spec.cacheWrite);
  return price;
}

/** The inverse of `compilePrice`, for showing a price (e.g. the providers list's price hint). */
export function describePrice(price: ModelPrice): PriceSpec & { input: string; output: string } {
  const spec: PriceSpec & { input: string; output: string } = {
    input: formatUsdPerMTok(price.inputNanoUsd),
    output: formatUsdPerMTok(price.outputNanoUsd),
  };
  if (price.cachedInputNanoUsd !== undefined) spec.cachedInput = formatUsdPerMTok(price.cachedInputNanoUsd);
  if (price.cacheWriteNanoUsd !== undefined) spec.cacheWrite = formatUsdPerMTok(price.cacheWriteNanoUsd);
  return spec;
}

// ---------------------------------------------------------------------------------------------
// The built-in table

/**
 * List prices in USD per 1M tokens. Every model the adapters list is here (a test checks it).
 *
 * - OpenAI bills cached input at a discount and never bills cache writes. `gpt-4o-2024-05-13`
 *   has its own (older, higher) price, which is why explicit entries beat date-stripping.
 * - Anthropic: `cacheWrite` is the 5-minute-TTL write price (1.25 × input), the only kind the
 *   adapter can cause; the 1-hour TTL (2 × input) and the long-context premium need request
 *   options the adapter does not send, so they are not modelled.
 * - Local providers cost nothing, whatever model is pulled.
 */
const BUILT_IN: Readonly<Record<string, Readonly<Record<string, PriceSpec>>>> = {
  openai: {
    "gpt-4.1": { input: "2.00", cachedInput: "0.50", output: "8.00" },
    "gpt-4.1-mini": { input: "0.40", cachedInput: "0.10", output: "1.60" },
    "gpt-4.1-nano": { input: "0.10", cachedInput: "0.025", output: "0.40" },
    "gpt-4o": { input: "2.50", cachedInput: "1.25", output: "10.00" },
    "gpt-4o-2024-05-13": { input: "5.00", output: "15.00" },
    "gpt-4o-mini": { input: "0.15", cachedInput: "0.075", output: "0.60" },
    "text-embedding-3-small": { input: "0.02", output: "0" },
    "text-embedding-3-large": { input: "0.13", output: "0" },
  },
  anthropic: {
    "claude-opus-4-6": { input: "5.00", cachedInput: "0.50", cacheWrite: "6.25", output: "25.00" },
    "claude-sonnet-4-6": { input: "3.00", cachedInput: "0.30", cacheWrite: "3.75", output: "15.00" },
    "claude-haiku-4-5": { input: "1.00", cachedInput: "0.10", cacheWrite: "1.25", output: "5.00" },
  },
  ollama: { "*": { input: "0", output: "0" } },
  echo: { "*": { input: "0", output: "0" } },
};

function compileTable(version: string, specs: Readonly<Record<string, Readonly<Record<string, PriceSpec>>>>): PriceTable {
  const providers: Record<string, Record<string, ModelPrice>> = {};
  for (const [provider, models] of Object.entries(specs)) {
    const compiled: Record<string, ModelPrice> = {};
    for (const [model, spec] of Object.entries(models)) compiled[model] = compilePrice(spec);
    providers[provider] = compiled;
  }
  return { version, providers };
}

export const DEFAULT_PRICE_TABLE: PriceTable = compileTable(PRICE_TABLE_VERSION, BUILT_IN);

// ---------------------------------------------------------------------------------------------
// Model names

const DATE_SUFFIX = /-(?:\d{4}-\d{2}-\d{2}|\d{8})$/;
const TAG_SUFFIX = /:[^:/]+$/;

/**
 * The undated, untagged name of a model: `gpt-4.1-mini-2025-04-14` → `gpt-4.1-mini`,
 * `claude-haiku-4-5-20251001` → `claude-haiku-4-5`, `llama3.2:3b` → `llama3.2`.
 * Names without a date or tag come back unchanged.
 */
export function baseModelName(model: string): string {
  return model.replace(TAG_SUFFIX, "").replace(DATE_SUFFIX, "");
}

function own<T>(record: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

export interface PriceLookup {
  price: ModelPrice;
  /** The table entry used, e.g. `openai/gpt-4.1-mini` for `gpt-4.1-mini-2025-04-14`, `ollama/*`. */
  pricedAs: string;
}

/**
 * The price of `provider`/`model`: the model's own entry, else its base name's (dated
 * snapshots and Ollama tags bill as their base model), else the provider's `*` entry.
 */
export function lookupPrice(table: PriceTable, provider: string, model: string): PriceLookup | undefined {
  const models = own(table.providers, provider);
  if (!models) return undefined;
  for (const key of [model, baseModelName(model), "*"]) {
    const price = own(models, key);
    if (price) return { price, pricedAs: `${provider}/${key}` };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Organization overrides

/** An organization's negotiated or internal prices, merged over the built-in table. */
export interface PriceOverrides {
  /** A label recorded in the merged table's version, e.g. "acme-7". Default "org". */
  version?: string;
  /**
   * provider → model → the fields to change. A model that the base table already prices
   * (directly, by its base name, or by `*`) inherits the fields not given; a model it does
   * not price must give `input` and `output`.
   */
  providers: Readonly<Record<string, Readonly<Record<string, Partial<PriceSpec>>>>>;
}

/**
 * The table an organization is billed by. Overrides are user input, so a malformed one is an
 * `invalid_argument` DomainError naming the offending entry.
 */
export function withPriceOverrides(base: PriceTable, overrides: PriceOverrides | undefined): PriceTable {
  if (!overrides) return base;
  const providers: Record<string, Record<string, ModelPrice>> = {};
  for (const [provider, models] of Object.entries(base.providers)) providers[provider] = { ...models };
  for (const [provider, models] of Object.entries(overrides.providers)) {
    rejectReservedKey(provider, `/providers/${provider}`);
    const target = (providers[provider] ??= {});
    for (const [model, patch] of Object.entries(models)) {
      const path = `/providers/${provider}/${model}`;
      rejectReservedKey(model, path);
      const inherited = lookupPrice(base, provider, model)?.price;
      if (!inherited && (patch.input === undefined || patch.output === undefined)) {
        throw new DomainError("invalid_argument", `price override ${provider}/${model} prices a model the table does not know, so it needs both input and output`, {
          code: "invalid_price",
          issues: [{ path, code: "incomplete_price", message: "input and output are required for a model not in the price table" }],
        });
      }
      try {
        const merged: ModelPrice = { ...(inherited ?? { inputNanoUsd: 0, outputNanoUsd: 0 }) };
        if (patch.input !== undefined) merged.inputNanoUsd = parseUsdPerMTok(patch.input);
        if (patch.output !== undefined) merged.outputNanoUsd = parseUsdPerMTok(patch.output);
        if (patch.cachedInput !== undefined) merged.cachedInputNanoUsd = parseUsdPerMTok(patch.cachedInput);
        if (patch.cacheWrite !== undefined) merged.cacheWriteNanoUsd = parseUsdPerMTok(patch.cacheWrite);
        target[model] = merged;
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        throw new DomainError("invalid_argument", `price override ${provider}/${model}: ${err.message}`, {
          code: "invalid_price",
          issues: [{ path, code: "invalid_price", message: err.message }],
        });
      }
    }
  }
  return { version: `${base.version}+${overrides.version ?? "org"}`, providers };
}

/** Keys that would reach Object.prototype through a plain-object assignment. */
function rejectReservedKey(key: string, path: string): void {
  if (key === "__proto__" || key === "constructor" || key === "prototype") {
    throw new DomainError("invalid_argument", `price override: ${JSON.stringify(key)} is not a provider or model name`, {
      code: "invalid_price",
      issues: [{ path, code: "reserved_name", message: "reserved name" }],
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Costs

/**
 * The token estimate used when only characters are known: one token per 4 characters, rounded
 * up — the rule echo reports and the fakes reproduce (a test keeps the two in step; it is
 * repeated here so the domain does not load adapter code).
 */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/** Tokens by billing rate. `uncachedInput + cachedInput + cacheWrite` = the call's input tokens. */
export interface BilledTokens {
  uncachedInput: number;
  cachedInput: number;
  cacheWrite: number;
  output: number;
}

interface CostBase {
  /** An estimate is an upper bound reserved before the call; an actual is what was billed. */
  kind: "estimate" | "actual";
  provider: string;
  model: string;
  priceTableVersion: string;
  tokens: BilledTokens;
}

export interface PricedCost extends CostBase {
  status: "priced";
  pricedAs: string;
  /** Exact, in nano-dollars (1e-9 USD). */
  totalNanoUsd: number;
  breakdown: { inputNanoUsd: number; cachedInputNanoUsd: number; cacheWriteNanoUsd: number; outputNanoUsd: number };
  /** `totalNanoUsd` as an exact decimal USD string, e.g. "0.0004". */
  usd: string;
}

/**
 * No price is known for the model. Not an exception, because a call that already happened
 * must still be recorded (its tokens are facts) and the router must still be able to rank
 * the model (it sorts last on cost). Whoever enforces a hard budget must refuse to reserve an
 * unpriced estimate (fail closed); `requirePriced` does that with a stable error.
 */
export interface UnpricedCost extends CostBase {
  status: "unpriced";
  reason: string;
}

export type Cost = PricedCost | UnpricedCost;

export type CostEstimateRequest = {
  provider: string;
  model: string;
  /** `ai.embed` has no output tokens. Default `ai.generate`. */
  operation?: ProviderOperation;
  /** Default `DEFAULT_ESTIMATE_MAX_OUTPUT_TOKENS`. */
  maxOutputTokens?: number;
} & ({ inputTokens: number; inputChars?: never } | { inputChars: number; inputTokens?: never });

/**
 * The most the call can cost: every input token at the full input price (the adapters never
 * ask for a cache write, and a cache read only lowers the bill) plus `maxOutputTokens` of
 * output.
 */
export function estimateCost(req: CostEstimateRequest, table: PriceTable = DEFAULT_PRICE_TABLE): Cost {
  const inputTokens = req.inputTokens ?? estimateTokens(checkCount("inputChars", req.inputChars ?? 0));
  const output = (req.operation ?? "ai.generate") === "ai.embed" ? 0 : (req.maxOutputTokens ?? DEFAULT_ESTIMATE_MAX_OUTPUT_TOKENS);
  const tokens: BilledTokens = {
    uncachedInput: checkCount("inputTokens", inputTokens),
    cachedInput: 0,
    cacheWrite: 0,
    output: checkCount("maxOutputTokens", output),
  };
  return price("estimate", req.provider, req.model, tokens, table);
}

export interface ActualCostRequest {
  provider: string;
  model: string;
  /** As the adapters report it (providers/provider.ts `Usage`): `inputTokens` includes the cached and cache-write tokens. */
  usage: { inputTokens: number; outputTokens: number; cachedInputTokens?: number; cacheWriteTokens?: number };
}

/**
 * What the call cost: uncached input at the input price, cached input at the cache-read price,
 * cache writes at the cache-write price, output at the output price. Usage that contradicts
 * its own definition (cache fields larger than the input, negative or fractional counts) is an
 * adapter bug and throws a RangeError rather than being billed some guessed way.
 */
export function actualCost(req: ActualCostRequest, table: PriceTable = DEFAULT_PRICE_TABLE): Cost {
  const u = req.usage;
  const input = checkCount("inputTokens", u.inputTokens);
  const cachedInput = checkCount("cachedInputTokens", u.cachedInputTokens ?? 0);
  const cacheWrite = checkCount("cacheWriteTokens", u.cacheWriteTokens ?? 0);
  if (cachedInput + cacheWrite > input) {
    throw new RangeError(`usage of ${req.provider}/${req.model} is inconsistent: cached (${cachedInput}) + cache-write (${cacheWrite}) tokens exceed input tokens (${input})`);
  }
  const tokens: BilledTokens = { uncachedInput: input - cachedInput - cacheWrite, cachedInput, cacheWrite, output: checkCount("outputTokens", u.outputTokens) };
  return price("actual", req.provider, req.model, tokens, table);
}

function checkCount(name: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer, got ${n}`);
  return n;
}

function price(kind: Cost["kind"], provider: string, model: string, tokens: BilledTokens, table: PriceTable): Cost {
  const priceTableVersion = table.version;
  const found = lookupPrice(table, provider, model);
  if (!found) {
    return { status: "unpriced", kind, provider, model, priceTableVersion, tokens, reason: `no price for ${provider}/${model} in price table ${table.version}` };
  }
  const p = found.price;
  const breakdown = {
    inputNanoUsd: tokens.uncachedInput * p.inputNanoUsd,
    cachedInputNanoUsd: tokens.cachedInput * (p.cachedInputNanoUsd ?? p.inputNanoUsd),
    cacheWriteNanoUsd: tokens.cacheWrite * (p.cacheWriteNanoUsd ?? p.inputNanoUsd),
    outputNanoUsd: tokens.output * p.outputNanoUsd,
  };
  const totalNanoUsd = breakdown.inputNanoUsd + breakdown.cachedInputNanoUsd + breakdown.cacheWriteNanoUsd + breakdown.outputNanoUsd;
  if (!Number.isSafeInteger(totalNanoUsd)) throw new RangeError(`cost of ${provider}/${model} exceeds exact integer range`);
  // Literal objects, not spreads: this runs per candidate on every routing decision.
  return { status: "priced", kind, provider, model, priceTableVersion, tokens, pricedAs: found.pricedAs, totalNanoUsd, breakdown, usd: formatUsd(totalNanoUsd) };
}

/**
 * The cost, or a `failed_precondition` DomainError (`model_unpriced`) when the model has no
 * price: for callers that must not proceed without one, e.g. reserving against a hard budget.
 */
export function requirePriced(cost: Cost): PricedCost {
  if (cost.status === "priced") return cost;
  throw new DomainError("failed_precondition", `${cost.reason}; a budgeted call needs a price (add one as an organization price override)`, { code: "model_unpriced" });
}
