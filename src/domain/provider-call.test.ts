import { describe, expect, it } from "vitest";
import { inputChars, parseProviderCallSettings, providerCallLimits, providerCallSettingNames } from "./provider-call.js";

describe("parseProviderCallSettings: the one rule for a call's settings", () => {
  it("reads every setting present, and leaves other keys alone", () => {
    const { settings, issues } = parseProviderCallSettings(
      { provider: "openai", model: "gpt-4o-mini", strategy: "cheapest", tier: "premium", max_tokens: 64, temperature: 0.5, stream: false, system: "be brief", inputs: 3 },
      "ai.generate",
    );
    expect(issues).toEqual([]);
    expect(settings).toEqual({ provider: "openai", model: "gpt-4o-mini", strategy: "cheapest", tier: "premium", maxTokens: 64, temperature: 0.5, stream: false });
    expect(parseProviderCallSettings({}, "ai.embed")).toEqual({ settings: {}, issues: [] });
    expect(parseProviderCallSettings({ max_tokens: undefined }, "ai.embed")).toEqual({ settings: {}, issues: [] });
  });

  it.each([
    ["provider", ""],
    ["provider", null],
    ["model", 3],
    ["strategy", "random"],
    ["tier", "gold"],
    ["max_tokens", 0],
    ["max_tokens", 1.5],
    ["max_tokens", providerCallLimits.maxTokens + 1],
    ["max_tokens", "64"],
    ["temperature", -0.1],
    ["temperature", 2.5],
    ["temperature", "hot"],
    ["stream", "yes"],
  ] as const)("refuses %s = %j, naming the setting first in its message", (setting, value) => {
    const { settings, issues } = parseProviderCallSettings({ [setting]: value }, "ai.generate");
    expect(issues).toEqual([{ setting, code: "invalid_value", message: expect.stringMatching(new RegExp(`^${setting} `)) }]);
    expect(settings).toEqual({});
  });

  it("accepts the bounds", () => {
    expect(parseProviderCallSettings({ max_tokens: 1, temperature: 0 }, "ai.generate").issues).toEqual([]);
    expect(parseProviderCallSettings({ max_tokens: providerCallLimits.maxTokens, temperature: 2 }, "ai.generate").issues).toEqual([]);
  });

  it("refuses a streamed embedding, and only that", () => {
    expect(parseProviderCallSettings({ stream: true }, "ai.embed").issues.map((i) => i.setting)).toEqual(["stream"]);
    expect(parseProviderCallSettings({ stream: false }, "ai.embed").issues).toEqual([]);
    expect(parseProviderCallSettings({ stream: true }, "ai.generate").issues).toEqual([]);
  });

  it("reports every problem at once, in the settings' order", () => {
    const { issues } = parseProviderCallSettings({ temperature: 9, provider: "", max_tokens: -1 }, "ai.generate");
    expect(issues.map((i) => i.setting)).toEqual(["provider", "max_tokens", "temperature"]);
    expect(providerCallSettingNames).toEqual(["provider", "model", "strategy", "tier", "max_tokens", "temperature", "stream"]);
  });
});

describe("inputChars", () => {
  it("counts what a call sends", () => {
    expect(inputChars({ operation: "ai.generate", prompt: "abcd", system: "xy" })).toBe(6);
    expect(inputChars({ operation: "ai.generate", messages: [{ role: "user", content: "abc" }, { role: "assistant", content: "de" }] })).toBe(5);
    expect(inputChars({ operation: "ai.embed", texts: ["a", "bc"] })).toBe(3);
  });
});
