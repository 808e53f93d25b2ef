/**
 * One event reader per process, fanning committed events out to in-memory subscribers.
 *
 * The events table is the truth; NOTIFY on `fabric_events` only says "something new"
 * (polling every second is the fallback). Event ids come from a sequence, so a
 * transaction can commit id 11 before id 10: the hub delivers strictly in id order and
 * holds back behind a gap until it fills or is older than `gapTimeoutMs` (a rolled-back
 * transaction leaves a permanent gap). `cursor` is therefore a watermark: every event
 * with id ≤ cursor has been delivered or will never exist — which is what makes
 * "replay up to the cursor, then follow live" exact.
 */
import { asc, gt, max } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { channels } from "../db/events.js";
import { events } from "../db/schema.js";
import type { Logger } from "../logger.js";

export type EventRow = typeof events.$inferSelect;

export interface Subscription {
  /** Watermark at subscription time: replay history up to here, live events follow it. */
  readonly startCursor: number;
  next(signal?: AbortSignal): Promise<EventRow[]>;
  close(): void;
}

export interface EventHub {
  subscribe(filter: (e: EventRow) => boolean, opts?: { maxBuffer?: number }): Subscription;
  close(): Promise<void>;
}

export class SubscriberOverflow extends Error {
  override readonly name = "SubscriberOverflow";
  constructor(readonly lastDeliveredId: number) {
    super("the subscriber fell too far behind; resume with Last-Event-ID");
  }
}

export async function startEventHub(database: Database, log: Logger, opts: { gapTimeoutMs?: number; pollMs?: number } = {}): Promise<EventHub> {
  const gapTimeoutMs = opts.gapTimeoutMs ?? 2000;
  const db = database.db;
  const [row] = await db.select({ max: max(events.id) }).from(events);
  let cursor = Number(row?.max ?? 0);
  const gapSeen = new Map<number, number>(); // missing id → first time noticed
  const subs = new Set<Sub>();
  let reading = false;
  let again = false;
  let closed = false;

  interface Sub {
    filter: (e: EventRow) => boolean;
    queue: EventRow[];
    waiter: (() => void) | null;
    /** Fell behind: what is queued is still handed out, then next() throws. */
    overflowed: boolean;
    closed: boolean;
    maxBuffer: number;
    /** Id of the last event handed out by next(). */
    lastId: number;
  }

  async function read() {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        const rows = await db.select().from(events).where(gt(events.id, cursor)).orderBy(asc(events.id)).limit(1000);
        const now = Date.now();
        const deliver: EventRow[] = [];
        let expect = cursor + 1;
        for (const e of rows) {
          const id = Number(e.id);
          while (expect < id) {
            const seen = gapSeen.get(expect) ?? now;
            gapSeen.set(expect, seen);
            if (now - seen < gapTimeoutMs) break;
            gapSeen.delete(expect);
            expect++;
          }
          if (expect < id) break; // a young gap: wait for it
          deliver.push(e);
          expect = id + 1;
        }
        if (deliver.length) cursor = Number(deliver.at(-1)!.id);
        for (const g of gapSeen.keys()) if (g <= cursor) gapSeen.delete(g);
        dispatch(deliver);
        if (rows.length === 1000 && deliver.length === rows.length) again = true;
      } while (again && !closed);
    } catch (err) {
      if (!closed) log.warn("event hub read failed", { error: String(err) });
    } finally {
      reading = false;
    }
  }

  function dispatch(batch: EventRow[]) {
    if (batch.length === 0) return;
    for (const s of subs) {
      if (s.overflowed) continue;
      for (const e of batch) {
        if (!s.filter(e)) continue;
        if (s.queue.length >= s.maxBuffer) {
          s.overflowed = true;
          break;
        }
        s.queue.push(e);
      }
      s.waiter?.();
    }
  }

  const unlisten = await database.listen(channels.events, () => void read());
  // Fallback poll, and re-check young gaps even when no notification comes.
  const timer = setInterval(() => void read(), opts.pollMs ?? 1000);
  timer.unref();

  return {
    subscribe(filter, o = {}) {
      const s: Sub = { filter, queue: [], waiter: null, overflowed: false, closed: false, maxBuffer: o.maxBuffer ?? 10_000, lastId: cursor };
      subs.add(s);
      return {
        startCursor: cursor,
        /** The next batch in id order; `[]` once aborted or closed. Throws SubscriberOverflow after a fall-behind. */
        async next(signal) {
          while (s.queue.length === 0) {
            if (s.overflowed) throw new SubscriberOverflow(s.lastId);
            if (signal?.aborted || closed || s.closed) return [];
            await new Promise<void>((resolve) => {
              const onAbort = () => resolve();
              s.waiter = () => {
                signal?.removeEventListener("abort", onAbort);
                resolve();
              };
              signal?.addEventListener("abort", onAbort, { once: true });
            });
            s.waiter = null;
          }
          const out = s.queue.splice(0);
          s.lastId = Number(out.at(-1)!.id);
          return out;
        },
        close() {
          s.closed = true;
          subs.delete(s);
          s.waiter?.();
        },
      };
    },
    async close() {
      closed = true;
      clearInterval(timer);
      for (const s of subs) s.waiter?.();
      await unlisten().catch(() => {});
    },
  };
}

