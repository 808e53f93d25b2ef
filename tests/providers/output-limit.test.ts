/**
 * `max_tokens` is a hard limit on every adapter (src/providers/output-limit.ts), whatever the
 * provider answers: each wire-format fake here misbehaves — replies far longer than asked and
 * reports usage far above the limit — and the adapter still delivers at most max_tokens × 4
 * characters, finishes with reason `length`, and reports at most max_tokens output tokens.
 * A stream is read only up to the limit: the fake sees its client go away before the reply
 * was finished. Echo (whose reply is the prompt) is held to the same limit.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAnthropicProvider } from "../../src/providers/anthropic/index.js";
import { createEchoProvider } from "../../src/providers/echo/index.js";
import { startFakeAnthropic, startFakeOllama, startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";
import { createOllamaProvider } from "../../src/providers/ollama/index.js";
import { createOpenAIProvider } from "../../src/providers/openai/index.js";
import { cutText } from "../../src/providers/output-limit.js";
import type { Provider } from "../../src/providers/provider.js";
import { collectStream, waitFor } from "./helpers.js";

const MAX_TOKENS = 10;
/** 100 words of 5 characters ("word "): 500 characters, 125 tokens by the 4-character count. */
const LONG = "word ".repeat(100);

const adapters: { name: string; start: () => Promise<FakeServer>; create: (url: string) => Provider }[] = [
  { name: "openai", start: () => startFakeOpenAI({ apiKey: "sk-limit" }), create: (url) => createOpenAIProvider({ apiKey: "sk-limit", baseURL: url }) },
  { name: "anthropic", start: () => startFakeAnthropic({ apiKey: "sk-ant-limit" }), create: (url) => createAnthropicProvider({ apiKey: "sk-ant-limit", baseURL: url }) },
  { name: "ollama", start: () => startFakeOllama(), create: (url) => createOllamaProvider({ baseURL: url }) },
];

for (const a of adapters) {
  describe(`${a.name} adapter enforces max_tokens against a provider that ignores it`, () => {
    let fake: FakeServer;
    let provider: Provider;
    beforeAll(async () => {
      fake = await a.start();
      provider = a.create(fake.url);
    });
    afterAll(() => fake?.close());

    it("generate: a reply longer than max_tokens is cut, finishes `length`, and over-reported output tokens are capped", async () => {
      fake.reset();
      fake.script([{ reply: LONG, reportOutputTokens: 5_000 }]);
      const r = await provider.generate({ prompt: "hi", maxTokens: MAX_TOKENS });
      expect(r.text).toBe(LONG.slice(0, MAX_TOKENS * 4));
      expect(r.finishReason).toBe("length");
      expect(r.usage.outputTokens).toBe(MAX_TOKENS);
    });

    it("generate: a reply within the limit is untouched (positive control)", async () => {
      fake.reset();
      fake.script([{ reply: "short answer" }]);
      const r = await provider.generate({ prompt: "hi", maxTokens: MAX_TOKENS });
      expect(r.text).toBe("short answer");
      expect(r.finishReason).not.toBe("length");
      expect(r.usage.outputTokens).toBe(3);
    });

    it("stream: stops reading at the limit — the deltas stop at max_tokens × 4 characters and the request is abandoned", async () => {
      fake.reset();
      // Slow chunks: the reply would take 100 × 20 ms; the adapter must hang up long before.
      fake.script([{ reply: LONG, chunkDelayMs: 20, reportOutputTokens: 5_000 }]);
      const { deltas, result } = await collectStream(provider.stream({ prompt: "hi", maxTokens: MAX_TOKENS }));
      expect(deltas.join("")).toBe(LONG.slice(0, MAX_TOKENS * 4));
      expect(result.text).toBe(deltas.join(""));
      expect(result.finishReason).toBe("length");
      expect(result.usage.outputTokens).toBe(MAX_TOKENS);
      expect(fake.requests).toHaveLength(1);
      await waitFor(() => fake.requests[0]!.closedByClient);
    });

    it("stream: without max_tokens, the estimate's default limit (4096 tokens) applies", async () => {
      fake.reset();
      const huge = "x".repeat(4096 * 4 + 400);
      fake.script([{ reply: huge }]);
      const { deltas, result } = await collectStream(provider.stream({ prompt: "hi" }));
      expect(deltas.join("").length).toBe(4096 * 4);
      expect(result.finishReason).toBe("length");
      expect(result.usage.outputTokens).toBe(4096);
    });
  });
}

describe("echo enforces max_tokens", () => {
  const echo = createEchoProvider();
  it("generate and stream cut the echoed prompt at max_tokens × 4 characters", async () => {
    const r = await echo.generate({ prompt: LONG, maxTokens: MAX_TOKENS });
    expect(r).toMatchObject({ text: LONG.slice(0, 40), finishReason: "length", usage: { outputTokens: MAX_TOKENS } });
    const s = await collectStream(echo.stream({ prompt: LONG, maxTokens: MAX_TOKENS }));
    expect(s.deltas.join("")).toBe(LONG.slice(0, 40));
    expect(s.result).toMatchObject({ text: LONG.slice(0, 40), finishReason: "length", usage: { outputTokens: MAX_TOKENS } });
  });
  it("a prompt within the limit is echoed whole (positive control)", async () => {
    const r = await echo.generate({ prompt: "hello", maxTokens: MAX_TOKENS });
    expect(r).toMatchObject({ text: "hello", finishReason: "stop", usage: { outputTokens: 2 } });
  });
});

it("cutText never splits a surrogate pair", () => {
  expect(cutText("ab😀cd", 3)).toBe("ab");
  expect(cutText("ab😀cd", 4)).toBe("ab😀");
  expect(cutText("abc", 10)).toBe("abc");
});
