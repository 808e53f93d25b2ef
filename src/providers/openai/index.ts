import type OpenAI from "openai";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import { ProviderError, registerSdkErrors, throwIfAborted, toProviderError } from "../errors.js";
import {
  normalizeMessages,
  type EmbedResult,
  type GenerateRequest,
  type GenerateResult,
  type Provider,
  type StreamChunk,
  type Usage,
} from "../provider.js";
import { withOutputLimit } from "../output-limit.js";

/** Chat models served, cheapest general-purpose first (the default). */
export const OPENAI_MODELS = ["gpt-4.1-mini", "gpt-4.1", "gpt-4o-mini", "gpt-4o", "gpt-4.1-nano"] as const;
export const OPENAI_EMBEDDING_MODELS = ["text-embedding-3-small", "text-embedding-3-large"] as const;

export interface OpenAIProviderOptions {
  apiKey: string;
  /** Defaults to https://api.openai.com/v1. Point at a fake or any OpenAI-compatible server. */
  baseURL?: string;
  /** Per-request timeout; defaults to the SDK's (10 minutes). */
  timeoutMs?: number;
  models?: readonly string[];
  embeddingModels?: readonly string[];
}

export const OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1";

const NAME = "openai";

/** Request body shared by plain and streaming calls (a pure function of the request). */
export function toChatCompletionParams(req: GenerateRequest, defaultModel: string) {
  const { systemParts, turns } = normalizeMessages(NAME, req);
  const messages: ChatCompletionMessageParam[] = [
    ...systemParts.map((content): ChatCompletionMessageParam => ({ role: "system", content })),
    ...turns.map((m): ChatCompletionMessageParam => ({ role: m.role, content: m.content }) as ChatCompletionMessageParam),
  ];
  return {
    model: req.model ?? defaultModel,
    messages,
    // `max_tokens` is deprecated and rejected by reasoning models.
    ...(req.maxTokens !== undefined ? { max_completion_tokens: req.maxTokens } : {}),
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
  };
}

/** `prompt_tokens` already includes cached tokens, which is what `Usage.inputTokens` means. */
export function toUsage(u: OpenAI.CompletionUsage): Usage {
  const usage: Usage = { inputTokens: u.prompt_tokens, outputTokens: u.completion_tokens };
  const cached = u.prompt_tokens_details?.cached_tokens;
  if (cached) usage.cachedInputTokens = cached;
  return usage;
}

export function createOpenAIProvider(opts: OpenAIProviderOptions): Provider {
  // Retries happen once, in retry.ts; the SDK's own would multiply them.
  // The SDK is loaded on the first call, not at start-up (see registerSdkErrors).
  let loading: Promise<OpenAI> | undefined;
  const sdkClient = () =>
    (loading ??= import("openai").then(({ default: OpenAI }) => {
      registerSdkErrors({ openai: OpenAI });
      return new OpenAI({
        apiKey: opts.apiKey,
        maxRetries: 0,
        // Always explicit: left unset, the SDK would read its base URL from process.env and
        // bypass the validated configuration handed to createProviders.
        baseURL: opts.baseURL ?? OPENAI_DEFAULT_BASE_URL,
        ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
      });
    }));
  const models = opts.models ?? OPENAI_MODELS;
  const embeddingModels = opts.embeddingModels ?? OPENAI_EMBEDDING_MODELS;
  const defaultModel = models[0] ?? OPENAI_MODELS[0];

  return withOutputLimit({
    name: NAME,
    tier: "premium",
    local: false,
    models,
    embeddingModels,
    operations: ["ai.generate", "ai.embed"],

    async generate(req): Promise<GenerateResult> {
      try {
        const res = await (await sdkClient()).chat.completions.create(toChatCompletionParams(req, defaultModel), { signal: req.signal });
        const choice = res.choices[0];
        if (!res.usage) throw new ProviderError({ provider: NAME, errorClass: "transient", message: "openai: response without usage" });
        return {
          text: choice?.message.content ?? "",
          model: res.model,
          provider: NAME,
          usage: toUsage(res.usage),
          ...(choice?.finish_reason ? { finishReason: choice.finish_reason } : {}),
        };
      } catch (err) {
        throw toProviderError(NAME, err, req.signal);
      }
    },

    async *stream(req): AsyncIterable<StreamChunk> {
      let text = "";
      let model = req.model ?? defaultModel;
      let finishReason: string | undefined;
      let usage: Usage | undefined;
      try {
        const stream = await (await sdkClient()).chat.completions.create(
          // Without include_usage a stream carries no usage at all; with it, usage arrives
          // only in a final chunk whose `choices` is empty.
          { ...toChatCompletionParams(req, defaultModel), stream: true, stream_options: { include_usage: true } },
          { signal: req.signal },
        );
        for await (const chunk of stream) {
          model = chunk.model || model;
          if (chunk.usage) usage = toUsage(chunk.usage);
          const choice = chunk.choices[0];
          if (choice?.finish_reason) finishReason = choice.finish_reason;
          const delta = choice?.delta?.content;
          if (delta) {
            text += delta;
            yield { type: "delta", text: delta };
          }
        }
      } catch (err) {
        throw toProviderError(NAME, err, req.signal);
      }
      // Both SDKs end a stream silently (no throw) when its signal aborts; without this
      // check an aborted stream would look like a truncated one.
      throwIfAborted(NAME, req.signal);
      if (!finishReason || !usage) {
        // The stream ended without `finish_reason` / the usage chunk: the connection was cut
        // (or a proxy swallowed the tail). Surfacing it keeps a partial answer from being
        // billed and stored as complete.
        throw new ProviderError({
          provider: NAME,
          errorClass: "transient",
          message: `openai: stream ended before ${finishReason ? "the usage chunk" : "finish_reason"}`,
        });
      }
      yield { type: "done", result: { text, model, provider: NAME, usage, finishReason } };
    },

    async embed(input, embedOpts): Promise<EmbedResult> {
      try {
        const res = await (await sdkClient()).embeddings.create(
          // Explicit float: the SDK otherwise asks for base64 and decodes it itself.
          { model: embedOpts.model ?? embeddingModels[0] ?? OPENAI_EMBEDDING_MODELS[0], input, encoding_format: "float" },
          { signal: embedOpts.signal },
        );
        const embeddings = [...res.data].sort((a, b) => a.index - b.index).map((d) => d.embedding);
        return { embeddings, model: res.model, provider: NAME, usage: { inputTokens: res.usage.prompt_tokens, outputTokens: 0 } };
      } catch (err) {
        throw toProviderError(NAME, err, embedOpts.signal);
      }
    },
  });
}
