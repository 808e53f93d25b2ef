/**
 * A provider call as every path asks for it — a direct call over the API, a job, a
 * workflow's provider node — once validated: the operation, what routes it (provider,
 * model, strategy, tier), the generation settings and the input. The gateway takes it from
 * here; the adapters receive its parts.
 */
import type { ProviderOperation, ProviderTier } from "./provider-capabilities.js";
import type { RoutingStrategy } from "./routing.js";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** Bounds of one call's request, the same for the API, jobs and workflow nodes. */
export const providerCallLimits = { maxTokens: 200_000, maxMessages: 1_000, maxInputs: 2_048 } as const;

/** A provider call, validated. */
export interface ProviderCallRequest {
  operation: ProviderOperation;
  provider?: string;
  model?: string;
  strategy?: RoutingStrategy;
  tier?: ProviderTier;
  /** `ai.generate`. */
  prompt?: string;
  messages?: ChatMessage[];
  system?: string;
  maxTokens?: number;
  temperature?: number;
  /** `ai.embed`. */
  texts?: string[];
}

/** The characters a call sends, from which its input tokens are estimated before the call. */
export function inputChars(req: ProviderCallRequest): number {
  if (req.operation === "ai.embed") return (req.texts ?? []).reduce((n, t) => n + t.length, 0);
  const turns = req.messages ? req.messages.reduce((n, m) => n + (typeof m?.content === "string" ? m.content.length : 0), 0) : (req.prompt?.length ?? 0);
  return turns + (req.system?.length ?? 0);
}
