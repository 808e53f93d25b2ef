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
 *
 * A gap's age is counted from the first read that saw an id above it, for every missing
 * id of the gap at once, and the cursor moves past ids given up on even when nothing
 * after them can be delivered yet. So a run of k missing ids (a rolled-back batch, the
 * sequence values a crash skips) holds delivery back at most `gapTimeoutMs` (plus one
 * poll) in total, never k times over.
 */
import { asc, gt, max } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { channels } from "../db/events.js";
import { createOutageLog, withDeadline } from "../db/transient-errors.js";
import { events } from "../db/schema.js";
import type { Logger } from "../logger.js";
import { metrics } from "../telemetry/metrics.js";

export type EventRow = typeof events.$inferSelect;

/** How long a missing event id holds delivery back before it counts as rolled back (FABRIC_EVENT_GAP_TIMEOUT_MS). */
export const defaultGapTimeoutMs = 5000;

/** A read of the events table that has not answered by then is abandoned (and retried by the next poll). */
const readDeadlineMs = 10_000;

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
  const gapTimeoutMs = opts.gapTimeoutMs ?? defaultGapTimeoutMs;
  const db = database.db;
  const [row] = await db.select({ max: max(events.id) }).from(events);
  let cursor = Number(row?.max ?? 0);
  // When each id above the cursor was first known to be missing: entry {upTo, at} says
  // the read at time `at` saw ids up to `upTo`, so any missing id below `upTo` (and above
  // the previous entry's) has been missing since `at`. Both fields only grow.
  let sightings: { upTo: number; at: number }[] = [];
  const subs = new Set<Sub>();
  const readLog = createOutageLog(log, "event hub read");
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
        // Bounded: a read lost with its connection must not leave `reading` set for good.
        const rows = await withDeadline(db.select().from(events).where(gt(events.id, cursor)).orderBy(asc(events.id)).limit(1000), readDeadlineMs, "event hub read");
        const now = Date.now();
        const top = rows.length ? Number(rows.at(-1)!.id) : cursor;
        if (top > (sightings.at(-1)?.upTo ?? cursor)) sightings.push({ upTo: top, at: now });
        const deliver: EventRow[] = [];
        let expect = cursor + 1; // the next id to deliver or give up on
        for (const e of rows) {
          const id = Number(e.id);
          if (expect < id) {
            // Ids expect..id-1 are missing: give up on those seen missing long enough,
            // wait at the first that was not.
            const young = firstYoungMissing(expect, id, now);
            if (young !== undefined) {
              expect = young;
              break;
            }
          }
          deliver.push(e);
          expect = id + 1;
        }
        // Past everything delivered and every id given up on, even with nothing to deliver.
        cursor = Math.max(cursor, expect - 1);
        sightings = sightings.filter((s) => s.upTo > cursor);
        dispatch(deliver);
        if (rows.length === 1000 && deliver.length === rows.length) again = true;
      } while (again && !closed);
      readLog.ok();
    } catch (err) {
      if (!closed) readLog.failed(err, { cursor });
    } finally {
      reading = false;
    }
  }

  /**
   * The first id in [from, to) — all missing — that was seen missing less than
   * `gapTimeoutMs` ago, or undefined when every one of them is older. Sighting s covers
   * the ids [previous upTo, s.upTo).
   */
  function firstYoungMissing(from: number, to: number, now: number): number | undefined {
    let lower = 0;
    for (const s of sightings) {
      const start = Math.max(from, lower);
      lower = s.upTo;
      if (s.upTo <= from) continue;
      if (start >= to) return undefined;
      if (now - s.at < gapTimeoutMs) return start;
    }
    return undefined;
  }

  function dispatch(batch: EventRow[]) {
    if (batch.length === 0) return;
    metrics.eventHubLag.set(Math.max(0, (Date.now() - batch.at(-1)!.createdAt.getTime()) / 1000));
    metrics.eventHubSubscribers.set(subs.size);
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

  // After the notification connection comes back, read at once: what was committed
  // meanwhile is still in the table, after the cursor.
  const unlisten = await database.listen(channels.events, () => void read(), () => void read());
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

