import type Anthropic from "@anthropic-ai/sdk";
import { ProviderError, registerSdkErrors, throwIfAborted, toProviderError } from "../errors.js";
import { normalizeMessages, type GenerateRequest, type GenerateResult, type Provider, type StreamChunk, type Usage } from "../provider.js";
import { withOutputLimit } from "../output-limit.js";

/** Chat models served; the first is the default. */
// (claude-sonnet-4-5 and claude-opus-4-5 are on the SDK's deprecation list, which makes it
// console.warn on every call.)
export const ANTHROPIC_MODELS = ["claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-6"] as const;

/** Anthropic requires max_tokens on every request; this is used when the caller sets none. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

export interface AnthropicProviderOptions {
  apiKey: string;
  /** Defaults to https://api.anthropic.com. */
  baseURL?: string;
  /** Per-request timeout; defaults to the SDK's (10 minutes). */
  timeoutMs?: number;
  models?: readonly string[];
}

export const ANTHROPIC_DEFAULT_BASE_URL = "https://api.anthropic.com";

const NAME = "anthropic";

export function toMessageParams(req: GenerateRequest, defaultModel: string): Anthropic.MessageCreateParamsNonStreaming {
  const { systemParts, turns } = normalizeMessages(NAME, req);
  return {
    model: req.model ?? defaultModel,
    max_tokens: req.maxTokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS,
    messages: turns.map((m) => ({ role: m.role as "user" | "assistant", content: m.content })),
    ...(systemParts.length > 0 ? { system: systemParts.map((text) => ({ type: "text" as const, text })) } : {}),
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
  };
}

interface AnthropicUsageFields {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
}

/**
 * Anthropic's `input_tokens` excludes cache reads and writes; `Usage.inputTokens` includes
 * them (see provider.ts), so they are added back here.
 */
export function toUsage(u: AnthropicUsageFields): Usage {
  const cacheRead = u.cache_read_input_tokens ?? 0;
  const cacheWrite = u.cache_creation_input_tokens ?? 0;
  const usage: Usage = { inputTokens: (u.input_tokens ?? 0) + cacheRead + cacheWrite, outputTokens: u.output_tokens ?? 0 };
  if (cacheRead) usage.cachedInputTokens = cacheRead;
  if (cacheWrite) usage.cacheWriteTokens = cacheWrite;
  return usage;
}

/**
 * Folds one stream event's usage into the running totals. `message_start` carries input and
 * cache counts (and a placeholder output count); each `message_delta` carries the CUMULATIVE
 * output so far (and, on newer API versions, the input counts again) — so values replace,
 * never add.
 */
export function mergeStreamUsage(acc: AnthropicUsageFields, u: AnthropicUsageFields): AnthropicUsageFields {
  const next = { ...acc };
  for (const key of ["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"] as const) {
    const v = u[key];
    if (v !== null && v !== undefined) next[key] = v;
  }
  return next;
}

export function createAnthropicProvider(opts: AnthropicProviderOptions): Provider {
  // Retries happen once, in retry.ts; the SDK's own would multiply them.
  // The SDK is loaded on the first call, not at start-up (see registerSdkErrors).
  let loading: Promise<Anthropic> | undefined;
  const sdkClient = () =>
    (loading ??= import("@anthropic-ai/sdk").then(({ default: Anthropic }) => {
      registerSdkErrors({ anthropic: Anthropic });
      return new Anthropic({
        apiKey: opts.apiKey,
        authToken: null, // otherwise read from ANTHROPIC_AUTH_TOKEN
        maxRetries: 0,
        // Always explicit: left unset, the SDK would read its base URL from process.env and
        // bypass the validated configuration handed to createProviders.
        baseURL: opts.baseURL ?? ANTHROPIC_DEFAULT_BASE_URL,
        ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
      });
    }));
  const models = opts.models ?? ANTHROPIC_MODELS;
  const defaultModel = models[0] ?? ANTHROPIC_MODELS[0];

  return withOutputLimit({
    name: NAME,
    tier: "premium",
    local: false,
    models,
    embeddingModels: [],
    operations: ["ai.generate"],

    async generate(req): Promise<GenerateResult> {
      try {
        const msg = await (await sdkClient()).messages.create(toMessageParams(req, defaultModel), { signal: req.signal });
        const text = msg.content.flatMap((b) => (b.type === "text" ? [b.text] : [])).join("");
        return {
          text,
          model: msg.model,
          provider: NAME,
          usage: toUsage(msg.usage),
          ...(msg.stop_reason ? { finishReason: msg.stop_reason } : {}),
        };
      } catch (err) {
        throw toProviderError(NAME, err, req.signal);
      }
    },

    async *stream(req): AsyncIterable<StreamChunk> {
      let text = "";
      let model = req.model ?? defaultModel;
      let finishReason: string | undefined;
      let usage: AnthropicUsageFields = {};
      let stopped = false;
      try {
        // The raw event stream (not the SDK's MessageStream helper) so usage accounting is
        // explicit and visible here.
        const stream = await (await sdkClient()).messages.create({ ...toMessageParams(req, defaultModel), stream: true }, { signal: req.signal });
        for await (const event of stream) {
          switch (event.type) {
            case "message_start":
              model = event.message.model || model;
              usage = mergeStreamUsage(usage, event.message.usage);
              break;
            case "content_block_delta":
              if (event.delta.type === "text_delta" && event.delta.text) {
                text += event.delta.text;
                yield { type: "delta", text: event.delta.text };
              }
              break;
            case "message_delta":
              usage = mergeStreamUsage(usage, event.usage);
              if (event.delta.stop_reason) finishReason = event.delta.stop_reason;
              break;
            case "message_stop":
              stopped = true;
              break;
            default:
              break;
          }
        }
      } catch (err) {
        throw toProviderError(NAME, err, req.signal);
      }
      // Both SDKs end a stream silently (no throw) when its signal aborts; without this
      // check an aborted stream would look like a truncated one.
      throwIfAborted(NAME, req.signal);
      if (!stopped) {
        // Cut before message_stop: the output count is only a lower bound and the text is partial.
        throw new ProviderError({ provider: NAME, errorClass: "transient", message: "anthropic: stream ended before message_stop" });
      }
      yield {
        type: "done",
        result: { text, model, provider: NAME, usage: toUsage(usage), ...(finishReason ? { finishReason } : {}) },
      };
    },
  });
}
