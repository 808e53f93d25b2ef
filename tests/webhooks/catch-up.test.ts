/**
 * The webhook dispatcher's durable cursor (`dispatch_cursors`): events committed while no
 * control plane runs are delivered, exactly once, when one starts again; a restart next
 * to a running control plane (even with the cursor behind what was already delivered)
 * duplicates nothing; a catch-up leaves out events older than `catchUpMaxAgeMs`; and a
 * dispatcher whose subscription overflows catches up from the cursor instead of skipping.
 * Each test has its own database, shared by the control planes it starts and stops.
 * Runs on the engine FABRIC_TEST_DB names.
 */
import { randomUUID } from "node:crypto";
import { and, eq, like, sql } from "drizzle-orm";
import { afterEach, expect, it } from "vitest";
import { startControlPlane, type ControlPlane } from "../../src/control-plane/server.js";
import { query } from "../../src/db/database.js";
import { emitEvents } from "../../src/db/events.js";
import { dispatchCursors, events, webhookDeliveries } from "../../src/db/schema.js";
import { startWorker } from "../../src/executor/worker.js";
import type { Logger } from "../../src/logger.js";
import { createProviders } from "../../src/providers/registry.js";
import { bootstrapDevOrganization } from "../../src/services/tenancy/dev-organization.js";
import { webhookCursorName, type WebhookDispatcherOptions } from "../../src/delivery/webhook-dispatcher.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { eventually, smokeWorkflow, testLog, testWorkerConfig } from "../helpers/fabric.js";
import { startReceiver } from "./receiver.js";
import type { EventKind } from "../../src/domain/event-kinds.js";

const fast: Partial<WebhookDispatcherOptions> = { baseDelayMs: 100, pollMs: 10 };
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Line {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

/** A logger that keeps warnings and errors (and forwards everything to the test log). */
function recordingLog(lines: Line[]): Logger {
  const keep = (level: "debug" | "info" | "warn" | "error") => (msg: string, fields?: Record<string, unknown>) => {
    if (level === "warn" || level === "error") lines.push({ level, msg, fields });
    testLog[level](msg, fields);
  };
  const log: Logger = { debug: keep("debug"), info: keep("info"), warn: keep("warn"), error: keep("error"), child: () => log };
  return log;
}

/** A database with a dev organization, a receiver, and control planes that can come and go on it. */
async function setup() {
  const database: TestDatabase = await createTestDatabase();
  const boot = await bootstrapDevOrganization(database.db);
  const receiver = await startReceiver();
  const running = new Set<ControlPlane>();
  cleanups.push(async () => {
    await Promise.all([...running].map((cp) => cp.close()));
    await receiver.close();
    await database.close();
  });
  const org = boot.organizationId;
  const env = {
    database,
    db: database.db,
    org,
    receiver,
    lines: [] as Line[],
    async start(webhooks: Partial<WebhookDispatcherOptions> = {}) {
      const cp = await startControlPlane({
        config: { HOST: "127.0.0.1", PORT: 0, GRPC_PORT: 0, FABRIC_ENV: "development", FABRIC_MAX_BODY_BYTES: 1 << 20, FABRIC_WEBHOOKS_ALLOW_PRIVATE: true },
        database,
        log: recordingLog(env.lines),
        webhooks: { ...fast, ...webhooks },
      });
      running.add(cp);
      return cp;
    },
    async stop(cp: ControlPlane) {
      running.delete(cp);
      await cp.close();
    },
    async rest(cp: ControlPlane, path: string, json?: unknown) {
      const res = await fetch(cp.restUrl + path, {
        method: json === undefined ? "GET" : "POST",
        headers: { authorization: `Bearer ${boot.apiKey}`, "content-type": "application/json" },
        body: json === undefined ? undefined : JSON.stringify(json),
      });
      expect(res.status, await res.clone().text()).toBeLessThan(300);
      return ((await res.json()) as any).data;
    },
    async createHook(cp: ControlPlane, path: string, eventFilter: string) {
      const created = await env.rest(cp, `/v1/organizations/${org}/webhooks`, { url: receiver.url(path), event_filter: eventFilter });
      return created.webhook.id as string;
    },
    /** `n` events of `kind`, `perTx` per transaction. */
    async emit(kind: string, n: number, perTx = n) {
      for (let i = 0; i < n; i += perTx) {
        await emitEvents(
          database.db,
          Array.from({ length: Math.min(perTx, n - i) }, (_, j) => ({ organizationId: org, kind: kind as EventKind, payload: { n: i + j } })),
        );
      }
    },
    /** Ids of the org's events whose kind starts with `prefix`, in order. */
    async eventIds(prefix: string) {
      const rows = await database.db
        .select({ id: events.id })
        .from(events)
        .where(and(eq(events.organizationId, org), like(events.kind, `${prefix}%`)))
        .orderBy(events.id);
      return rows.map((r) => Number(r.id));
    },
    /** Event ids the receiver got on `path`, in arrival order. */
    got(path: string) {
      return receiver.at(path).map((r) => JSON.parse(r.body).id as number);
    },
    async deliveryRows(webhookId: string) {
      return database.db.select({ eventId: webhookDeliveries.eventId, status: webhookDeliveries.status }).from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, webhookId));
    },
    /** Waits until the receiver has `n` requests on `path` and the deliveries are settled, then a little longer (room for a duplicate to show up). */
    async settle(path: string, n: number, timeoutMs = 40_000) {
      await eventually(async () => (receiver.at(path).length >= n ? true : undefined), timeoutMs, `${n} deliveries to ${path}`);
      await eventually(async () => ((await query(database.db, sql`SELECT 1 FROM webhook_deliveries WHERE status = 'pending' LIMIT 1`)).length === 0 ? true : undefined), timeoutMs, "no pending deliveries");
      await new Promise((r) => setTimeout(r, 300));
    },
    async cursor() {
      const [row] = await database.db.select().from(dispatchCursors).where(eq(dispatchCursors.name, webhookCursorName));
      return row ? Number(row.lastEventId) : undefined;
    },
  };
  return env;
}

/** Exactly the expected event ids, each once. */
function expectExactlyOnce(got: number[], expected: number[]) {
  expect(got.length).toBe(expected.length);
  expect([...got].sort((a, b) => a - b)).toEqual(expected);
}

it("events committed while no control plane runs are delivered once a control plane starts, each exactly once", async () => {
  const env = await setup();
  const cp1 = await env.start();
  const missed = await env.createHook(cp1, "/missed", "catchup.*");
  const runsHook = await env.createHook(cp1, "/runs", "workflow.run.*");
  await env.emit("catchup.before", 3);
  await env.settle("/missed", 3);
  expect(await env.cursor()).toBe((await env.eventIds("")).at(-1));
  // A run is queued; no worker yet.
  const wf = await env.rest(cp1, "/v1/workflows", smokeWorkflow);
  const run = await env.rest(cp1, "/v1/workflow-runs", { workflow_id: wf.id, input: { topic: "offline" } });
  await env.settle("/runs", 2); // created, queued
  await env.stop(cp1);

  // No control plane: an executor runs the workflow, and events of several kinds are
  // committed — several catch-up pages (25 here) of matching ones.
  const worker = await startWorker({ database: env.database, config: testWorkerConfig(), providers: createProviders({}), log: testLog });
  try {
    await env.emit("catchup.missed", 130, 20);
    await env.emit("other.kind", 30, 10);
    await eventually(async () => ((await query(env.db, sql`SELECT 1 FROM events WHERE run_id = ${run.id} AND kind = 'workflow.run.completed'`)).length ? true : undefined), 20_000, "run completed");
  } finally {
    await worker.stop();
  }
  expect(await env.deliveryRows(missed)).toHaveLength(3);
  expect(env.receiver.at("/missed")).toHaveLength(3);

  const cp2 = await env.start({ catchUpPageSize: 25 });
  const expected = await env.eventIds("catchup.");
  expect(expected).toHaveLength(133);
  const runEvents = (await query<{ id: string }>(env.db, sql`SELECT id FROM events WHERE run_id = ${run.id} AND kind LIKE 'workflow.run.%' ORDER BY id`)).map((r) => Number(r.id));
  expect(runEvents.length).toBeGreaterThanOrEqual(4); // created, queued, started, completed
  await env.settle("/missed", expected.length);
  await env.settle("/runs", runEvents.length);
  expectExactlyOnce(env.got("/missed"), expected);
  expectExactlyOnce(env.got("/runs"), runEvents);
  expect(env.receiver.at("/runs").map((r) => JSON.parse(r.body).kind)).toContain("workflow.run.completed");
  expect(await env.deliveryRows(missed)).toHaveLength(expected.length);
  expect((await env.deliveryRows(runsHook)).every((d) => d.status === "succeeded")).toBe(true);
  expect(await env.cursor()).toBeGreaterThanOrEqual((await env.eventIds("")).at(-1)!);

  // Live delivery goes on after the catch-up.
  await env.emit("catchup.after", 2);
  await env.settle("/missed", expected.length + 2);
  expectExactlyOnce(env.got("/missed"), await env.eventIds("catchup."));
  await env.stop(cp2);
}, 120_000);

it("two control planes, one restarts (even with the cursor behind what was delivered): no duplicates", async () => {
  const env = await setup();
  const a = await env.start();
  let b = await env.start();
  const hook = await env.createHook(a, "/pair", "pair.*");
  await env.emit("pair.both-up", 20, 2);
  await env.settle("/pair", 20);

  await env.stop(b);
  await env.emit("pair.b-down", 20, 2);
  await env.settle("/pair", 40);
  // As if a control plane had recorded deliveries and stopped before moving the cursor:
  // the restarting one re-enqueues everything, which must change nothing.
  await env.db.update(dispatchCursors).set({ lastEventId: 0 }).where(eq(dispatchCursors.name, webhookCursorName));
  const restarting = env.start();
  await env.emit("pair.b-starting", 20, 2);
  b = await restarting;
  await env.emit("pair.both-up-again", 20, 2);
  await env.settle("/pair", 80);
  await eventually(async () => ((await env.cursor())! >= (await env.eventIds("")).at(-1)! ? true : undefined), 5000, "cursor at the end");

  const expected = await env.eventIds("pair.");
  expect(expected).toHaveLength(80);
  expectExactlyOnce(env.got("/pair"), expected);
  expect(await env.deliveryRows(hook)).toHaveLength(80);
  await env.stop(a);
  await env.stop(b);
}, 120_000);

it("a catch-up leaves out events older than catchUpMaxAgeMs (default 24 h) and logs how many", async () => {
  const env = await setup();
  let cp = await env.start();
  await env.createHook(cp, "/aged", "aged.*");
  await env.emit("aged.live", 1);
  await env.settle("/aged", 1);
  await env.stop(cp);

  const ago = (ms: number) => new Date(Date.now() - ms);
  const hour = 3_600_000;
  const insert = (kind: string, createdAt: Date, n: number) => env.db.insert(events).values(Array.from({ length: n }, () => ({ organizationId: env.org, kind, payload: {}, createdAt })));
  await insert("aged.two-days", ago(48 * hour), 4);
  await insert("aged.two-hours", ago(2 * hour), 3);
  await insert("aged.two-days", ago(48 * hour), 2);
  await env.emit("aged.fresh", 3);

  cp = await env.start();
  const expected = [...(await env.eventIds("aged.live")), ...(await env.eventIds("aged.two-hours")), ...(await env.eventIds("aged.fresh"))].sort((x, y) => x - y);
  await env.settle("/aged", expected.length);
  expectExactlyOnce(env.got("/aged"), expected);
  expect(env.lines.filter((l) => l.msg.startsWith("webhook catch-up")).map((l) => l.fields?.skipped)).toEqual([6]);
  await env.stop(cp);

  // A tighter bound by option.
  await insert("aged.ten-minutes", ago(600_000), 2);
  await env.emit("aged.fresh-again", 2);
  cp = await env.start({ catchUpMaxAgeMs: 60_000 });
  expected.push(...(await env.eventIds("aged.fresh-again")));
  await env.settle("/aged", expected.length);
  expectExactlyOnce(env.got("/aged"), expected);
  expect(env.lines.filter((l) => l.msg.startsWith("webhook catch-up")).map((l) => l.fields?.skipped)).toEqual([6, 2]);
  await env.stop(cp);
}, 120_000);

it("a dispatcher that falls behind (tiny buffer) catches up from the cursor: nothing is skipped", async () => {
  const env = await setup();
  const cp = await env.start({ maxBuffer: 2 });
  await env.createHook(cp, "/burst", "burst.*");
  await env.emit("burst.one-transaction", 300);
  await Promise.all(Array.from({ length: 8 }, (_, i) => env.emit(`burst.concurrent-${i}`, 25, 5)));
  const expected = await env.eventIds("burst.");
  expect(expected).toHaveLength(500);
  await env.settle("/burst", expected.length);
  expectExactlyOnce(env.got("/burst"), expected);
  expect(env.lines.some((l) => l.msg.startsWith("webhook dispatcher fell behind"))).toBe(true);
  expect(env.lines.filter((l) => l.level === "error")).toEqual([]);
  await eventually(async () => ((await env.cursor())! >= expected.at(-1)! ? true : undefined), 5000, "cursor at the end");
  await env.stop(cp);
}, 120_000);
