/**
 * Trying the candidates: in order (other providers before a failed provider's remaining
 * models), each behind its circuit breaker, falling back on retryable failures — never
 * after a stream has produced text, whose progress was already published. Breakers and
 * latencies are fed after every attempt.
 *
 * The outcome says which candidate answered (or failed last), so the caller can settle
 * the usage either way; and whether an attempt may have been billed without a result
 * (aborted or timed out mid-request, or a stream that broke after it began): then what it
 * cost is unknown, and the reservation must stay charged at its estimate.
 */
import { DomainError } from "../domain/errors.js";
import { observeAttempt } from "./call-telemetry.js";
import type { CircuitBreakers } from "../domain/circuit-breaker.js";
import type { ProviderCallRequest } from "../domain/provider-call.js";
import { candidateKey, updateLatencyEwma, type Candidate } from "../domain/routing.js";
import { ProviderError } from "../providers/errors.js";
import type { EmbedResult, GenerateRequest, GenerateResult, Provider, Usage } from "../providers/provider.js";

export interface CallAttempt {
  provider: string;
  model: string;
  error?: string;
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

/** What a provider answered. */
export interface ProviderAnswer {
  model: string;
  usage: Usage;
  generate?: GenerateResult;
  embed?: EmbedResult;
}

export type FailoverOutcome =
  | { ok: true; candidate: Candidate; answer: ProviderAnswer; attempts: CallAttempt[]; maybeBilled: boolean }
  | {
      ok: false;
      /** The candidate tried last (the first, when none could be tried). */
      candidate: Candidate;
      attempts: CallAttempt[];
      maybeBilled: boolean;
      /** The usage record's error code. */
      errorCode: string;
      /** What the call throws. */
      error: unknown;
    };

export interface FailoverDeps {
  providers: ReadonlyMap<string, Provider>;
  breakers: CircuitBreakers;
  latencyMs: Record<string, number>;
  now: () => number;
}

export async function tryCandidates(
  deps: FailoverDeps,
  args: { candidates: readonly Candidate[]; request: ProviderCallRequest; signal: AbortSignal; stream: boolean; onDelta?: (text: string) => void; advisoryBreaker: boolean },
): Promise<FailoverOutcome> {
  const { breakers, latencyMs, now } = deps;
  const { request: req, signal } = args;
  const attempts: CallAttempt[] = [];
  const failedProviders = new Set<string>();
  const queue = [...args.candidates];
  const streamState = { deltas: false };
  let last: ProviderError | undefined;
  let lastCandidate = args.candidates[0]!;
  let maybeBilled = false;

  while (queue.length > 0) {
    // Other providers before the failed ones' remaining models (stable otherwise).
    const index = queue.findIndex((c) => !failedProviders.has(c.provider));
    const candidate = queue.splice(index >= 0 ? index : 0, 1)[0]!;
    lastCandidate = candidate;
    const gate = breakers.tryAcquire(candidate.provider, candidate.model);
    if (!gate.allowsRequest && !args.advisoryBreaker) {
      attempts.push({ provider: candidate.provider, model: candidate.model, error: `skipped: breaker ${gate.reason}` });
      continue;
    }
    const t0 = now();
    try {
      const answer = await observeAttempt({ provider: candidate.provider, model: candidate.model, request: req, stream: args.stream }, (onFirstDelta) =>
        invoke(deps.providers.get(candidate.provider)!, candidate.model, req, signal, args.stream, streamState, (text) => {
          onFirstDelta();
          args.onDelta?.(text);
        }),
      );
      breakers.recordSuccess(candidate.provider, candidate.model);
      const key = candidateKey(candidate.provider, candidate.model);
      latencyMs[key] = updateLatencyEwma(latencyMs[key], Math.max(0, now() - t0));
      attempts.push({ provider: candidate.provider, model: candidate.model });
      return { ok: true, candidate, answer, attempts, maybeBilled };
    } catch (err) {
      if (!(err instanceof ProviderError)) {
        // Not the provider's verdict on its health (a bug, a malformed stream): neutral.
        breakers.recordFailure(candidate.provider, candidate.model, { retryable: false });
        return { ok: false, candidate, attempts, maybeBilled, errorCode: "internal", error: err };
      }
      breakers.recordFailure(candidate.provider, candidate.model, err);
      attempts.push({ provider: candidate.provider, model: candidate.model, error: `${err.errorClass}: ${err.message}` });
      last = err;
      if (streamState.deltas || err.errorClass === "aborted" || err.errorClass === "timeout" || signal.aborted) maybeBilled = true;
      if (streamState.deltas || !err.retryable || signal.aborted) {
        return { ok: false, candidate, attempts, maybeBilled, errorCode: `provider_${err.errorClass}`, error: new ProviderCallError(err, attempts, streamState.deltas) };
      }
      failedProviders.add(candidate.provider);
    }
  }
  if (last) return { ok: false, candidate: lastCandidate, attempts, maybeBilled, errorCode: `provider_${last.errorClass}`, error: new ProviderCallError(last, attempts, false) };
  return {
    ok: false,
    candidate: lastCandidate,
    attempts,
    maybeBilled,
    errorCode: "no_healthy_provider",
    error: new DomainError("unavailable", `no candidate could be called: ${summarizeAttempts(attempts)}`, { code: "no_healthy_provider" }),
  };
}

async function invoke(
  provider: Provider,
  model: string,
  req: ProviderCallRequest,
  signal: AbortSignal,
  stream: boolean,
  state: { deltas: boolean },
  onDelta: ((text: string) => void) | undefined,
): Promise<ProviderAnswer> {
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
