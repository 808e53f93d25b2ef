/**
 * What one provider call attempt leaves behind: a client span with the OpenTelemetry
 * GenAI semantic-convention attributes (`gen_ai.*`), and the provider metrics (calls by
 * outcome, latency, time to first token, tokens). The failover loop wraps each attempt in
 * `observeAttempt`; cost, fallbacks and refusals are counted by provider-gateway.ts, which
 * knows them.
 */
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import type { ProviderCallRequest } from "../domain/provider-call.js";
import { ProviderError } from "../providers/errors.js";
import { boundedLabel, metrics, startTimer } from "../telemetry/metrics.js";
import { withSpan } from "../telemetry/tracing.js";
import type { Usage } from "../providers/provider.js";

/** What the attempt answered (failover.ts's ProviderAnswer, as far as telemetry reads it). */
interface Answer {
  model: string;
  usage: Usage;
  generate?: { finishReason?: string | undefined };
}

export async function observeAttempt<A extends Answer>(
  target: { provider: string; model: string; request: ProviderCallRequest; stream: boolean },
  call: (onFirstDelta: () => void) => Promise<A>,
): Promise<A> {
  const provider = boundedLabel("provider", target.provider);
  const model = boundedLabel("model", target.model);
  const operation = target.request.operation === "ai.embed" ? "embeddings" : "chat";
  const elapsed = startTimer();
  let firstDelta = false;
  const onFirstDelta = () => {
    if (firstDelta) return;
    firstDelta = true;
    metrics.providerTimeToFirstToken.observe({ provider, model }, elapsed());
  };
  const attributes = {
    "gen_ai.operation.name": operation,
    "gen_ai.system": target.provider,
    "gen_ai.provider.name": target.provider,
    "gen_ai.request.model": target.model,
    ...(target.request.maxTokens !== undefined ? { "gen_ai.request.max_tokens": target.request.maxTokens } : {}),
    ...(target.request.temperature !== undefined ? { "gen_ai.request.temperature": target.request.temperature } : {}),
  };
  return withSpan(
    `${operation} ${target.model}`,
    attributes,
    async (span) => {
      try {
        const answer = await call(onFirstDelta);
        const seconds = elapsed();
        metrics.providerCalls.inc({ provider, model, outcome: "ok" });
        metrics.providerCallDuration.observe({ provider, model }, seconds);
        metrics.providerTokens.inc({ provider, model, direction: "input" }, answer.usage.inputTokens);
        metrics.providerTokens.inc({ provider, model, direction: "output" }, answer.usage.outputTokens);
        span?.setAttributes({
          "gen_ai.response.model": answer.model,
          "gen_ai.usage.input_tokens": answer.usage.inputTokens,
          "gen_ai.usage.output_tokens": answer.usage.outputTokens,
          ...(answer.generate?.finishReason ? { "gen_ai.response.finish_reasons": [answer.generate.finishReason] } : {}),
        });
        return answer;
      } catch (err) {
        const outcome = err instanceof ProviderError ? err.errorClass : "internal";
        metrics.providerCalls.inc({ provider, model, outcome });
        metrics.providerCallDuration.observe({ provider, model }, elapsed());
        span?.setAttribute("error.type", outcome);
        span?.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
        throw err;
      }
    },
    SpanKind.CLIENT,
  );
}
