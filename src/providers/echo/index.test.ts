import { describe, expect, it } from "vitest";
import { ProviderError } from "../errors.js";
import type { StreamChunk } from "../provider.js";
import { createEchoProvider, echoEmbedding, splitIntoWordChunks } from "./index.js";

const echo = createEchoProvider();

async function collect(iter: AsyncIterable<StreamChunk>): Promise<StreamChunk[]> {
  const out: StreamChunk[] = [];
  for await (const c of iter) out.push(c);
  return out;
}

describe("echo provider", () => {
  it("describes itself as a local basic provider serving echo-1 by default", () => {
    expect(echo.name).toBe("echo");
    expect(echo.tier).toBe("basic");
    expect(echo.local).toBe(true);
    expect(echo.models[0]).toBe("echo-1");
    expect(echo.operations).toContain("ai.generate");
  });

  it("replies with the prompt unchanged and counts ceil(chars/4) tokens", async () => {
    const r = await echo.generate({ prompt: "hello world" }); // 11 chars
    expect(r).toEqual({
      text: "hello world",
      model: "echo-1",
      provider: "echo",
      usage: { inputTokens: 3, outputTokens: 3 },
      finishReason: "stop",
    });
  });

  it("replies with the last user message and counts all input, system included", async () => {
    const r = await echo.generate({
      system: "be brief", // 8
      messages: [
        { role: "system", content: "sys" }, // 3
        { role: "user", content: "first" }, // 5
        { role: "assistant", content: "ok" }, // 2
        { role: "user", content: "second one" }, // 10
      ],
    });
    expect(r.text).toBe("second one");
    expect(r.usage).toEqual({ inputTokens: Math.ceil(28 / 4), outputTokens: Math.ceil(10 / 4) });
  });

  it("keeps a pinned model name", async () => {
    expect((await echo.generate({ prompt: "x", model: "echo-1" })).model).toBe("echo-1");
  });

  it("rejects a request with nothing to say as invalid_request", async () => {
    await expect(echo.generate({ messages: [] })).rejects.toMatchObject({ errorClass: "invalid_request", retryable: false });
  });

  it("streams whitespace-preserving word chunks then done with the full result", async () => {
    const chunks = await collect(echo.stream({ prompt: "the quick  brown\nfox" }));
    const deltas = chunks.filter((c) => c.type === "delta").map((c) => (c as { text: string }).text);
    expect(deltas).toEqual(["the ", "quick  ", "brown\n", "fox"]);
    const last = chunks.at(-1);
    expect(last?.type).toBe("done");
    if (last?.type === "done") expect(last.result.text).toBe(deltas.join(""));
  });

  it("splitIntoWordChunks round-trips any text", () => {
    for (const t of ["", " ", "a", "  lead and trail  ", "tabs\tand\nnewlines"]) {
      expect(splitIntoWordChunks(t).join("")).toBe(t);
    }
  });

  it("throws an aborted ProviderError when the signal is already aborted", async () => {
    const ac = new AbortController();
    ac.abort();
    const err = await echo.generate({ prompt: "x", signal: ac.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ provider: "echo", errorClass: "aborted", retryable: false });
  });

  it("stops a stream when aborted mid-way", async () => {
    const ac = new AbortController();
    const seen: string[] = [];
    const run = (async () => {
      for await (const c of echo.stream({ prompt: "one two three four five", signal: ac.signal })) {
        if (c.type === "delta") {
          seen.push(c.text);
          if (seen.length === 2) ac.abort();
        }
      }
    })();
    await expect(run).rejects.toMatchObject({ errorClass: "aborted" });
    expect(seen).toEqual(["one ", "two "]);
  });

  it("embeds deterministically", async () => {
    const r = await echo.embed!(["a", "b", "a"], {});
    expect(r.embeddings).toHaveLength(3);
    expect(r.embeddings[0]).toEqual(r.embeddings[2]);
    expect(r.embeddings[0]).not.toEqual(r.embeddings[1]);
    expect(echoEmbedding("abc")).toHaveLength(8);
    expect(r.model).toBe("echo-embed-1");
  });
});
