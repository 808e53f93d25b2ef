/**
 * claimNodes against a real schema: PGlite by default, Postgres with FABRIC_TEST_DB=postgres
 * (where the concurrency properties are checked over separate connections).
 */
import { randomUUID } from "node:crypto";
import { and, asc, eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { claimNodes } from "../../src/db/claim-nodes.js";
import { openDatabase, type Database } from "../../src/db/database.js";
import { events, organizations, workflowDefinitions, workflowRunNodes, workflowRuns, type NodeStatus, type RunStatus } from "../../src/db/schema.js";
import { createTestDatabase, engine, type TestDatabase } from "../helpers/database.js";

let database: TestDatabase;
const orgId = randomUUID();
const workflowId = randomUUID();

beforeAll(async () => {
  database = await createTestDatabase();
  await database.db.insert(organizations).values({ id: orgId, slug: `org-${orgId.slice(0, 8)}`, name: "Claims" });
  await database.db.insert(workflowDefinitions).values({ id: workflowId, organizationId: orgId, name: "claims", version: 1, spec: {}, specHash: "x" });
});
afterAll(() => database?.close());
beforeEach(async () => {
  await database.db.delete(workflowRunNodes);
  await database.db.delete(events);
  await database.db.delete(workflowRuns);
});

async function newRun(opts: { status?: RunStatus; context?: Record<string, unknown>; createdBy?: string; apiKeyId?: string } = {}): Promise<string> {
  const id = randomUUID();
  await database.db.insert(workflowRuns).values({
    id,
    organizationId: orgId,
    workflowId,
    workflowName: "claims",
    workflowVersion: 1,
    status: opts.status ?? "pending",
    input: {},
    context: opts.context ?? { topic: "t" },
    metadata: {},
    nodesPending: 0,
    createdBy: opts.createdBy ?? null,
    apiKeyId: opts.apiKeyId ?? null,
  });
  return id;
}

interface NodeInit {
  key: string;
  status?: NodeStatus;
  priority?: number;
  /** Offset from now in ms; negative = due. */
  at?: number;
  attempt?: number;
}

async function addNodes(runId: string, nodes: NodeInit[]): Promise<Map<string, number>> {
  const rows = await database.db
    .insert(workflowRunNodes)
    .values(
      nodes.map((n, position) => ({
        runId,
        organizationId: orgId,
        nodeKey: n.key,
        position,
        operation: "workflow.noop",
        status: n.status ?? "ready",
        attempt: n.attempt ?? 0,
        maxAttempts: 3,
        priority: n.priority ?? 50,
        availableAt: new Date(Date.now() + (n.at ?? -1000)),
        depsRemaining: 0,
      })),
    )
    .returning({ id: workflowRunNodes.id, key: workflowRunNodes.nodeKey });
  return new Map(rows.map((r) => [r.key, Number(r.id)]));
}

const claim = (opts: { limit?: number; runId?: string; workerId?: string; leaseSeconds?: number } = {}) =>
  claimNodes(database.db, { workerId: opts.workerId ?? "w1", limit: opts.limit ?? 100, leaseSeconds: opts.leaseSeconds ?? 30, runId: opts.runId });

const eventsOf = (runId: string) => database.db.select().from(events).where(eq(events.runId, runId)).orderBy(asc(events.id));

describe(`claimNodes (${engine})`, () => {
  it("claims only ready rows that are due", async () => {
    const run = await newRun();
    await addNodes(run, [
      { key: "due" },
      { key: "future", at: 60 * 60_000 },
      { key: "blocked", status: "blocked" },
      { key: "running", status: "running" },
      { key: "waiting", status: "waiting" },
      { key: "done", status: "succeeded" },
      { key: "failed", status: "failed" },
      { key: "due2", at: -5 },
    ]);
    expect((await claim()).map((c) => c.nodeKey).sort()).toEqual(["due", "due2"]);
    expect(await claim()).toEqual([]);
    const future = await database.db.select().from(workflowRunNodes).where(eq(workflowRunNodes.nodeKey, "future"));
    expect(future[0]).toMatchObject({ status: "ready", attempt: 0, leaseOwner: null });
  });

  it("orders by priority (highest first), then available_at, and respects the limit", async () => {
    const run = await newRun();
    // Insertion (id) order is deliberately not the claim order.
    await addNodes(run, [
      { key: "p10", priority: 10, at: -9000 },
      { key: "p50-late", priority: 50, at: -1000 },
      { key: "p50-early", priority: 50, at: -3000 },
      { key: "p90", priority: 90, at: -500 },
      { key: "p50-mid", priority: 50, at: -2000 },
    ]);
    const order: string[] = [];
    for (let i = 0; i < 5; i++) {
      const got = await claim({ limit: 1 });
      expect(got).toHaveLength(1);
      order.push(got[0]!.nodeKey);
    }
    expect(order).toEqual(["p90", "p50-early", "p50-mid", "p50-late", "p10"]);
  });

  it("takes the best `limit` rows when claiming several", async () => {
    const run = await newRun();
    await addNodes(run, [
      { key: "a", priority: 1 },
      { key: "b", priority: 80 },
      { key: "c", priority: 2 },
      { key: "d", priority: 70 },
      { key: "e", priority: 3 },
    ]);
    expect((await claim({ limit: 2 })).map((c) => c.nodeKey).sort()).toEqual(["b", "d"]);
    expect((await claim({ limit: 2 })).map((c) => c.nodeKey).sort()).toEqual(["c", "e"]);
    expect((await claim({ limit: 2 })).map((c) => c.nodeKey)).toEqual(["a"]);
  });

  it("takes a lease: owner, expiry, attempt + 1, running, started_at; and returns the run's data (not its context: the step reads what it binds)", async () => {
    const starter = randomUUID();
    const key = randomUUID();
    const run = await newRun({ context: { topic: "cats", n: [1, 2] }, createdBy: starter, apiKeyId: key });
    const ids = await addNodes(run, [{ key: "n1", attempt: 2 }]);
    const before = Date.now();
    const [c] = await claim({ workerId: "worker-42", leaseSeconds: 120 });
    expect(c).toEqual({
      id: ids.get("n1"),
      runId: run,
      organizationId: orgId,
      nodeKey: "n1",
      operation: "workflow.noop",
      attempt: 3,
      maxAttempts: 3,
      workflowId,
      // Who the step's provider calls are attributed to.
      teamId: null,
      createdBy: starter,
      apiKeyId: key,
      // For telemetry: ready → claimed, and the trace the run's start belongs to (none here).
      queueWaitSeconds: expect.any(Number),
      traceContext: null,
    });
    expect(c!.queueWaitSeconds).toBeGreaterThanOrEqual(0);
    const [row] = await database.db.select().from(workflowRunNodes).where(eq(workflowRunNodes.id, ids.get("n1")!));
    expect(row).toMatchObject({ status: "running", attempt: 3, leaseOwner: "worker-42" });
    expect(row!.startedAt).toBeInstanceOf(Date);
    const leaseMs = row!.leaseExpiresAt!.getTime() - before;
    expect(leaseMs).toBeGreaterThan(115_000);
    expect(leaseMs).toBeLessThan(125_000);
  });

  it("with runId claims only that run's nodes", async () => {
    const r1 = await newRun();
    const r2 = await newRun();
    await addNodes(r1, [{ key: "a", priority: 10 }, { key: "b", priority: 10 }]);
    await addNodes(r2, [{ key: "x", priority: 99 }]);
    const got = await claim({ runId: r1 });
    expect(got.map((c) => [c.runId, c.nodeKey]).sort()).toEqual([
      [r1, "a"],
      [r1, "b"],
    ]);
    expect(await claim({ runId: r1 })).toEqual([]);
    expect((await claim({ runId: r2 })).map((c) => c.nodeKey)).toEqual(["x"]);
  });

  it("emits node.started per claim and run.started once per run, moving the run to running", async () => {
    const run = await newRun();
    await addNodes(run, [{ key: "a" }, { key: "b" }, { key: "later", at: 60 * 60_000 }]);
    await claim({ workerId: "w-ev" });

    const first = await eventsOf(run);
    expect(first.map((e) => e.kind).sort()).toEqual(["workflow.node.started", "workflow.node.started", "workflow.run.started"]);
    const nodeEvents = first.filter((e) => e.kind === "workflow.node.started");
    expect(nodeEvents.map((e) => e.nodeKey).sort()).toEqual(["a", "b"]);
    for (const e of nodeEvents) {
      expect(e.organizationId).toBe(orgId);
      expect(e.payload).toMatchObject({ attempt: 1, worker_id: "w-ev" });
      expect(typeof (e.payload as any).lease_expires_at).toBe("string");
    }
    expect(first.find((e) => e.kind === "workflow.run.started")!.nodeKey).toBeNull();
    const [r] = await database.db.select().from(workflowRuns).where(eq(workflowRuns.id, run));
    expect(r!.status).toBe("running");
    expect(r!.startedAt).toBeInstanceOf(Date);

    // A later claim in the same run: node.started only.
    await database.db.update(workflowRunNodes).set({ availableAt: new Date(Date.now() - 1000) }).where(and(eq(workflowRunNodes.runId, run), eq(workflowRunNodes.nodeKey, "later")));
    await claim();
    const all = await eventsOf(run);
    expect(all.filter((e) => e.kind === "workflow.run.started")).toHaveLength(1);
    expect(all.filter((e) => e.kind === "workflow.node.started").map((e) => e.nodeKey).sort()).toEqual(["a", "b", "later"]);
  });

  it("does not emit run.started for a run that is already running", async () => {
    const run = await newRun({ status: "running" });
    await addNodes(run, [{ key: "a" }]);
    await claim();
    expect((await eventsOf(run)).map((e) => e.kind)).toEqual(["workflow.node.started"]);
  });

  it("claims nothing and emits nothing when nothing is claimable", async () => {
    const run = await newRun();
    await addNodes(run, [{ key: "a", status: "blocked" }]);
    expect(await claim()).toEqual([]);
    expect(await database.db.select().from(events)).toEqual([]);
    const [r] = await database.db.select().from(workflowRuns).where(eq(workflowRuns.id, run));
    expect(r!.status).toBe("pending");
  });
});

describe.runIf(engine === "postgres")("claimNodes concurrency (postgres)", () => {
  const workers: Database[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 8; i++) workers.push(await openDatabase({ url: database.url!, poolMax: 1, migrate: false }));
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close()));
  });

  it("8 concurrent claimers over separate connections never claim the same node twice", async () => {
    const runs = [await newRun(), await newRun(), await newRun()];
    const total = 240;
    for (const [i, run] of runs.entries()) {
      await addNodes(
        run,
        Array.from({ length: total / runs.length }, (_, j) => ({ key: `n${j}`, priority: (i * 7 + j) % 5 })),
      );
    }
    const claims = await Promise.all(
      workers.map(async (w, i) => {
        const mine: number[] = [];
        for (;;) {
          const got = await claimNodes(w.db, { workerId: `w${i}`, limit: 3, leaseSeconds: 30 });
          if (got.length === 0) return mine;
          mine.push(...got.map((c) => c.id));
        }
      }),
    );
    const all = claims.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(total);
    expect(claims.filter((c) => c.length > 0).length).toBeGreaterThan(1); // it really was concurrent

    const rows = await database.db.select().from(workflowRunNodes);
    expect(rows.every((r) => r.status === "running" && r.attempt === 1)).toBe(true);
    for (const [i, ids] of claims.entries()) {
      for (const r of rows.filter((r) => ids.includes(r.id))) expect(r.leaseOwner).toBe(`w${i}`);
    }
    const evs = await database.db.select().from(events).where(inArray(events.runId, runs));
    expect(evs.filter((e) => e.kind === "workflow.node.started")).toHaveLength(total);
    expect(evs.filter((e) => e.kind === "workflow.run.started").map((e) => e.runId).sort()).toEqual([...runs].sort());
  });

  it("never waits on a locked run row: claims the node and leaves run.started to later", async () => {
    const run = await newRun();
    await addNodes(run, [{ key: "a" }]);
    const holder = workers[0]!;
    let release!: () => void;
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const held = holder.db.transaction(async (tx) => {
      await tx.select().from(workflowRuns).where(eq(workflowRuns.id, run)).for("update");
      locked();
      await new Promise<void>((r) => (release = r));
    });
    await isLocked;
    try {
      const got = await Promise.race([claimNodes(workers[1]!.db, { workerId: "w", limit: 5, leaseSeconds: 30 }), new Promise((r) => setTimeout(() => r("blocked"), 3000))]);
      expect(got).toMatchObject([{ nodeKey: "a", attempt: 1 }]);
      expect((await eventsOf(run)).map((e) => e.kind)).toEqual(["workflow.node.started"]);
    } finally {
      release();
      await held;
    }
    const [r] = await database.db.select().from(workflowRuns).where(eq(workflowRuns.id, run));
    expect(r!.status).toBe("pending");
  });
});
