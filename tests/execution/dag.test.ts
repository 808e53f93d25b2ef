/**
 * The execution plane runs a DAG in dependency order, binds inputs and outputs through
 * the shared context with each merge policy, fans out and in, and turns an invalid
 * context into a failure that is not retried. Plus: concurrent idempotent starts.
 */
import { create } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../../src/db/database.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { defineWorkflow, expectProgressWithinStep, expectRejected, grpcRunClient, kindsOf, nodeOf, ofKind, runControl, runEvents, statuses, transports, waitForRun, type EventRow } from "./harness.js";

let fabric: TestFabric;
beforeAll(async () => {
  fabric = await startTestFabric({ worker: { WORKER_POLL_INTERVAL: 20 } });
});
afterAll(() => fabric?.close());

/** Every node started only after all its dependencies completed. */
function expectDependencyOrder(events: EventRow[], nodes: { key: string; depends_on?: string[] }[]) {
  const started = (k: string) => ofKind(events, "workflow.node.started", k)[0]?.id ?? Infinity;
  const completed = (k: string) => ofKind(events, "workflow.node.completed", k)[0]?.id ?? Infinity;
  for (const n of nodes) for (const d of n.depends_on ?? []) expect(completed(d), `${d} completes before ${n.key} starts`).toBeLessThan(started(n.key));
}

const pipeline = [
  { key: "greet", operation: "text.transform_basic", config: { op: "template", template: "Hi {{name}}, about {{topic}}{{missing}}" }, inputs: { name: "$context.profile.name", topic: "$context.topic", missing: "$context.nope" }, outputs: { text: "$context.greeting" } },
  { key: "prefix", operation: "text.transform_basic", depends_on: ["greet"], config: { op: "prefix", value: ">> " }, inputs: { text: "$context.greeting" }, outputs: { text: "$context.prefixed" } },
  { key: "replace", operation: "text.transform_basic", depends_on: ["prefix"], config: { op: "replace", find: "Hi", replace: "Hello" }, inputs: { text: "$context.prefixed" }, outputs: { text: "$context.replaced" } },
  { key: "length", operation: "text.transform_basic", depends_on: ["replace"], config: { op: "length" }, inputs: { text: "$context.replaced" }, outputs: { length: "$context.stats.length" } },
  // deep_merge of the whole output into the context root: `profile.name` survives.
  { key: "merge", operation: "workflow.merge_context", config: { values: { profile: { lang: "en" }, flags: { beta: true } } }, inputs: { flags: { gamma: 1 } }, outputs: { "*": "$context" }, merge: "deep_merge" },
  // deep_merge at a path.
  { key: "stats", operation: "workflow.noop", depends_on: ["length"], inputs: { words: 4 }, outputs: { "*": "$context.stats" }, merge: "deep_merge" },
  // append: a scalar, then a list, onto an existing list.
  { key: "log1", operation: "workflow.noop", inputs: { entry: "first" }, outputs: { entry: "$context.log" }, merge: "append" },
  { key: "log2", operation: "workflow.noop", depends_on: ["log1"], inputs: { entries: ["second", "third"] }, outputs: { entries: "$context.log" }, merge: "append" },
  // replace overwrites; `$$` escapes a literal dollar.
  { key: "retitle", operation: "workflow.noop", depends_on: ["greet"], inputs: { topic: "$context.topic", literal: "$$context.topic" }, outputs: { topic: "$context.old_topic", literal: "$context.literal" } },
  { key: "overwrite", operation: "workflow.noop", depends_on: ["replace", "retitle"], inputs: { t: "$context.replaced" }, outputs: { t: "$context.topic" } },
  { key: "check", operation: "workflow.validate_context", depends_on: ["length", "merge", "stats", "log2", "overwrite"], config: { schema: { type: "object", required: ["greeting", "stats", "log"], properties: { stats: { type: "object", required: ["length", "words"] }, log: { type: "array", minItems: 4 } } } }, outputs: { valid: "$context.valid" } },
  { key: "gen", operation: "ai.generate", depends_on: ["check"], config: { provider: "echo" }, inputs: { prompt: "$context.replaced" }, outputs: { text: "$context.answer", usage: "$context.usage" } },
  { key: "embed", operation: "ai.embed", depends_on: ["check"], config: { provider: "echo" }, inputs: { input: ["$context.topic"] }, outputs: { embeddings: "$context.embeddings" } },
  { key: "embed2", operation: "ai.embed", depends_on: ["check"], inputs: { input: "$context.greeting" }, outputs: { embeddings: "$context.embeddings2", provider: "$context.embed_provider" } },
];

describe.each(transports)("a DAG started over %s", (via) => {
  it("runs every node in dependency order and builds the context with each merge policy", async () => {
    const ctl = runControl(fabric, via);
    const wf = await defineWorkflow(fabric, { nodes: pipeline });
    const { run: started, created } = await ctl.start({ workflow_id: wf, input: { topic: "fabric", profile: { name: "Ada", tags: ["x"] }, log: ["start"] }, state: { via } });
    expect(created).toBe(true);
    expect(started.status).toBe("pending");

    const run = await waitForRun(fabric, started.id);
    expect(run.status, JSON.stringify(run.error)).toBe("completed");
    expect(Object.values(statuses(run))).toEqual(pipeline.map(() => "succeeded"));

    const c = run.context;
    expect(c.greeting).toBe("Hi Ada, about fabric");
    expect(c.prefixed).toBe(">> Hi Ada, about fabric");
    expect(c.replaced).toBe(">> Hello Ada, about fabric");
    expect(c.stats).toEqual({ length: c.replaced.length, words: 4 });
    expect(c.profile).toEqual({ name: "Ada", tags: ["x"], lang: "en" });
    expect(c.flags).toEqual({ beta: true, gamma: 1 });
    expect(c.log).toEqual(["start", "first", "second", "third"]);
    expect(c.old_topic).toBe("fabric");
    expect(c.literal).toBe("$context.topic");
    expect(c.topic).toBe(">> Hello Ada, about fabric");
    expect(c.valid).toBe(true);
    expect(c.answer).toBe(">> Hello Ada, about fabric");
    expect(c.usage).toEqual({ input_tokens: String(Math.ceil(c.replaced.length / 4)), output_tokens: String(Math.ceil(c.replaced.length / 4)) });
    // `embed` ran after `overwrite`, so it embedded the new topic.
    expect(c.embeddings).toHaveLength(1);
    expect(c.embeddings[0]).toHaveLength(8);
    expect(c.embeddings2).toHaveLength(1);
    expect(c.embed_provider).toBe("echo");
    expect(nodeOf(run, "length").output).toEqual({ text: c.replaced, length: c.replaced.length });
    expect(nodeOf(run, "retitle").output).toEqual({ topic: "fabric", literal: "$context.topic" });

    const events = await runEvents(fabric, run.id);
    expectDependencyOrder(events, pipeline);
    const runKinds = kindsOf(events, null);
    expect(runKinds).toEqual(["workflow.run.created", "workflow.run.queued", "workflow.run.started", "workflow.run.completed"]);
    for (const n of pipeline) {
      // Root nodes are ready at creation; the others become ready once, then run once.
      expect(kindsOf(events, n.key), n.key).toEqual(["workflow.node.ready", "workflow.node.started", "workflow.node.completed"]);
    }
    // The generation streams: a slow machine may report progress, always inside the step.
    expectProgressWithinStep(events, "gen", c.answer);
    expect(events.filter((e) => e.kind === "workflow.node.progress" && e.node_key !== "gen")).toEqual([]);
    expect(ofKind(events, "workflow.node.completed", "greet")[0]!.payload).toEqual({ output: { text: c.greeting }, attempt: 1 });
    const done = ofKind(events, "workflow.run.completed")[0]!;
    expect(done.payload).toEqual({ status: "completed", error: null, state: { via } });
    expect(done.id).toBe(events.at(-1)!.id);
  });

  it("fails a context that does not match the schema as invalid_input, without retrying", async () => {
    const ctl = runControl(fabric, via);
    const wf = await defineWorkflow(fabric, {
      nodes: [
        { key: "check", operation: "workflow.validate_context", config: { schema: { type: "object", required: ["email"], properties: { email: { type: "string", pattern: "@" } } } }, policy: { max_attempts: 3 } },
        { key: "after", operation: "workflow.noop", depends_on: ["check"] },
      ],
    });
    const { run: started } = await ctl.start({ workflow_id: wf, input: { email: "not-an-address" } });
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ code: "node_failed", node_key: "check" });
    expect(nodeOf(run, "check")).toMatchObject({ status: "failed", attempt: 1, max_attempts: 3, error: { code: "invalid_input" } });
    expect(nodeOf(run, "check").error.message).toMatch(/\/email must match pattern/);
    expect(nodeOf(run, "after").status).toBe("cancelled");

    const events = await runEvents(fabric, run.id);
    expect(ofKind(events, "workflow.node.retrying")).toHaveLength(0);
    expect(ofKind(events, "workflow.node.started", "check")).toHaveLength(1);
    expect(ofKind(events, "workflow.node.failed", "check")[0]!.payload.error).toMatchObject({ code: "invalid_input", class: "invalid_input", attempt: 1 });
    expect(ofKind(events, "workflow.run.failed")[0]!.payload.error).toMatchObject({ code: "node_failed", node_key: "check" });

    // The same schema passes on a valid context (validated value from inputs.value).
    const ok = await defineWorkflow(fabric, {
      nodes: [{ key: "check", operation: "workflow.validate_context", config: { schema: { type: "string", pattern: "@" } }, inputs: { value: "$context.email" }, outputs: { valid: "$context.ok" } }],
    });
    const passed = await waitForRun(fabric, (await ctl.start({ workflow_id: ok, input: { email: "a@b.c" } })).run.id);
    expect(passed.status).toBe("completed");
    expect(passed.context.ok).toBe(true);
  });
});

describe("fan-out / fan-in", () => {
  it("runs five branches after the root and collects their outputs in depends_on order", async () => {
    const branches = [1, 2, 3, 4, 5].map((i) => ({
      key: `b${i}`,
      operation: "text.transform_basic",
      depends_on: ["root"],
      config: { op: "prefix", value: `b${i}:` },
      inputs: { text: "$context.seed" },
      outputs: { text: `$context.branches.b${i}` },
    }));
    const order = ["b3", "b1", "b5", "b2", "b4"];
    const nodes = [
      { key: "root", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.word" }, outputs: { text: "$context.seed" } },
      ...branches,
      { key: "join", operation: "workflow.fan_in", depends_on: order, outputs: { items: "$context.items", by_key: "$context.by_key" } },
    ];
    const wf = await defineWorkflow(fabric, { nodes });
    const { run: started } = await runControl(fabric, "grpc").start({ workflow_id: wf, input: { word: "go" } });
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("completed");
    expect(run.context.items).toEqual(order.map((k) => ({ text: `${k}:GO` })));
    expect(run.context.by_key).toEqual(Object.fromEntries(order.map((k) => [k, { text: `${k}:GO` }])));
    expect(run.context.branches).toEqual(Object.fromEntries(order.map((k) => [k, `${k}:GO`])));

    const events = await runEvents(fabric, run.id);
    expectDependencyOrder(events, nodes);
    // The root's completion releases all five branches at once; the join is released by the last branch only.
    const rootDone = ofKind(events, "workflow.node.completed", "root")[0]!.id;
    const ready = ofKind(events, "workflow.node.ready").filter((e) => e.node_key!.startsWith("b"));
    expect(ready).toHaveLength(5);
    expect(new Set(ready.map((e) => e.id > rootDone))).toEqual(new Set([true]));
    const joinReady = ofKind(events, "workflow.node.ready", "join");
    expect(joinReady).toHaveLength(1);
    const lastBranch = Math.max(...order.map((k) => ofKind(events, "workflow.node.completed", k)[0]!.id));
    expect(joinReady[0]!.id).toBeGreaterThan(lastBranch);
  });
});

describe("idempotent start under concurrency", () => {
  it("creates exactly one run for 20 concurrent starts with one key over both transports", async () => {
    const wf = await defineWorkflow(fabric, { nodes: [{ key: "only", operation: "workflow.noop" }] });
    const key = `idem-${Date.now()}`;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => runControl(fabric, i % 2 ? "grpc" : "rest").start({ workflow_id: wf, idempotency_key: key, input: { i } })),
    );
    const ids = new Set(results.map((r) => r.run.id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const [row] = await query<{ n: number }>(fabric.database.db, sql`SELECT count(*)::int AS n FROM workflow_runs WHERE idempotency_key = ${key}`);
    expect(row!.n).toBe(1);
    const [id] = ids;
    const run = await waitForRun(fabric, id!);
    expect(run.status).toBe("completed");
    expect(run.idempotency_key).toBe(key);
    // The winner's input is the run's input; the other 19 changed nothing.
    const winner = results.find((r) => r.created)!;
    expect(run.input).toEqual(winner.run.input);
    expect(ofKind(await runEvents(fabric, id!), "workflow.run.created")).toHaveLength(1);
  });

  it("rejects a StartRun whose state is an empty Value as invalid_argument (it has no JSON form)", async () => {
    const wf = await defineWorkflow(fabric, { nodes: [{ key: "only", operation: "workflow.noop" }] });
    await expectRejected(grpcRunClient(fabric).startRun({ workflowId: wf, state: create(ValueSchema) }), { http: 400, grpc: Code.InvalidArgument, code: "invalid_argument" });
    const [row] = await query<{ n: number }>(fabric.database.db, sql`SELECT count(*)::int AS n FROM workflow_runs WHERE workflow_id = ${wf}`);
    expect(row!.n).toBe(0);
  });
});
