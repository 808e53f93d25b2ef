/**
 * ProviderService: direct provider calls over the API (execute, streamed execute, cost
 * estimate) and the providers list. Every call goes through the provider gateway — the
 * same router, policy, budget reservation and usage record as a workflow's provider node —
 * after this edge's own checks: the request's shape, the team it is billed to (which must
 * exist and allow the caller `provider.execute`), and the per-API-key rate limit.
 */
import { create } from "@bufbuild/protobuf";
import { and, eq } from "drizzle-orm";
import {
  BudgetCheckSchema,
  CallCostSchema,
  EmbeddingSchema,
  EstimateCostResponseSchema,
  ExecuteResponseSchema,
  ExecuteStreamResponseSchema,
  ListProvidersResponseSchema,
  ModelInfoSchema,
  ProviderInfoSchema,
  RoutingDecisionSchema,
  TokenUsageSchema,
  type EstimateCostRequest,
  type ExecuteRequest,
  type ExecuteResponse,
  type ExecuteStreamRequest,
  type ExecuteStreamResponse,
  type ListProvidersRequest,
  type ProviderCall,
  type RoutingDecision,
} from "../../../gen/proto/fabric/v1/providers_pb.js";
import type { Db } from "../../db/database.js";
import { committedNanoUsd, type Attribution } from "../../db/usage.js";
import { teams } from "../../db/schema.js";
import { DomainError, invalidArgument, notFound, type Issue } from "../../domain/errors.js";
import { formatUsd, formatUsdPerMTok, lookupPrice, type Cost } from "../../domain/pricing.js";
import { qualityOf, RoutingError, type RouteDecision, type RoutingExplanation } from "../../domain/routing.js";
import { parseProviderCallSettings, providerCallLimits, type ProviderCallRequest } from "../../domain/provider-call.js";
import type { Usage } from "../../providers/provider.js";
import { mayRead, requirePermission } from "../access/permission-checks.js";
import { isUuid, type CallContext } from "../call-context.js";
import { ProviderCallError, type CallResult, type ProviderGateway } from "../../gateway/index.js";


export function createProviderService(deps: { db: Db; gateway: ProviderGateway }) {
  const { db, gateway } = deps;

  /** The team a call is billed to, as stored (ids compare as text in scope keys): one of the caller's organization, else not found. */
  async function teamOf(ctx: CallContext, teamId: string): Promise<string | null> {
    if (!teamId) return null;
    const [team] = isUuid(teamId) ? await db.select({ id: teams.id }).from(teams).where(and(eq(teams.id, teamId.toLowerCase()), eq(teams.organizationId, ctx.caller.organizationId))) : [];
    if (!team) throw notFound("team", teamId);
    return team.id;
  }

  /** The attribution of a direct call, after checking the team it is billed to. */
  async function attributionOf(ctx: CallContext, teamId: string, action: "provider.execute" | "provider.read"): Promise<Attribution> {
    const team = await teamOf(ctx, teamId);
    requirePermission(ctx, action, { teamId: team });
    return { organizationId: ctx.caller.organizationId, teamId: team, principalId: ctx.caller.principalId || null, apiKeyId: ctx.caller.apiKeyId ?? null, runId: null, nodeKey: null };
  }

  async function start(ctx: CallContext, call: ProviderCall | undefined, stream: boolean) {
    const request = parseProviderCall(call, { stream });
    const attribution = await attributionOf(ctx, call?.teamId ?? "", "provider.execute");
    const prepared = await gateway.admit(ctx.caller.apiKeyId, attribution);
    return { request, attribution, prepared };
  }

  return {
    async listProviders(ctx: CallContext, _req: ListProvidersRequest) {
      const prepared = await gateway.prepare({ organizationId: ctx.caller.organizationId, teamId: null, runId: null });
      const latencies = gateway.latencies();
      const providers = gateway.providers.map((p) => {
        const models = gateway.candidates
          .filter((c) => c.provider === p.name)
          .map((c) => {
            const op = c.operations[0]!;
            const price = lookupPrice(prepared.prices, c.provider, c.model)?.price;
            const quality = qualityOf(c.model);
            const latency = latencies[`${c.provider}/${c.model}`];
            return create(ModelInfoSchema, {
              name: c.model,
              operation: op,
              inputUsdPerMtok: price ? formatUsdPerMTok(price.inputNanoUsd) : "",
              outputUsdPerMtok: price ? formatUsdPerMTok(price.outputNanoUsd) : "",
              cachedInputUsdPerMtok: price?.cachedInputNanoUsd !== undefined ? formatUsdPerMTok(price.cachedInputNanoUsd) : "",
              ...(quality !== undefined ? { quality } : {}),
              breaker: gateway.breakers.inspect(c.provider, c.model).state,
              ...(latency !== undefined ? { latencyMs: Math.round(latency * 1000) / 1000 } : {}),
            });
          });
        const open = models.filter((m) => m.breaker === "open").length;
        return create(ProviderInfoSchema, {
          name: p.name,
          tier: p.tier,
          local: p.local,
          stub: gateway.candidates.some((c) => c.provider === p.name && c.stub === true),
          operations: [...p.operations],
          modalities: p.operations.map((o) => (o === "ai.embed" ? "embedding" : "text")),
          models,
          health: open === 0 ? "healthy" : open === models.length ? "unavailable" : "degraded",
        });
      });
      return create(ListProvidersResponseSchema, { providers, priceTable: prepared.prices.version, defaultStrategy: gateway.deploymentStrategy });
    },

    async execute(ctx: CallContext, req: ExecuteRequest) {
      const { request, attribution, prepared } = await start(ctx, req.call, false);
      try {
        return executeResponse(await gateway.call({ request, attribution, prepared, signal: ctx.signal }));
      } catch (err) {
        throw toDomain(err);
      }
    },

    /**
     * Starts the call before answering: a refusal or a failure before the first token is an
     * error response (4xx/5xx, a gRPC status), not an event on an open stream.
     */
    async executeStream(ctx: CallContext, req: ExecuteStreamRequest): Promise<AsyncGenerator<ExecuteStreamResponse>> {
      const { request, attribution, prepared } = await start(ctx, req.call, true);
      const queue: string[] = [];
      let wake: (() => void) | undefined;
      let settled: { ok: true; result: CallResult } | { ok: false; error: unknown } | undefined;
      const signal = ctx.signal;
      void gateway
        .call({ request, attribution, prepared, signal, stream: true, onDelta: (t) => (queue.push(t), wake?.()) })
        .then(
          (result) => (settled = { ok: true, result }),
          (error) => (settled = { ok: false, error }),
        )
        .finally(() => wake?.());
      const next = () => new Promise<void>((resolve) => (wake = resolve));
      while (queue.length === 0 && !settled) await next();
      if (settled && !settled.ok && queue.length === 0) throw toDomain(settled.error);
      return (async function* () {
        for (;;) {
          while (queue.length > 0) yield create(ExecuteStreamResponseSchema, { chunk: { case: "delta", value: { $typeName: "fabric.v1.TextDelta", text: queue.splice(0).join("") } } });
          if (settled) {
            if (!settled.ok) throw toDomain(settled.error);
            yield create(ExecuteStreamResponseSchema, { chunk: { case: "result", value: executeResponse(settled.result) } });
            return;
          }
          await next();
        }
      })();
    },

    async estimateCost(ctx: CallContext, req: EstimateCostRequest) {
      const request = parseProviderCall(req.call, { stream: false });
      const attribution = await attributionOf(ctx, req.call?.teamId ?? "", "provider.read");
      let est;
      try {
        est = await gateway.estimate(request, attribution);
      } catch (err) {
        if (err instanceof RoutingError && err.options.code === "model_not_allowed") {
          return create(EstimateCostResponseSchema, { routing: routingMessage(err.explanation, null, []), allowed: false, refusalCode: "model_not_allowed", refusalMessage: err.message });
        }
        throw err;
      }
      const { decision, estimate, rules } = est;
      // Checked like the call would be: with what it would reserve.
      const nano = est.reservation.status === "priced" ? est.reservation.totalNanoUsd : null;
      let allowed = true;
      let refusalCode = "";
      let refusalMessage = "";
      const refuse = (code: string, message: string) => {
        if (allowed) [allowed, refusalCode, refusalMessage] = [false, code, message];
      };
      const budgeted = rules.charges.length > 0 || rules.maxRunCost !== null;
      if (budgeted && nano === null) refuse("model_unpriced", `${est.reservation.status === "unpriced" ? est.reservation.reason : "no price"}; a budgeted call needs a price`);
      if (rules.maxRunCost && nano !== null && nano > rules.maxRunCost.nanoUsd) refuse("budget_exceeded", `the estimate exceeds the ${rules.maxRunCost.scope}'s per-run cost cap of $${formatUsd(rules.maxRunCost.nanoUsd)}`);
      const committed = await committedNanoUsd(db, rules.charges);
      const budgets = rules.charges.map((c, i) => {
        const used = committed[i]!;
        const fits = nano !== null && used + nano <= c.limitNanoUsd;
        if (!fits && nano !== null) refuse("budget_exceeded", `the estimate does not fit ${c.label}`);
        // The amounts only for those who may read that budget; the verdict for everyone.
        const readable = mayRead(ctx, "budget.read", c.scopeKey.startsWith("team:") ? attribution.teamId : null);
        return create(BudgetCheckSchema, { scope: c.scopeKey.startsWith("org:") ? "organization" : "team", period: c.period, limitUsd: readable ? formatUsd(c.limitNanoUsd) : "", committedUsd: readable ? formatUsd(used) : "", fits });
      });
      return create(EstimateCostResponseSchema, {
        routing: routingMessage(decision.explanation, decision, []),
        estimatedUsd: estimate.status === "priced" ? estimate.usd : "",
        estimatedInputTokens: BigInt(est.inputTokens),
        maxOutputTokens: BigInt(est.maxOutputTokens),
        priceTable: est.prices.version,
        budgets,
        allowed,
        refusalCode,
        refusalMessage,
      });
    },
  };
}

/** Validates a ProviderCall into a gateway request; every problem is reported at once. */
export function parseProviderCall(call: ProviderCall | undefined, opts: { stream: boolean }): ProviderCallRequest {
  const issues: Issue[] = [];
  const bad = (path: string, message: string, code = "invalid_value") => issues.push({ path, code, message });
  const c = call;
  const operation = c?.operation || "ai.generate";
  const known = operation === "ai.generate" || operation === "ai.embed";
  if (!known) bad("/operation", "operation must be ai.generate or ai.embed");
  if (opts.stream && operation === "ai.embed") bad("/operation", "only ai.generate can be streamed");
  // The settings by the one rule of every call path; the proto's empty strings mean unset.
  const { settings, issues: settingIssues } = parseProviderCallSettings(
    { provider: c?.provider || undefined, model: c?.model || undefined, strategy: c?.strategy || undefined, tier: c?.tier || undefined, max_tokens: c?.maxTokens, temperature: c?.temperature },
    known ? operation : "ai.generate",
  );
  for (const i of settingIssues) bad(`/${i.setting}`, i.message, i.code);
  if (c?.teamId && !isUuid(c.teamId)) bad("/team_id", "team_id must be a team id (UUID)");
  const messages = c?.messages ?? [];
  const texts = c?.input ?? [];
  if (operation === "ai.embed") {
    if (texts.length === 0) bad("/input", "ai.embed needs at least one text in input", "required");
    if (texts.length > providerCallLimits.maxInputs) bad("/input", `at most ${providerCallLimits.maxInputs} texts`);
    if (c?.prompt || messages.length) bad("/prompt", "ai.embed takes input, not prompt or messages");
  } else {
    if (!c?.prompt && messages.length === 0) bad("/prompt", "ai.generate needs a prompt or messages", "required");
    if (c?.prompt && messages.length) bad("/messages", "give prompt or messages, not both");
    if (messages.length > providerCallLimits.maxMessages) bad("/messages", `at most ${providerCallLimits.maxMessages} messages`);
    messages.forEach((m, i) => {
      if (m.role !== "system" && m.role !== "user" && m.role !== "assistant") bad(`/messages/${i}/role`, "role must be system, user or assistant");
    });
    if (messages.length && !messages.some((m) => m.role !== "system")) bad("/messages", "messages need at least one user or assistant turn", "required");
    if (texts.length) bad("/input", "ai.generate takes prompt or messages, not input");
  }
  if (issues.length || !known) throw invalidArgument(issues.map((i) => i.message).join("; "), issues);
  const { maxTokens, temperature, stream: _stream, ...routing } = settings;
  const req: ProviderCallRequest = { operation, ...routing };
  if (operation === "ai.embed") req.texts = [...texts];
  else {
    if (c!.prompt) req.prompt = c!.prompt;
    if (messages.length) req.messages = messages.map((m) => ({ role: m.role as "system" | "user" | "assistant", content: m.content }));
    if (c!.system) req.system = c!.system;
    if (maxTokens !== undefined) req.maxTokens = maxTokens;
    if (temperature !== undefined) req.temperature = temperature;
  }
  return req;
}

/** A provider failure as the API reports it: never the provider's raw response, and retryable ones as `unavailable`. */
export function toDomain(err: unknown): unknown {
  if (!(err instanceof ProviderCallError)) return err;
  const e = err.providerError;
  const code = `provider_${e.errorClass}`;
  switch (e.errorClass) {
    case "invalid_request":
      return new DomainError("invalid_argument", `the provider refused the request: ${e.message}`, { code });
    case "auth":
      return new DomainError("failed_precondition", `${e.provider} refused this deployment's credentials`, { code });
    default: {
      const retryAfter = e.retryAfterMs !== undefined ? Math.max(1, Math.ceil(e.retryAfterMs / 1000)) : undefined;
      return new DomainError("unavailable", err.message, { code, ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}) });
    }
  }
}

function usageMessage(u: Usage) {
  return create(TokenUsageSchema, { inputTokens: BigInt(u.inputTokens), outputTokens: BigInt(u.outputTokens), cachedInputTokens: BigInt(u.cachedInputTokens ?? 0), cacheWriteTokens: BigInt(u.cacheWriteTokens ?? 0) });
}

const usd = (c: Cost | { status: "error" }) => (c.status === "priced" ? c.usd : "");

export function executeResponse(r: CallResult): ExecuteResponse {
  const unpriced = r.actual.status === "priced" ? "" : r.actual.status === "unpriced" ? r.actual.reason : r.actual.reason;
  return create(ExecuteResponseSchema, {
    text: r.generate?.text ?? "",
    finishReason: r.generate?.finishReason ?? "",
    embeddings: (r.embed?.embeddings ?? []).map((values) => create(EmbeddingSchema, { values })),
    provider: r.provider,
    model: r.model,
    usage: usageMessage(r.usage),
    cost: create(CallCostSchema, { estimatedUsd: usd(r.estimate), actualUsd: usd(r.actual), priceTable: r.priceTable, unpricedReason: unpriced }),
    routing: routingMessage(r.decision.explanation, r.decision, r.attempts, { provider: r.provider, model: r.model }),
    usageRecordId: String(r.usageRecordId),
  });
}

function routingMessage(x: RoutingExplanation, decision: RouteDecision | null, attempts: CallResult["attempts"], answered?: { provider: string; model: string }): RoutingDecision {
  const first = answered ?? (decision ? { provider: decision.chosen[0]!.provider, model: decision.chosen[0]!.model } : { provider: "", model: "" });
  return create(RoutingDecisionSchema, {
    strategy: x.strategy,
    provider: first.provider,
    model: first.model,
    why: x.why,
    candidates: x.candidates.map((c) => ({
      provider: c.provider,
      model: c.model,
      eligible: c.eligible,
      reasons: c.reasons,
      rank: c.rank ?? 0,
      estimatedUsd: c.estimatedCostNanoUsd === null ? "" : formatUsd(c.estimatedCostNanoUsd),
      breaker: c.breaker,
    })),
    attempts: attempts.map((a) => ({ provider: a.provider, model: a.model, error: a.error ?? "" })),
  });
}
