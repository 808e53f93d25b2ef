/**
 * Where a call goes: the domain's router over this deployment's candidates (one per model
 * of each provider), with the call's allow-lists and prices, and this process's circuit
 * breakers and observed latencies — which the failover feeds after each attempt.
 */
import { createCircuitBreakers, type CircuitBreakerOptions, type CircuitBreakers } from "../domain/circuit-breaker.js";
import { inputChars, type ProviderCallRequest } from "../domain/provider-call.js";
import { candidatesFromProviders, route, RoutingError, type Candidate, type RouteDecision, type RouteRequest, type RoutingStrategy } from "../domain/routing.js";
import type { Provider } from "../providers/provider.js";
import type { Prepared } from "./rules-cache.js";

export interface CallRouter {
  readonly candidates: readonly Candidate[];
  readonly breakers: CircuitBreakers;
  /** Observed latency by `provider/model` (an EWMA, see `updateLatencyEwma`); the failover writes it. */
  readonly latencyMs: Record<string, number>;
  /**
   * The decision for a request under `prepared`'s rules. `advisoryBreaker`: the only
   * candidate there is has an open breaker, and is tried anyway.
   */
  decide(request: ProviderCallRequest, prepared: Prepared): { decision: RouteDecision; advisoryBreaker: boolean };
}

export function createCallRouter(providers: readonly Provider[], options: { strategy: RoutingStrategy; breakers?: CircuitBreakerOptions }): CallRouter {
  const byName = new Map(providers.map((p) => [p.name, p]));
  const candidates = candidatesFromProviders(providers);
  const breakers = createCircuitBreakers(options.breakers);
  const latencyMs: Record<string, number> = {};

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

  return {
    candidates,
    breakers,
    latencyMs,
    /**
     * A breaker is advisory when only one candidate serves the request at all: refusing the
     * only deployment there is would turn a possibly-working call into a certain failure
     * (the gateways' "no cooldown for a single deployment" rule).
     */
    decide(req, prepared) {
      const request = routeRequest(req);
      const opts = { strategy: options.strategy, prices: prepared.prices, policies: prepared.rules.routing, latencyMs };
      try {
        return { decision: route(request, candidates, { ...opts, breakers }), advisoryBreaker: false };
      } catch (err) {
        if (!(err instanceof RoutingError) || err.options.code !== "no_healthy_provider") throw err;
        const unguarded = route(request, candidates, opts);
        if (unguarded.chosen.length !== 1) throw err;
        unguarded.explanation.why += ` Its breaker is open but advisory: it is the only candidate.`;
        return { decision: unguarded, advisoryBreaker: true };
      }
    },
  };
}
