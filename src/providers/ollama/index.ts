import { HttpStatusError, ProviderError, throwIfAborted, toProviderError } from "../errors.js";
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

/** Chat models served (they must be pulled locally); the first is the default. */
export const OLLAMA_MODELS = ["llama3.2", "qwen2.5", "mistral", "gemma3"] as const;
export const OLLAMA_EMBEDDING_MODELS = ["nomic-embed-text", "all-minilm"] as const;
export const OLLAMA_DEFAULT_URL = "http://127.0.0.1:11434";

export interface OllamaProviderOptions {
  /** Defaults to http://127.0.0.1:11434. */
  baseURL?: string;
  models?: readonly string[];
  embeddingModels?: readonly string[];
  /**
   * Deadline for the response headers (as the SDKs' `timeout`; a stream may then run longer).
   * Default: none beyond undici's own 300 s. Expiry is a retryable "timeout".
   */
  timeoutMs?: number;
  /** Replaces the global fetch (tests, proxies). */
  fetch?: typeof fetch;
}

const NAME = "ollama";

/** The subset of Ollama's /api/chat response (and each NDJSON stream line) we read. */
export interface OllamaChatLine {
  model?: string;
  message?: { role: string; content: string };
  done?: boolean;
  done_reason?: string;
  /** Absent when the whole prompt was served from Ollama's KV cache. */
  prompt_eval_count?: number;
  eval_count?: number;
  error?: string;
}

export function toChatBody(req: GenerateRequest, defaultModel: string, stream: boolean) {
  const { systemParts, turns } = normalizeMessages(NAME, req);
  const options: Record<string, number> = {};
  if (req.maxTokens !== undefined) options.num_predict = req.maxTokens;
  if (req.temperature !== undefined) options.temperature = req.temperature;
  return {
    model: req.model ?? defaultModel,
    messages: [...systemParts.map((content) => ({ role: "system", content })), ...turns],
    stream,
    ...(Object.keys(options).length > 0 ? { options } : {}),
  };
}

/** Usage lives only on the final `done: true` object. */
export function toUsage(line: OllamaChatLine): Usage {
  return { inputTokens: line.prompt_eval_count ?? 0, outputTokens: line.eval_count ?? 0 };
}

async function httpError(res: Response): Promise<HttpStatusError> {
  const body = await res.text().catch(() => "");
  let message = body || res.statusText;
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === "string") message = parsed.error;
  } catch {
    // not JSON; keep the raw text
  }
  return new HttpStatusError(res.status, `HTTP ${res.status}: ${message}`, res.headers);
}

/** Splits a byte stream into parsed NDJSON objects. */
async function* ndjson(body: ReadableStream<Uint8Array>): AsyncIterable<OllamaChatLine> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const bytes of body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(bytes, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) yield JSON.parse(line) as OllamaChatLine;
    }
  }
  const rest = (buffered + decoder.decode()).trim();
  if (rest) yield JSON.parse(rest) as OllamaChatLine;
}

export function createOllamaProvider(opts: OllamaProviderOptions = {}): Provider {
  const baseURL = (opts.baseURL ?? OLLAMA_DEFAULT_URL).replace(/\/+$/, "");
  const doFetch = opts.fetch ?? fetch;
  const models = opts.models ?? OLLAMA_MODELS;
  const embeddingModels = opts.embeddingModels ?? OLLAMA_EMBEDDING_MODELS;
  const defaultModel = models[0] ?? OLLAMA_MODELS[0];

  const post = async (path: string, body: unknown, signal: AbortSignal | undefined): Promise<Response> => {
    const deadline = new AbortController();
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => deadline.abort(new DOMException(`no response within ${opts.timeoutMs} ms`, "TimeoutError")), opts.timeoutMs);
    try {
      const res = await doFetch(`${baseURL}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal,
      });
      if (!res.ok) throw await httpError(res);
      return res;
    } finally {
      clearTimeout(timer);
    }
  };

  const midStreamError = (message: string) =>
    // Ollama reports failures after the 200 header as an {"error": "..."} line.
    new ProviderError({ provider: NAME, errorClass: "transient", message: `ollama: ${message}` });

  return withOutputLimit({
    name: NAME,
    tier: "basic",
    local: true,
    models,
    embeddingModels,
    operations: ["ai.generate", "ai.embed"],

    async generate(req): Promise<GenerateResult> {
      try {
        const res = await post("/api/chat", toChatBody(req, defaultModel, false), req.signal);
        const line = (await res.json()) as OllamaChatLine;
        if (line.error) throw midStreamError(line.error);
        return {
          text: line.message?.content ?? "",
          model: line.model ?? req.model ?? defaultModel,
          provider: NAME,
          usage: toUsage(line),
          ...(line.done_reason ? { finishReason: line.done_reason } : {}),
        };
      } catch (err) {
        throw toProviderError(NAME, err, req.signal);
      }
    },

    async *stream(req): AsyncIterable<StreamChunk> {
      let text = "";
      let final: OllamaChatLine | undefined;
      try {
        const res = await post("/api/chat", toChatBody(req, defaultModel, true), req.signal);
        if (!res.body) throw midStreamError("empty response body");
        for await (const line of ndjson(res.body)) {
          // One read can hold several lines: after an abort, none of them is a delta any more.
          throwIfAborted(NAME, req.signal);
          if (line.error) throw midStreamError(line.error);
          const delta = line.message?.content;
          if (delta) {
            text += delta;
            yield { type: "delta", text: delta };
          }
          if (line.done) final = line;
        }
      } catch (err) {
        throw toProviderError(NAME, err, req.signal);
      }
      throwIfAborted(NAME, req.signal);
      if (!final) throw midStreamError("stream ended before the done:true line");
      yield {
        type: "done",
        result: {
          text,
          model: final.model ?? req.model ?? defaultModel,
          provider: NAME,
          usage: toUsage(final),
          ...(final.done_reason ? { finishReason: final.done_reason } : {}),
        },
      };
    },

    async embed(input, embedOpts): Promise<EmbedResult> {
      const model = embedOpts.model ?? embeddingModels[0] ?? OLLAMA_EMBEDDING_MODELS[0];
      try {
        const res = await post("/api/embed", { model, input }, embedOpts.signal);
        const body = (await res.json()) as { model?: string; embeddings: number[][]; prompt_eval_count?: number };
        return {
          embeddings: body.embeddings,
          model: body.model ?? model,
          provider: NAME,
          usage: { inputTokens: body.prompt_eval_count ?? 0, outputTokens: 0 },
        };
      } catch (err) {
        throw toProviderError(NAME, err, embedOpts.signal);
      }
    },
  });
}
