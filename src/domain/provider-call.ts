/**
 * A provider call as every path asks for it — a direct call over the API, a job, a
 * workflow's provider node — once validated: the operation, what routes it (provider,
 * model, strategy, tier), the generation settings and the input. The gateway takes it from
 * here; the adapters receive its parts.
 */
import type { ProviderOperation, ProviderTier } from "./provider-capabilities.js";
import { isRoutingStrategy, ROUTING_STRATEGIES, type RoutingStrategy } from "./routing.js";

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

// ─── Settings ───────────────────────────────────────────────────────────────────────────

/**
 * The settings of a call — what routes it and how it generates — by the names a node's
 * `config`, a job's `params` and (converted from its fields) a direct call give them.
 */
export const providerCallSettingNames = ["provider", "model", "strategy", "tier", "max_tokens", "temperature", "stream"] as const;
export type ProviderCallSettingName = (typeof providerCallSettingNames)[number];

export interface ProviderCallSettings {
  provider?: string;
  model?: string;
  strategy?: RoutingStrategy;
  tier?: ProviderTier;
  maxTokens?: number;
  temperature?: number;
  /** Whether a generation streams its text as it comes (never an embedding). */
  stream?: boolean;
}

export interface SettingIssue {
  setting: ProviderCallSettingName;
  code: "invalid_value";
  /** Starts with the setting's name, e.g. `max_tokens must be an integer within 1..200000`. */
  message: string;
}

export const isProviderTier = (v: unknown): v is ProviderTier => v === "basic" || v === "premium";

/**
 * The one rule for a call's settings, used by the API's direct calls, jobs and provider
 * nodes. Reads the settings present in `raw` (an absent or `undefined` one is unset; any
 * other key is the caller's to judge) and returns every problem, each naming its setting,
 * so each caller reports them its way (an issue at its JSON pointer, or a step's
 * `invalid_input`).
 */
export function parseProviderCallSettings(raw: Readonly<Record<string, unknown>>, operation: ProviderOperation): { settings: ProviderCallSettings; issues: SettingIssue[] } {
  const settings: ProviderCallSettings = {};
  const issues: SettingIssue[] = [];
  const bad = (setting: ProviderCallSettingName, message: string) => issues.push({ setting, code: "invalid_value", message });
  for (const name of providerCallSettingNames) {
    const v = raw[name];
    if (v === undefined) continue;
    switch (name) {
      case "provider":
      case "model":
        if (typeof v === "string" && v !== "") settings[name] = v;
        else bad(name, `${name} must be a non-empty string`);
        break;
      case "strategy":
        if (isRoutingStrategy(v)) settings.strategy = v;
        else bad(name, `strategy must be one of ${ROUTING_STRATEGIES.join(", ")}`);
        break;
      case "tier":
        if (isProviderTier(v)) settings.tier = v;
        else bad(name, "tier must be basic or premium");
        break;
      case "max_tokens":
        if (typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= providerCallLimits.maxTokens) settings.maxTokens = v;
        else bad(name, `max_tokens must be an integer within 1..${providerCallLimits.maxTokens}`);
        break;
      case "temperature":
        if (typeof v === "number" && v >= 0 && v <= 2) settings.temperature = v;
        else bad(name, "temperature must be a number within 0..2");
        break;
      case "stream":
        if (typeof v !== "boolean") bad(name, "stream must be true or false");
        else if (v && operation === "ai.embed") bad(name, "stream must be false for ai.embed: embeddings do not stream");
        else settings.stream = v;
        break;
    }
  }
  return { settings, issues };
}
