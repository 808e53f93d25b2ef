import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { echoEmbedding } from "../../src/providers/echo/index.js";
import { startFakeAnthropic, startFakeOllama, startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";

// The fakes checked byte-level with plain fetch, independently of any SDK's parsing.

function sseEvents(raw: string): { event?: string; data: string }[] {
  return raw
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const lines = block.split("\n");
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7);
      const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      return event === undefined ? { data } : { event, data };
    });
}

describe("fake OpenAI wire format", () => {
  let fake: FakeServer;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(() => fake.close());

  const post = (body: unknown) =>
    fetch(`${fake.url}/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer k", "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  it("with include_usage: usage:null on every chunk, then an empty-choices usage chunk, then [DONE]", async () => {
    const res = await post({ model: "m", messages: [{ role: "user", content: "a b" }], stream: true, stream_options: { include_usage: true } });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = sseEvents(await res.text());
    expect(events.at(-1)!.data).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    const usageChunk = chunks.at(-1);
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toMatchObject({ prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 });
    for (const c of chunks.slice(0, -1)) {
      expect(c.object).toBe("chat.completion.chunk");
      expect(c.usage).toBeNull();
    }
    expect(chunks.at(-2).choices[0].finish_reason).toBe("stop");
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
  });

  it("without include_usage: no usage anywhere", async () => {
    const res = await post({ model: "m", messages: [{ role: "user", content: "a b" }], stream: true });
    const chunks = sseEvents(await res.text()).slice(0, -1).map((e) => JSON.parse(e.data));
    expect(chunks.every((c) => !("usage" in c))).toBe(true);
  });

  it("missing auth is a 401 in OpenAI's error shape", async () => {
    const res = await fetch(`${fake.url}/chat/completions`, { method: "POST", body: "{}" });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { type: "invalid_request_error", code: "invalid_api_key" } });
  });

  it("serves base64 embeddings, which the SDK decodes when encoding_format is left unset", async () => {
    const client = new OpenAI({ apiKey: "k", baseURL: fake.url, maxRetries: 0 });
    const r = await client.embeddings.create({ model: "text-embedding-3-small", input: "hello" });
    expect(fake.requests.at(-1)!.body.encoding_format).toBe("base64");
    const expected = echoEmbedding("hello");
    r.data[0]!.embedding.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 5));
  });

  it("script() applies behaviours to the next requests in order, then the default resumes", async () => {
    fake.reset();
    fake.script([{ status: 429, retryAfter: "1" }, { status: 500 }]);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await post({ model: "m", messages: [{ role: "user", content: "x" }] })).status);
    expect(statuses).toEqual([429, 500, 200]);
    expect(fake.requests).toHaveLength(3);
    expect(fake.requests[0]!.behaviour).toEqual({ status: 429, retryAfter: "1" });
  });
});

describe("fake Anthropic wire format", () => {
  let fake: FakeServer;
  beforeAll(async () => {
    fake = await startFakeAnthropic();
  });
  afterAll(() => fake.close());

  const post = (body: unknown, headers: Record<string, string> = { "x-api-key": "k", "anthropic-version": "2023-06-01" }) =>
    fetch(`${fake.url}/v1/messages`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

  it("streams the documented event sequence", async () => {
    const res = await post({ model: "m", max_tokens: 10, stream: true, messages: [{ role: "user", content: "a b" }] });
    const events = sseEvents(await res.text());
    expect(events.map((e) => e.event)).toEqual([
      "message_start",
      "content_block_start",
      "ping",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    for (const e of events) expect(JSON.parse(e.data).type).toBe(e.event);
    expect(JSON.parse(events[0]!.data).message.usage).toMatchObject({ input_tokens: 1, output_tokens: 1 });
    expect(JSON.parse(events[6]!.data)).toMatchObject({ delta: { stop_reason: "end_turn" }, usage: { output_tokens: 1 } });
  });

  it("errors use Anthropic's body; 529 is overloaded_error; a missing anthropic-version is a 400", async () => {
    fake.script([{ status: 529 }]);
    const res = await post({ model: "m", max_tokens: 1, messages: [{ role: "user", content: "x" }] });
    expect(res.status).toBe(529);
    expect(await res.json()).toMatchObject({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } });

    const noVersion = await post({ model: "m", max_tokens: 1, messages: [] }, { "x-api-key": "k" });
    expect(noVersion.status).toBe(400);
    expect(await noVersion.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
  });

  it("requires max_tokens like the real API", async () => {
    const res = await post({ model: "m", messages: [{ role: "user", content: "x" }] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain("max_tokens");
  });
});

describe("fake Ollama wire format", () => {
  let fake: FakeServer;
  beforeAll(async () => {
    fake = await startFakeOllama();
  });
  afterAll(() => fake.close());

  it("streams NDJSON when `stream` is omitted; only the last line is done:true with counts", async () => {
    const res = await fetch(`${fake.url}/api/chat`, { method: "POST", body: JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "x y" }] }) });
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.done)).toEqual([false, false, true]);
    expect(lines.slice(0, -1).every((l) => l.eval_count === undefined)).toBe(true);
    expect(lines.at(-1)).toMatchObject({ done_reason: "stop", prompt_eval_count: 1, eval_count: 1, message: { content: "" } });
  });

  it("lists models at /api/tags without consuming a scripted behaviour", async () => {
    fake.script([{ status: 500 }]);
    const res = await fetch(`${fake.url}/api/tags`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { models: { name: string }[] }).models.map((m: { name: string }) => m.name)).toEqual(["llama3.2:latest", "nomic-embed-text:latest"]);
    const chat = await fetch(`${fake.url}/api/chat`, { method: "POST", body: JSON.stringify({ model: "m", messages: [], stream: false }) });
    expect(chat.status).toBe(500);
    expect(await chat.json()).toEqual({ error: "llama runner process has terminated: exit status 2" });
  });
});
