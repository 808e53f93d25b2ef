/**
 * The one path every provider call takes — a direct call over the API, a job, or a
 * workflow's provider node in an executor:
 *
 * 1. rules: the organization's and the team's policy and budget (one query), and the price
 *    table the organization is billed by (its overrides merged over the built-in table);
 * 2. route: the router with those allow-lists, this process's breakers and latencies;
 * 3. reserve: under a budget or a per-run cap, the largest estimate among the candidates
 *    that may be tried is charged to every applicable ledger before the call, or the call is
 *    refused (`budget_exceeded`, with Retry-After at the period's end). An unpriced model
 *    under a budget fails closed (`model_unpriced`);
 * 4. call: candidates in order, breakers consulted and fed, falling back on retryable
 *    failures (never after a stream has produced text);
 * 5. settle: the usage record gets the tokens and actual cost, the ledgers `actual −
 *    estimate`. A call under no budget writes its record once, settled.
 *
 * A settlement that fails (database down) is logged, never turned into a failed call: the
 * reservation keeps its estimate charged, which errs on the side of the budget.
 */
import { createCircuitBreakers, type CircuitBreakerOptions, type CircuitBreakers } from "../domain/circuit-breaker.js";
import { DomainError } from "../domain/errors.js";
import { inputChars, type ProviderCallRequest } from "../domain/provider-call.js";
import { effectiveRules, orgScopeKey, periodOf, retryAfterSeconds, teamScopeKey, type Charge, type EffectiveRules } from "../domain/policy.js";
import { actualCost, DEFAULT_PRICE_TABLE, estimateCost, formatUsd, requirePriced, withPriceOverrides, type Cost, type PriceOverrides, type PriceTable } from "../domain/pricing.js";
import {
  candidateKey,
  candidatesFromProviders,
  DEFAULT_ROUTING_STRATEGY,
  route,
  RoutingError,
  updateLatencyEwma,
  type Candidate,
  type RouteDecision,
  type RouteRequest,
  type RoutingStrategy,
} from "../domain/routing.js";
import type { Database, Db } from "../db/database.js";
import { channels } from "../db/events.js";
import { loadScopeRules, markExceeded, recordSettled, reserve, settle, type Attribution, type LedgerKey, type Settlement } from "../db/usage.js";
import { ProviderError } from "../providers/errors.js";
import { enforceRateLimit } from "./rate-limit.js";
import type { EmbedResult, GenerateRequest, GenerateResult, Provider, Usage } from "../providers/provider.js";

export type { Attribution } from "../db/usage.js";

export interface CallAttempt {
  provider: string;
  model: string;
  error?: string;
}

export interface CallResult {
  provider: string;
  model: string;
  generate?: GenerateResult;
  embed?: EmbedResult;
  usage: Usage;
  /** Under a budget, the estimate reserved (the most any candidate that may be tried could cost); else the answering model's upper bound. */
  estimate: Cost;
  actual: Cost | { status: "error"; reason: string };
  priceTable: string;
  decision: RouteDecision;
  attempts: CallAttempt[];
  usageRecordId: number;
}

/** Every candidate failed (or the one that answered failed mid-stream): the last provider error and what was tried. */
export class ProviderCallError extends Error {
  override readonly name = "ProviderCallError";
  constructor(
    readonly providerError: ProviderError,
    readonly attempts: CallAttempt[],
    /** The stream had produced text before it failed: not failed over, and not safe to retry blindly. */
    readonly afterStreamBegan: boolean,
  ) {
    super(attempts.length > 1 ? `${providerError.message} (attempts: ${summarizeAttempts(attempts)})` : `${providerError.provider}: ${providerError.message}`);
  }
}

export function summarizeAttempts(attempts: readonly CallAttempt[]): string {
  return attempts.map((a) => `${a.provider}/${a.model}${a.error ? ` ✗ ${a.error}` : " ✓"}`).join("; ");
}

export interface GatewayOptions {
  /** The deployment's strategy (`FABRIC_ROUTING_STRATEGY`). */
  strategy?: RoutingStrategy;
  breakers?: CircuitBreakerOptions;
  /** The built-in price table (tests may replace it). */
  prices?: PriceTable;
  now?: () => number;
  log?: { warn(msg: string, fields?: Record<string, unknown>): void };
  /** How long cached rules may be used when no change notification arrives. Default 5 s. */
  rulesCacheMs?: number;
}

export interface Prepared {
  rules: EffectiveRules;
  prices: PriceTable;
}

export interface EstimateResult {
  decision: RouteDecision;
  /** The first choice's upper bound. */
  estimate: Cost;
  /** What a call would reserve under a budget: the costliest candidate it may try. */
  reservation: Cost;
  inputTokens: number;
  maxOutputTokens: number;
  prices: PriceTable;
  rules: EffectiveRules;
}

export type ProviderGateway = ReturnType<typeof createProviderGateway>;

/**
 * `listen` (the database's NOTIFY subscription) turns on the rules cache: each
 * organization's and team's rules are kept for `rulesCacheMs` and dropped as soon as a
 * policy or budget of the organization changes anywhere (PolicyService NOTIFYs
 * `fabric_policy` in its transaction), so a change reaches every process within
 * milliseconds; the time limit only bounds a missed notification (a reconnect). Without
 * `listen`, every call reads the rules.
 */
export function createProviderGateway(deps: { db: Database["db"]; providers: readonly Provider[]; listen?: Database["listen"] }, options: GatewayOptions = {}) {
  const { db, providers } = deps;
  const rulesCacheMs = options.rulesCacheMs ?? 5_000;
  const cache = new Map<string, { at: number; value: Awaited<ReturnType<typeof loadScopeRules>> }>();
  // Bumped by every invalidation: a read that started before a change must not cache its result.
  const generations = new Map<string, number>();
  const invalidate = (organizationId: string) => {
    generations.set(organizationId, (generations.get(organizationId) ?? 0) + 1);
    for (const key of cache.keys()) if (key.startsWith(`${organizationId}|`)) cache.delete(key);
  };
  const listening = deps.listen
    ? deps.listen(channels.policy, invalidate).catch((err) => {
        options.log?.warn("policy changes cannot be followed; rules are read on every call", { error: String(err) });
        return undefined;
      })
    : Promise.resolve(undefined);

  async function rulesOf(organizationId: string, teamId: string | null) {
    const unlisten = await listening;
    if (!unlisten) return loadScopeRules(db, organizationId, teamId);
    const key = `${organizationId}|${teamId ?? ""}`;
    const hit = cache.get(key);
    const t = Date.now();
    if (hit && t - hit.at < rulesCacheMs) return hit.value;
    const generation = generations.get(organizationId);
    const value = await loadScopeRules(db, organizationId, teamId);
    if (generations.get(organizationId) !== generation) return value; // changed meanwhile: use once, do not keep
    if (cache.size >= 10_000) cache.delete(cache.keys().next().value!);
    cache.set(key, { at: t, value });
    return value;
  }
  const byName = new Map(providers.map((p) => [p.name, p]));
  const candidates = candidatesFromProviders(providers);
  const breakers: CircuitBreakers = createCircuitBreakers(options.breakers);
  const latencyMs: Record<string, number> = {};
  const basePrices = options.prices ?? DEFAULT_PRICE_TABLE;
  const deploymentStrategy = options.strategy ?? DEFAULT_ROUTING_STRATEGY;
  const now = options.now ?? (() => performance.now());
  const tables = new Map<string, PriceTable>();

  /** The organization's table; merged tables are memoized by their overrides (bounded). */
  function priceTableFor(overrides: PriceOverrides | undefined): PriceTable {
    if (!overrides) return basePrices;
    const key = JSON.stringify(overrides);
    let table = tables.get(key);
    if (!table) {
      try {
        table = withPriceOverrides(basePrices, overrides);
      } catch {
        table = basePrices; // validated when stored; a table that no longer merges (built-in change) falls back
      }
      if (tables.size >= 256) tables.delete(tables.keys().next().value!);
      tables.set(key, table);
    }
    return table;
  }

  async function prepare(attribution: Pick<Attribution, "organizationId" | "teamId" | "runId">, at = new Date()): Promise<Prepared> {
    const { rules, priceOverrides } = await rulesOf(attribution.organizationId, attribution.teamId);
    return { rules: effectiveRules(rules, { now: at, runId: attribution.runId }), prices: priceTableFor(priceOverrides) };
  }

  function routeRequest(req: ProviderCallRequest): RouteRequest {
    let model = req.model;
    // A provider pinned without a model means its default model (the adapter contract).
    if (req.provider !== undefined && model === undefined) {
      const pinned = byName.get(req.provider);
      model = req.operation === "ai.embed" ? pinned?.embeddingModels?.[0] : pinned?.models[0];
    }
    return {
      operation: req.operation,
      inputChars: inputChars(req),
      ...(req.provider !== undefined ? { provider: req.provider } : {}),
      ...(model !== undefined ? { model } : {}),
      ...(req.strategy !== undefined ? { strategy: req.strategy } : {}),
      ...(req.tier !== undefined ? { tier: req.tier } : {}),
      ...(req.maxTokens !== undefined ? { maxOutputTokens: req.maxTokens } : {}),
    };
  }

  /**
   * The decision. A breaker is advisory when only one candidate serves the request at all:
   * refusing the only deployment there is would turn a possibly-working call into a certain
   * failure (the gateways' "no cooldown for a single deployment" rule).
   */
  function decide(request: RouteRequest, prepared: Prepared): { decision: RouteDecision; advisoryBreaker: boolean } {
    const opts = { strategy: deploymentStrategy, prices: prepared.prices, policies: prepared.rules.routing, latencyMs };
    try {
      return { decision: route(request, candidates, { ...opts, breakers }), advisoryBreaker: false };
    } catch (err) {
      if (!(err instanceof RoutingError) || err.options.code !== "no_healthy_provider") throw err;
      const unguarded = route(request, candidates, opts);
      if (unguarded.chosen.length !== 1) throw err;
      unguarded.explanation.why += ` Its breaker is open but advisory: it is the only candidate.`;
      return { decision: unguarded, advisoryBreaker: true };
    }
  }

  async function refuse(attribution: Attribution, charge: Charge, estimateNanoUsd: number, committedNanoUsd: number): Promise<never> {
    await markExceeded(db, { organizationId: attribution.organizationId, charge, estimateNanoUsd, committedNanoUsd }).catch((err) => options.log?.warn("could not record budget.exceeded", { error: String(err) }));
    const at = new Date();
    throw new DomainError(
      "resource_exhausted",
      `the call's estimated cost of $${formatUsd(estimateNanoUsd)} does not fit ${charge.label}: $${formatUsd(committedNanoUsd)} of $${formatUsd(charge.limitNanoUsd)} is committed` +
        (charge.resetAt ? `; it resets at ${charge.resetAt.toISOString()}` : ""),
      { code: "budget_exceeded", ...(charge.resetAt ? { retryAfterSeconds: retryAfterSeconds(charge.resetAt, at) } : {}) },
    );
  }

  return {
    providers,
    candidates,
    breakers,
    /** Drops an organization's cached rules now (this process changed them; others hear the NOTIFY). */
    invalidate,
    /** Stops following policy changes. */
    async close() {
      const unlisten = await listening;
      cache.clear();
      await unlisten?.();
    },
    latencies: (): Record<string, number> => ({ ...latencyMs }),
    deploymentStrategy,
    prepare,
    priceTableFor,

    /** Where the call would go and what it would cost, without calling or reserving anything. */
    async estimate(req: ProviderCallRequest, attribution: Attribution): Promise<EstimateResult> {
      const prepared = await prepare(attribution);
      const request = routeRequest(req);
      const { decision } = decide(request, prepared);
      const estimate = estimateOf(decision.chosen[0]!, req, prepared.prices);
      const maxOutputTokens = req.operation === "ai.embed" ? 0 : estimate.tokens.output;
      const budgeted = prepared.rules.charges.length > 0 || prepared.rules.maxRunCost !== null;
      const reservation = worstEstimate(budgeted ? reservable(decision, req, prepared.prices) : decision.chosen, req, prepared.prices);
      return { decision, estimate, reservation, inputTokens: estimate.tokens.uncachedInput, maxOutputTokens, prices: prepared.prices, rules: prepared.rules };
    },

    /**
     * The rules for a request of an API key, after counting it against the key's per-minute
     * limit of provider requests (direct calls and jobs): 429 `rate_limited` beyond it.
     */
    async admit(apiKeyId: string | undefined, attribution: Pick<Attribution, "organizationId" | "teamId" | "runId">): Promise<Prepared> {
      const prepared = await prepare(attribution);
      const limit = prepared.rules.requestsPerMinutePerKey;
      if (limit !== null && apiKeyId) await enforceRateLimit(db, `api_key:${apiKeyId}`, limit, `this API key may make ${limit} provider requests per minute`);
      return prepared;
    },

    /** One call. `prepared`: the rules the caller already loaded for this attribution (e.g. to check a rate limit). */
    async call(args: { request: ProviderCallRequest; attribution: Attribution; signal: AbortSignal; stream?: boolean; onDelta?: (text: string) => void; prepared?: Prepared }): Promise<CallResult> {
      const { request: req, attribution, signal } = args;
      const started = now();
      const prepared = args.prepared ?? (await prepare(attribution));
      const { decision, advisoryBreaker } = decide(routeRequest(req), prepared);
      const { rules, prices } = prepared;

      // Reserve (only when a budget or cap applies), for the candidates that can be priced.
      const budgeted = rules.charges.length > 0 || rules.maxRunCost !== null;
      const candidatesToTry = budgeted ? reservable(decision, req, prices) : decision.chosen;
      const worst = worstEstimate(candidatesToTry, req, prices);
      let reservation: { id: number; estimateNanoUsd: number } | null = null;
      if (budgeted) {
        const est = requirePriced(worst).totalNanoUsd;
        if (rules.maxRunCost && !attribution.runId && est > rules.maxRunCost.nanoUsd) {
          throw new DomainError("resource_exhausted", `the call's estimated cost of $${formatUsd(est)} exceeds ${scopeName(rules.maxRunCost.scope)} per-run cost cap of $${formatUsd(rules.maxRunCost.nanoUsd)}`, { code: "budget_exceeded" });
        }
        // A free call cannot overshoot anything: it is admitted even by a spent budget.
        if (rules.charges.length > 0 && est > 0) {
          const first = candidatesToTry[0]!;
          const r = await reserve(db as Db, {
            attribution,
            facts: { provider: first.provider, model: first.model, operation: req.operation, priceTable: prices.version, estimatedNanoUsd: est },
            charges: rules.charges,
            estimateNanoUsd: est,
          });
          if (!r.ok) await refuse(attribution, r.charge, est, r.committedNanoUsd);
          else reservation = { id: r.id, estimateNanoUsd: est };
        }
      }

      const attempts: CallAttempt[] = [];
      const failedProviders = new Set<string>();
      const queue = [...candidatesToTry];
      let last: ProviderError | undefined;
      let lastCandidate = candidatesToTry[0]!;
      const streamState = { deltas: false };
      // An attempt that may have been billed although it produced no result (aborted or timed
      // out mid-request, or a stream that broke after it began): what it cost is unknown, so
      // the reservation stays charged at its estimate — never released to be spent again.
      let maybeBilled = false;
      const finish = async (settlement: Settlement, candidate: Candidate) => {
        try {
          if (reservation) {
            await settle(db, { id: reservation.id, charges: rules.charges, estimateNanoUsd: reservation.estimateNanoUsd, settlement });
            return reservation.id;
          }
          // No reservation: the record's estimate is the one of the candidate that answered (or failed last).
          const own = estimateOf(candidate, req, prices);
          const est = own.status === "priced" ? own.totalNanoUsd : null;
          return await recordSettled(db, attribution, { provider: candidate.provider, model: candidate.model, operation: req.operation, priceTable: prices.version, estimatedNanoUsd: est }, settlement, ledgersOf(attribution));
        } catch (err) {
          options.log?.warn("could not settle usage", { error: String(err), organization_id: attribution.organizationId, run_id: attribution.runId });
          return reservation?.id ?? 0;
        }
      };

      while (queue.length > 0) {
        // Other providers before the failed ones' remaining models (stable otherwise).
        const index = queue.findIndex((c) => !failedProviders.has(c.provider));
        const candidate = queue.splice(index >= 0 ? index : 0, 1)[0]!;
        lastCandidate = candidate;
        const provider = byName.get(candidate.provider)!;
        const gate = breakers.tryAcquire(candidate.provider, candidate.model);
        if (!gate.allowsRequest && !advisoryBreaker) {
          attempts.push({ provider: candidate.provider, model: candidate.model, error: `skipped: breaker ${gate.reason}` });
          continue;
        }
        const t0 = now();
        try {
          const out = await invoke(provider, candidate.model, req, signal, args.stream === true, streamState, args.onDelta);
          breakers.recordSuccess(candidate.provider, candidate.model);
          const key = candidateKey(candidate.provider, candidate.model);
          latencyMs[key] = updateLatencyEwma(latencyMs[key], Math.max(0, now() - t0));
          attempts.push({ provider: candidate.provider, model: candidate.model });
          const model = out.model || candidate.model;
          const actual = safeActual(candidate.provider, model, out.usage, prices);
          const usageRecordId = await finish(
            {
              status: "succeeded",
              provider: candidate.provider,
              model,
              inputTokens: out.usage.inputTokens,
              outputTokens: out.usage.outputTokens,
              cachedInputTokens: out.usage.cachedInputTokens ?? 0,
              cacheWriteTokens: out.usage.cacheWriteTokens ?? 0,
              actualNanoUsd: actual.status === "priced" ? actual.totalNanoUsd : null,
              keepEstimate: maybeBilled,
              errorCode: null,
              latencyMs: Math.round(now() - started),
            },
            candidate,
          );
          return {
            provider: candidate.provider,
            model,
            ...(out.generate ? { generate: out.generate } : {}),
            ...(out.embed ? { embed: out.embed } : {}),
            usage: out.usage,
            // What the record holds: the reservation under a budget, else the answering model's bound.
            estimate: reservation ? worst : estimateOf(candidate, req, prices),
            actual,
            priceTable: prices.version,
            decision,
            attempts,
            usageRecordId,
          };
        } catch (err) {
          if (!(err instanceof ProviderError)) {
            // Not the provider's verdict on its health (a bug, a malformed stream): neutral.
            breakers.recordFailure(candidate.provider, candidate.model, { retryable: false });
            await finish(failedSettlement(candidate, "internal", started, now(), maybeBilled), candidate);
            throw err;
          }
          breakers.recordFailure(candidate.provider, candidate.model, err);
          attempts.push({ provider: candidate.provider, model: candidate.model, error: `${err.errorClass}: ${err.message}` });
          last = err;
          if (streamState.deltas || err.errorClass === "aborted" || err.errorClass === "timeout" || signal.aborted) maybeBilled = true;
          if (streamState.deltas || !err.retryable || signal.aborted) {
            await finish(failedSettlement(candidate, `provider_${err.errorClass}`, started, now(), maybeBilled), candidate);
            throw new ProviderCallError(err, attempts, streamState.deltas);
          }
          failedProviders.add(candidate.provider);
        }
      }
      await finish(failedSettlement(lastCandidate, last ? `provider_${last.errorClass}` : "no_healthy_provider", started, now(), maybeBilled), lastCandidate);
      if (last) throw new ProviderCallError(last, attempts, false);
      throw new DomainError("unavailable", `no candidate could be called: ${summarizeAttempts(attempts)}`, { code: "no_healthy_provider" });
    },
  };
}

/** The most any candidate that may be tried can cost (the reservation). */
function worstEstimate(candidates: readonly Candidate[], req: ProviderCallRequest, prices: PriceTable): Cost {
  let worst: Cost | undefined;
  for (const c of candidates) {
    const e = estimateOf(c, req, prices);
    if (e.status === "unpriced") return e;
    if (!worst || (worst.status === "priced" && e.totalNanoUsd > worst.totalNanoUsd)) worst = e;
  }
  return worst!;
}

function estimateOf(c: Candidate, req: ProviderCallRequest, prices: PriceTable): Cost {
  return estimateCost({ provider: c.provider, model: c.model, operation: req.operation, inputChars: inputChars(req), ...(req.maxTokens !== undefined ? { maxOutputTokens: req.maxTokens } : {}) }, prices);
}

/**
 * A failed call: released (cost 0) when no attempt can have been billed — providers do not
 * bill a refused or failed request —, else cost unknown (null) and the estimate kept.
 */
function failedSettlement(c: Candidate, errorCode: string, started: number, ended: number, maybeBilled: boolean): Settlement {
  return {
    status: "failed",
    provider: c.provider,
    model: c.model,
    inputTokens: 0,
    outputTokens: 0,
    cachedInputTokens: 0,
    cacheWriteTokens: 0,
    actualNanoUsd: maybeBilled ? null : 0,
    keepEstimate: maybeBilled,
    errorCode,
    latencyMs: Math.round(ended - started),
  };
}

const scopeName = (s: "organization" | "team") => (s === "organization" ? "the organization's" : "the team's");

/**
 * The ledgers (current day and month of the organization and the team) a call under no
 * budget adds its cost to when they exist: a budget set while the call was in flight (its
 * rebase could not see the call's record yet) then still counts it.
 */
function ledgersOf(a: Attribution, at = new Date()): LedgerKey[] {
  const day = periodOf("day", at).start;
  const month = periodOf("month", at).start;
  const scopes = [orgScopeKey(a.organizationId), ...(a.teamId ? [teamScopeKey(a.teamId)] : [])];
  return scopes.flatMap((scopeKey) => [
    { scopeKey, period: "day" as const, periodStart: day },
    { scopeKey, period: "month" as const, periodStart: month },
  ]);
}

/**
 * Under a budget, the candidates that can be priced (a reservation needs a price): the
 * unpriced ones are left out of the fallbacks, and only when none is priced does the call
 * fail closed (`model_unpriced`).
 */
function reservable(decision: RouteDecision, req: ProviderCallRequest, prices: PriceTable): Candidate[] {
  const priced = decision.chosen.filter((c) => estimateOf(c, req, prices).status === "priced");
  return priced.length > 0 ? priced : decision.chosen;
}

async function invoke(
  provider: Provider,
  model: string,
  req: ProviderCallRequest,
  signal: AbortSignal,
  stream: boolean,
  state: { deltas: boolean },
  onDelta: ((text: string) => void) | undefined,
): Promise<{ model: string; usage: Usage; generate?: GenerateResult; embed?: EmbedResult }> {
  if (req.operation === "ai.embed") {
    if (!provider.embed) throw new ProviderError({ provider: provider.name, errorClass: "invalid_request", message: `provider ${provider.name} cannot embed` });
    const r = await provider.embed(req.texts ?? [], { model, signal });
    return { model: r.model, usage: r.usage, embed: r };
  }
  const request: GenerateRequest = { model, signal };
  if (req.prompt !== undefined) request.prompt = req.prompt;
  if (req.messages !== undefined) request.messages = req.messages;
  if (req.system !== undefined) request.system = req.system;
  if (req.maxTokens !== undefined) request.maxTokens = req.maxTokens;
  if (req.temperature !== undefined) request.temperature = req.temperature;
  if (!stream) {
    const r = await provider.generate(request);
    return { model: r.model, usage: r.usage, generate: r };
  }
  for await (const chunk of provider.stream(request)) {
    if (chunk.type === "done") return { model: chunk.result.model, usage: chunk.result.usage, generate: chunk.result };
    if (chunk.text) {
      state.deltas = true;
      onDelta?.(chunk.text);
    }
  }
  throw new ProviderError({ provider: provider.name, errorClass: "transient", message: `${provider.name}: the stream ended without a result` });
}

function safeActual(provider: string, model: string, usage: Usage, prices: PriceTable): Cost | { status: "error"; reason: string } {
  try {
    return actualCost({ provider, model, usage }, prices);
  } catch (err) {
    return { status: "error", reason: err instanceof Error ? err.message : String(err) };
  }
}
