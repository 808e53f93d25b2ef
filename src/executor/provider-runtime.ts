/**
 * The provider runtime: `ai.generate` and `ai.embed` through the router. The step's signal
 * reaches the provider request, so a timeout or cancel really aborts it.
 *
 * Per call:
 * 1. The request — operation, the `config.provider` / `config.model` pins (a provider pinned
 *    without a model means that provider's default model, as the adapters define it), `config.strategy`
 *    (else the deployment's `FABRIC_ROUTING_STRATEGY`), the input size and `config.max_tokens`
 *    for cost ranking — is routed over the enabled providers' candidates, with this runtime's
 *    breakers and observed latencies (an EWMA per provider/model, which is what `fastest` ranks).
 * 2. The chosen candidates are tried in order: `tryAcquire` before each call (a breaker that
 *    has opened since the decision skips it), `recordSuccess` / `recordFailure` after.
 *    A retryable ProviderError falls back to the next candidate, other providers' first (the
 *    failing provider's other models are the last resort). A non-retryable one fails at
 *    once; invalid_request / auth are the caller's mistake (`invalid_input`, not retried).
 *    A stream that already produced deltas is never failed over (the progress events already
 *    published that text): the attempt fails as transient and the node's retry policy decides.
 * 3. A breaker is advisory when only one candidate serves the request at all: refusing the
 *    only deployment there is would turn a possibly-working call into a certain failure (the
 *    gateways' "no cooldown for a single deployment" rule); the node's own retry policy and
 *    backoff already pace retries. Its outcomes are still recorded.
 * 4. The output carries `routing` (strategy, the provider/model that answered, every attempt,
 *    the router's explanation in one line) and `cost` (estimate before, actual after, as exact
 *    decimal USD strings; null with a reason when the model has no price).
 */
import type { Json, JsonObject } from "../domain/context.js";
import { createCircuitBreakers, type CircuitBreakerOptions, type CircuitBreakers } from "../domain/circuit-breaker.js";
import { actualCost, DEFAULT_PRICE_TABLE, estimateCost, type Cost, type PriceTable } from "../domain/pricing.js";
import {
  candidateKey,
  candidatesFromProviders,
  DEFAULT_ROUTING_STRATEGY,
  isRoutingStrategy,
  route,
  RoutingError,
  ROUTING_STRATEGIES,
  updateLatencyEwma,
  type Candidate,
  type RouteDecision,
  type RouteRequest,
  type RoutingStrategy,
} from "../domain/routing.js";
import { ProviderError } from "../providers/errors.js";
import type { ChatMessage, GenerateRequest, GenerateResult, Provider, Usage } from "../providers/provider.js";
import { invalidInput, StepError, type Runtime, type Step } from "./step.js";

type Operation = "ai.generate" | "ai.embed";

export interface ProviderRuntimeOptions {
  /** The deployment's strategy (`FABRIC_ROUTING_STRATEGY`); `config.strategy` wins per node. */
  strategy?: RoutingStrategy;
  /** Options for this runtime's breakers (one set per runtime, i.e. per executor process). */
  breakers?: CircuitBreakerOptions;
  prices?: PriceTable;
  /** Progress flush interval for streamed generations. Default 200 ms. */
  progressEveryMs?: number;
  /** Clock for latency measurement. Default `performance.now`. */
  now?: () => number;
}

export interface ProviderRuntime extends Runtime {
  /** This runtime's breakers (read them; tests and diagnostics). */
  readonly breakers: CircuitBreakers;
  /** Observed latency EWMA in ms by `provider/model`. */
  latencies(): Record<string, number>;
}

interface Attempt {
  provider: string;
  model: string;
  error?: string;
}

export function createProviderRuntime(providers: readonly Provider[], options: ProviderRuntimeOptions = {}): ProviderRuntime {
  const byName = new Map(providers.map((p) => [p.name, p]));
  const candidates = candidatesFromProviders(providers);
  const breakers = createCircuitBreakers(options.breakers);
  const latencyMs: Record<string, number> = {};
  const prices = options.prices ?? DEFAULT_PRICE_TABLE;
  const deploymentStrategy = options.strategy ?? DEFAULT_ROUTING_STRATEGY;
  const now = options.now ?? (() => performance.now());

  const decide = (request: RouteRequest): { decision: RouteDecision; advisoryBreaker: boolean } => {
    try {
      return { decision: route(request, candidates, { strategy: deploymentStrategy, prices, breakers, latencyMs }), advisoryBreaker: false };
    } catch (err) {
      if (!(err instanceof RoutingError)) throw err;
      if (err.code === "no_healthy_provider") {
        // Only breakers stand in the way: advisory when there is a single candidate at all.
        const unguarded = route(request, candidates, { strategy: deploymentStrategy, prices, latencyMs });
        if (unguarded.chosen.length === 1) {
          unguarded.explanation.why += ` Its breaker is open but advisory: it is the only candidate.`;
          return { decision: unguarded, advisoryBreaker: true };
        }
        throw new StepError("no_healthy_provider", err.message, "transient");
      }
      throw new StepError(err.code, err.message, "invalid_input");
    }
  };

  return {
    breakers,
    latencies: () => ({ ...latencyMs }),
    async execute(step) {
      const op = step.node.spec.operation as Operation;
      const call = parseCall(step, op);
      // A provider pinned without a model means its default model (the adapter contract), as
      // before routing existed: the node asked for that provider, not for a choice among its models.
      if (call.route.provider !== undefined && call.route.model === undefined) {
        const pinned = byName.get(call.route.provider);
        const fallbackModel = op === "ai.embed" ? pinned?.embeddingModels?.[0] : pinned?.models[0];
        if (fallbackModel !== undefined) call.route = { ...call.route, model: fallbackModel };
      }
      const { decision, advisoryBreaker } = decide(call.route);
      const strategy = decision.explanation.strategy;
      const attempts: Attempt[] = [];
      const failedProviders = new Set<string>();
      const queue = [...decision.chosen];
      let last: { candidate: Candidate; error: ProviderError } | undefined;

      while (queue.length > 0) {
        // Other providers before the failed ones' remaining models (stable otherwise).
        const index = queue.findIndex((c) => !failedProviders.has(c.provider));
        const candidate = queue.splice(index >= 0 ? index : 0, 1)[0]!;
        const provider = byName.get(candidate.provider)!;
        const gate = breakers.tryAcquire(candidate.provider, candidate.model);
        if (!gate.allowsRequest && !advisoryBreaker) {
          attempts.push({ provider: candidate.provider, model: candidate.model, error: `skipped: breaker ${gate.reason}` });
          continue;
        }
        const started = now();
        const streamState = { deltas: false };
        try {
          const result = await invoke(provider, candidate.model, call, step, streamState, options.progressEveryMs ?? 200);
          breakers.recordSuccess(candidate.provider, candidate.model);
          const key = candidateKey(candidate.provider, candidate.model);
          latencyMs[key] = updateLatencyEwma(latencyMs[key], Math.max(0, now() - started));
          attempts.push({ provider: candidate.provider, model: candidate.model });
          const output: JsonObject = { ...result.output };
          output["routing"] = { strategy, provider: candidate.provider, model: candidate.model, attempts: attempts as unknown as Json, why: decision.explanation.why };
          output["cost"] = costJson(
            estimateCost({ provider: candidate.provider, model: candidate.model, operation: op, inputChars: call.inputChars, ...(call.maxOutputTokens !== undefined ? { maxOutputTokens: call.maxOutputTokens } : {}) }, prices),
            safeActual(candidate.provider, result.model || candidate.model, result.usage, prices),
            prices,
          );
          return { output };
        } catch (err) {
          if (!(err instanceof ProviderError)) {
            // Not the provider's verdict on its health (a bug, a malformed stream): neutral.
            breakers.recordFailure(candidate.provider, candidate.model, { retryable: false });
            throw err;
          }
          breakers.recordFailure(candidate.provider, candidate.model, err);
          attempts.push({ provider: candidate.provider, model: candidate.model, error: `${err.errorClass}: ${err.message}` });
          last = { candidate, error: err };
          if (streamState.deltas && err.retryable) {
            throw new StepError(`provider_${err.errorClass}`, `${candidate.provider}/${candidate.model}: ${err.message} (after the stream began; not failed over)`, "transient");
          }
          if (!err.retryable || step.signal.aborted) throw stepErrorOf(err, attempts);
          failedProviders.add(candidate.provider);
        }
      }
      if (last) throw stepErrorOf(last.error, attempts);
      throw new StepError("no_healthy_provider", `no candidate could be called: ${summary(attempts)}`, "transient");
    },
  };
}

interface ParsedCall {
  route: RouteRequest;
  inputChars: number;
  maxOutputTokens?: number;
  texts?: string[];
  generate?: Omit<GenerateRequest, "model" | "signal">;
  stream: boolean;
}

function parseCall(step: Step, op: Operation): ParsedCall {
  const cfg = step.config;
  const pin = (field: "provider" | "model"): string | undefined => {
    const v = cfg[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string" || v === "") throw invalidInput(`config.${field} must be a non-empty string`);
    return v;
  };
  const provider = pin("provider");
  const model = pin("model");
  const rawStrategy = cfg["strategy"];
  if (rawStrategy !== undefined && !isRoutingStrategy(rawStrategy)) throw invalidInput(`config.strategy must be one of ${ROUTING_STRATEGIES.join(", ")}`);
  const maxTokens = cfg["max_tokens"];
  if (maxTokens !== undefined && !(typeof maxTokens === "number" && Number.isSafeInteger(maxTokens) && maxTokens >= 1)) throw invalidInput("config.max_tokens must be a positive integer");
  const base = {
    operation: op,
    ...(provider !== undefined ? { provider } : {}),
    ...(model !== undefined ? { model } : {}),
    ...(rawStrategy !== undefined ? { strategy: rawStrategy } : {}),
  };

  if (op === "ai.embed") {
    const input = step.inputs["input"];
    const texts = typeof input === "string" ? [input] : Array.isArray(input) && input.every((x) => typeof x === "string") ? (input as string[]) : null;
    if (!texts) throw invalidInput("inputs.input must be a string or a list of strings");
    const inputChars = texts.reduce((n, t) => n + t.length, 0);
    return { route: { ...base, inputChars }, inputChars, texts, stream: false };
  }
  const prompt = step.inputs["prompt"];
  const messages = step.inputs["messages"];
  if (typeof prompt !== "string" && !Array.isArray(messages)) throw invalidInput("inputs.prompt (a string) or inputs.messages (a list) is required");
  const temperature = cfg["temperature"];
  const system = cfg["system"];
  const msgs = Array.isArray(messages) ? (messages as unknown as ChatMessage[]) : undefined;
  const generate = {
    prompt: typeof prompt === "string" ? prompt : undefined,
    messages: msgs,
    system: typeof system === "string" ? system : undefined,
    maxTokens: typeof maxTokens === "number" ? maxTokens : undefined,
    temperature: typeof temperature === "number" ? temperature : undefined,
  };
  const inputChars =
    (msgs ? msgs.reduce((n, m) => n + (typeof m?.content === "string" ? m.content.length : 0), 0) : (generate.prompt?.length ?? 0)) + (generate.system?.length ?? 0);
  const maxOutputTokens = typeof maxTokens === "number" ? maxTokens : undefined;
  return {
    route: { ...base, inputChars, ...(maxOutputTokens !== undefined ? { maxOutputTokens } : {}) },
    inputChars,
    ...(maxOutputTokens !== undefined ? { maxOutputTokens } : {}),
    generate,
    stream: cfg["stream"] !== false,
  };
}

async function invoke(
  provider: Provider,
  model: string,
  call: ParsedCall,
  step: Step,
  streamState: { deltas: boolean },
  progressEveryMs: number,
): Promise<{ output: JsonObject; model: string; usage: Usage }> {
  if (call.texts) {
    if (!provider.embed) throw invalidInput(`provider ${provider.name} cannot embed`);
    const r = await provider.embed(call.texts, { model, signal: step.signal });
    return { output: { embeddings: r.embeddings, model: r.model, provider: r.provider, usage: usageJson(r.usage) }, model: r.model, usage: r.usage };
  }
  const request: GenerateRequest = { ...call.generate, model, signal: step.signal };
  const r = call.stream ? await streamWithProgress(provider, request, step, streamState, progressEveryMs) : await provider.generate(request);
  const output: JsonObject = { text: r.text, model: r.model, provider: r.provider, usage: usageJson(r.usage) };
  if (r.finishReason) output["finish_reason"] = r.finishReason;
  return { output, model: r.model, usage: r.usage };
}

function stepErrorOf(err: ProviderError, attempts: Attempt[]): StepError {
  const cls = err.errorClass === "invalid_request" || err.errorClass === "auth" ? "invalid_input" : err.errorClass === "timeout" ? "timeout" : err.errorClass === "aborted" ? "cancelled" : "transient";
  const message = attempts.length > 1 ? `${err.message} (attempts: ${summary(attempts)})` : `${err.provider}: ${err.message}`;
  return new StepError(`provider_${err.errorClass}`, message, cls);
}

function summary(attempts: Attempt[]): string {
  return attempts.map((a) => `${a.provider}/${a.model}${a.error ? ` ✗ ${a.error}` : " ✓"}`).join("; ");
}

function safeActual(provider: string, model: string, usage: Usage, prices: PriceTable): Cost | { status: "error"; reason: string } {
  try {
    return actualCost({ provider, model, usage }, prices);
  } catch (err) {
    return { status: "error", reason: err instanceof Error ? err.message : String(err) };
  }
}

function costJson(estimate: Cost, actual: Cost | { status: "error"; reason: string }, prices: PriceTable): JsonObject {
  const out: JsonObject = {
    estimated_usd: estimate.status === "priced" ? estimate.usd : null,
    actual_usd: actual.status === "priced" ? actual.usd : null,
    price_table: prices.version,
  };
  if (estimate.status === "unpriced") out["estimated_unpriced_reason"] = estimate.reason;
  if (actual.status !== "priced") out["actual_unpriced_reason"] = actual.reason;
  return out;
}

/**
 * Streams the generation, reporting the text as `workflow.node.progress` events at most
 * every `progressEveryMs`, so the deltas of a node's progress events concatenate to
 * exactly its final text. A generation whose tokens all arrive within one interval
 * reports no progress at all: its completion event says everything.
 */
async function streamWithProgress(provider: Provider, request: GenerateRequest, step: Step, state: { deltas: boolean }, progressEveryMs: number): Promise<GenerateResult> {
  let pending = "";
  let chars = 0;
  let lastFlush = 0; // set by the first delta: waiting for the first token is not progress
  let flushed = false;
  let writing: Promise<void> = Promise.resolve();
  const flush = () => {
    if (!pending) return;
    const delta = pending;
    pending = "";
    lastFlush = Date.now();
    flushed = true;
    writing = writing.then(() => step.progress({ delta, chars }));
  };
  for await (const chunk of provider.stream(request)) {
    if (chunk.type === "done") {
      if (flushed) flush();
      await writing;
      return chunk.result;
    }
    if (chunk.text) state.deltas = true;
    if (!lastFlush) lastFlush = Date.now();
    pending += chunk.text;
    chars += chunk.text.length;
    if (Date.now() - lastFlush >= progressEveryMs) flush();
  }
  throw new StepError("provider_transient", `${provider.name}: the stream ended without a result`, "transient");
}

function usageJson(u: { inputTokens: number; outputTokens: number; cachedInputTokens?: number; cacheWriteTokens?: number }): JsonObject {
  const out: JsonObject = { input_tokens: u.inputTokens, output_tokens: u.outputTokens };
  if (u.cachedInputTokens !== undefined) out["cached_input_tokens"] = u.cachedInputTokens;
  if (u.cacheWriteTokens !== undefined) out["cache_write_tokens"] = u.cacheWriteTokens;
  return out;
}
