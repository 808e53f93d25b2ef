import { create, fromJson, type JsonObject } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WorkflowSpecSchema, type WorkflowSpec } from "../../gen/proto/fabric/v1/workflow_pb.js";
import type { Issue } from "./errors.js";
import { limits, nodesInCycles, validateWorkflowSpec } from "./workflow-spec.js";

/** A spec from the JSON (proto3 JSON: snake_case accepted) form the API takes. */
const spec = (json: JsonObject): WorkflowSpec => fromJson(WorkflowSpecSchema, json);
const noop = (key: string, extra: JsonObject = {}): JsonObject => ({ key, operation: "workflow.noop", ...extra });
const issues = (json: JsonObject) => validateWorkflowSpec(spec(json));
/** The (path, code) pairs, which are the contract; messages are for humans. */
const codes = (found: Issue[]) => found.map((i) => [i.path, i.code]);

describe("validateWorkflowSpec", () => {
  it("accepts a valid, complex spec", () => {
    const found = issues({
      name: "research.pipeline-v2",
      description: "all the features at once",
      run_timeout_ms: 60_000,
      nodes: [
        { key: "seed", operation: "workflow.merge_context", config: { values: { n: 1 } }, outputs: { "*": "$context" }, merge: "deep_merge" },
        {
          key: "shout",
          operation: "text.transform_basic",
          runtime: "native",
          config: { op: "upper" },
          inputs: { text: "$context.topic", price: "$$5", literal: 3, list: [1, 2] },
          outputs: { text: "$context.loud", length: "$context.stats.len" },
          depends_on: ["seed"],
          policy: { timeout_ms: 1000, max_attempts: 3, backoff: { initial_ms: 10, factor: 2, max_ms: 100, jitter: 0.5 }, retry_on: ["timeout", "transient"] },
        },
        { key: "gen", operation: "ai.generate", runtime: "provider", inputs: { prompt: "$context.loud" }, outputs: { text: "$context.answers" }, merge: "append", depends_on: ["shout"] },
        { key: "wait", operation: "workflow.wait_signal", config: { timeout_ms: 5000 }, depends_on: ["seed"] },
        { key: "join", operation: "workflow.fan_in", depends_on: ["gen", "wait"], outputs: { "*": "$context.joined" } },
      ],
    });
    expect(found).toEqual([]);
  });

  describe("required", () => {
    it("name, nodes", () => {
      expect(codes(issues({}))).toEqual([
        ["/name", "required"],
        ["/nodes", "required"],
      ]);
    });
    it("node key and operation", () => {
      expect(codes(issues({ name: "w", nodes: [{}] }))).toEqual([
        ["/nodes/0/key", "required"],
        ["/nodes/0/operation", "required"],
      ]);
    });
  });

  describe("invalid_value", () => {
    it.each([
      [{ name: "-starts-with-dash", nodes: [noop("a")] }, "/name"],
      [{ name: "x".repeat(129), nodes: [noop("a")] }, "/name"],
      [{ name: "w", run_timeout_ms: 0, nodes: [noop("a")] }, "/run_timeout_ms"],
      [{ name: "w", run_timeout_ms: limits.maxTimeoutMs + 1, nodes: [noop("a")] }, "/run_timeout_ms"],
      [{ name: "w", nodes: [noop("1abc")] }, "/nodes/0/key"],
      [{ name: "w", nodes: [noop("a.b")] }, "/nodes/0/key"],
      [{ name: "w", nodes: [noop("a", { runtime: "provider" })] }, "/nodes/0/runtime"],
      [{ name: "w", nodes: [noop("a", { merge: "overwrite" })] }, "/nodes/0/merge"],
      [{ name: "w", nodes: [noop("a", { outputs: { "a.b": "$context.x" } })] }, "/nodes/0/outputs/a.b"],
      [{ name: "w", nodes: [noop("a", { policy: { timeout_ms: 0 } })] }, "/nodes/0/policy/timeout_ms"],
      [{ name: "w", nodes: [noop("a", { policy: { max_attempts: limits.maxAttempts + 1 } })] }, "/nodes/0/policy/max_attempts"],
      [{ name: "w", nodes: [noop("a", { policy: { backoff: { initial_ms: -1 } } })] }, "/nodes/0/policy/backoff/initial_ms"],
      [{ name: "w", nodes: [noop("a", { policy: { backoff: { max_ms: 3_600_001 } } })] }, "/nodes/0/policy/backoff/max_ms"],
      [{ name: "w", nodes: [noop("a", { policy: { backoff: { factor: 0.5 } } })] }, "/nodes/0/policy/backoff/factor"],
      [{ name: "w", nodes: [noop("a", { policy: { backoff: { jitter: 1.5 } } })] }, "/nodes/0/policy/backoff/jitter"],
      [{ name: "w", nodes: [noop("a", { policy: { retry_on: ["timeout", "invalid_input"] } })] }, "/nodes/0/policy/retry_on/1"],
      [{ name: "w", nodes: [{ key: "a", operation: "text.transform_basic", config: { op: "reverse" } }] }, "/nodes/0/config/op"],
      [{ name: "w", nodes: [{ key: "a", operation: "text.transform_basic" }] }, "/nodes/0/config/op"],
      [{ name: "w", nodes: [{ key: "a", operation: "workflow.wait_signal", config: { timeout_ms: 1.5 } }] }, "/nodes/0/config/timeout_ms"],
    ] as [JsonObject, string][])("%j → %s", (json, path) => {
      expect(codes(issues(json))).toEqual([[path, "invalid_value"]]);
    });
  });

  it("duplicate_key: node keys and dependencies, pointing at the second occurrence", () => {
    const found = issues({ name: "w", nodes: [noop("a"), noop("b", { depends_on: ["a", "a"] }), noop("a")] });
    expect(codes(found)).toEqual([
      ["/nodes/2/key", "duplicate_key"],
      ["/nodes/1/depends_on/1", "duplicate_key"],
    ]);
    expect(found[0]!.message).toContain("/nodes/0");
  });

  it("unknown_dependency, with the dependency index in the path", () => {
    const found = issues({ name: "w", nodes: [noop("a"), noop("b", { depends_on: ["a", "nope"] })] });
    expect(codes(found)).toEqual([["/nodes/1/depends_on/1", "unknown_dependency"]]);
    expect(found[0]!.message).toContain('"nope"');
  });

  it("cycle: a self-dependency points at the dependency", () => {
    expect(codes(issues({ name: "w", nodes: [noop("a"), noop("b", { depends_on: ["a", "b"] })] }))).toEqual([["/nodes/1/depends_on/1", "cycle"]]);
  });

  it("cycle: a 3-cycle is reported once at /nodes, naming its nodes", () => {
    const found = issues({ name: "w", nodes: [noop("root"), noop("x", { depends_on: ["root", "z"] }), noop("y", { depends_on: ["x"] }), noop("z", { depends_on: ["y"] })] });
    expect(codes(found)).toEqual([["/nodes", "cycle"]]);
    for (const k of ["x", "y", "z"]) expect(found[0]!.message).toContain(`"${k}"`);
    expect(found[0]!.message).not.toContain('"root"');
  });

  it("unknown_operation", () => {
    const found = issues({ name: "w", nodes: [noop("a"), { key: "b", operation: "shell.exec" }] });
    expect(codes(found)).toEqual([["/nodes/1/operation", "unknown_operation"]]);
  });

  describe("reserved_name", () => {
    it.each(["fabric.job.text", "fabric.anything", "Fabric.Job.Text", "FABRIC.x"])("refuses %j", (name) => {
      const found = issues({ name, nodes: [noop("a")] });
      expect(codes(found)).toEqual([["/name", "reserved_name"]]);
      expect(found[0]!.message).toContain('"fabric."');
    });

    it.each(["fabric", "fabric-jobs", "fabricx.job", "my.fabric.job", "fabric_job"])("accepts %j", (name) => {
      expect(issues({ name, nodes: [noop("a")] })).toEqual([]);
    });

    it("allows Fabric's own built-in definitions to use the prefix", () => {
      expect(validateWorkflowSpec(spec({ name: "fabric.job.text", nodes: [noop("a")] }), { allowReservedName: true })).toEqual([]);
    });

    it("still reports the other problems of a spec with a reserved name", () => {
      expect(codes(issues({ name: "fabric.x", nodes: [] }))).toEqual([
        ["/name", "reserved_name"],
        ["/nodes", "required"],
      ]);
    });
  });

  describe("malformed_binding", () => {
    it.each(["$ctx.a", "$context.", "$context.a..b", "$context.a b", "$contexta", "$"])("input %j", (binding) => {
      expect(codes(issues({ name: "w", nodes: [noop("a", { inputs: { v: binding } })] }))).toEqual([["/nodes/0/inputs/v", "malformed_binding"]]);
    });

    it("accepts `$$` literals and non-string inputs", () => {
      expect(issues({ name: "w", nodes: [noop("a", { inputs: { v: "$$ctx.a", n: 1, o: { x: "$oops" } } })] })).toEqual([]);
    });

    it.each(["context.a", "$context.a.", "", "$ctx"])("output %j", (target) => {
      expect(codes(issues({ name: "w", nodes: [noop("a", { outputs: { text: target } })] }))).toEqual([["/nodes/0/outputs/text", "malformed_binding"]]);
    });

    it("writing the root $context needs deep_merge", () => {
      expect(codes(issues({ name: "w", nodes: [noop("a", { outputs: { "*": "$context" } })] }))).toEqual([["/nodes/0/outputs/*", "malformed_binding"]]);
      expect(codes(issues({ name: "w", nodes: [noop("a", { outputs: { "*": "$context" }, merge: "append" })] }))).toEqual([["/nodes/0/outputs/*", "malformed_binding"]]);
      expect(issues({ name: "w", nodes: [noop("a", { outputs: { "*": "$context" }, merge: "deep_merge" })] })).toEqual([]);
    });
  });

  describe("too_large", () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => noop(`n${i}`));

    it(`accepts ${limits.maxNodes} nodes and rejects ${limits.maxNodes + 1}`, () => {
      expect(issues({ name: "w", nodes: many(limits.maxNodes) })).toEqual([]);
      expect(codes(issues({ name: "w", nodes: many(limits.maxNodes + 1) }))).toEqual([["/nodes", "too_large"]]);
    });

    it("more than 100 dependencies", () => {
      const nodes = many(limits.maxDependencies + 1);
      nodes.push(noop("last", { depends_on: nodes.map((n) => n.key as string) }));
      expect(codes(issues({ name: "w", nodes }))).toEqual([["/nodes/101/depends_on", "too_large"]]);
    });

    it("a spec over 256 KiB, at the root", () => {
      const found = issues({ name: "w", nodes: [noop("a", { config: { blob: "x".repeat(limits.maxSpecBytes) } })] });
      expect(codes(found)).toEqual([["", "too_large"]]);
    });
  });

  it("reports every problem at once", () => {
    const found = issues({
      name: "",
      nodes: [
        noop("a", { inputs: { v: "$bad" } }),
        { key: "a", operation: "nope.nope" },
        noop("c", { depends_on: ["ghost"], outputs: { x: "oops" }, policy: { max_attempts: 0 } }),
      ],
    });
    expect(codes(found)).toEqual(
      expect.arrayContaining([
        ["/name", "required"],
        ["/nodes/0/inputs/v", "malformed_binding"],
        ["/nodes/1/key", "duplicate_key"],
        ["/nodes/1/operation", "unknown_operation"],
        ["/nodes/2/outputs/x", "malformed_binding"],
        ["/nodes/2/policy/max_attempts", "invalid_value"],
        ["/nodes/2/depends_on/0", "unknown_dependency"],
      ]),
    );
    expect(found).toHaveLength(7);
    for (const i of found) expect(i.message).not.toBe("");
  });

  it("works on specs built with create() too", () => {
    const s = create(WorkflowSpecSchema, { name: "w", nodes: [{ key: "a", operation: "workflow.noop", dependsOn: ["a"] }] });
    expect(codes(validateWorkflowSpec(s))).toEqual([["/nodes/0/depends_on/0", "cycle"]]);
  });
});

describe("DAG property", () => {
  /** n nodes; node j depends on a subset of nodes i < j. */
  const dag = fc.integer({ min: 1, max: 25 }).chain((n) =>
    fc.tuple(
      fc.constant(n),
      fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 60 }).map((pairs) => {
        const edges = new Set<string>();
        for (const [a, b] of pairs) {
          const lo = Math.min(a % n, b % n);
          const hi = Math.max(a % n, b % n);
          if (lo !== hi) edges.add(`${lo}>${hi}`);
        }
        return [...edges].map((e) => e.split(">").map(Number) as [number, number]);
      }),
    ),
  );
  const build = (n: number, edges: [number, number][]) =>
    spec({
      name: "dag",
      nodes: Array.from({ length: n }, (_, j) => noop(`n${j}`, { depends_on: edges.filter(([, hi]) => hi === j).map(([lo]) => `n${lo}`) })),
    });

  it("edges only from lower to higher index are always valid", () => {
    fc.assert(
      fc.property(dag, ([n, edges]) => {
        expect(validateWorkflowSpec(build(n, edges))).toEqual([]);
      }),
    );
  });

  it("adding a back edge along any path makes a cycle", () => {
    const withPath = dag.filter(([, edges]) => edges.length > 0).chain(([n, edges]) => fc.tuple(fc.constant(n), fc.constant(edges), fc.nat({ max: edges.length - 1 }), fc.nat()));
    fc.assert(
      fc.property(withPath, ([n, edges, pick, walk]) => {
        // Start at a random edge lo → hi and walk forward to some descendant `to`.
        let [from, to] = edges[pick]!;
        const path = [from, to];
        for (let step = walk; ; step = Math.floor(step / 3)) {
          const out = edges.filter(([lo]) => lo === to);
          if (!out.length || step % 3 === 0) break;
          to = out[step % out.length]![1];
          path.push(to);
        }
        const s = build(n, edges);
        s.nodes[from]!.dependsOn.push(`n${to}`); // from now depends on its descendant
        const found = validateWorkflowSpec(s);
        expect(codes(found)).toEqual([["/nodes", "cycle"]]);
        for (const k of path) expect(found[0]!.message).toContain(`"n${k}"`);
        expect(nodesInCycles(s.nodes)).toEqual(expect.arrayContaining(path.map((k) => `n${k}`)));
      }),
    );
  });
});
