import { describe, expect, it } from "vitest";
import { diffLines } from "./line-diff.js";

describe("diffLines", () => {
  it("keeps common lines and marks what was removed and added", () => {
    expect(diffLines("a\nb\nc", "a\nx\nc\nd")).toEqual([
      { op: "same", text: "a" },
      { op: "removed", text: "b" },
      { op: "added", text: "x" },
      { op: "same", text: "c" },
      { op: "added", text: "d" },
    ]);
  });
  it("rebuilds both sides exactly", () => {
    const before = JSON.stringify({ nodes: [{ key: "a" }, { key: "b", depends_on: ["a"] }] }, null, 2);
    const after = JSON.stringify({ nodes: [{ key: "a", config: { op: "upper" } }, { key: "c", depends_on: ["a"] }] }, null, 2);
    const d = diffLines(before, after);
    expect(d.filter((l) => l.op !== "added").map((l) => l.text).join("\n")).toBe(before);
    expect(d.filter((l) => l.op !== "removed").map((l) => l.text).join("\n")).toBe(after);
  });
});
