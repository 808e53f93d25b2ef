import { describe, expect, it } from "vitest";
import { layoutDag, nodeWidth } from "./layout.js";

describe("layoutDag", () => {
  it("places every dependency to the left of its dependants, with one edge per dependency", () => {
    const nodes = [
      { key: "fetch", depends_on: [] },
      { key: "a", depends_on: ["fetch"] },
      { key: "b", depends_on: ["fetch"] },
      { key: "join", depends_on: ["a", "b"] },
    ];
    const l = layoutDag(nodes);
    const at = Object.fromEntries(l.nodes.map((n) => [n.key, n]));
    expect(at.a!.x).toBeGreaterThanOrEqual(at.fetch!.x + nodeWidth);
    expect(at.join!.x).toBeGreaterThanOrEqual(at.a!.x + nodeWidth);
    expect(at.a!.y).not.toBe(at.b!.y);
    expect(l.edges.map((e) => `${e.from}->${e.to}`).sort()).toEqual(["a->join", "b->join", "fetch->a", "fetch->b"]);
    for (const e of l.edges) expect(e.points.length).toBeGreaterThanOrEqual(2);
    expect(l.width).toBeGreaterThan(3 * nodeWidth);
  });

  it("ignores dependencies on unknown nodes instead of inventing them", () => {
    const l = layoutDag([{ key: "x", depends_on: ["ghost"] }]);
    expect(l.nodes.map((n) => n.key)).toEqual(["x"]);
    expect(l.edges).toEqual([]);
  });

  it("lays out 200 nodes", () => {
    const nodes = Array.from({ length: 200 }, (_, i) => ({ key: `n${i}`, depends_on: i === 0 ? [] : [`n${Math.floor((i - 1) / 3)}`] }));
    const l = layoutDag(nodes);
    expect(l.nodes).toHaveLength(200);
    expect(l.edges).toHaveLength(199);
  });
});
