import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyOutputs, deepMerge, foldOutputs, isBindingLike, outputTargets, parseBinding, pickPaths, readPath, readPlan, resolveInputs, type BoundOutput, type Json, type JsonObject, type MergePolicy } from "./context.js";

describe("parseBinding", () => {
  it.each([
    ["$context", []],
    ["$context.a", ["a"]],
    ["$context.a.b_c.0", ["a", "b_c", "0"]],
    ["$context.A-1.x", ["A-1", "x"]],
  ])("%j → %j", (binding, path) => {
    expect(parseBinding(binding)).toEqual(path);
  });

  it.each(["", "$", "context.a", "$ctx.a", "$contexta", "$context.", "$context..a", "$context.a.", "$context.a b", "$context.a/b", "$context.ä", " $context.a", "$Context.a"])("rejects %j", (binding) => {
    expect(parseBinding(binding)).toBeNull();
  });
});

describe("isBindingLike", () => {
  it("is true for strings starting with one `$` only", () => {
    expect(isBindingLike("$context.a")).toBe(true);
    expect(isBindingLike("$oops")).toBe(true);
    expect(isBindingLike("$$context.a")).toBe(false);
    expect(isBindingLike("context")).toBe(false);
    expect(isBindingLike(5)).toBe(false);
    expect(isBindingLike(null)).toBe(false);
  });
});

describe("readPath", () => {
  const root: Json = { a: { list: [{ x: 1 }, { x: 2 }] }, n: null };
  it("walks objects and array indices", () => {
    expect(readPath(root, ["a", "list", "1", "x"])).toBe(2);
    expect(readPath(root, ["n"])).toBeNull();
    expect(readPath(root, [])).toBe(root);
  });
  it("is undefined for what is not there, including inherited properties", () => {
    expect(readPath(root, ["a", "list", "5"])).toBeUndefined();
    expect(readPath(root, ["a", "list", "length"])).toBeUndefined();
    expect(readPath(root, ["a", "missing"])).toBeUndefined();
    expect(readPath(root, ["n", "deeper"])).toBeUndefined();
    expect(readPath(root, ["constructor"])).toBeUndefined();
    expect(readPath(root, ["toString"])).toBeUndefined();
  });
});

describe("resolveInputs", () => {
  const context: JsonObject = { topic: "cats", user: { name: "Ada", tags: ["x", "y"] }, zero: 0, nothing: null, flag: false };

  it("resolves nested bindings and array indices", () => {
    expect(resolveInputs({ t: "$context.topic", name: "$context.user.name", tag: "$context.user.tags.1", user: "$context.user" }, context)).toEqual({
      t: "cats",
      name: "Ada",
      tag: "y",
      user: { name: "Ada", tags: ["x", "y"] },
    });
  });

  it("binds the whole context with `$context`", () => {
    expect(resolveInputs({ all: "$context" }, context)).toEqual({ all: context });
  });

  it("keeps falsy values that are present", () => {
    expect(resolveInputs({ z: "$context.zero", n: "$context.nothing", f: "$context.flag" }, context)).toEqual({ z: 0, n: null, f: false });
  });

  it("leaves out missing and malformed bindings", () => {
    const out = resolveInputs({ missing: "$context.nope", deep: "$context.user.name.first", idx: "$context.user.tags.9", bad: "$ctx.topic", ok: "$context.topic" }, context);
    expect(out).toEqual({ ok: "cats" });
    expect(Object.keys(out)).toEqual(["ok"]);
  });

  it("unescapes `$$` to a literal `$`", () => {
    expect(resolveInputs({ price: "$$5", b: "$$context.topic", d: "$$$x" }, context)).toEqual({ price: "$5", b: "$context.topic", d: "$$x" });
  });

  it("passes literals through unchanged (nested values are not resolved)", () => {
    const inputs: JsonObject = { s: "plain", n: 3, b: true, nul: null, arr: [1, "$context.topic"], obj: { k: "$context.topic" }, dollarInside: "a$context.topic" };
    expect(resolveInputs(inputs, context)).toEqual(inputs);
  });

  it("handles absent inputs", () => {
    expect(resolveInputs(undefined, context)).toEqual({});
  });
});

describe("applyOutputs", () => {
  it("replace (the default) writes fields to their targets, creating parents", () => {
    const ctx = { keep: 1, a: { old: true } };
    expect(applyOutputs(ctx, { text: "hi", n: 2 }, { text: "$context.a.b.c", n: "$context.count" })).toEqual({ keep: 1, a: { old: true, b: { c: "hi" } }, count: 2 });
    expect(applyOutputs({ a: { x: 1, y: 2 } }, { v: { x: 9 } }, { v: "$context.a" }, "replace")).toEqual({ a: { x: 9 } });
  });

  it("replaces a scalar on the way with an object", () => {
    expect(applyOutputs({ a: 5 }, { v: 1 }, { v: "$context.a.b" })).toEqual({ a: { b: 1 } });
  });

  it("writes an array element in place for a numeric segment (as readPath reads it)", () => {
    // Bug: writePath turns the array into {"1": 9}, losing the other elements.
    expect(applyOutputs({ items: [1, 2, 3] }, { v: 9 }, { v: "$context.items.1" })).toEqual({ items: [1, 9, 3] });
  });

  it("skips output fields the node did not produce", () => {
    const ctx = { a: 1 };
    expect(applyOutputs(ctx, { other: 1 }, { missing: "$context.a" })).toEqual({ a: 1 });
  });

  it("writes null when the output field is null", () => {
    expect(applyOutputs({ a: 1 }, { v: null }, { v: "$context.a" })).toEqual({ a: null });
  });

  it("`*` binds the whole output", () => {
    expect(applyOutputs({}, { x: 1, y: [2] }, { "*": "$context.result" })).toEqual({ result: { x: 1, y: [2] } });
  });

  it("deep_merge merges objects recursively; arrays and scalars are replaced", () => {
    const ctx = { cfg: { a: 1, nested: { x: 1, y: 2 }, list: [1, 2] } };
    expect(applyOutputs(ctx, { v: { b: 2, nested: { y: 3, z: 4 }, list: [9] } }, { v: "$context.cfg" }, "deep_merge")).toEqual({
      cfg: { a: 1, b: 2, nested: { x: 1, y: 3, z: 4 }, list: [9] },
    });
    expect(applyOutputs({ cfg: "scalar" }, { v: { a: 1 } }, { v: "$context.cfg" }, "deep_merge")).toEqual({ cfg: { a: 1 } });
  });

  it("deep_merge into the root `$context`", () => {
    expect(applyOutputs({ topic: "t", s: { a: 1 } }, { s: { b: 2 }, answer: 42 }, { "*": "$context" }, "deep_merge")).toEqual({ topic: "t", s: { a: 1, b: 2 }, answer: 42 });
  });

  it("a non-object written to the root `$context` leaves the context alone", () => {
    const ctx = { a: 1 };
    expect(applyOutputs(ctx, { v: [1] }, { v: "$context" }, "append")).toEqual({ a: 1 });
    expect(applyOutputs(ctx, { v: "str" }, { v: "$context" }, "replace")).toEqual({ a: 1 });
  });

  it("append builds and extends lists", () => {
    expect(applyOutputs({}, { v: "a" }, { v: "$context.list" }, "append")).toEqual({ list: ["a"] });
    expect(applyOutputs({ list: ["a"] }, { v: "b" }, { v: "$context.list" }, "append")).toEqual({ list: ["a", "b"] });
    expect(applyOutputs({ list: ["a"] }, { v: ["b", "c"] }, { v: "$context.list" }, "append")).toEqual({ list: ["a", "b", "c"] });
    expect(applyOutputs({ list: "a" }, { v: "b" }, { v: "$context.list" }, "append")).toEqual({ list: ["a", "b"] });
    expect(applyOutputs({ list: null }, { v: "b" }, { v: "$context.list" }, "append")).toEqual({ list: [null, "b"] });
  });

  it("ignores malformed targets", () => {
    expect(applyOutputs({ a: 1 }, { v: 2 }, { v: "$ctx.a" })).toEqual({ a: 1 });
  });

  it("applies several outputs in order", () => {
    expect(applyOutputs({}, { a: 1, b: 2 }, { a: "$context.x.a", b: "$context.x.b" })).toEqual({ x: { a: 1, b: 2 } });
  });

  it("a `__proto__` key in a node's output is data, never the merged object's prototype", () => {
    const output = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as JsonObject;
    const merged: any = applyOutputs({ x: 1 }, output, { "*": "$context" }, "deep_merge");
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
    expect(merged.polluted).toBeUndefined();
    expect(({} as any).polluted).toBeUndefined();
    expect(merged).toMatchObject({ x: 1, a: 1 });
  });
});

describe("deepMerge", () => {
  it("returns the patch for non-objects", () => {
    expect(deepMerge(undefined, 3)).toBe(3);
    expect(deepMerge({ a: 1 }, [1])).toEqual([1]);
    expect(deepMerge([1], { a: 1 })).toEqual({ a: 1 });
  });
});

describe("immutability (property)", () => {
  const key = fc.constantFrom("a", "b", "c", "list", "0", "1");
  const json: fc.Arbitrary<Json> = fc.letrec<{ v: Json }>((tie) => ({
    v: fc.oneof(
      { maxDepth: 3, depthIdentifier: "json" },
      fc.constantFrom<Json>(null, true, 0, 1, "s"),
      fc.array(tie("v"), { maxLength: 3 }),
      fc.dictionary(key, tie("v"), { maxKeys: 3 }),
    ),
  })).v;
  const object = fc.dictionary(key, json, { maxKeys: 4 }) as fc.Arbitrary<JsonObject>;
  const target = fc.oneof(fc.constant("$context"), fc.array(key, { minLength: 1, maxLength: 3 }).map((p) => `$context.${p.join(".")}`));
  const outputs = fc.dictionary(fc.constantFrom("*", "a", "b", "list"), target, { maxKeys: 3 });
  const policy = fc.constantFrom<MergePolicy>("replace", "deep_merge", "append");

  it("applyOutputs never mutates its arguments", () => {
    fc.assert(
      fc.property(object, object, outputs, policy, (context, output, outs, p) => {
        const before = structuredClone({ context, output, outs });
        applyOutputs(context, output, outs, p);
        expect({ context, output, outs }).toEqual(before);
      }),
      { numRuns: 300 },
    );
  });

  it("resolveInputs never mutates its arguments", () => {
    fc.assert(
      fc.property(fc.dictionary(key, fc.oneof(json, target)), object, (inputs, context) => {
        const before = structuredClone({ inputs, context });
        resolveInputs(inputs as JsonObject, context);
        expect({ inputs, context }).toEqual(before);
      }),
    );
  });

  // The store keeps outputs per node and a step reads only part of the context
  // (db/run-context.ts): the part must read, at every path the step asks for, what the
  // whole context binding every output in order would.
  it("a read plan's part of the context reads as the whole context at the read paths", () => {
    // Few keys, so that writes and reads meet often: above, below and beside each other.
    const k = fc.constantFrom("a", "b", "0");
    const value: fc.Arbitrary<Json> = fc.letrec<{ v: Json }>((tie) => ({
      v: fc.oneof({ maxDepth: 2, depthIdentifier: "v" }, fc.constantFrom<Json>(null, 1, "s"), fc.array(tie("v"), { maxLength: 2 }), fc.dictionary(k, tie("v"), { maxKeys: 2 })),
    })).v;
    const obj = fc.dictionary(k, value, { maxKeys: 3 }) as fc.Arbitrary<JsonObject>;
    const tgt = fc.oneof(fc.constant("$context"), fc.array(k, { minLength: 1, maxLength: 2 }).map((p) => `$context.${p.join(".")}`));
    const node = fc.record({ output: obj, outputs: fc.dictionary(fc.constantFrom("*", "a", "b"), tgt, { minKeys: 1, maxKeys: 2 }), merge: policy });
    const readPathArb = fc.oneof(fc.constant([] as string[]), fc.array(k, { minLength: 1, maxLength: 3 }));
    fc.assert(
      fc.property(obj, fc.array(node, { maxLength: 5 }), fc.array(readPathArb, { minLength: 1, maxLength: 3 }), (base, nodes, reads) => {
        // Writing the whole $context needs deep_merge (workflow-spec.ts validation).
        const bound: (BoundOutput & { key: string })[] = nodes.map((n, i) => ({ key: `n${i}`, ...n, merge: Object.values(n.outputs).includes("$context") ? "deep_merge" : n.merge }));
        const whole = foldOutputs(base, bound);
        const plan = readPlan(reads, new Map(bound.map((b) => [b.key, outputTargets(b.outputs)])));
        const part = foldOutputs(
          pickPaths(
            plan.basePaths.map((p) => readPath(base, p)),
            plan.basePaths,
          ),
          bound.filter((b) => plan.writers.includes(b.key)),
        );
        for (const r of reads) expect(readPath(part, r)).toEqual(readPath(whole, r));
      }),
      { numRuns: 2000 },
    );
  });

  it("a read plan leaves out the nodes that write elsewhere (positive control: it keeps those that write there)", () => {
    const plan = readPlan([["x"]], new Map([["big", [["other"]]], ["mine", [["x", "y"]]], ["above", [["x"]]]]));
    expect(plan).toEqual({ basePaths: [["x"]], writers: ["mine", "above"] });
    // A merge above the read path must apply to the value the whole context has there: the
    // base is read at the writer's target, not at the read path ({a: [5]}, append [7] to a, read a.0).
    expect(readPlan([["a", "0"]], new Map([["w", [["a"]]]])).basePaths).toEqual([["a"]]);
    // A node writing above the read path (here the whole context) widens the read to everything.
    expect(readPlan([["x"]], new Map([["big", [["other"]]], ["root", [[]]]])).writers).toEqual(["big", "root"]);
    expect(readPlan([["x", "y"]], new Map([["big", [["other"]]], ["sib", [["x", "z"]]]]))).toEqual({ basePaths: [["x", "y"]], writers: [] });
  });
});
