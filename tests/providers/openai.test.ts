import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createEchoProvider } from "../../src/providers/echo/index.js";
import { startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";
import { createOpenAIProvider } from "../../src/providers/openai/index.js";
import type { Provider } from "../../src/providers/provider.js";
import { withRetries } from "../../src/providers/retry.js";
import { collectStream, failure, streamFailure, tokens, waitFor } from "./helpers.js";

let fake: FakeServer;
let openai: Provider;

beforeAll(async () => {
  fake = await startFakeOpenAI({ apiKey: "sk-test" });
  openai = createOpenAIProvider({ apiKey: "sk-test", baseURL: fake.url });
});
afterAll(() => fake.close());
afterEach(() => fake.reset());

describe("openai adapter through the openai SDK", () => {
  it("generates text with exact usage and sends the chat.completions wire body", async () => {
    const r = await openai.generate({ system: "be terse", prompt: "hello there", maxTokens: 50, temperature: 0.2 });
    expect(r).toEqual({
      text: "hello there",
      model: "gpt-4.1-mini",
      provider: "openai",
      usage: { inputTokens: tokens("be terse", "hello there"), outputTokens: tokens("hello there") },
      finishReason: "stop",
    });
    expect(fake.requests).toHaveLength(1);
    const req = fake.requests[0]!;
    expect(req.path).toBe("/v1/chat/completions");
    expect(req.headers.authorization).toBe("Bearer sk-test");
    expect(req.body).toEqual({
      model: "gpt-4.1-mini",
      messages: [
        { role: "system", content: "be terse" },
        { role: "user", content: "hello there" },
      ],
      max_completion_tokens: 50,
      temperature: 0.2,
    });
  });

  it("reports the same usage as echo for the same request", async () => {
    const req = { messages: [{ role: "system" as const, content: "sys" }, { role: "user" as const, content: "one two three" }] };
    const [a, b] = await Promise.all([openai.generate(req), createEchoProvider().generate(req)]);
    expect(a.usage).toEqual(b.usage);
    expect(a.text).toBe(b.text);
  });

  it("maps prompt_tokens_details.cached_tokens to cachedInputTokens (a subset of inputTokens)", async () => {
    fake.script([{ cachedInputTokens: 2 }]);
    const r = await openai.generate({ prompt: "a prompt of some length" });
    expect(r.usage).toEqual({ inputTokens: tokens("a prompt of some length"), outputTokens: tokens("a prompt of some length"), cachedInputTokens: 2 });
  });

  it("streams deltas and takes usage from the final empty-choices chunk", async () => {
    const { deltas, result } = await collectStream(openai.stream({ prompt: "the quick brown fox", model: "gpt-4o" }));
    expect(deltas).toEqual(["the ", "quick ", "brown ", "fox"]);
    expect(result).toEqual({
      text: "the quick brown fox",
      model: "gpt-4o",
      provider: "openai",
      usage: { inputTokens: tokens("the quick brown fox"), outputTokens: tokens("the quick brown fox") },
      finishReason: "stop",
    });
    expect(fake.requests[0]!.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it("embeds (float encoding) with usage", async () => {
    const r = await openai.embed!(["alpha", "beta"], {});
    expect(r.embeddings).toHaveLength(2);
    expect(r.embeddings[0]).toHaveLength(8);
    expect(r).toMatchObject({ model: "text-embedding-3-small", provider: "openai", usage: { inputTokens: tokens("alpha", "beta"), outputTokens: 0 } });
    expect(fake.requests[0]!.body).toMatchObject({ encoding_format: "float", input: ["alpha", "beta"] });
  });

  it.each([
    [429, "rate_limited", true],
    [500, "transient", true],
    [503, "overloaded", true],
    [401, "auth", false],
    [403, "auth", false],
    [400, "invalid_request", false],
    [404, "invalid_request", false],
  ] as const)("HTTP %i becomes %s (retryable %s) and the SDK itself does not retry", async (status, errorClass, retryable) => {
    fake.script([{ status }]);
    const err = await failure(openai.generate({ prompt: "x" }));
    expect(err).toMatchObject({ provider: "openai", status, errorClass, retryable });
    expect(fake.requests).toHaveLength(1);
  });

  it("a wrong API key is an auth error", async () => {
    const bad = createOpenAIProvider({ apiKey: "sk-wrong", baseURL: fake.url });
    expect(await failure(bad.generate({ prompt: "x" }))).toMatchObject({ errorClass: "auth", status: 401, retryable: false });
  });

  it("withRetries retries 500 and 503 then succeeds; does not retry 401", async () => {
    fake.script([{ status: 500 }, { status: 503 }]);
    const r = await withRetries(() => openai.generate({ prompt: "again" }), { maxAttempts: 3, baseDelayMs: 5 });
    expect(r.text).toBe("again");
    expect(fake.requests).toHaveLength(3);

    fake.requests.length = 0;
    fake.script([{ status: 401 }]);
    const err = await failure(withRetries(() => openai.generate({ prompt: "x" }), { maxAttempts: 3, baseDelayMs: 5 }));
    expect(err.errorClass).toBe("auth");
    expect(fake.requests).toHaveLength(1);
  });

  it("withRetries gives up after maxAttempts with the last error", async () => {
    fake.script([{ status: 500 }, { status: 500 }, { status: 429 }]);
    const err = await failure(withRetries(() => openai.generate({ prompt: "x" }), { maxAttempts: 3, baseDelayMs: 5 }));
    expect(err.errorClass).toBe("rate_limited");
    expect(fake.requests).toHaveLength(3);
  });

  it("honours retry-after-ms (preferred over retry-after)", async () => {
    fake.script([{ status: 429, retryAfterMs: "300", retryAfter: "30" }]);
    const waits: number[] = [];
    const started = Date.now();
    const r = await withRetries(() => openai.generate({ prompt: "x" }), {
      baseDelayMs: 1,
      onRetry: ({ delayMs, error }) => waits.push(delayMs, error.retryAfterMs ?? -1),
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(waits).toEqual([300, 300]);
    expect(r.text).toBe("x");
  });

  it("honours x-should-retry: false even on a 500", async () => {
    fake.script([{ status: 500, shouldRetry: "false" }]);
    const err = await failure(withRetries(() => openai.generate({ prompt: "x" }), { baseDelayMs: 1 }));
    expect(err).toMatchObject({ errorClass: "transient", retryable: false });
    expect(fake.requests).toHaveLength(1);
  });

  it("abort cancels an in-flight slow request and the server sees the connection close", async () => {
    fake.script([{ delayMs: 600_000 }]); // pending until the client gives up (the fake stops waiting when the connection closes)
    const ac = new AbortController();
    const started = Date.now();
    const pending = openai.generate({ prompt: "slow", signal: ac.signal });
    await waitFor(() => fake.requests.length === 1);
    ac.abort();
    const err = await failure(pending);
    expect(err).toMatchObject({ errorClass: "aborted", retryable: false });
    await fake.requests[0]!.closed;
    expect(fake.requests[0]!.closedByClient).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("abort mid-stream stops the stream and closes the connection", async () => {
    fake.script([{ chunkDelayMs: 50 }]);
    const ac = new AbortController();
    const seen: string[] = [];
    const err = await failure(
      (async () => {
        for await (const c of openai.stream({ prompt: "one two three four five six", signal: ac.signal })) {
          if (c.type === "delta") {
            seen.push(c.text);
            ac.abort();
          }
        }
      })(),
    );
    expect(err.errorClass).toBe("aborted");
    expect(seen).toEqual(["one "]);
    await fake.requests[0]!.closed;
    expect(fake.requests[0]!.closedByClient).toBe(true);
  });

  it("a consumer that stops reading early closes the connection", async () => {
    fake.script([{ chunkDelayMs: 30 }]);
    for await (const c of openai.stream({ prompt: "one two three four five" })) {
      if (c.type === "delta") break;
    }
    await fake.requests[0]!.closed;
    expect(fake.requests[0]!.closedByClient).toBe(true);
  });

  it("a stream cut mid-way surfaces as a retryable ProviderError after the deltas already sent", async () => {
    fake.script([{ breakStreamAfterChunks: 3 }]); // role chunk + 2 content chunks
    const { deltas, error } = await streamFailure(openai.stream({ prompt: "one two three four" }));
    expect(deltas).toEqual(["one ", "two "]);
    expect(error).toMatchObject({ provider: "openai", errorClass: "transient", retryable: true });
  });

  it("an error sent inside the stream surfaces as a ProviderError", async () => {
    fake.script([{ streamErrorAfterChunks: 2 }]);
    const { deltas, error } = await streamFailure(openai.stream({ prompt: "one two three" }));
    expect(deltas).toEqual(["one "]);
    expect(error).toMatchObject({ provider: "openai", retryable: true });
  });

  it("a connection dropped before any response is transient", async () => {
    fake.script([{ breakStreamAfterChunks: 0 }]);
    expect(await failure(openai.generate({ prompt: "x" }))).toMatchObject({ errorClass: "transient", retryable: true });
  });

  it("the client timeout becomes a retryable timeout error", async () => {
    const quick = createOpenAIProvider({ apiKey: "sk-test", baseURL: fake.url, timeoutMs: 100 });
    fake.script([{ delayMs: 600_000 }]); // pending until the client gives up (the fake stops waiting when the connection closes)
    expect(await failure(quick.generate({ prompt: "x" }))).toMatchObject({ errorClass: "timeout", retryable: true });
  });

  it("a refused connection is transient", async () => {
    const down = await startFakeOpenAI();
    const url = down.url;
    await down.close();
    const p = createOpenAIProvider({ apiKey: "k", baseURL: url });
    expect(await failure(p.generate({ prompt: "x" }))).toMatchObject({ errorClass: "transient", retryable: true });
  });
});
