/**
 * The retention pruner of a control plane: every `intervalMs` it deletes finished runs
 * past their retention in batches (db/prune-runs.ts) until a batch comes back short or
 * `maxBatchesPerTick` were done, pausing between batches so it never holds the database
 * for long. Every control plane runs one; the advisory lock in prune-runs.ts lets one at
 * a time do the work. With a server default of 0 and no organization setting, a tick
 * finds nothing to delete.
 */
import type { Db } from "../db/database.js";
import { pruneFinishedRuns, type PruneResult } from "../db/prune-runs.js";
import { createOutageLog } from "../db/transient-errors.js";
import type { Logger } from "../logger.js";

export interface RetentionPrunerOptions {
  /** Server default retention of finished runs, seconds (FABRIC_RETENTION_SECONDS); 0 = keep forever. */
  defaultRetentionSeconds: number;
  /** Between ticks (FABRIC_RETENTION_INTERVAL_MS). Default 60 s. */
  intervalMs?: number;
  /** Runs per batch (one transaction). Default 200. */
  batch?: number;
  /** Batches per tick at most. Default 50. */
  maxBatchesPerTick?: number;
  /** Pause between batches. Default 50 ms. */
  pauseMs?: number;
}

export interface RetentionPruner {
  /** One tick now (tests); resolves with what it deleted. */
  pruneNow(): Promise<PruneResult>;
  close(): Promise<void>;
}

export function startRetentionPruner(deps: { db: Db; log: Logger }, o: RetentionPrunerOptions): RetentionPruner {
  const batch = o.batch ?? 200;
  const outage = createOutageLog(deps.log, "retention pruner");
  let closed = false;
  let running: Promise<PruneResult> | null = null;

  async function tick(): Promise<PruneResult> {
    const total: PruneResult = { locked: true, runs: 0, events: 0, usageRecords: 0, deliveries: 0 };
    for (let i = 0; i < (o.maxBatchesPerTick ?? 50) && !closed; i++) {
      const r = await pruneFinishedRuns(deps.db, { defaultRetentionSeconds: o.defaultRetentionSeconds, batch });
      if (!r.locked) return { ...total, locked: total.runs > 0 };
      total.runs += r.runs;
      total.events += r.events;
      total.usageRecords += r.usageRecords;
      total.deliveries += r.deliveries;
      if (r.runs < batch) break;
      await new Promise((resolve) => setTimeout(resolve, o.pauseMs ?? 50));
    }
    if (total.runs) deps.log.info("retention: pruned finished runs", { runs: total.runs, events: total.events, usage_records: total.usageRecords, webhook_deliveries: total.deliveries });
    return total;
  }

  function run(): Promise<PruneResult> {
    if (!running) {
      running = tick()
        .then((r) => {
          outage.ok();
          return r;
        })
        .catch((err) => {
          outage.failed(err);
          return { locked: false, runs: 0, events: 0, usageRecords: 0, deliveries: 0 };
        })
        .finally(() => {
          running = null;
        });
    }
    return running;
  }

  const timer = setInterval(() => void run(), o.intervalMs ?? 60_000);
  timer.unref();

  return {
    pruneNow: run,
    async close() {
      closed = true;
      clearInterval(timer);
      await running;
    },
  };
}
