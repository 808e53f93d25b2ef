import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createEchoProvider } from "../../src/providers/echo/index.js";
import { startFakeOllama, type FakeServer } from "../../src/providers/fakes/index.js";
import { createOllamaProvider } from "../../src/providers/ollama/index.js";
import type { Provider } from "../../src/providers/provider.js";
import { withRetries } from "../../src/providers/retry.js";
import { collectStream, failure, streamFailure, tokens, waitFor } from "./helpers.js";

let fake: FakeServer;
let ollama: Provider;

beforeAll(async () => {
  fake = await startFakeOllama();
  ollama = createOllamaProvider({ baseURL: fake.url });
});
afterAll(() => fake.close());
afterEach(() => fake.reset());

describe("ollama adapter over plain fetch", () => {
  it("generates with stream:false and takes usage from prompt_eval_count / eval_count", async () => {
    const r = await ollama.generate({ system: "sys", prompt: "hello ollama", maxTokens: 32, temperature: 0.5 });
    expect(r).toEqual({
      text: "hello ollama",
      model: "llama3.2",
      provider: "ollama",
      usage: { inputTokens: tokens("sys", "hello ollama"), outputTokens: tokens("hello ollama") },
      finishReason: "stop",
    });
    expect(fake.requests[0]!.path).toBe("/api/chat");
    expect(fake.requests[0]!.body).toEqual({
      model: "llama3.2",
      messages: [
        { role: "system", content: "sys" },
        { role: "user", content: "hello ollama" },
      ],
      stream: false,
      options: { num_predict: 32, temperature: 0.5 },
    });
  });

  it("reports the same usage as echo for the same request", async () => {
    const req = { messages: [{ role: "user" as const, content: "abc" }, { role: "assistant" as const, content: "de" }, { role: "user" as const, content: "fghij" }] };
    const [a, b] = await Promise.all([ollama.generate(req), createEchoProvider().generate(req)]);
    expect(a.usage).toEqual(b.usage);
  });

  it("streams NDJSON deltas; usage comes only from the final done:true line", async () => {
    const { deltas, result } = await collectStream(ollama.stream({ prompt: "local models are fun", model: "qwen2.5" }));
    expect(deltas).toEqual(["local ", "models ", "are ", "fun"]);
    expect(result).toEqual({
      text: "local models are fun",
      model: "qwen2.5",
      provider: "ollama",
      usage: { inputTokens: tokens("local models are fun"), outputTokens: tokens("local models are fun") },
      finishReason: "stop",
    });
    expect(fake.requests[0]!.body.stream).toBe(true);
  });

  it("embeds through /api/embed", async () => {
    const r = await ollama.embed!(["one", "two"], { model: "all-minilm" });
    expect(r.embeddings).toHaveLength(2);
    expect(r).toMatchObject({ model: "all-minilm", provider: "ollama", usage: { inputTokens: tokens("one", "two"), outputTokens: 0 } });
    expect(fake.requests[0]!.body).toEqual({ model: "all-minilm", input: ["one", "two"] });
  });

  it.each([
    [503, "overloaded", true],
    [500, "transient", true],
    [429, "rate_limited", true],
    [404, "invalid_request", false],
    [400, "invalid_request", false],
  ] as const)("HTTP %i becomes %s (retryable %s)", async (status, errorClass, retryable) => {
    fake.script([{ status, message: "boom" }]);
    const err = await failure(ollama.generate({ prompt: "x" }));
    expect(err).toMatchObject({ provider: "ollama", status, errorClass, retryable });
    expect(err.message).toContain("boom");
  });

  it("withRetries honours retry-after on a 503 and then succeeds", async () => {
    fake.script([{ status: 503, retryAfter: "0.2" }]);
    const started = Date.now();
    const r = await withRetries(() => ollama.generate({ prompt: "ok" }), { baseDelayMs: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(r.text).toBe("ok");
    expect(fake.requests).toHaveLength(2);
  });

  it("an {error} line inside the stream surfaces as a retryable ProviderError", async () => {
    fake.script([{ streamErrorAfterChunks: 1 }]);
    const { deltas, error } = await streamFailure(ollama.stream({ prompt: "a b c" }));
    expect(deltas).toEqual(["a "]);
    expect(error).toMatchObject({ provider: "ollama", errorClass: "transient", retryable: true });
  });

  it("a stream cut mid-way surfaces as a retryable ProviderError", async () => {
    fake.script([{ breakStreamAfterChunks: 2 }]);
    const { deltas, error } = await streamFailure(ollama.stream({ prompt: "a b c d" }));
    expect(deltas).toEqual(["a ", "b "]);
    expect(error).toMatchObject({ provider: "ollama", errorClass: "transient", retryable: true });
  });

  it("abort cancels an in-flight slow request and the server sees the connection close", async () => {
    fake.script([{ delayMs: 600_000 }]); // pending until the client gives up (the fake stops waiting when the connection closes)
    const ac = new AbortController();
    const pending = ollama.generate({ prompt: "slow", signal: ac.signal });
    await waitFor(() => fake.requests.length === 1);
    ac.abort();
    expect(await failure(pending)).toMatchObject({ errorClass: "aborted", retryable: false });
    await fake.requests[0]!.closed;
    expect(fake.requests[0]!.closedByClient).toBe(true);
  });

  it("abort mid-stream stops reading and closes the connection", async () => {
    fake.script([{ chunkDelayMs: 100 }]);
    const ac = new AbortController();
    const seen: string[] = [];
    const err = await failure(
      (async () => {
        for await (const c of ollama.stream({ prompt: "one two three four", signal: ac.signal })) {
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

  it("abort mid-stream yields no delta already buffered with the one that triggered it", async () => {
    // Several lines in one read: what a slow consumer gets from a fast server. Deterministic,
    // unlike chunk delays, which a loaded machine can merge into one read.
    const lines = ["one ", "two ", "three "].map((t) => JSON.stringify({ model: "llama3.2", message: { role: "assistant", content: t }, done: false }) + "\n").join("");
    const oneRead = createOllamaProvider({ baseURL: "http://ollama.invalid", fetch: async () => new Response(lines + JSON.stringify({ done: true }) + "\n") });
    const ac = new AbortController();
    const seen: string[] = [];
    const err = await failure(
      (async () => {
        for await (const c of oneRead.stream({ prompt: "x", signal: ac.signal })) {
          if (c.type === "delta") {
            seen.push(c.text);
            ac.abort();
          }
        }
      })(),
    );
    expect(err.errorClass).toBe("aborted");
    expect(seen).toEqual(["one "]);
  });

  it("a consumer that stops reading early closes the connection", async () => {
    fake.script([{ chunkDelayMs: 30 }]);
    for await (const c of ollama.stream({ prompt: "one two three four five" })) {
      if (c.type === "delta") break;
    }
    await fake.requests[0]!.closed;
    expect(fake.requests[0]!.closedByClient).toBe(true);
  });

  it("timeoutMs bounds the wait for response headers as a retryable timeout", async () => {
    const quick = createOllamaProvider({ baseURL: fake.url, timeoutMs: 100 });
    fake.script([{ delayMs: 600_000 }]); // pending until the client gives up (the fake stops waiting when the connection closes)
    expect(await failure(quick.generate({ prompt: "x" }))).toMatchObject({ errorClass: "timeout", retryable: true });
    await fake.requests[0]!.closed;
    expect(fake.requests[0]!.closedByClient).toBe(true);
  });

  it("a refused connection is transient", async () => {
    const down = await startFakeOllama();
    const url = down.url;
    await down.close();
    const p = createOllamaProvider({ baseURL: url });
    expect(await failure(p.generate({ prompt: "x" }))).toMatchObject({ errorClass: "transient", retryable: true });
  });
});
