/**
 * `max_tokens` as a hard limit, whatever the provider does. A budget reserves the most a
 * call can cost — its input plus `max_tokens` of output (domain/pricing.ts `estimateCost`) —
 * so no answer may be billed or delivered beyond it, even from a provider that ignores the
 * limit or misreports its usage. Every adapter wraps itself with `withOutputLimit`:
 *
 * - the limit is the request's `maxTokens`, or `DEFAULT_ESTIMATE_MAX_OUTPUT_TOKENS` (the
 *   output an estimate assumes) when it has none;
 * - text is measured the way estimates and echo count tokens: 4 characters a token. A reply
 *   longer than `limit × 4` characters is cut there (never inside a surrogate pair) and
 *   finishes with reason `length`;
 * - a stream is read only up to the limit: the delta that crosses it is cut, the upstream
 *   iterator is closed (the adapters then abort their HTTP request), and the stream ends
 *   with a `done` whose usage is the input estimate and `limit` output tokens;
 * - reported output tokens above the limit are billed as the limit.
 *
 * What an answer is billed is further capped at the reservation (gateway/budget-reservation.ts),
 * which covers input tokens a provider over-reports.
 */
import { DEFAULT_ESTIMATE_MAX_OUTPUT_TOKENS } from "../domain/pricing.js";
import type { GenerateRequest, GenerateResult, Provider, StreamChunk } from "./provider.js";

/** Characters per token of the platform's own count (echo, estimates, the fakes). */
export const CHARS_PER_TOKEN = 4;

/** The output tokens a request may produce. */
export const outputLimitOf = (req: Pick<GenerateRequest, "maxTokens">): number => req.maxTokens ?? DEFAULT_ESTIMATE_MAX_OUTPUT_TOKENS;

/** `text` cut to at most `max` UTF-16 units, never between the halves of a surrogate pair. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max);
  const last = text.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end--;
  return text.slice(0, end);
}

/** The result within the limit: text cut, output tokens capped. */
export function limitResult(r: GenerateResult, limit: number): GenerateResult {
  const maxChars = limit * CHARS_PER_TOKEN;
  const cut = r.text.length > maxChars;
  const outputTokens = Math.min(r.usage.outputTokens, limit);
  if (!cut && outputTokens === r.usage.outputTokens) return r;
  return {
    ...r,
    text: cut ? cutText(r.text, maxChars) : r.text,
    usage: { ...r.usage, outputTokens },
    ...(cut ? { finishReason: "length" } : {}),
  };
}

/** Input characters of a request, counted as estimates count them (system + every turn, or the prompt). */
function inputCharsOf(req: GenerateRequest): number {
  const turns = req.messages ? req.messages.reduce((n, m) => n + (typeof m?.content === "string" ? m.content.length : 0), 0) : (req.prompt?.length ?? 0);
  return turns + (req.system?.length ?? 0);
}

/** `provider` with `max_tokens` enforced on `generate` and `stream` (see above). */
export function withOutputLimit<P extends Provider>(provider: P): P {
  const generate = provider.generate.bind(provider);
  const stream = provider.stream.bind(provider);
  return {
    ...provider,
    async generate(req: GenerateRequest): Promise<GenerateResult> {
      return limitResult(await generate(req), outputLimitOf(req));
    },
    async *stream(req: GenerateRequest): AsyncIterable<StreamChunk> {
      const limit = outputLimitOf(req);
      const maxChars = limit * CHARS_PER_TOKEN;
      let text = "";
      const upstream = stream(req)[Symbol.asyncIterator]();
      try {
        for (;;) {
          const next = await upstream.next();
          if (next.done) return;
          const chunk = next.value;
          if (chunk.type === "done") {
            yield { type: "done", result: limitResult(chunk.result, limit) };
            return;
          }
          if (text.length + chunk.text.length <= maxChars) {
            text += chunk.text;
            yield chunk;
            continue;
          }
          // Past the limit: deliver up to it, stop reading, and bill the worst case.
          const head = cutText(chunk.text, maxChars - text.length);
          text += head;
          if (head) yield { type: "delta", text: head };
          yield {
            type: "done",
            result: {
              text,
              model: req.model ?? provider.models[0] ?? "",
              provider: provider.name,
              usage: { inputTokens: Math.ceil(inputCharsOf(req) / CHARS_PER_TOKEN), outputTokens: limit },
              finishReason: "length",
            },
          };
          return;
        }
      } finally {
        // Closes the adapter's generator early (a no-op after it finished): its SDK stream or
        // fetch body is released and the request aborted.
        await upstream.return?.()?.catch(() => undefined);
      }
    },
  };
}
