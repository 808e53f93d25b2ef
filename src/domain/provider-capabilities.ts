/**
 * What the routing and pricing rules know of a provider: which operations it serves, with
 * which models, at which tier, and whether it runs on this machine. The adapters in
 * `providers/` implement these descriptions (their `Provider` extends
 * `ProviderCapabilities`); the domain never sees an adapter.
 */

/** The operations a provider node, a job or a direct call can ask a provider for. */
export type ProviderOperation = "ai.generate" | "ai.embed";

export type ProviderTier = "basic" | "premium";

export interface ProviderCapabilities {
  /** "echo" | "openai" | "anthropic" | "ollama" */
  readonly name: string;
  readonly tier: ProviderTier;
  /** Runs on this machine (no data leaves it). */
  readonly local: boolean;
  /** Chat models it serves; the first is the default. */
  readonly models: readonly string[];
  /** Embedding models it serves (first = default); empty when it cannot embed. */
  readonly embeddingModels?: readonly string[];
  readonly operations: readonly ProviderOperation[];
}
