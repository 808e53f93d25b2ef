/**
 * The provider runtime: `ai.generate` and `ai.embed` on the configured providers. The
 * step's signal reaches the provider request, so a timeout or cancel really aborts it.
 */
import type { JsonObject } from "../domain/context.js";
import { ProviderError } from "../providers/errors.js";
import type { ChatMessage, Provider } from "../providers/provider.js";
import { invalidInput, StepError, type Runtime, type Step } from "./step.js";

export function createProviderRuntime(providers: readonly Provider[]): Runtime {
  const pick = (step: Step, op: "ai.generate" | "ai.embed"): Provider => {
    const name = step.config["provider"];
    const model = step.config["model"];
    const eligible = providers.filter((p) => p.operations.includes(op));
    if (typeof name === "string") {
      const p = eligible.find((x) => x.name === name);
      if (!p) throw invalidInput(`provider ${JSON.stringify(name)} is not enabled for ${op}; enabled: ${eligible.map((x) => x.name).join(", ")}`);
      return p;
    }
    if (typeof model === "string") {
      const p = eligible.find((x) => x.models.includes(model) || x.embeddingModels?.includes(model));
      if (!p) throw invalidInput(`no enabled provider serves model ${JSON.stringify(model)}`);
      return p;
    }
    // local_first: a local provider before a remote one, in registry order.
    const p = eligible.find((x) => x.local) ?? eligible[0];
    if (!p) throw invalidInput(`no provider is enabled for ${op}`);
    return p;
  };

  return {
    async execute(step) {
      const op = step.node.spec.operation as "ai.generate" | "ai.embed";
      const provider = pick(step, op);
      const model = typeof step.config["model"] === "string" ? step.config["model"] : undefined;
      try {
        if (op === "ai.embed") {
          const input = step.inputs["input"];
          const texts = typeof input === "string" ? [input] : Array.isArray(input) && input.every((x) => typeof x === "string") ? (input as string[]) : null;
          if (!texts) throw invalidInput("inputs.input must be a string or a list of strings");
          if (!provider.embed) throw invalidInput(`provider ${provider.name} cannot embed`);
          const r = await provider.embed(texts, { model, signal: step.signal });
          return { output: { embeddings: r.embeddings, model: r.model, provider: r.provider, usage: usageJson(r.usage) } };
        }
        const prompt = step.inputs["prompt"];
        const messages = step.inputs["messages"];
        if (typeof prompt !== "string" && !Array.isArray(messages)) throw invalidInput("inputs.prompt (a string) or inputs.messages (a list) is required");
        const maxTokens = step.config["max_tokens"];
        const temperature = step.config["temperature"];
        const system = step.config["system"];
        const request = {
          model,
          prompt: typeof prompt === "string" ? prompt : undefined,
          messages: Array.isArray(messages) ? (messages as unknown as ChatMessage[]) : undefined,
          system: typeof system === "string" ? system : undefined,
          maxTokens: typeof maxTokens === "number" ? maxTokens : undefined,
          temperature: typeof temperature === "number" ? temperature : undefined,
          signal: step.signal,
        };
        const r = step.config["stream"] === false ? await provider.generate(request) : await streamWithProgress(provider, request, step);
        const output: JsonObject = { text: r.text, model: r.model, provider: r.provider, usage: usageJson(r.usage) };
        if (r.finishReason) output["finish_reason"] = r.finishReason;
        return { output };
      } catch (err) {
        if (err instanceof ProviderError) {
          const cls = err.errorClass === "invalid_request" || err.errorClass === "auth" ? "invalid_input" : err.errorClass === "timeout" ? "timeout" : err.errorClass === "aborted" ? "cancelled" : "transient";
          throw new StepError(`provider_${err.errorClass}`, `${provider.name}: ${err.message}`, cls);
        }
        throw err;
      }
    },
  };
}

/**
 * Streams the generation, reporting the text as `workflow.node.progress` events at most
 * every `progressEveryMs`, so the deltas of a node's progress events concatenate to
 * exactly its final text. A generation whose tokens all arrive within one interval
 * reports no progress at all: its completion event says everything.
 */
async function streamWithProgress(provider: Provider, request: Parameters<Provider["generate"]>[0], step: Step, progressEveryMs = 200) {
  let pending = "";
  let chars = 0;
  let lastFlush = 0; // set by the first delta: waiting for the first token is not progress
  let flushed = false;
  let writing: Promise<void> = Promise.resolve();
  const flush = () => {
    if (!pending) return;
    const delta = pending;
    pending = "";
    lastFlush = Date.now();
    flushed = true;
    writing = writing.then(() => step.progress({ delta, chars }));
  };
  for await (const chunk of provider.stream(request)) {
    if (chunk.type === "done") {
      if (flushed) flush();
      await writing;
      return chunk.result;
    }
    if (!lastFlush) lastFlush = Date.now();
    pending += chunk.text;
    chars += chunk.text.length;
    if (Date.now() - lastFlush >= progressEveryMs) flush();
  }
  throw new StepError("provider_transient", `${provider.name}: the stream ended without a result`, "transient");
}

function usageJson(u: { inputTokens: number; outputTokens: number; cachedInputTokens?: number; cacheWriteTokens?: number }): JsonObject {
  const out: JsonObject = { input_tokens: u.inputTokens, output_tokens: u.outputTokens };
  if (u.cachedInputTokens !== undefined) out["cached_input_tokens"] = u.cachedInputTokens;
  if (u.cacheWriteTokens !== undefined) out["cache_write_tokens"] = u.cacheWriteTokens;
  return out;
}
