/**
 * Retention (db/prune-runs.ts): finished runs past their organization's retention go, with
 * their nodes, events, usage records and the webhook deliveries of their events; recent
 * runs, runs of an organization that keeps forever (0) and events not tied to a run stay.
 * On Postgres, a second pruner finds the lock taken and does nothing.
 * Runs on the engine FABRIC_TEST_DB names.
 */
import { randomUUID } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../../src/db/database.js";
import { emitEvents } from "../../src/db/events.js";
import { pruneFinishedRuns, pruneLockKey } from "../../src/db/prune-runs.js";
import { organizations } from "../../src/db/schema.js";
import { engine } from "../helpers/database.js";
import { eventually, smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";

describe("retention: pruning finished runs", () => {
  let fabric: TestFabric;
  let other: { apiKey: string; organizationId: string };

  beforeAll(async () => {
    fabric = await startTestFabric();
    other = await fabric.otherOrg();
  });
  afterAll(() => fabric?.close());

  async function runsOf(key: string, n: number): Promise<string[]> {
    const wf = (((await (await fabric.rest("/v1/workflows", { method: "POST", json: smokeWorkflow, key })).json()) as any).data.id as string);
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: wf, input: { topic: `r${i}` } }, key });
      ids.push(((await r.json()) as any).data.id);
    }
    return ids;
  }

  const counts = async (runIds: string[]) => {
    const list = sql.join(runIds.map((id) => sql`${id}::uuid`), sql`, `);
    const [c] = await query<{ runs: number; nodes: number; events: number; usage: number }>(
      fabric.database.db,
      sql`SELECT (SELECT count(*) FROM workflow_runs WHERE id IN (${list}))::int AS runs,
                 (SELECT count(*) FROM workflow_run_nodes WHERE run_id IN (${list}))::int AS nodes,
                 (SELECT count(*) FROM events WHERE run_id IN (${list}))::int AS events,
                 (SELECT count(*) FROM usage_records WHERE run_id IN (${list}))::int AS usage`,
    );
    return c!;
  };

  it("deletes expired runs with their rows in batches, keeps recent ones, other organizations' forever and run-less events", async () => {
    const db = fabric.database.db;
    const mine = await runsOf(fabric.apiKey, 5);
    const theirs = await runsOf(other.apiKey, 2);
    const all = [...mine, ...theirs];
    await eventually(async () => {
      const [r] = await query<{ n: number }>(db, sql`SELECT count(*)::int AS n FROM workflow_runs WHERE status <> 'completed'`);
      return r!.n === 0 ? true : undefined;
    }, 30_000, "runs to complete");
    const before = await counts(all);
    expect(before.runs).toBe(7);
    expect(before.usage).toBeGreaterThan(0); // the provider step records usage
    const expired = mine.slice(0, 4);
    const list = sql.join([...expired, ...theirs].map((id) => sql`${id}::uuid`), sql`, `);
    await db.execute(sql`UPDATE workflow_runs SET finished_at = now() - interval '2 hours' WHERE id IN (${list})`);
    await db.update(organizations).set({ retentionSeconds: 0 }).where(eq(organizations.id, other.organizationId)); // keeps forever
    await emitEvents(db, [{ organizationId: fabric.organizationId, kind: "organization.updated", payload: { marker: randomUUID() } }]);
    const [runless] = await query<{ n: number }>(db, sql`SELECT count(*)::int AS n FROM events WHERE run_id IS NULL`);

    let batches = 0;
    let pruned = 0;
    for (;;) {
      const r = await pruneFinishedRuns(db, { defaultRetentionSeconds: 3600, batch: 3 });
      expect(r.locked).toBe(true);
      batches++;
      pruned += r.runs;
      if (r.runs < 3) break;
    }
    expect(pruned).toBe(4);
    expect(batches).toBe(2); // 3 + 1: bounded batches
    expect(await counts(expired)).toEqual({ runs: 0, nodes: 0, events: 0, usage: 0 });
    const kept = await counts([mine[4]!]);
    expect(kept.runs).toBe(1);
    expect(kept.nodes).toBe(2);
    expect(kept.events).toBeGreaterThan(0);
    expect((await counts(theirs)).runs).toBe(2);
    const [runlessAfter] = await query<{ n: number }>(db, sql`SELECT count(*)::int AS n FROM events WHERE run_id IS NULL`);
    expect(runlessAfter!.n).toBe(runless!.n);
    // Nothing more to do; a default of 0 (forever) deletes nothing either.
    expect((await pruneFinishedRuns(db, { defaultRetentionSeconds: 3600, batch: 3 })).runs).toBe(0);
    await db.execute(sql`UPDATE workflow_runs SET finished_at = now() - interval '2 hours' WHERE id = ${mine[4]!}`);
    expect((await pruneFinishedRuns(db, { defaultRetentionSeconds: 0, batch: 3 })).runs).toBe(0);
    // An organization's own retention wins over the default.
    await db.update(organizations).set({ retentionSeconds: 60 }).where(eq(organizations.id, fabric.organizationId));
    expect((await pruneFinishedRuns(db, { defaultRetentionSeconds: 0, batch: 3 })).runs).toBe(1);
  });

  it.skipIf(engine !== "postgres")("one pruner at a time: with the lock held elsewhere a batch does nothing", async () => {
    const db = fabric.database.db;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(${pruneLockKey}::bigint)`);
      locked();
      await held;
    });
    await isLocked;
    const r = await pruneFinishedRuns(db, { defaultRetentionSeconds: 1, batch: 10 });
    release();
    await holder;
    expect(r.locked).toBe(false);
    expect((await pruneFinishedRuns(db, { defaultRetentionSeconds: 1, batch: 10 })).locked).toBe(true); // positive control
  });
});
