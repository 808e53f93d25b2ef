import { describe, expect, it } from "vitest";
import { jsonDepthExceeds } from "./json-depth.js";

describe("jsonDepthExceeds", () => {
  it("counts arrays and objects, not brackets in strings", () => {
    expect(jsonDepthExceeds('{"a":[{"b":1}]}', 3)).toBe(false);
    expect(jsonDepthExceeds('{"a":[{"b":[1]}]}', 3)).toBe(true);
    expect(jsonDepthExceeds(JSON.stringify({ s: "[[[[[[[[{{{{{\\\"[[[[" }), 2)).toBe(false);
  });

  it("handles 10,000 levels without recursion", () => {
    expect(jsonDepthExceeds("[".repeat(10_000) + "]".repeat(10_000))).toBe(true);
  });
});
