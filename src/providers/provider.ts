/**
 * The one interface every model provider implements. Adapters translate their platform's
 * request/response/stream shapes into these types and nothing platform-specific leaks past
 * them: errors are always `ProviderError` (see errors.ts), never raw SDK or fetch errors.
 *
 * Routing, cost and budgets live in `domain/`, not here; so do the descriptions they read
 * (`ProviderCapabilities`) and the message shape every path shares (`ChatMessage`).
 */
import type { ChatMessage } from "../domain/provider-call.js";
import type { ProviderCapabilities } from "../domain/provider-capabilities.js";
import { ProviderError } from "./errors.js";

export interface GenerateRequest {
  /** Model to use; defaults to the provider's first model. */
  model?: string;
  /** Shorthand for a single user message. Ignored when `messages` is set. */
  prompt?: string;
  messages?: ChatMessage[];
  /** System instruction; merged with any `system` messages (this one first). */
  system?: string;
  maxTokens?: number;
  temperature?: number;
  /** Aborting cancels the in-flight HTTP request; the call rejects with errorClass "aborted". */
  signal?: AbortSignal;
}

/**
 * Token usage, normalised across providers. `inputTokens` counts ALL input tokens the call
 * consumed, including any served from or written to a prompt cache; the two cache fields are
 * subsets of it. (OpenAI's `prompt_tokens` already has this meaning; Anthropic's `input_tokens`
 * excludes cache reads/writes, so its adapter adds them back.) Cost = uncached × input price +
 * cached × cache-read price + cacheWrite × cache-write price.
 */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  /** Input tokens served from the provider's prompt cache (billed at a discount). */
  cachedInputTokens?: number;
  /** Input tokens written to the provider's prompt cache (Anthropic; billed at a premium). */
  cacheWriteTokens?: number;
}

export interface GenerateResult {
  text: string;
  model: string;
  provider: string;
  usage: Usage;
  finishReason?: string;
}

export type StreamChunk = { type: "delta"; text: string } | { type: "done"; result: GenerateResult };

export interface EmbedResult {
  embeddings: number[][];
  model: string;
  provider: string;
  usage: Usage;
}

export interface Provider extends ProviderCapabilities {
  generate(req: GenerateRequest): Promise<GenerateResult>;
  /** Yields zero or more deltas then exactly one `done` carrying the full result and usage. */
  stream(req: GenerateRequest): AsyncIterable<StreamChunk>;
  embed?(input: string[], opts: { model?: string; signal?: AbortSignal }): Promise<EmbedResult>;
}

/**
 * Splits a request into system instructions (`req.system` first, then any system messages, in
 * order; kept separate rather than joined so every provider sees the same characters) and
 * the user/assistant turns. Throws an "invalid_request" ProviderError when there is no turn.
 */
export function normalizeMessages(provider: string, req: GenerateRequest): { systemParts: string[]; turns: ChatMessage[] } {
  const systemParts: string[] = [];
  if (req.system) systemParts.push(req.system);
  const turns: ChatMessage[] = [];
  const source: ChatMessage[] = req.messages ?? (req.prompt !== undefined ? [{ role: "user", content: req.prompt }] : []);
  for (const m of source) {
    if (m.role === "system") systemParts.push(m.content);
    else turns.push(m);
  }
  if (turns.length === 0) {
    throw new ProviderError({
      provider,
      errorClass: "invalid_request",
      message: "GenerateRequest needs `prompt` or at least one user/assistant message",
    });
  }
  return { systemParts, turns };
}
