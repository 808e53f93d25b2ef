/**
 * A scripted in-process provider for unit tests of what sits above the adapters (the
 * gateway, the provider runtime): each call follows the next step of its script — answer,
 * fail with an error class, stream some text then fail, or hang until aborted — and is
 * recorded. The wire-format fakes beside it are for testing the adapters themselves.
 */
import { ProviderError, type ProviderErrorClass } from "../errors.js";
import type { GenerateRequest, GenerateResult, Provider, StreamChunk, Usage } from "../provider.js";

/** What a stub does on one call: answer, fail with a class, stream some text then fail, or wait for the abort. */
export type Behaviour = "ok" | { fail: ProviderErrorClass } | { deltasThenFail: ProviderErrorClass } | "hang";

export interface Stub extends Provider {
  calls: { model: string | undefined; streamed: boolean }[];
}

export interface StubOptions {
  /** The usage the stub reports. Default 10 input, 5 output tokens. */
  usage?: (req: GenerateRequest) => Usage;
  /** Runs at the start of every call (e.g. to look at the database while the call is in flight). */
  onCall?: (req: GenerateRequest) => Promise<void> | void;
  extra?: Partial<Provider>;
}

export function stub(name: string, models: string[], script: Behaviour[] = [], opts: StubOptions = {}): Stub {
  const calls: Stub["calls"] = [];
  const next = (): Behaviour => script.shift() ?? "ok";
  const result = (req: GenerateRequest): GenerateResult => ({
    text: `${name}:${req.prompt}`,
    model: req.model ?? models[0]!,
    provider: name,
    usage: opts.usage?.(req) ?? { inputTokens: 10, outputTokens: 5 },
  });
  const error = (cls: ProviderErrorClass) => new ProviderError({ provider: name, errorClass: cls, message: `${name}: scripted ${cls}` });
  const hang = (signal: AbortSignal | undefined) =>
    new Promise<never>((_, reject) => {
      const fire = () => reject(new ProviderError({ provider: name, errorClass: "aborted", message: `${name}: request aborted` }));
      if (signal?.aborted) fire();
      else signal?.addEventListener("abort", fire, { once: true });
    });
  return {
    name,
    tier: "premium",
    local: false,
    models,
    embeddingModels: [],
    operations: ["ai.generate"],
    calls,
    async generate(req) {
      calls.push({ model: req.model, streamed: false });
      await opts.onCall?.(req);
      const b = next();
      if (b === "hang") return hang(req.signal);
      if (b !== "ok") throw error("fail" in b ? b.fail : b.deltasThenFail);
      return result(req);
    },
    async *stream(req): AsyncIterable<StreamChunk> {
      calls.push({ model: req.model, streamed: true });
      await opts.onCall?.(req);
      const b = next();
      if (b === "hang") await hang(req.signal);
      if (b !== "ok" && b !== "hang" && "fail" in b) throw error(b.fail);
      yield { type: "delta", text: `${name}:` };
      if (b !== "ok" && b !== "hang") throw error(b.deltasThenFail);
      yield { type: "delta", text: req.prompt ?? "" };
      yield { type: "done", result: result(req) };
    },
    ...opts.extra,
  };
}
