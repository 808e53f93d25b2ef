/**
 * Every writer that makes a node `ready` while its run is paused holds it
 * (`available_at = 'infinity'`) and records in `resume_at` when it would have been due;
 * outside a pause nothing changes (`resume_at` stays NULL). PGlite by default, Postgres
 * with FABRIC_TEST_DB=postgres. Due times are compared with the `created_at` of the
 * event written in the same transaction: both are that transaction's `now()`.
 */
import { randomUUID } from "node:crypto";
import { fromJson } from "@bufbuild/protobuf";
import { and, asc, eq, isNull, sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { WorkflowSpecSchema } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { claimNodes } from "../../src/db/claim-nodes.js";
import { completeNodes } from "../../src/db/complete-nodes.js";
import { query, type Tx } from "../../src/db/database.js";
import { failNodeAttempt } from "../../src/db/fail-node.js";
import { releaseLeases } from "../../src/db/leases.js";
import { pauseRun, resumeRun } from "../../src/db/pause-run.js";
import { finishRun, lockRun, type LockedRun } from "../../src/db/run-state.js";
import { events, organizations, workflowDefinitions, workflowRunNodes, workflowRuns, type NodeStatus, type RunStatus } from "../../src/db/schema.js";
import { compileWorkflow } from "../../src/domain/compiled-workflow.js";
import { createTestDatabase, engine, type TestDatabase } from "../helpers/database.js";

let database: TestDatabase;
const orgId = randomUUID();
const workflowId = randomUUID();
/** a → b */
const wf = compileWorkflow(
  fromJson(WorkflowSpecSchema, {
    name: "held",
    nodes: [
      { key: "a", operation: "workflow.noop", outputs: { v: "$context.a" } },
      { key: "b", operation: "workflow.noop", dependsOn: ["a"] },
    ],
  }),
);
const a = wf.nodes.get("a")!;

beforeAll(async () => {
  database = await createTestDatabase();
  await database.db.insert(organizations).values({ id: orgId, slug: `org-${orgId.slice(0, 8)}`, name: "Held" });
  await database.db.insert(workflowDefinitions).values({ id: workflowId, organizationId: orgId, name: "held", version: 1, spec: {}, specHash: "x" });
});
afterAll(() => database?.close());
beforeEach(async () => {
  await database.db.delete(workflowRunNodes);
  await database.db.delete(events);
  await database.db.delete(workflowRuns);
});

/** A started run of a → b with `a` in the given state (held by w1, attempt 1, when running). */
async function newRun(status: RunStatus, aState: { status: NodeStatus; leaseExpiresAt?: Date; availableAt?: Date } = { status: "running" }): Promise<string> {
  const id = randomUUID();
  await database.db.insert(workflowRuns).values({ id, organizationId: orgId, workflowId, workflowName: "held", workflowVersion: 1, status, input: {}, context: {}, metadata: {}, nodesPending: 2, startedAt: new Date() });
  const leased = aState.status === "running";
  await database.db.insert(workflowRunNodes).values([
    { runId: id, organizationId: orgId, nodeKey: "a", position: 0, operation: "workflow.noop", status: aState.status, attempt: 1, maxAttempts: 3, priority: 50, depsRemaining: 0, leaseOwner: leased ? "w1" : null, leaseExpiresAt: aState.leaseExpiresAt ?? (leased ? new Date(Date.now() + 60_000) : null), availableAt: aState.availableAt },
    { runId: id, organizationId: orgId, nodeKey: "b", position: 1, operation: "workflow.noop", status: "blocked", maxAttempts: 3, priority: 50, depsRemaining: 1 },
  ]);
  return id;
}

async function node(runId: string, key: string) {
  const [r] = await query<any>(
    database.db,
    sql`SELECT status, attempt, available_at = 'infinity' AS held, CASE WHEN available_at <> 'infinity' THEN available_at END AS available_at, resume_at
        FROM workflow_run_nodes WHERE run_id = ${runId} AND node_key = ${key}`,
  );
  const date = (v: unknown) => (v === null ? null : new Date(v as string).getTime());
  return { status: r.status as string, attempt: Number(r.attempt), held: r.held as boolean, availableAt: date(r.available_at), resumeAt: date(r.resume_at) };
}

/** When the first `kind` event of `key` (null: of the run itself) was written. */
async function eventTime(runId: string, kind: string, key: string | null): Promise<number> {
  const [e] = await database.db
    .select()
    .from(events)
    .where(and(eq(events.runId, runId), eq(events.kind, kind), key === null ? isNull(events.nodeKey) : eq(events.nodeKey, key)))
    .orderBy(asc(events.id));
  expect(e, `${kind} of ${key}`).toBeDefined();
  return e!.createdAt.getTime();
}

const guard = { owner: "w1", attempt: 1 };
const failure = { code: "step_error", message: "boom", class: "error" };

describe(`nodes made ready while the run is paused (${engine})`, () => {
  it("failNodeAttempt: a retry is held until resumed, keeping the end of its backoff", async () => {
    const paused = await newRun("paused");
    const running = await newRun("running");
    for (const runId of [paused, running]) expect(await failNodeAttempt(database.db, { runId, workflow: wf, node: a, guard, attempt: 1, failure, retryDelayMs: 1500 })).toBe("retrying");

    const failedAt = await eventTime(paused, "workflow.node.retrying", "a");
    expect(await node(paused, "a")).toMatchObject({ status: "ready", held: true, availableAt: null, resumeAt: failedAt + 1500 });
    // Outside a pause, as before: due at the end of the backoff.
    const failedAt2 = await eventTime(running, "workflow.node.retrying", "a");
    expect(await node(running, "a")).toMatchObject({ status: "ready", held: false, availableAt: failedAt2 + 1500, resumeAt: null });
  });

  it("failNodeAttempt from the reaper (an expired lease, no backoff): held, due as of the expiry", async () => {
    const paused = await newRun("paused", { status: "running", leaseExpiresAt: new Date(Date.now() - 1000) });
    expect(await failNodeAttempt(database.db, { runId: paused, workflow: wf, node: a, guard: { expired: true }, attempt: 1, failure: { code: "lease_expired", message: "gone", class: "lease_expired" }, retryDelayMs: 0 })).toBe("retrying");
    const at = await eventTime(paused, "workflow.node.retrying", "a");
    expect(await node(paused, "a")).toMatchObject({ status: "ready", held: true, resumeAt: at });
  });

  it("completeNodes (the executor's batch): a dependent becoming ready is held, due as of then", async () => {
    const paused = await newRun("paused");
    const running = await newRun("running");
    const outcomes = await completeNodes(database.db, [paused, running].map((runId) => ({ runId, node: a, guard, output: { v: 1 } })));
    expect(outcomes).toEqual(["applied", "applied"]);

    const readyAt = await eventTime(paused, "workflow.node.ready", "b");
    expect(await node(paused, "b")).toMatchObject({ status: "ready", held: true, resumeAt: readyAt });
    const readyAt2 = await eventTime(running, "workflow.node.ready", "b");
    expect(await node(running, "b")).toMatchObject({ status: "ready", held: false, availableAt: readyAt2, resumeAt: null });
  });

  it("completeNodes for a signal (a batch of one, guarded by the wait) releases dependents the same way", async () => {
    const paused = await newRun("paused", { status: "waiting" });
    expect(await completeNodes(database.db, [{ runId: paused, node: a, guard: { waiting: true }, output: { v: 1 } }])).toEqual(["applied"]);
    const readyAt = await eventTime(paused, "workflow.node.ready", "b");
    expect(await node(paused, "b")).toMatchObject({ status: "ready", held: true, resumeAt: readyAt });
  });

  it("releaseLeases (shutdown): held with resume_at now in a paused run, due now in another", async () => {
    const paused = await newRun("paused");
    const running = await newRun("running");
    const ids = (await database.db.select({ id: workflowRunNodes.id }).from(workflowRunNodes).where(eq(workflowRunNodes.nodeKey, "a"))).map((r) => Number(r.id));
    expect(await releaseLeases(database.db, "w1", ids)).toBe(2);

    const releasedAt = await eventTime(paused, "workflow.node.ready", "a");
    expect(await node(paused, "a")).toMatchObject({ status: "ready", attempt: 0, held: true, resumeAt: releasedAt });
    const releasedAt2 = await eventTime(running, "workflow.node.ready", "a");
    expect(await node(running, "a")).toMatchObject({ status: "ready", attempt: 0, held: false, availableAt: releasedAt2, resumeAt: null });
  });

  it("pauseRun holds ready nodes, each keeping when it was due; resumeRun makes them due then, at the earliest now", async () => {
    const dueLater = new Date(Date.now() + 3_600_000); // a retry in its backoff
    const backingOff = await newRun("running", { status: "ready", availableAt: dueLater });
    const dueEarlier = await newRun("running", { status: "ready", availableAt: new Date(Date.now() - 60_000) });
    const inTx = <T>(runId: string, fn: (tx: Tx, run: LockedRun) => Promise<T>) => database.db.transaction(async (tx) => fn(tx, (await lockRun(tx, runId))!));

    for (const runId of [backingOff, dueEarlier]) await inTx(runId, pauseRun);
    expect(await node(backingOff, "a")).toMatchObject({ status: "ready", held: true, resumeAt: dueLater.getTime() });
    expect(await node(dueEarlier, "a")).toMatchObject({ status: "ready", held: true });
    expect(await claimNodes(database.db, { workerId: "w2", limit: 10, leaseSeconds: 30 })).toEqual([]);

    for (const runId of [backingOff, dueEarlier]) expect(await inTx(runId, resumeRun)).toBe("running");
    expect(await node(backingOff, "a")).toMatchObject({ status: "ready", held: false, availableAt: dueLater.getTime(), resumeAt: null });
    const resumedAt = await eventTime(dueEarlier, "workflow.run.resumed", null);
    expect(await node(dueEarlier, "a")).toMatchObject({ status: "ready", held: false, availableAt: resumedAt, resumeAt: null });
  });

  it("a held node is never claimed, and ending the run clears resume_at", async () => {
    const paused = await newRun("paused");
    await failNodeAttempt(database.db, { runId: paused, workflow: wf, node: a, guard, attempt: 1, failure, retryDelayMs: 0 });
    expect(await node(paused, "a")).toMatchObject({ held: true });
    expect(await claimNodes(database.db, { workerId: "w2", limit: 10, leaseSeconds: 30 })).toEqual([]);

    await database.db.transaction(async (tx) => finishRun(tx, (await lockRun(tx, paused))!, "cancelled", { code: "cancelled", message: "test" }));
    expect(await node(paused, "a")).toMatchObject({ status: "cancelled", resumeAt: null });
  });
});
