/**
 * completeNodes, the one completion: the executor's batches (guarded by lease owner and
 * attempt) and signals (a batch of one, guarded by the wait). PGlite by default,
 * Postgres with FABRIC_TEST_DB=postgres.
 */
import { randomUUID } from "node:crypto";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { and, asc, eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { WorkflowSpecSchema } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { completeNodes } from "../../src/db/complete-nodes.js";
import { readRunContexts, readStepContext } from "../../src/db/run-context.js";
import { events, organizations, workflowDefinitions, workflowRunNodes, workflowRuns, type NodeStatus, type RunStatus } from "../../src/db/schema.js";
import { compileWorkflow, type CompiledWorkflow } from "../../src/domain/compiled-workflow.js";
import { createTestDatabase, engine, type TestDatabase } from "../helpers/database.js";

let database: TestDatabase;
const orgId = randomUUID();
const workflowId = randomUUID();
const specs = new Map<CompiledWorkflow, JsonValue>();
const compile = (nodes: JsonValue[]) => {
  const wf = compileWorkflow(fromJson(WorkflowSpecSchema, { name: "done", nodes }));
  specs.set(wf, { name: "done", nodes });
  return wf;
};
/** Each workflow's definition row: a finishing run folds its outputs with its definition's bindings. */
const definitionIds = new Map<CompiledWorkflow, string>();
/** a → b, a's output bound into the context. */
const chain = compile([
  { key: "a", operation: "workflow.noop", outputs: { v: "$context.a" } },
  { key: "b", operation: "workflow.noop", dependsOn: ["a"] },
]);
/** Two independent signal waits. */
const twoWaits = compile([
  { key: "a", operation: "workflow.wait_signal" },
  { key: "x", operation: "workflow.wait_signal" },
]);
const solo = compile([{ key: "a", operation: "workflow.noop", outputs: { v: "$context.a" } }]);
/** x and y append to one list, big writes elsewhere; after all three, z reads the list and `all` the whole context. */
const appends = compile([
  { key: "x", operation: "workflow.noop", merge: "append", outputs: { v: "$context.list" } },
  { key: "y", operation: "workflow.noop", merge: "append", outputs: { v: "$context.list" } },
  { key: "big", operation: "workflow.noop", outputs: { v: "$context.big" } },
  { key: "z", operation: "workflow.noop", dependsOn: ["x", "y", "big"], inputs: { list: "$context.list" } },
  { key: "all", operation: "workflow.noop", dependsOn: ["x", "y", "big"], inputs: { whole: "$context" } },
]);

beforeAll(async () => {
  database = await createTestDatabase();
  await database.db.insert(organizations).values({ id: orgId, slug: `org-${orgId.slice(0, 8)}`, name: "Completions" });
  await database.db.insert(workflowDefinitions).values({ id: workflowId, organizationId: orgId, name: "done", version: 1, spec: {}, specHash: "x" });
  let version = 2;
  for (const [wf, spec] of specs) {
    const id = randomUUID();
    await database.db.insert(workflowDefinitions).values({ id, organizationId: orgId, name: "done", version: version++, spec, specHash: "x" });
    definitionIds.set(wf, id);
  }
});
afterAll(() => database?.close());
beforeEach(async () => {
  await database.db.delete(workflowRunNodes);
  await database.db.delete(events);
  await database.db.delete(workflowRuns);
});

interface NodeInit {
  status: NodeStatus;
  attempt?: number;
  owner?: string;
  leaseExpiresAt?: Date | null;
}

/** A run of `wf` in `status`; each node as given, else `blocked` on its dependencies. */
async function newRun(wf: CompiledWorkflow, status: RunStatus, init: Record<string, NodeInit>): Promise<string> {
  const id = randomUUID();
  const nodes = wf.spec.nodes;
  const pending = nodes.filter((n) => !["succeeded", "failed", "skipped", "cancelled"].includes(init[n.key]?.status ?? "blocked")).length;
  await database.db.insert(workflowRuns).values({ id, organizationId: orgId, workflowId: definitionIds.get(wf)!, workflowName: "done", workflowVersion: 1, status, input: {}, context: {}, metadata: {}, nodesPending: pending, startedAt: status === "pending" ? null : new Date() });
  await database.db.insert(workflowRunNodes).values(
    nodes.map((n, position) => {
      const s = init[n.key] ?? { status: "blocked" as const };
      const leased = s.status === "running";
      return {
        runId: id,
        organizationId: orgId,
        nodeKey: n.key,
        position,
        operation: n.operation,
        status: s.status,
        attempt: s.attempt ?? 1,
        maxAttempts: 3,
        priority: 50,
        depsRemaining: s.status === "blocked" ? n.dependsOn.length : 0,
        leaseOwner: leased ? (s.owner ?? "w1") : null,
        leaseExpiresAt: s.leaseExpiresAt !== undefined ? s.leaseExpiresAt : leased ? new Date(Date.now() + 60_000) : null,
      };
    }),
  );
  return id;
}

/** The run row with its context as read (db/run-context.ts: stored context plus numbered outputs), and its nodes by key. */
async function runOf(id: string) {
  const [run] = await database.db.select().from(workflowRuns).where(eq(workflowRuns.id, id));
  const nodes = await database.db.select().from(workflowRunNodes).where(eq(workflowRunNodes.runId, id)).orderBy(asc(workflowRunNodes.position));
  const context = (await readRunContexts(database.db, [run!])).get(id);
  return { ...run!, context, nodes: Object.fromEntries(nodes.map((n) => [n.nodeKey, n])) };
}

async function eventsOf(runId: string) {
  const rows = await database.db.select().from(events).where(eq(events.runId, runId)).orderBy(asc(events.id));
  return rows.map((e) => ({ kind: e.kind, node: e.nodeKey, payload: e.payload as Record<string, unknown> }));
}

const lease = (owner: string, attempt: number) => ({ owner, attempt });

describe(`completeNodes (${engine})`, () => {
  it("commits the items of a batch whose lease still holds, across runs; the others are lost and change nothing", async () => {
    const r1 = await newRun(chain, "running", { a: { status: "running" } });
    const r2 = await newRun(chain, "running", { a: { status: "running" } });
    const r3 = await newRun(chain, "running", { a: { status: "running", attempt: 2 } });
    const outcomes = await completeNodes(database.db, [
      { runId: r1, node: chain.nodes.get("a")!, guard: lease("w1", 1), output: { v: 1 }, eventPayload: { attempt: 1 } },
      { runId: r2, node: chain.nodes.get("a")!, guard: lease("w2", 1), output: { v: 2 } }, // another worker's lease
      { runId: r3, node: chain.nodes.get("a")!, guard: lease("w1", 1), output: { v: 3 } }, // an earlier attempt
    ]);
    expect(outcomes).toEqual(["applied", "lost", "lost"]);

    const done = await runOf(r1);
    expect(done).toMatchObject({ status: "running", nodesPending: 1, context: { a: 1 } });
    expect(done.nodes["a"]).toMatchObject({ status: "succeeded", output: { v: 1 }, leaseOwner: null, leaseExpiresAt: null });
    expect(done.nodes["b"]).toMatchObject({ status: "ready", depsRemaining: 0 });
    expect(await eventsOf(r1)).toEqual([
      { kind: "workflow.node.completed", node: "a", payload: { output: { v: 1 }, attempt: 1 } },
      { kind: "workflow.node.ready", node: "b", payload: {} },
    ]);
    for (const lost of [r2, r3]) {
      const run = await runOf(lost);
      expect(run).toMatchObject({ status: "running", nodesPending: 2, context: {} });
      expect(run.nodes["a"]!.status).toBe("running");
      expect(run.nodes["b"]!.status).toBe("blocked");
      expect(await eventsOf(lost)).toEqual([]);
    }
  });

  it("two items for one node — a stale attempt beside the current one — count once", async () => {
    const runId = await newRun(chain, "running", { a: { status: "running", attempt: 2 } });
    const a = chain.nodes.get("a")!;
    const outcomes = await completeNodes(database.db, [
      { runId, node: a, guard: lease("w1", 1), output: { v: "stale" } },
      { runId, node: a, guard: lease("w1", 2), output: { v: "current" } },
    ]);
    expect(outcomes).toEqual(["lost", "applied"]);
    const run = await runOf(runId);
    expect(run).toMatchObject({ nodesPending: 1, context: { a: "current" } });
    expect((await eventsOf(runId)).filter((e) => e.kind === "workflow.node.completed")).toHaveLength(1);
  });

  it("starts a pending run the claim could not start, and finishes a run with no node left", async () => {
    const runId = await newRun(solo, "pending", { a: { status: "running" } });
    expect(await completeNodes(database.db, [{ runId, node: solo.nodes.get("a")!, guard: lease("w1", 1), output: { v: 7 } }])).toEqual(["applied"]);
    const run = await runOf(runId);
    expect(run).toMatchObject({ status: "completed", nodesPending: 0, context: { a: 7 }, error: null });
    expect(run.startedAt).not.toBeNull();
    expect(run.finishedAt).not.toBeNull();
    expect((await eventsOf(runId)).map((e) => e.kind)).toEqual(["workflow.run.started", "workflow.node.completed", "workflow.run.completed"]);
  });

  it("a signal (guarded by the wait) completes a waiting node; the run resumes once no node waits", async () => {
    const runId = await newRun(chain, "waiting", { a: { status: "waiting" } });
    const signal = { runId, node: chain.nodes.get("a")!, guard: { waiting: true as const }, output: { v: "ok" }, eventPayload: { signal: true, request_id: "req-1" } };
    expect(await completeNodes(database.db, [signal])).toEqual(["applied"]);
    const run = await runOf(runId);
    expect(run).toMatchObject({ status: "running", nodesPending: 1, context: { a: "ok" } });
    expect(run.nodes["b"]!.status).toBe("ready");
    expect(await eventsOf(runId)).toEqual([
      { kind: "workflow.node.completed", node: "a", payload: { output: { v: "ok" }, signal: true, request_id: "req-1" } },
      { kind: "workflow.node.ready", node: "b", payload: {} },
      { kind: "workflow.run.resumed", node: null, payload: { reason: "signal" } },
    ]);
    // The wait is over: a second signal finds nothing waiting.
    expect(await completeNodes(database.db, [signal])).toEqual(["lost"]);
  });

  it("a signal leaves the run waiting while another node still waits", async () => {
    const runId = await newRun(twoWaits, "waiting", { a: { status: "waiting" }, x: { status: "waiting" } });
    expect(await completeNodes(database.db, [{ runId, node: twoWaits.nodes.get("a")!, guard: { waiting: true }, output: {} }])).toEqual(["applied"]);
    expect(await runOf(runId)).toMatchObject({ status: "waiting", nodesPending: 1 });
    expect((await eventsOf(runId)).map((e) => e.kind)).toEqual(["workflow.node.completed"]);
  });

  it("a signal after the wait's deadline is refused, even before the reaper has run", async () => {
    const runId = await newRun(chain, "waiting", { a: { status: "waiting", leaseExpiresAt: new Date(Date.now() - 1000) } });
    expect(await completeNodes(database.db, [{ runId, node: chain.nodes.get("a")!, guard: { waiting: true }, output: {} }])).toEqual(["lost"]);
    expect((await runOf(runId)).nodes["a"]!.status).toBe("waiting");
  });

  it("a completion stores its own output, not the context: outputs are numbered in completion order, the run reads as if each had been bound in turn, a step reads only what it binds, and finishing stores the final context once", async () => {
    const db = database.db;
    const runId = await newRun(appends, "running", { x: { status: "running" }, y: { status: "running" }, big: { status: "running" } });
    await db.update(workflowRuns).set({ context: { list: ["start"] } }).where(eq(workflowRuns.id, runId));
    const item = (key: string, v: string) => ({ runId, node: appends.nodes.get(key)!, guard: lease("w1", 1), output: { v } });
    expect(await completeNodes(db, [item("y", "y")])).toEqual(["applied"]);
    expect(await completeNodes(db, [item("big", "b".repeat(10_000)), item("x", "x")])).toEqual(["applied", "applied"]);

    const [stored] = await db.select().from(workflowRuns).where(eq(workflowRuns.id, runId));
    expect(stored).toMatchObject({ context: { list: ["start"] }, contextSeq: 0, outputSeq: 3 });
    const run = await runOf(runId);
    expect([run.nodes["y"]!.outputSeq, run.nodes["big"]!.outputSeq, run.nodes["x"]!.outputSeq]).toEqual([1, 2, 3]);
    expect(run.context).toEqual({ list: ["start", "y", "x"], big: "b".repeat(10_000) });

    // z binds the list: it reads the list, not the 10 KB it does not bind; `all` binds everything (positive control).
    expect(await readStepContext(db, runId, appends, appends.nodes.get("z")!)).toEqual({ list: ["start", "y", "x"] });
    expect(await readStepContext(db, runId, appends, appends.nodes.get("all")!)).toEqual(run.context);

    await db
      .update(workflowRunNodes)
      .set({ status: "running", attempt: 1, leaseOwner: "w1", leaseExpiresAt: new Date(Date.now() + 60_000) })
      .where(and(eq(workflowRunNodes.runId, runId), inArray(workflowRunNodes.nodeKey, ["z", "all"])));
    expect(await completeNodes(db, [item("z", "-"), item("all", "-")])).toEqual(["applied", "applied"]);
    const [final] = await db.select().from(workflowRuns).where(eq(workflowRuns.id, runId));
    expect(final).toMatchObject({ status: "completed", context: { list: ["start", "y", "x"], big: "b".repeat(10_000) }, contextSeq: 3, outputSeq: 3 });
    expect((await runOf(runId)).context).toEqual(final!.context);
  });
});
