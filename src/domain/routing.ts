/**
 * Which provider+model serves a call, and in which order the others are tried when it fails.
 * Pure: breaker state, observed latencies, prices and policies are passed in; the decision
 * carries its own explanation (every candidate, whether it was eligible and why, and why the
 * first one won) so it can be recorded with the call.
 *
 * 1. Eligibility, per candidate (every failing check is listed, not just the first):
 *    supports the operation · matches the pinned `provider` / `model` · enabled · allowed by
 *    every policy passed (org, team, … — the tightest wins because all must allow) · its
 *    breaker lets a request through (closed, or half-open with the probe free).
 *    A stub provider (echo) is eligible only when no real (enabled) provider serves the request
 *    at all: it answers with the prompt, so ranking it as "cheapest", or falling back to it
 *    when the real ones are down or forbidden, would return garbage as if a model had
 *    answered. Pinning it by provider or model still selects it.
 * 2. Ranking of the eligible, by the strategy; a requested `tier` is a preference (candidates
 *    of that tier first), not a filter. Ties keep the candidates' input order, so the same
 *    inputs always give the same decision.
 * 3. `chosen` = the ranking: the first is called, the rest are the fallbacks in order. With a
 *    pinned model, every fallback serves that same model (on another provider), never another.
 * 4. Nothing eligible is a `RoutingError` (a DomainError) carrying the explanation.
 */
import type { BreakerState, BreakerStatus, BreakerView } from "./circuit-breaker.js";
import { DomainError, type ErrorKind } from "./errors.js";
import { baseModelName, DEFAULT_PRICE_TABLE, estimateCost, formatUsd, type PriceTable } from "./pricing.js";
import type { ProviderCapabilities, ProviderOperation, ProviderTier } from "./provider-capabilities.js";

export const ROUTING_STRATEGIES = ["local_first", "cheapest", "fastest", "best_quality", "balanced"] as const;
export type RoutingStrategy = (typeof ROUTING_STRATEGIES)[number];
/** The reference's default, and `FABRIC_ROUTING_STRATEGY`'s when unset. */
export const DEFAULT_ROUTING_STRATEGY: RoutingStrategy = "local_first";

export function isRoutingStrategy(value: unknown): value is RoutingStrategy {
  return typeof value === "string" && (ROUTING_STRATEGIES as readonly string[]).includes(value);
}

/** One provider+model that could serve a call. */
export interface Candidate {
  provider: string;
  model: string;
  /** What this model can do (a chat model generates, an embedding model embeds). */
  operations: readonly ProviderOperation[];
  local: boolean;
  tier: ProviderTier;
  /** Default true. */
  enabled?: boolean;
  /** A deterministic stand-in (echo): only used when no real, enabled candidate serves the request. */
  stub?: boolean;
}

/** `provider/model`: the key of `RouteOptions.latencyMs` (and how candidates are named in text). */
export function candidateKey(provider: string, model: string): string {
  return `${provider}/${model}`;
}

/**
 * One candidate per model of each provider, in provider order then model order (so the
 * tie-break order is the registry's, each provider's default model first): chat models for
 * `ai.generate`, embedding models for `ai.embed`. `stubProviders` defaults to `["echo"]`.
 */
export function candidatesFromProviders(
  providers: readonly ProviderCapabilities[],
  opts: { stubProviders?: readonly string[] } = {},
): Candidate[] {
  const stubs = new Set(opts.stubProviders ?? ["echo"]);
  const out: Candidate[] = [];
  for (const p of providers) {
    const base = { provider: p.name, local: p.local, tier: p.tier, ...(stubs.has(p.name) ? { stub: true } : {}) };
    if (p.operations.includes("ai.generate")) for (const model of p.models) out.push({ ...base, model, operations: ["ai.generate"] });
    if (p.operations.includes("ai.embed")) for (const model of p.embeddingModels ?? []) out.push({ ...base, model, operations: ["ai.embed"] });
  }
  return out;
}

/**
 * Declared quality ranks (0–100, higher is better) by base model name; a judgement call for
 * `best_quality` and `balanced`, overridable per deployment via `RouteOptions.qualityRanks`.
 * Chat and embedding models are never compared with each other (different operations).
 */
export const DEFAULT_QUALITY_RANKS: Readonly<Record<string, number>> = {
  "claude-opus-4-6": 100,
  "claude-sonnet-4-6": 92,
  "gpt-4.1": 85,
  "gpt-4o": 80,
  "claude-haiku-4-5": 72,
  "gpt-4.1-mini": 70,
  "gpt-4o-mini": 58,
  "gpt-4.1-nano": 48,
  "qwen2.5": 40,
  "gemma3": 36,
  "mistral": 32,
  "llama3.2": 30,
  "echo-1": 0,
  "text-embedding-3-large": 80,
  "text-embedding-3-small": 65,
  "nomic-embed-text": 50,
  "all-minilm": 35,
  "echo-embed-1": 0,
};

function own<T>(record: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

/** A model's quality rank: its own entry, else its base name's; undefined when undeclared. */
export function qualityOf(model: string, ranks: Readonly<Record<string, number>> = DEFAULT_QUALITY_RANKS): number | undefined {
  return own(ranks, model) ?? own(ranks, baseModelName(model));
}

/** Exponentially weighted moving average of observed latency, for `RouteOptions.latencyMs`. */
export function updateLatencyEwma(previousMs: number | undefined, sampleMs: number, alpha = 0.3): number {
  return previousMs === undefined ? sampleMs : previousMs + alpha * (sampleMs - previousMs);
}

/**
 * An allow-list policy. Absent list = no restriction; an empty list allows nothing (an
 * allow-list fails closed). Models match by exact name or base name, so allowing
 * `gpt-4.1-mini` allows `gpt-4.1-mini-2025-04-14`, not the other way round.
 */
export interface RoutingPolicy {
  /** Named in reasons, e.g. "organization" or "team". */
  source?: string;
  allowedProviders?: readonly string[];
  allowedModels?: readonly string[];
}

export interface RouteRequest {
  operation: ProviderOperation;
  /** Pins the model; only providers serving it (exactly or as its dated/tagged form) are eligible. */
  model?: string;
  /** Pins the provider. */
  provider?: string;
  /** Preferred tier: ranked first, not required. */
  tier?: ProviderTier;
  /** Input size for cost estimates: tokens if known, else characters (÷ 4). Default 0. */
  inputTokens?: number;
  inputChars?: number;
  maxOutputTokens?: number;
  /** Per-request strategy; wins over `RouteOptions.strategy`. */
  strategy?: RoutingStrategy;
}

export interface BalancedWeights {
  cost: number;
  latency: number;
  quality: number;
}

/** Equal weights: cost, latency and quality count the same. */
export const DEFAULT_BALANCED_WEIGHTS: Readonly<BalancedWeights> = { cost: 1, latency: 1, quality: 1 };

export interface RouteOptions {
  /** The deployment's strategy (`FABRIC_ROUTING_STRATEGY`). Default `local_first`. */
  strategy?: RoutingStrategy;
  /** The table the caller is billed by (org overrides merged). Default the built-in table. */
  prices?: PriceTable;
  /** Every policy that applies (organization, team, …); a candidate must satisfy all. */
  policies?: readonly RoutingPolicy[];
  /** Breaker state; absent = every breaker closed. */
  breakers?: BreakerView;
  /** Observed latency EWMA in ms, keyed by `candidateKey(provider, model)`. */
  latencyMs?: Readonly<Record<string, number>>;
  /** Merged over `DEFAULT_QUALITY_RANKS`. */
  qualityRanks?: Readonly<Record<string, number>>;
  balancedWeights?: BalancedWeights;
}

export interface CandidateExplanation {
  provider: string;
  /** The model the call would use (the pinned name when a dated/tagged model was requested). */
  model: string;
  eligible: boolean;
  /** Ineligible: every check it failed. Eligible: the facts it was ranked on. */
  reasons: string[];
  /** 1 = chosen, 2 = first fallback, …; absent when ineligible. */
  rank?: number;
  /** Upper-bound cost estimate for this request; null when the model has no price. */
  estimatedCostNanoUsd: number | null;
  latencyMs: number | null;
  quality: number | null;
  breaker: BreakerState;
  /** `balanced` only: the weighted sum of positions (lower is better). */
  score?: number;
}

export interface RoutingExplanation {
  strategy: RoutingStrategy;
  operation: ProviderOperation;
  pinned: { provider?: string; model?: string };
  /** Eligible candidates in rank order, then the ineligible in input order. */
  candidates: CandidateExplanation[];
  why: string;
}

export interface RouteDecision {
  /** First = the one to call; the rest = fallbacks in order. Never empty. */
  chosen: Candidate[];
  explanation: RoutingExplanation;
}

/**
 * Nothing is eligible. `kind`/`code` say what a client can do about it:
 * - invalid_argument — no candidate serves this operation / pinned model / pinned provider
 *   (`operation_not_supported`, `model_not_served`, `provider_not_enabled`);
 * - unavailable (`no_healthy_provider`, with retry-after) — some would serve but their
 *   breakers are open: retrying later can work;
 * - permission_denied (`model_not_allowed`) — policy forbids every one that would serve;
 * - failed_precondition (`provider_disabled`) — the ones that would serve are disabled.
 */
export class RoutingError extends DomainError {
  constructor(
    kind: ErrorKind,
    message: string,
    options: { code: string; retryAfterSeconds?: number },
    readonly explanation: RoutingExplanation,
  ) {
    super(kind, message, options);
  }
}

type Block = "irrelevant" | "disabled" | "policy" | "breaker" | "stub" | "duplicate";

interface Assessed {
  index: number;
  candidate: Candidate;
  model: string;
  reasons: string[];
  blocks: Set<Block>;
  breaker: BreakerStatus | undefined;
  cost: number | null;
  costNote: string;
  latency: number | null;
  quality: number | null;
  score?: number;
}

export function route(request: RouteRequest, candidates: readonly Candidate[], options: RouteOptions = {}): RouteDecision {
  for (const field of ["inputTokens", "inputChars", "maxOutputTokens"] as const) {
    const v = request[field];
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) {
      throw new DomainError("invalid_argument", `${field} must be a non-negative integer`, { issues: [{ path: `/${field}`, code: "invalid_count", message: "must be a non-negative integer" }] });
    }
  }
  const strategy = request.strategy ?? options.strategy ?? DEFAULT_ROUTING_STRATEGY;
  const prices = options.prices ?? DEFAULT_PRICE_TABLE;
  const ranks = options.qualityRanks ? { ...DEFAULT_QUALITY_RANKS, ...options.qualityRanks } : DEFAULT_QUALITY_RANKS;
  const pinnedModel = request.model;
  const pinnedBase = pinnedModel !== undefined ? baseModelName(pinnedModel) : undefined;

  const assessed = candidates.map((candidate, index): Assessed => {
    const reasons: string[] = [];
    const blocks = new Set<Block>();
    const fail = (block: Block, reason: string) => {
      blocks.add(block);
      reasons.push(reason);
    };
    const servesPin = pinnedModel === undefined || candidate.model === pinnedModel || candidate.model === pinnedBase;
    const model = pinnedModel !== undefined && servesPin ? pinnedModel : candidate.model;

    if (!candidate.operations.includes(request.operation)) fail("irrelevant", `does not support ${request.operation}`);
    if (request.provider !== undefined && candidate.provider !== request.provider) fail("irrelevant", `not the requested provider ${request.provider}`);
    if (!servesPin) fail("irrelevant", `not the requested model ${pinnedModel}`);
    if (candidate.enabled === false) fail("disabled", `provider ${candidate.provider} is disabled`);
    for (const policy of options.policies ?? []) {
      const label = `${policy.source ?? "routing"} policy`;
      if (policy.allowedProviders && !policy.allowedProviders.includes(candidate.provider)) fail("policy", `provider ${candidate.provider} not allowed by ${label}`);
      if (policy.allowedModels && !policy.allowedModels.some((m) => m === model || m === baseModelName(model))) fail("policy", `model ${model} not allowed by ${label}`);
    }
    const breaker = options.breakers?.inspect(candidate.provider, model);
    if (breaker && !breaker.allowsRequest) fail("breaker", `breaker ${breaker.reason}`);

    const estimate = estimateCost(
      request.inputTokens !== undefined
        ? { provider: candidate.provider, model, operation: request.operation, inputTokens: request.inputTokens, maxOutputTokens: request.maxOutputTokens }
        : { provider: candidate.provider, model, operation: request.operation, inputChars: request.inputChars ?? 0, maxOutputTokens: request.maxOutputTokens },
      prices,
    );
    const cost = estimate.status === "priced" ? estimate.totalNanoUsd : null;
    const costNote = estimate.status === "priced" ? `estimated cost $${estimate.usd}` : `unpriced (${estimate.reason})`;
    const latency = own(options.latencyMs, candidateKey(candidate.provider, model)) ?? own(options.latencyMs, candidateKey(candidate.provider, candidate.model)) ?? null;
    const quality = qualityOf(model, ranks) ?? null;
    return { index, candidate, model, reasons, blocks, breaker, cost, costNote, latency, quality };
  });

  // A stub only when no real provider could serve the request at all. A real one that is
  // merely unhealthy or forbidden still keeps the stub out: the caller gets a clear error
  // rather than its prompt echoed back as if a model had answered.
  if (assessed.some((a) => !a.candidate.stub && !a.blocks.has("irrelevant") && !a.blocks.has("disabled"))) {
    for (const a of assessed) {
      if (a.candidate.stub && !a.blocks.has("irrelevant")) {
        a.blocks.add("stub");
        a.reasons.push(`${a.candidate.provider} is a stub, used only when no real provider serves the request`);
      }
    }
  }

  // The same provider+model listed twice (or a pinned snapshot matching both its own entry and
  // its base's) is one call: keep the first listing.
  const seen = new Map<string, Assessed>();
  for (const a of assessed) {
    if (a.blocks.size > 0) continue;
    const key = candidateKey(a.candidate.provider, a.model);
    const earlier = seen.get(key);
    if (earlier) {
      a.blocks.add("duplicate");
      a.reasons.push(`same call as the earlier-listed ${key}`);
    } else seen.set(key, a);
  }

  const eligible = assessed.filter((a) => a.blocks.size === 0);
  if (strategy === "balanced") scoreBalanced(eligible, options.balancedWeights ?? DEFAULT_BALANCED_WEIGHTS);
  const ranked = [...eligible].sort(comparator(strategy, request.tier));

  for (const a of ranked) a.reasons.push(...rankingFacts(a, strategy, request.tier));

  const explanation: RoutingExplanation = {
    strategy,
    operation: request.operation,
    pinned: { ...(request.provider !== undefined ? { provider: request.provider } : {}), ...(pinnedModel !== undefined ? { model: pinnedModel } : {}) },
    candidates: [...ranked, ...assessed.filter((a) => a.blocks.size > 0)].map((a) => {
      const rank = ranked.indexOf(a);
      const c: CandidateExplanation = {
        provider: a.candidate.provider,
        model: a.model,
        eligible: rank >= 0,
        reasons: a.reasons,
        estimatedCostNanoUsd: a.cost,
        latencyMs: a.latency,
        quality: a.quality,
        breaker: a.breaker?.state ?? "closed",
      };
      if (rank >= 0) c.rank = rank + 1;
      if (a.score !== undefined) c.score = a.score;
      return c;
    }),
    why: "",
  };

  const first = ranked[0];
  if (!first) {
    const error = noCandidate(request, assessed);
    explanation.why = error.message;
    throw new RoutingError(error.kind, error.message, error.options, explanation);
  }
  explanation.why = whyText(strategy, request, ranked, assessed.length);
  return { chosen: ranked.map((a) => (a.model === a.candidate.model ? a.candidate : { ...a.candidate, model: a.model })), explanation };
}

// ---------------------------------------------------------------------------------------------
// Ranking

/** Ascending sort key for an optional metric: unknown sorts after every known value. */
const known = (v: number | null): number => (v === null ? Number.POSITIVE_INFINITY : v);

function comparator(strategy: RoutingStrategy, tier: RouteRequest["tier"]): (a: Assessed, b: Assessed) => number {
  const keys = (a: Assessed): number[] => {
    const tierKey = tier !== undefined && a.candidate.tier !== tier ? 1 : 0;
    const localKey = a.candidate.local ? 0 : 1;
    switch (strategy) {
      case "local_first":
        return [tierKey, localKey, known(a.cost)];
      case "cheapest":
        return [tierKey, known(a.cost), localKey];
      case "fastest":
        return [tierKey, known(a.latency), known(a.cost)];
      case "best_quality":
        return [tierKey, a.quality === null ? Number.POSITIVE_INFINITY : -a.quality, known(a.cost)];
      case "balanced":
        return [tierKey, a.score ?? 0, known(a.cost)];
    }
  };
  return (a, b) => {
    const ka = keys(a);
    const kb = keys(b);
    for (let i = 0; i < ka.length; i++) {
      const d = compareNumbers(ka[i]!, kb[i]!);
      if (d !== 0) return d;
    }
    return a.index - b.index;
  };
}

function compareNumbers(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * `balanced`: each candidate's position on each metric = how many eligible candidates are
 * strictly better on it (0 = best; ties share a position; an unknown value is behind every
 * known one). score = cost position × w.cost + latency position × w.latency + quality position
 * × w.quality; lowest wins. Positions rather than raw values, so a metric spanning orders of
 * magnitude (cost: free vs $25/1M) cannot drown the others, and the score is explainable.
 */
function scoreBalanced(eligible: Assessed[], w: BalancedWeights): void {
  const position = (value: number | null, values: (number | null)[], better: (x: number, y: number) => boolean) => {
    const knownValues = values.filter((v): v is number => v !== null);
    return value === null ? knownValues.length : knownValues.filter((v) => better(v, value)).length;
  };
  const costs = eligible.map((a) => a.cost);
  const latencies = eligible.map((a) => a.latency);
  const qualities = eligible.map((a) => a.quality);
  for (const a of eligible) {
    const c = position(a.cost, costs, (x, y) => x < y);
    const l = position(a.latency, latencies, (x, y) => x < y);
    const q = position(a.quality, qualities, (x, y) => x > y);
    a.score = c * w.cost + l * w.latency + q * w.quality;
    a.reasons.push(`balanced score ${a.score} = cost position ${c}×${w.cost} + latency position ${l}×${w.latency} + quality position ${q}×${w.quality}`);
  }
}

function rankingFacts(a: Assessed, strategy: RoutingStrategy, tier: RouteRequest["tier"]): string[] {
  const facts = [a.candidate.local ? "local" : "remote"];
  if (tier !== undefined) facts.push(a.candidate.tier === tier ? `tier ${tier} (preferred)` : `tier ${a.candidate.tier} (not the preferred ${tier})`);
  facts.push(a.costNote);
  if (strategy === "fastest" || strategy === "balanced") facts.push(a.latency === null ? "latency unknown" : `latency ~${Math.round(a.latency)} ms`);
  if (strategy === "best_quality" || strategy === "balanced") facts.push(a.quality === null ? "quality unknown" : `quality ${a.quality}`);
  if (a.breaker && a.breaker.state !== "closed") facts.push(`breaker ${a.breaker.reason}`);
  return facts;
}

function whyText(strategy: RoutingStrategy, request: RouteRequest, ranked: Assessed[], total: number): string {
  const first = ranked[0]!;
  const name = candidateKey(first.candidate.provider, first.model);
  const pins = [request.provider !== undefined ? `provider ${request.provider}` : "", request.model !== undefined ? `model ${request.model}` : ""].filter(Boolean);
  const parts: string[] = [];
  if (pins.length) parts.push(`pinned to ${pins.join(" and ")}`);
  if (request.tier !== undefined) parts.push(first.candidate.tier === request.tier ? `prefers tier ${request.tier}` : `prefers tier ${request.tier}, but none of that tier is eligible`);
  const cost = first.cost === null ? "unpriced" : `$${formatUsd(first.cost)}`;
  // With a tier preference, "lowest"/"highest" hold among the candidates of the first's tier.
  const scope = request.tier !== undefined && first.candidate.tier === request.tier ? ` of tier ${request.tier}` : "";
  switch (strategy) {
    case "local_first":
      parts.push(
        first.candidate.local
          ? `${name} is the cheapest local candidate${scope} (${cost}; ties keep the given order)`
          : `no local candidate${scope} is eligible; ${name} is the cheapest remote one (${cost})`,
      );
      break;
    case "cheapest":
      parts.push(`${name} has the lowest estimated cost${scope} (${cost})`);
      break;
    case "fastest":
      parts.push(first.latency === null ? `no eligible candidate${scope} has an observed latency; ${name} is the cheapest (${cost})` : `${name} has the lowest observed latency${scope} (~${Math.round(first.latency)} ms)`);
      break;
    case "best_quality":
      parts.push(first.quality === null ? `no eligible candidate${scope} has a declared quality; ${name} is the cheapest (${cost})` : `${name} has the highest quality rank${scope} (${first.quality})`);
      break;
    case "balanced":
      parts.push(`${name} has the lowest balanced score${scope} (${first.score ?? 0}; lower is better)`);
      break;
  }
  const fallbacks = ranked.slice(1).map((a) => candidateKey(a.candidate.provider, a.model));
  return `${strategy}: ${parts.join("; ")}. ${ranked.length} of ${total} candidates eligible; ${fallbacks.length ? `fallbacks: ${fallbacks.join(", ")}` : "no fallback"}.`;
}

// ---------------------------------------------------------------------------------------------
// Nothing eligible

function noCandidate(request: RouteRequest, assessed: Assessed[]): { kind: ErrorKind; message: string; options: { code: string; retryAfterSeconds?: number } } {
  const what = [request.operation, request.provider !== undefined ? `provider ${request.provider}` : "", request.model !== undefined ? `model ${request.model}` : ""].filter(Boolean).join(", ");
  const relevant = assessed.filter((a) => !a.blocks.has("irrelevant") && !a.blocks.has("stub"));
  if (relevant.length === 0) {
    const code = request.model !== undefined ? "model_not_served" : request.provider !== undefined ? "provider_not_enabled" : "operation_not_supported";
    const offered = [...new Set(assessed.filter((a) => a.candidate.operations.includes(request.operation)).map((a) => candidateKey(a.candidate.provider, a.candidate.model)))];
    return {
      kind: "invalid_argument",
      message: `no enabled provider serves ${what}; available for ${request.operation}: ${offered.length ? offered.join(", ") : "none"}`,
      options: { code },
    };
  }
  const detail = relevant.map((a) => `${candidateKey(a.candidate.provider, a.model)}: ${a.reasons.join("; ")}`).join(" | ");
  const onlyBreaker = relevant.filter((a) => a.blocks.size === 1 && a.blocks.has("breaker"));
  if (onlyBreaker.length > 0) {
    const waits = onlyBreaker.map((a) => a.breaker?.retryAfterMs).filter((ms): ms is number => ms !== undefined);
    const retryAfterSeconds = waits.length ? Math.max(1, Math.ceil(Math.min(...waits) / 1000)) : undefined;
    return {
      kind: "unavailable",
      message: `no healthy provider for ${what}: ${detail}`,
      options: { code: "no_healthy_provider", ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) },
    };
  }
  if (relevant.some((a) => a.blocks.has("policy"))) {
    return { kind: "permission_denied", message: `policy allows no provider for ${what}: ${detail}`, options: { code: "model_not_allowed" } };
  }
  return { kind: "failed_precondition", message: `every provider serving ${what} is disabled: ${detail}`, options: { code: "provider_disabled" } };
}
