import type { Config } from "../config.js";
import { createAnthropicProvider } from "./anthropic/index.js";
import { createEchoProvider } from "./echo/index.js";
import { createOllamaProvider, OLLAMA_DEFAULT_URL } from "./ollama/index.js";
import { createOpenAIProvider } from "./openai/index.js";
import type { Provider } from "./provider.js";

/** What the registry reads of the validated configuration (config.ts `loadConfig`). */
export type ProviderSettings = Partial<Pick<Config, "OPENAI_API_KEY" | "OPENAI_BASE_URL" | "ANTHROPIC_API_KEY" | "ANTHROPIC_BASE_URL" | "OLLAMA_ENABLED" | "OLLAMA_URL">>;

/**
 * The providers the configuration enables, in a stable order (echo, openai, anthropic,
 * ollama). Echo is always present. Base URLs are overridable so tests and demos can point
 * the real SDKs at the fakes in `fakes/`.
 *
 * - `OPENAI_API_KEY` enables openai (`OPENAI_BASE_URL`)
 * - `ANTHROPIC_API_KEY` enables anthropic (`ANTHROPIC_BASE_URL`)
 * - `OLLAMA_ENABLED` enables ollama (`OLLAMA_URL`, default http://127.0.0.1:11434)
 */
export function createProviders(config: ProviderSettings): Provider[] {
  const providers: Provider[] = [createEchoProvider()];
  if (config.OPENAI_API_KEY) {
    providers.push(createOpenAIProvider({ apiKey: config.OPENAI_API_KEY, ...(config.OPENAI_BASE_URL ? { baseURL: config.OPENAI_BASE_URL } : {}) }));
  }
  if (config.ANTHROPIC_API_KEY) {
    providers.push(createAnthropicProvider({ apiKey: config.ANTHROPIC_API_KEY, ...(config.ANTHROPIC_BASE_URL ? { baseURL: config.ANTHROPIC_BASE_URL } : {}) }));
  }
  if (config.OLLAMA_ENABLED) providers.push(createOllamaProvider({ baseURL: config.OLLAMA_URL ?? OLLAMA_DEFAULT_URL }));
  return providers;
}
