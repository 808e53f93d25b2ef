/**
 * The one path every provider call takes — a direct call over the API, a job, or a
 * workflow's provider node in an executor — as a pipeline of the steps in this folder:
 *
 * 1. rules (rules-cache.ts): the organization's and the team's policy and budgets, and the
 *    price table the organization is billed by;
 * 2. route (call-routing.ts): the router with those allow-lists, this process's breakers
 *    and latencies;
 * 3. reserve (budget-reservation.ts): under a budget or a per-run cap, the worst case is
 *    charged to every applicable ledger before the call, or the call is refused;
 * 4. call (failover.ts): candidates in order, breakers consulted and fed, falling back on
 *    retryable failures (never after a stream has produced text);
 * 5. settle (budget-reservation.ts): the usage record gets the tokens and actual cost, the
 *    ledgers `actual − estimate`; whatever happened, the call is settled before it answers.
 */
import type { CircuitBreakerOptions } from "../domain/circuit-breaker.js";
import type { EffectiveRules } from "../domain/policy.js";
import { actualCost, DEFAULT_PRICE_TABLE, type Cost, type PriceTable } from "../domain/pricing.js";
import { rateLimitRefusal } from "../domain/rate-limit.js";
import type { ProviderCallRequest } from "../domain/provider-call.js";
import { DEFAULT_ROUTING_STRATEGY, type RouteDecision, type RoutingStrategy } from "../domain/routing.js";
import type { Database } from "../db/database.js";
import { countRequest } from "../db/rate-limits.js";
import type { Attribution } from "../db/usage.js";
import type { EmbedResult, GenerateResult, Provider, Usage } from "../providers/provider.js";
import { candidatesToTry, estimateOf, failedSettlement, reserveBudget, settleCall, succeededSettlement, worstEstimate } from "./budget-reservation.js";
import { createCallRouter } from "./call-routing.js";
import { tryCandidates, type CallAttempt } from "./failover.js";
import { createRulesCache, type Prepared } from "./rules-cache.js";
import { DomainError } from "../domain/errors.js";
import { boundedLabel, metrics, onScrape } from "../telemetry/metrics.js";

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

export interface CallArgs {
  request: ProviderCallRequest;
  attribution: Attribution;
  signal: AbortSignal;
  stream?: boolean;
  onDelta?: (text: string) => void;
  /** The rules the caller already loaded for this attribution (e.g. to check a rate limit). */
  prepared?: Prepared;
}

export type ProviderGateway = ReturnType<typeof createProviderGateway>;

/** `listen` (the database's NOTIFY subscription) turns on the rules cache (rules-cache.ts). */
export function createProviderGateway(deps: { db: Database["db"]; providers: readonly Provider[]; listen?: Database["listen"] }, options: GatewayOptions = {}) {
  const { db, providers } = deps;
  const log = options.log;
  const now = options.now ?? (() => performance.now());
  const deploymentStrategy = options.strategy ?? DEFAULT_ROUTING_STRATEGY;
  const rules = createRulesCache({ db, ...(deps.listen ? { listen: deps.listen } : {}) }, { ttlMs: options.rulesCacheMs ?? 5_000, basePrices: options.prices ?? DEFAULT_PRICE_TABLE, ...(log ? { log } : {}) });
  const router = createCallRouter(providers, { strategy: deploymentStrategy, ...(options.breakers ? { breakers: options.breakers } : {}) });
  const failover = { providers: new Map(providers.map((p) => [p.name, p])), breakers: router.breakers, latencyMs: router.latencyMs, now };
  // The breaker gauge shows this process's breakers as they are at scrape time.
  const stopBreakerGauge = onScrape(() => {
    for (const b of router.breakers.snapshot()) {
      metrics.providerBreakerState.set({ provider: boundedLabel("provider", b.provider), model: boundedLabel("model", b.model) }, breakerLevel[b.state]);
    }
  });

  return {
    providers,
    candidates: router.candidates,
    breakers: router.breakers,
    invalidate: rules.invalidate,
    close: async () => {
      stopBreakerGauge();
      await rules.close();
    },
    latencies: (): Record<string, number> => ({ ...router.latencyMs }),
    deploymentStrategy,
    prepare: rules.prepare,

    /** Where the call would go and what it would cost, without calling or reserving anything. */
    async estimate(req: ProviderCallRequest, attribution: Attribution): Promise<EstimateResult> {
      const prepared = await rules.prepare(attribution);
      const { decision } = router.decide(req, prepared);
      const estimate = estimateOf(decision.chosen[0]!, req, prepared.prices);
      const maxOutputTokens = req.operation === "ai.embed" ? 0 : estimate.tokens.output;
      const reservation = worstEstimate(candidatesToTry(decision, req, prepared), req, prepared.prices);
      return { decision, estimate, reservation, inputTokens: estimate.tokens.uncachedInput, maxOutputTokens, prices: prepared.prices, rules: prepared.rules };
    },

    /**
     * The rules for a request of an API key, after counting it against the key's per-minute
     * limit of provider requests (direct calls and jobs): 429 `rate_limited` beyond it.
     */
    async admit(apiKeyId: string | undefined, attribution: Pick<Attribution, "organizationId" | "teamId" | "runId">): Promise<Prepared> {
      const prepared = await rules.prepare(attribution);
      const limit = prepared.rules.requestsPerMinutePerKey;
      if (limit !== null && apiKeyId && !(await countRequest(db, `api_key:${apiKeyId}`, limit))) {
        metrics.providerRefusals.inc({ reason: "rate_limited" });
        throw rateLimitRefusal(`this API key may make ${limit} provider requests per minute`);
      }
      return prepared;
    },

    /** One call: rules → route → reserve → try the candidates → settle. */
    async call(args: CallArgs): Promise<CallResult> {
      const { request, attribution } = args;
      const started = now();
      const prepared = args.prepared ?? (await rules.prepare(attribution));
      const { decision, advisoryBreaker, hold } = await countRefusal(async () => {
        const routed = router.decide(request, prepared);
        return { ...routed, hold: await reserveBudget(db, { request, attribution, prepared, decision: routed.decision }, log) };
      });
      const outcome = await tryCandidates(failover, { candidates: hold.candidates, request, signal: args.signal, stream: args.stream === true, advisoryBreaker, ...(args.onDelta ? { onDelta: args.onDelta } : {}) });
      const settle = (settlement: Parameters<typeof settleCall>[1]["settlement"]) => settleCall(db, { hold, request, attribution, prepared, candidate: outcome.candidate, settlement }, log);
      if (!outcome.ok) {
        await settle(failedSettlement(outcome.candidate, outcome.errorCode, now() - started, outcome.maybeBilled));
        throw outcome.error;
      }
      const { candidate, answer } = outcome;
      const model = answer.model || candidate.model;
      const actual = priceOf(candidate.provider, model, answer.usage, prepared.prices);
      const usageRecordId = await settle(succeededSettlement({ provider: candidate.provider, model }, answer.usage, actual, now() - started, outcome.maybeBilled));
      recordCallOutcome(candidate.provider, model, actual, outcome.attempts);
      return {
        provider: candidate.provider,
        model,
        ...(answer.generate ? { generate: answer.generate } : {}),
        ...(answer.embed ? { embed: answer.embed } : {}),
        usage: answer.usage,
        // What the record holds: the reservation under a budget, else the answering model's bound.
        estimate: hold.reservation ? hold.worst : estimateOf(candidate, request, prepared.prices),
        actual,
        priceTable: prepared.prices.version,
        decision,
        attempts: outcome.attempts,
        usageRecordId,
      };
    },
  };
}

/** The answer's actual cost; a usage the price table cannot price is reported, never thrown. */
function priceOf(provider: string, model: string, usage: Usage, prices: PriceTable): Cost | { status: "error"; reason: string } {
  try {
    return actualCost({ provider, model, usage }, prices);
  } catch (err) {
    return { status: "error", reason: err instanceof Error ? err.message : String(err) };
  }
}

const breakerLevel = { closed: 0, half_open: 1, open: 2 } as const;

/** Refusals before any provider is called (policy, budget, rate limit) counted by their stable code. */
async function countRefusal<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DomainError && (err.kind === "resource_exhausted" || err.kind === "permission_denied")) metrics.providerRefusals.inc({ reason: boundedLabel("refusal", err.code) });
    throw err;
  }
}

/** Cost of an answered call, and a fallback for each provider that failed before it answered. */
function recordCallOutcome(provider: string, model: string, actual: Cost | { status: "error" }, attempts: readonly CallAttempt[]): void {
  if ("totalNanoUsd" in actual) metrics.providerCostUsd.inc({ provider: boundedLabel("provider", provider), model: boundedLabel("model", model) }, Number(actual.totalNanoUsd) / 1e9);
  for (const a of attempts) if (a.error && !a.error.startsWith("skipped")) metrics.providerFallbacks.inc({ provider: boundedLabel("provider", a.provider) });
}
