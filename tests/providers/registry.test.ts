import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeAnthropic, startFakeOllama, startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";
import { loadConfig } from "../../src/config.js";
import { createProviders } from "../../src/providers/registry.js";

describe("createProviders", () => {
  it("always has echo, and only echo with an empty environment", () => {
    const ps = createProviders({});
    expect(ps.map((p) => p.name)).toEqual(["echo"]);
  });

  it("enables providers from the validated configuration; a blank key does not count (an invalid OLLAMA_ENABLED stops the loader)", () => {
    expect(createProviders(loadConfig({ OPENAI_API_KEY: " ", OLLAMA_ENABLED: "0" })).map((p) => p.name)).toEqual(["echo"]);
    expect(() => loadConfig({ OLLAMA_ENABLED: "yes" })).toThrow(/OLLAMA_ENABLED/);
    const ps = createProviders(loadConfig({ OPENAI_API_KEY: "sk", ANTHROPIC_API_KEY: "sk-ant", OLLAMA_ENABLED: "1" }));
    expect(ps.map((p) => [p.name, p.tier, p.local])).toEqual([
      ["echo", "basic", true],
      ["openai", "premium", false],
      ["anthropic", "premium", false],
      ["ollama", "basic", true],
    ]);
    expect(createProviders(loadConfig({ OLLAMA_ENABLED: "TRUE" })).map((p) => p.name)).toEqual(["echo", "ollama"]);
  });

  it("declares models (first = default) and operations", () => {
    const ps = createProviders({ OPENAI_API_KEY: "sk", ANTHROPIC_API_KEY: "sk-ant", OLLAMA_ENABLED: true });
    for (const p of ps) expect(p.models.length).toBeGreaterThan(0);
    const ops = Object.fromEntries(ps.map((p) => [p.name, p.operations]));
    expect(ops).toEqual({
      echo: ["ai.generate", "ai.embed"],
      openai: ["ai.generate", "ai.embed"],
      anthropic: ["ai.generate"],
      ollama: ["ai.generate", "ai.embed"],
    });
    for (const p of ps) expect(typeof p.embed === "function").toBe(p.operations.includes("ai.embed"));
  });

  describe("base URLs from the configuration reach the SDKs", () => {
    let openai: FakeServer, anthropic: FakeServer, ollama: FakeServer;
    beforeAll(async () => {
      [openai, anthropic, ollama] = await Promise.all([startFakeOpenAI(), startFakeAnthropic(), startFakeOllama()]);
    });
    afterAll(() => Promise.all([openai.close(), anthropic.close(), ollama.close()]));

    it("every provider answers the same prompt with the same text and usage", async () => {
      const ps = createProviders(
        loadConfig({
        OPENAI_API_KEY: "sk",
        OPENAI_BASE_URL: openai.url,
        ANTHROPIC_API_KEY: "sk-ant",
        ANTHROPIC_BASE_URL: anthropic.url,
        OLLAMA_ENABLED: "true",
        OLLAMA_URL: ollama.url,
        }),
      );
      const results = await Promise.all(ps.map((p) => p.generate({ system: "be brief", prompt: "same answer everywhere" })));
      expect(results.map((r) => r.provider)).toEqual(["echo", "openai", "anthropic", "ollama"]);
      for (const r of results) {
        expect(r.text).toBe("same answer everywhere");
        expect(r.usage).toEqual(results[0]!.usage);
      }
      expect([openai, anthropic, ollama].map((f) => f.requests.length)).toEqual([1, 1, 1]);
    });
  });
});
