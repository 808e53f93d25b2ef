/**
 * completeNodes, the one completion: the executor's batches (guarded by lease owner and
 * attempt) and signals (a batch of one, guarded by the wait). PGlite by default,
 * Postgres with FABRIC_TEST_DB=postgres.
 */
import { randomUUID } from "node:crypto";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { asc, eq } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { WorkflowSpecSchema } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { completeNodes } from "../../src/db/complete-nodes.js";
import { events, organizations, workflowDefinitions, workflowRunNodes, workflowRuns, type NodeStatus, type RunStatus } from "../../src/db/schema.js";
import { compileWorkflow, type CompiledWorkflow } from "../../src/domain/compiled-workflow.js";
import { createTestDatabase, engine, type TestDatabase } from "../helpers/database.js";

let database: TestDatabase;
const orgId = randomUUID();
const workflowId = randomUUID();
const compile = (nodes: JsonValue[]) => compileWorkflow(fromJson(WorkflowSpecSchema, { name: "done", nodes }));
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

beforeAll(async () => {
  database = await createTestDatabase();
  await database.db.insert(organizations).values({ id: orgId, slug: `org-${orgId.slice(0, 8)}`, name: "Completions" });
  await database.db.insert(workflowDefinitions).values({ id: workflowId, organizationId: orgId, name: "done", version: 1, spec: {}, specHash: "x" });
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
  await database.db.insert(workflowRuns).values({ id, organizationId: orgId, workflowId, workflowName: "done", workflowVersion: 1, status, input: {}, context: {}, metadata: {}, nodesPending: pending, startedAt: status === "pending" ? null : new Date() });
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

async function runOf(id: string) {
  const [run] = await database.db.select().from(workflowRuns).where(eq(workflowRuns.id, id));
  const nodes = await database.db.select().from(workflowRunNodes).where(eq(workflowRunNodes.runId, id)).orderBy(asc(workflowRunNodes.position));
  return { ...run!, nodes: Object.fromEntries(nodes.map((n) => [n.nodeKey, n])) };
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
});
