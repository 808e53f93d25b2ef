/**
 * Schedules fire exactly once with several control planes: three real `fabric serve`
 * processes on one Postgres, a schedule firing every second (6-field cron), over 100
 * fires. Every fire time from the first to the last is handled once (no gap, no
 * duplicate), each started fire created exactly one run (its idempotency key names the
 * fire time), and the fires go on when control planes are killed (SIGKILL: a claim in
 * flight rolls back and another control plane takes the fire time).
 *
 * Overlap `cancel_previous` so that every fire starts a run (no executor runs them).
 */
import { randomUUID } from "node:crypto";
import { asc, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scheduleFires, workflowRuns } from "../../src/db/schema.js";
import { bootstrapDevOrganization } from "../../src/services/tenancy/dev-organization.js";
import { createTestDatabase, engine, type TestDatabase } from "../helpers/database.js";
import { eventually } from "../helpers/fabric.js";
import { spawnServe, type ServeProcess } from "../helpers/serve-process.js";

describe.skipIf(engine !== "postgres")("schedules across three control planes (real Postgres)", () => {
  let database: TestDatabase;
  let apiKey: string;
  const planes: ServeProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase({ engine: "postgres" });
    apiKey = (await bootstrapDevOrganization(database.db)).apiKey;
    const env = { DATABASE_URL: database.url!, DATABASE_POOL_MAX: "4", FABRIC_SCHEDULER_INTERVAL_MS: "1000" };
    planes.push(...(await Promise.all([spawnServe(env), spawnServe(env), spawnServe(env)])));
  }, 300_000);

  afterAll(async () => {
    await Promise.all(planes.map((p) => p.stop()));
    await database?.close();
  }, 60_000);

  const call = async (plane: ServeProcess, method: string, path: string, json?: unknown) => {
    const res = await fetch(plane.restUrl + path, { method, headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" }, body: json === undefined ? undefined : JSON.stringify(json) });
    const body: any = await res.json();
    expect(res.status, `${method} ${path}: ${JSON.stringify(body)}`).toBeLessThan(300);
    return body.data;
  };

  it("a 1-second schedule over 100+ fires: each fire time once, one run each, through two kills", async () => {
    const workflow = `every-second-${randomUUID().slice(0, 6)}`;
    await call(planes[0]!, "POST", "/v1/workflows", { name: workflow, nodes: [{ key: "a", operation: "workflow.noop" }] });
    const schedule = await call(planes[1]!, "POST", "/v1/schedules", { name: workflow, workflow_name: workflow, cron: "* * * * * *", overlap_policy: "cancel_previous", catch_up_policy: "all", catch_up_limit: 100 });
    const fireCount = async () => (await database.db.select({ at: scheduleFires.fireAt }).from(scheduleFires).where(eq(scheduleFires.scheduleId, schedule.id))).length;

    // Two control planes die on the way; the third carries on alone.
    await eventually(async () => ((await fireCount()) >= 35 ? true : undefined), 180_000, "35 fires");
    planes[0]!.child.kill("SIGKILL");
    await eventually(async () => ((await fireCount()) >= 70 ? true : undefined), 180_000, "70 fires");
    planes[1]!.child.kill("SIGKILL");
    await eventually(async () => ((await fireCount()) >= 110 ? true : undefined), 240_000, "110 fires");
    await call(planes[2]!, "PATCH", `/v1/schedules/${schedule.id}`, { enabled: false });

    const fires = await database.db.select().from(scheduleFires).where(eq(scheduleFires.scheduleId, schedule.id)).orderBy(asc(scheduleFires.fireAt));
    expect(fires.length).toBeGreaterThanOrEqual(110);
    // No gap: consecutive fire times are one second apart, from the first to the last.
    const gaps = fires.slice(1).map((f, i) => f.fireAt.getTime() - fires[i]!.fireAt.getTime());
    expect(gaps.filter((g) => g !== 1000)).toEqual([]);
    // Every fire started a run (catch-up `all` covers a stall), and one run each.
    expect(fires.filter((f) => f.outcome !== "started").map((f) => `${f.fireAt.toISOString()} ${f.outcome} ${f.error}`)).toEqual([]);
    const runs = (await database.db.select({ id: workflowRuns.id, key: workflowRuns.idempotencyKey, metadata: workflowRuns.metadata }).from(workflowRuns).where(eq(workflowRuns.workflowName, workflow)));
    expect(runs).toHaveLength(fires.length);
    expect(new Set(runs.map((r) => r.key)).size).toBe(runs.length);
    expect(new Set(fires.map((f) => f.runId)).size).toBe(fires.length);
    expect(runs.map((r) => r.key).sort()).toEqual(fires.map((f) => `schedule:${schedule.id}:${f.fireAt.toISOString()}`).sort());
  }, 900_000);
});
