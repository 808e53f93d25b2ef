/**
 * The scheduler of a control plane: it fires due schedules (db/fire-schedules.ts) and
 * starts queued fires whose previous run ended, then sleeps until the earliest next fire
 * time (at most `intervalMs`, at least `minSleepMs` so that control planes skipping a row
 * another one holds do not spin). Every control plane runs one; the claim's row locks make
 * each fire time start once whichever of them gets there. `kick()` wakes it at once (a
 * schedule was created or changed here).
 */
import type { Db } from "../db/database.js";
import { fireDueSchedules, msUntilNextFire, startQueuedFires, type FireDeps } from "../db/fire-schedules.js";
import { createOutageLog } from "../db/transient-errors.js";
import type { Logger } from "../logger.js";

export interface SchedulerOptions {
  /** The longest sleep between looks (FABRIC_SCHEDULER_INTERVAL_MS). Default 1 s. */
  intervalMs?: number;
  /** The shortest sleep. Default 50 ms. */
  minSleepMs?: number;
  /** Schedules per claim (one transaction). Default 20. */
  batch?: number;
  graceMs?: number;
}

export interface Scheduler {
  kick(): void;
  /** One look now (tests): how many schedules it claimed and queued fires it started. */
  tickNow(): Promise<number>;
  close(): Promise<void>;
}

export function startScheduler(deps: { db: Db; log: Logger } & Omit<FireDeps, "graceMs">, o: SchedulerOptions = {}): Scheduler {
  const interval = o.intervalMs ?? 1000;
  const minSleep = Math.min(o.minSleepMs ?? 50, interval);
  const batch = o.batch ?? 20;
  const fire: FireDeps = { workflows: deps.workflows, graceMs: o.graceMs };
  const outage = createOutageLog(deps.log, "scheduler");
  let closed = false;
  let wake: (() => void) | null = null;
  let running: Promise<number> | null = null;

  async function tick(): Promise<number> {
    const claimed = await fireDueSchedules(deps.db, fire, batch);
    const started = await startQueuedFires(deps.db, fire, batch);
    return claimed + started;
  }

  function look(): Promise<number> {
    running ??= tick()
      .then((n) => {
        outage.ok();
        return n;
      })
      .catch((err) => {
        outage.failed(err);
        return 0;
      })
      .finally(() => {
        running = null;
      });
    return running;
  }

  const loop = (async () => {
    while (!closed) {
      const n = await look();
      if (closed) break;
      let sleep = interval;
      if (n < batch) {
        try {
          const ms = await msUntilNextFire(deps.db);
          if (ms !== null) sleep = Math.min(interval, Math.max(minSleep, Math.ceil(ms)));
        } catch {
          // the next look logs the outage
        }
      } else sleep = 0;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, sleep);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  })();

  return {
    kick: () => wake?.(),
    tickNow: look,
    async close() {
      closed = true;
      wake?.();
      await loop;
      await running;
    },
  };
}
