import { randomUUID } from "node:crypto";
import { getEventListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { max, sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../db/database.js";
import { events } from "../db/schema.js";
import { createLogger } from "../logger.js";
import { startEventHub, SubscriberOverflow, type EventHub, type EventRow, type Subscription } from "./event-hub.js";

const log = createLogger("silent");
const org = randomUUID();
let database: Database;
const hubs: EventHub[] = [];

beforeAll(async () => {
  database = await openDatabase({ dataDir: "memory://" });
});
afterAll(() => database?.close());
afterEach(async () => {
  await Promise.all(hubs.splice(0).map((h) => h.close()));
});

async function hub(opts: { gapTimeoutMs?: number; pollMs?: number } = {}): Promise<EventHub> {
  const h = await startEventHub(database, log, { gapTimeoutMs: 300, pollMs: 20, ...opts });
  hubs.push(h);
  return h;
}

async function topId(): Promise<number> {
  const [row] = await database.db.select({ max: max(events.id) }).from(events);
  return Number(row?.max ?? 0);
}

/** Commits events with explicit ids (as a concurrent transaction would, out of order). */
async function insertAt(ids: number[], runId: string | null = null, kind = "test.event") {
  for (const id of ids) {
    await database.db.execute(sql`INSERT INTO events (id, organization_id, run_id, kind, payload) OVERRIDING SYSTEM VALUE VALUES (${id}, ${org}, ${runId}, ${kind}, '{}'::jsonb)`);
  }
}

const ids = (rows: EventRow[]) => rows.map((e) => Number(e.id));

/** Takes `k` ids from the sequence and leaves them missing for good: BEGIN; INSERT k events; ROLLBACK. */
async function rolledBackEvents(k: number) {
  // Other tests insert explicit ids: move the sequence past them first.
  await database.db.execute(sql`SELECT setval(pg_get_serial_sequence('events', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM events))`);
  const rollback = new Error("rollback");
  await database.db
    .transaction(async (tx) => {
      await tx.execute(sql`INSERT INTO events (organization_id, kind, payload) SELECT ${org}::uuid, 'rolled.back', '{}'::jsonb FROM generate_series(1, ${k})`);
      throw rollback;
    })
    .catch((err) => {
      if (err !== rollback) throw err;
    });
}

/** Reads from `sub` until `n` events arrived (or fails after `ms`). */
async function take(sub: Subscription, n: number, ms = 3000): Promise<EventRow[]> {
  const out: EventRow[] = [];
  const signal = AbortSignal.timeout(ms);
  while (out.length < n) {
    const batch = await sub.next(signal);
    if (signal.aborted) throw new Error(`timed out with ${out.length}/${n} events: ${ids(out)}`);
    out.push(...batch);
  }
  return out;
}

/** What `sub` delivers within `ms` (nothing → []). */
async function within(sub: Subscription, ms: number): Promise<EventRow[]> {
  return sub.next(AbortSignal.timeout(ms));
}

describe("event hub", () => {
  it("delivers committed events in id order, filtered per subscriber", async () => {
    const h = await hub();
    const runA = randomUUID();
    const runB = randomUUID();
    const onlyA = h.subscribe((e) => e.runId === runA);
    const all = h.subscribe(() => true);
    const base = await topId();
    await insertAt([base + 1], runA);
    await insertAt([base + 2], runB);
    await insertAt([base + 3, base + 4], runA);
    await insertAt([base + 5], runB);
    expect(ids(await take(onlyA, 3))).toEqual([base + 1, base + 3, base + 4]);
    expect(ids(await take(all, 5))).toEqual([base + 1, base + 2, base + 3, base + 4, base + 5]);
    expect(await within(onlyA, 100)).toEqual([]);
  });

  it("a NOTIFY wakes the hub without waiting for the poll", async () => {
    const h = await hub({ pollMs: 60_000 });
    const sub = h.subscribe(() => true);
    const base = await topId();
    await insertAt([base + 1]);
    await database.db.execute(sql`SELECT pg_notify('fabric_events', '')`);
    expect(ids(await take(sub, 1, 1000))).toEqual([base + 1]);
  });

  it("reads past the 1000-row page size", async () => {
    const h = await hub();
    const sub = h.subscribe(() => true);
    const base = await topId();
    await database.db.execute(
      sql`INSERT INTO events (id, organization_id, kind, payload) OVERRIDING SYSTEM VALUE SELECT ${base} + g, ${org}::uuid, 'bulk', '{}'::jsonb FROM generate_series(1, 2500) g`,
    );
    const got = ids(await take(sub, 2500, 5000));
    expect(got).toEqual(Array.from({ length: 2500 }, (_, i) => base + 1 + i));
  });

  it("holds back behind a gap until the gap timeout, then skips it for good", async () => {
    const h = await hub({ gapTimeoutMs: 300, pollMs: 20 });
    const sub = h.subscribe(() => true);
    const base = await topId();
    const t0 = Date.now();
    await insertAt([base + 2, base + 3]); // base + 1 is missing (in flight, or rolled back)
    expect(await within(sub, 150)).toEqual([]);
    expect(h.subscribe(() => true).startCursor).toBe(base); // the watermark stays below the gap

    const got = await take(sub, 2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    expect(ids(got)).toEqual([base + 2, base + 3]);

    // The missing id commits after all: too late, it is never delivered; later ones are.
    await insertAt([base + 1, base + 4]);
    expect(ids(await take(sub, 1))).toEqual([base + 4]);
    expect(await within(sub, 100)).toEqual([]);
  });

  // Regression: an id given up on used to be forgotten while the cursor stayed below it,
  // so the next read waited for it again — k missing ids cost about (T + poll)·2^(k−1).
  for (const k of [1, 6, 50]) {
    it(`a rolled-back run of ${k} event(s) holds delivery back at most about the gap timeout`, async () => {
      const gapTimeoutMs = 400;
      const h = await hub({ gapTimeoutMs, pollMs: 20 });
      const sub = h.subscribe(() => true);
      await rolledBackEvents(k);
      const t0 = Date.now();
      const base = await topId();
      await database.db.execute(sql`INSERT INTO events (organization_id, kind, payload) VALUES (${org}, 'after.gap', '{}'::jsonb)`);
      const got = await take(sub, 1, 20 * gapTimeoutMs);
      const waited = Date.now() - t0;
      expect(got.map((e) => e.kind)).toEqual(["after.gap"]);
      expect(Number(got[0]!.id)).toBeGreaterThan(base);
      expect(waited).toBeLessThan(3 * gapTimeoutMs);
      // The watermark is past the gap for good: the next event is not held back at all.
      const t1 = Date.now();
      await database.db.execute(sql`INSERT INTO events (organization_id, kind, payload) VALUES (${org}, 'next', '{}'::jsonb)`);
      expect((await take(sub, 1, 20 * gapTimeoutMs)).map((e) => e.kind)).toEqual(["next"]);
      expect(Date.now() - t1).toBeLessThan(gapTimeoutMs);
    });
  }

  it("a gap that opens later waits its own timeout, not the earlier gap's", async () => {
    const h = await hub({ gapTimeoutMs: 500, pollMs: 20 });
    const sub = h.subscribe(() => true);
    const base = await topId();
    await insertAt([base + 3]); // 1, 2 missing from now
    await sleep(300);
    await insertAt([base + 6]); // 4, 5 missing from now: 300 ms younger
    const first = await take(sub, 1, 3000);
    expect(ids(first)).toEqual([base + 3]);
    // 4 and 5 committing within their own window are delivered in order.
    await insertAt([base + 4, base + 5]);
    expect(ids(await take(sub, 3, 3000))).toEqual([base + 4, base + 5, base + 6]);
  });

  it("delivers in order when the missing id commits before the gap timeout", async () => {
    const h = await hub({ gapTimeoutMs: 5000, pollMs: 20 });
    const sub = h.subscribe(() => true);
    const base = await topId();
    await insertAt([base + 2]);
    expect(await within(sub, 120)).toEqual([]);
    const t0 = Date.now();
    await insertAt([base + 1]);
    expect(ids(await take(sub, 2))).toEqual([base + 1, base + 2]);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("startCursor is the watermark at subscription time", async () => {
    const base = await topId();
    await insertAt([base + 1, base + 2]); // before the hub starts: history, not live
    const h = await hub();
    const first = h.subscribe(() => true);
    expect(first.startCursor).toBe(base + 2);

    await insertAt([base + 3]);
    expect(ids(await take(first, 1))).toEqual([base + 3]);
    const second = h.subscribe(() => true);
    expect(second.startCursor).toBe(base + 3);

    await insertAt([base + 4]);
    expect(ids(await take(second, 1))).toEqual([base + 4]); // exactly the events after its cursor
    expect(ids(await take(first, 1))).toEqual([base + 4]);
  });

  it("a subscriber that falls behind gets SubscriberOverflow naming the last id it was given; others carry on", async () => {
    const h = await hub();
    const slow = h.subscribe(() => true, { maxBuffer: 2 });
    const fine = h.subscribe(() => true);
    const base = await topId();
    await insertAt([base + 1, base + 2, base + 3, base + 4, base + 5]);
    expect(ids(await take(fine, 5))).toEqual([base + 1, base + 2, base + 3, base + 4, base + 5]);

    // Whatever it is still handed, the overflow must name the last id actually handed out:
    // the client resumes from there (Last-Event-ID), so anything older is replayed twice.
    const received: EventRow[] = [];
    let overflow: unknown;
    for (let i = 0; i < 5 && !overflow; i++) {
      try {
        received.push(...(await slow.next(AbortSignal.timeout(1000))));
      } catch (err) {
        overflow = err;
      }
    }
    expect(overflow).toBeInstanceOf(SubscriberOverflow);
    expect(received.length).toBeLessThanOrEqual(2);
    expect(ids(received)).toEqual([base + 1, base + 2].slice(0, received.length));
    expect((overflow as SubscriberOverflow).lastDeliveredId).toBe(received.length ? Number(received.at(-1)!.id) : slow.startCursor);
  });

  it("hub.close() ends a waiting next() with no events", async () => {
    const h = await hub();
    const sub = h.subscribe(() => true);
    const waiting = sub.next();
    await sleep(50);
    await h.close();
    await expect(Promise.race([waiting, sleep(1000).then(() => "still waiting")])).resolves.toEqual([]);
    await expect(sub.next()).resolves.toEqual([]);
  });

  it("subscription.close() ends its waiting next() and stops delivery", async () => {
    const h = await hub();
    const sub = h.subscribe(() => true);
    const waiting = sub.next();
    await sleep(50);
    sub.close();
    await expect(Promise.race([waiting, sleep(1000).then(() => "still waiting")])).resolves.toEqual([]);
    await insertAt([(await topId()) + 1]);
    await expect(Promise.race([sub.next(), sleep(300).then(() => "still waiting")])).resolves.toEqual([]);
  });

  it("an aborted signal ends next() with no events", async () => {
    const h = await hub();
    const sub = h.subscribe(() => true);
    const ac = new AbortController();
    const waiting = sub.next(ac.signal);
    await sleep(30);
    ac.abort();
    await expect(waiting).resolves.toEqual([]);
    await expect(sub.next(ac.signal)).resolves.toEqual([]);
  });

  it("does not pile up abort listeners on a long-lived signal", async () => {
    const h = await hub({ pollMs: 5 });
    const sub = h.subscribe(() => true);
    const ac = new AbortController();
    const base = await topId();
    for (let i = 1; i <= 15; i++) {
      const waiting = sub.next(ac.signal);
      await insertAt([base + i]);
      expect(ids(await waiting)).toEqual([base + i]);
    }
    // One stream (watchRun) passes the same request signal to every next().
    expect(getEventListeners(ac.signal, "abort").length).toBeLessThanOrEqual(1);
  });
});
