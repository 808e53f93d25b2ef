import { createAnthropicProvider } from "./anthropic/index.js";
import { createEchoProvider } from "./echo/index.js";
import { createOllamaProvider, OLLAMA_DEFAULT_URL } from "./ollama/index.js";
import { createOpenAIProvider } from "./openai/index.js";
import type { Provider } from "./provider.js";

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v.trim() !== "" ? v.trim() : undefined;
}

/**
 * The providers enabled by the environment, in a stable order (echo, openai, anthropic,
 * ollama). Echo is always present. Base URLs are overridable so tests and demos can point
 * the real SDKs at the fakes in `fakes/`.
 *
 * - `OPENAI_API_KEY` enables openai (`OPENAI_BASE_URL`)
 * - `ANTHROPIC_API_KEY` enables anthropic (`ANTHROPIC_BASE_URL`)
 * - `OLLAMA_ENABLED=true|1` enables ollama (`OLLAMA_URL`, default http://127.0.0.1:11434)
 */
export function createProviders(env: Record<string, string | undefined>): Provider[] {
  const providers: Provider[] = [createEchoProvider()];

  const openaiKey = nonEmpty(env.OPENAI_API_KEY);
  if (openaiKey) {
    const baseURL = nonEmpty(env.OPENAI_BASE_URL);
    providers.push(createOpenAIProvider({ apiKey: openaiKey, ...(baseURL ? { baseURL } : {}) }));
  }

  const anthropicKey = nonEmpty(env.ANTHROPIC_API_KEY);
  if (anthropicKey) {
    const baseURL = nonEmpty(env.ANTHROPIC_BASE_URL);
    providers.push(createAnthropicProvider({ apiKey: anthropicKey, ...(baseURL ? { baseURL } : {}) }));
  }

  const ollamaEnabled = nonEmpty(env.OLLAMA_ENABLED)?.toLowerCase();
  if (ollamaEnabled === "true" || ollamaEnabled === "1") {
    providers.push(createOllamaProvider({ baseURL: nonEmpty(env.OLLAMA_URL) ?? OLLAMA_DEFAULT_URL }));
  }

  return providers;
}
