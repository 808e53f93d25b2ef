import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createAnthropicProvider } from "../../src/providers/anthropic/index.js";
import { createEchoProvider } from "../../src/providers/echo/index.js";
import { startFakeAnthropic, type FakeServer } from "../../src/providers/fakes/index.js";
import type { Provider } from "../../src/providers/provider.js";
import { withRetries } from "../../src/providers/retry.js";
import { collectStream, failure, streamFailure, tokens, waitFor } from "./helpers.js";

let fake: FakeServer;
let anthropic: Provider;

beforeAll(async () => {
  fake = await startFakeAnthropic({ apiKey: "sk-ant-test" });
  anthropic = createAnthropicProvider({ apiKey: "sk-ant-test", baseURL: fake.url });
});
afterAll(() => fake.close());
afterEach(() => fake.reset());

describe("anthropic adapter through the @anthropic-ai/sdk", () => {
  it("generates text with exact usage and sends the Messages wire body", async () => {
    const r = await anthropic.generate({
      system: "be terse",
      messages: [
        { role: "system", content: "and kind" },
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
        { role: "user", content: "how are you" },
      ],
    });
    expect(r).toEqual({
      text: "how are you",
      model: "claude-sonnet-4-6",
      provider: "anthropic",
      usage: { inputTokens: tokens("be terse", "and kind", "hi", "hello", "how are you"), outputTokens: tokens("how are you") },
      finishReason: "end_turn",
    });
    const req = fake.requests[0]!;
    expect(req.path).toBe("/v1/messages");
    expect(req.headers["anthropic-version"]).toBeTruthy();
    expect(req.body).toEqual({
      model: "claude-sonnet-4-6",
      max_tokens: 4096,
      system: [
        { type: "text", text: "be terse" },
        { type: "text", text: "and kind" },
      ],
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
        { role: "user", content: "how are you" },
      ],
    });
  });

  it("reports the same usage as echo for the same request", async () => {
    const req = { system: "s", prompt: "some words here" };
    const [a, b] = await Promise.all([anthropic.generate(req), createEchoProvider().generate(req)]);
    expect(a.usage).toEqual(b.usage);
  });

  it("adds cache reads and writes back into inputTokens and reports them separately", async () => {
    const prompt = "a fairly long prompt that was partly cached"; // 43 chars → 11 tokens
    fake.script([{ cachedInputTokens: 4, cacheWriteTokens: 3 }]);
    const r = await anthropic.generate({ prompt });
    // On the wire: input_tokens 4 (uncached only), cache_read 4, cache_creation 3.
    expect(r.usage).toEqual({ inputTokens: tokens(prompt), outputTokens: tokens(prompt), cachedInputTokens: 4, cacheWriteTokens: 3 });
  });

  it("streams: input from message_start, cumulative output from message_delta (not added to the placeholder)", async () => {
    const prompt = "the quick brown fox jumps";
    fake.script([{ cachedInputTokens: 2, cacheWriteTokens: 1 }]);
    const { deltas, result } = await collectStream(anthropic.stream({ prompt, maxTokens: 100, temperature: 0 }));
    expect(deltas).toEqual(["the ", "quick ", "brown ", "fox ", "jumps"]);
    expect(result).toEqual({
      text: prompt,
      model: "claude-sonnet-4-6",
      provider: "anthropic",
      usage: { inputTokens: tokens(prompt), outputTokens: tokens(prompt), cachedInputTokens: 2, cacheWriteTokens: 1 },
      finishReason: "end_turn",
    });
    expect(fake.requests[0]!.body).toMatchObject({ stream: true, max_tokens: 100, temperature: 0 });
  });

  it.each([
    [529, "overloaded", true],
    [503, "overloaded", true],
    [500, "transient", true],
    [429, "rate_limited", true],
    [401, "auth", false],
    [400, "invalid_request", false],
  ] as const)("HTTP %i becomes %s (retryable %s), one request only", async (status, errorClass, retryable) => {
    fake.script([{ status }]);
    const err = await failure(anthropic.generate({ prompt: "x" }));
    expect(err).toMatchObject({ provider: "anthropic", status, errorClass, retryable });
    expect(fake.requests).toHaveLength(1);
  });

  it("withRetries retries 529 and 500 then succeeds", async () => {
    fake.script([{ status: 529 }, { status: 500 }]);
    const r = await withRetries(() => anthropic.generate({ prompt: "third time" }), { maxAttempts: 3, baseDelayMs: 5 });
    expect(r.text).toBe("third time");
    expect(fake.requests).toHaveLength(3);
  });

  it("withRetries never retries invalid_request", async () => {
    fake.script([{ status: 400 }]);
    const err = await failure(withRetries(() => anthropic.generate({ prompt: "x" }), { baseDelayMs: 5 }));
    expect(err.errorClass).toBe("invalid_request");
    expect(fake.requests).toHaveLength(1);
  });

  it("honours retry-after in seconds: waits at least 1 s before the retry", async () => {
    fake.script([{ status: 429, retryAfter: "1" }]);
    const started = Date.now();
    const r = await withRetries(() => anthropic.generate({ prompt: "patience" }), { baseDelayMs: 1, maxDelayMs: 2000 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(r.text).toBe("patience");
    const [first, second] = fake.requests;
    expect(first!.behaviour.status).toBe(429);
    expect(second).toBeDefined();
  });

  it("fails over instead of sleeping when retry-after exceeds maxDelayMs", async () => {
    fake.script([{ status: 429, retryAfter: "30" }]);
    const started = Date.now();
    const err = await failure(withRetries(() => anthropic.generate({ prompt: "x" }), { maxDelayMs: 1000 }));
    expect(err).toMatchObject({ errorClass: "rate_limited", retryAfterMs: 30_000 });
    expect(Date.now() - started).toBeLessThan(500);
    expect(fake.requests).toHaveLength(1);
  });

  it("an overloaded_error event inside a 200 stream is classified by its type", async () => {
    fake.script([{ streamErrorAfterChunks: 4 }]); // message_start, block_start, ping, one delta
    const { deltas, error } = await streamFailure(anthropic.stream({ prompt: "one two three" }));
    expect(deltas).toEqual(["one "]);
    expect(error).toMatchObject({ provider: "anthropic", errorClass: "overloaded", retryable: true });
  });

  it("a stream cut mid-way surfaces as a retryable ProviderError", async () => {
    fake.script([{ breakStreamAfterChunks: 5 }]);
    const { deltas, error } = await streamFailure(anthropic.stream({ prompt: "one two three four" }));
    expect(deltas).toEqual(["one ", "two "]);
    expect(error).toMatchObject({ provider: "anthropic", errorClass: "transient", retryable: true });
  });

  it("abort cancels an in-flight slow request and the server sees the connection close", async () => {
    fake.script([{ delayMs: 600_000 }]); // pending until the client gives up (the fake stops waiting when the connection closes)
    const ac = new AbortController();
    const pending = anthropic.generate({ prompt: "slow", signal: ac.signal });
    await waitFor(() => fake.requests.length === 1);
    ac.abort();
    expect(await failure(pending)).toMatchObject({ errorClass: "aborted", retryable: false });
    await fake.requests[0]!.closed;
    expect(fake.requests[0]!.closedByClient).toBe(true);
  });

  it("abort during a retry wait stops withRetries at once", async () => {
    fake.script([{ status: 529, retryAfter: "1" }]);
    const ac = new AbortController();
    const started = Date.now();
    const pending = withRetries(() => anthropic.generate({ prompt: "x", signal: ac.signal }), { signal: ac.signal, maxDelayMs: 2000 });
    await waitFor(() => fake.requests.length === 1);
    setTimeout(() => ac.abort(), 20);
    expect(await failure(pending)).toMatchObject({ errorClass: "aborted" });
    expect(Date.now() - started).toBeLessThan(500);
    expect(fake.requests).toHaveLength(1);
  });

  it("an SDK-side refusal (huge max_tokens without streaming) is invalid_request, not transient", async () => {
    const err = await failure(anthropic.generate({ prompt: "x", maxTokens: 200_000 }));
    expect(err).toMatchObject({ errorClass: "invalid_request", retryable: false });
    expect(fake.requests).toHaveLength(0);
  });
});
