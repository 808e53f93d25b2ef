import { throwIfAborted as throwIfProviderAborted } from "../errors.js";
import {
  normalizeMessages,
  type EmbedResult,
  type GenerateRequest,
  type GenerateResult,
  type Provider,
  type StreamChunk,
} from "../provider.js";
import { withOutputLimit } from "../output-limit.js";

export const ECHO_MODELS = ["echo-1"] as const;
export const ECHO_EMBEDDING_MODELS = ["echo-embed-1"] as const;
const EMBEDDING_DIMENSIONS = 8;

/**
 * The token estimate echo reports and the fake servers reproduce: one token per 4 characters,
 * rounded up. Shared so the same request yields the same usage from echo and from every
 * adapter talking to its fake.
 */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/** Splits text into word chunks that keep their trailing whitespace; joining them gives the text back. */
export function splitIntoWordChunks(text: string): string[] {
  return text.match(/\s+|\S+\s*/gy) ?? [];
}

/**
 * A deterministic embedding: the same string always yields the same unit vector.
 * Meaningless as semantics, but stable for tests and the embedded default.
 */
export function echoEmbedding(text: string): number[] {
  const v = new Array<number>(EMBEDDING_DIMENSIONS).fill(0);
  for (let i = 0; i < text.length; i++) {
    const slot = i % EMBEDDING_DIMENSIONS;
    v[slot] = (v[slot] ?? 0) + ((text.charCodeAt(i) * (i + 1)) % 97) / 97;
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => Math.round((x / norm) * 1e6) / 1e6);
}

const throwIfAborted = (signal: AbortSignal | undefined) => throwIfProviderAborted("echo", signal);

/**
 * Always-on deterministic stub: replies with the prompt (or the last user message) unchanged.
 * Usage: input = ceil(chars of system + every message / 4), output = ceil(chars of reply / 4).
 */
export function createEchoProvider(): Provider {
  const respond = (req: GenerateRequest): GenerateResult => {
    const { systemParts, turns } = normalizeMessages("echo", req);
    const lastUser = [...turns].reverse().find((m) => m.role === "user");
    const text = lastUser?.content ?? "";
    const inputChars = [...systemParts, ...turns.map((m) => m.content)].reduce((n, s) => n + s.length, 0);
    return {
      text,
      model: req.model ?? ECHO_MODELS[0],
      provider: "echo",
      usage: { inputTokens: estimateTokens(inputChars), outputTokens: estimateTokens(text.length) },
      finishReason: "stop",
    };
  };

  return withOutputLimit({
    name: "echo",
    tier: "basic",
    local: true,
    models: ECHO_MODELS,
    embeddingModels: ECHO_EMBEDDING_MODELS,
    operations: ["ai.generate", "ai.embed"],

    async generate(req) {
      throwIfAborted(req.signal);
      return respond(req);
    },

    async *stream(req): AsyncIterable<StreamChunk> {
      throwIfAborted(req.signal);
      const result = respond(req);
      for (const text of splitIntoWordChunks(result.text)) {
        // Yield to the event loop between chunks so an abort mid-stream is observed.
        await new Promise<void>((resolve) => setImmediate(resolve));
        throwIfAborted(req.signal);
        yield { type: "delta", text };
      }
      yield { type: "done", result };
    },

    async embed(input, opts): Promise<EmbedResult> {
      throwIfAborted(opts.signal);
      return {
        embeddings: input.map(echoEmbedding),
        model: opts.model ?? ECHO_EMBEDDING_MODELS[0],
        provider: "echo",
        usage: { inputTokens: estimateTokens(input.reduce((n, s) => n + s.length, 0)), outputTokens: 0 },
      };
    },
  });
}
