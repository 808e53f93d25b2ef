/**
 * Counts finished runs (`fabric_runs_finished_total`, `fabric_run_duration_seconds`) from
 * the committed terminal run events the event hub delivers. Runs finish in many places
 * (an executor's completion, a failure, a cancel, the reaper's deadline), but each emits
 * exactly one terminal event in the same transaction, so following the events counts each
 * run once per control-plane process. With several control-plane replicas every replica
 * counts every run: aggregate with `max`, not `sum` (docs/observability.md).
 */
import type { Db } from "../db/database.js";
import { readRunOutcomes } from "../db/run-outcome.js";
import { terminalRunEventKinds } from "../db/run-state.js";
import type { Logger } from "../logger.js";
import { boundedLabel, metrics } from "../telemetry/metrics.js";
import type { EventHub } from "./event-hub.js";
import { warnDbFailure } from "../db/transient-errors.js";

const terminal = new Set<string>(terminalRunEventKinds);

export function startRunOutcomeMetrics(deps: { db: Db; hub: EventHub; log: Logger }): { close(): Promise<void> } {
  const sub = deps.hub.subscribe((e) => e.runId !== null && terminal.has(e.kind), { maxBuffer: 100_000 });
  const abort = new AbortController();
  const following = (async () => {
    while (!abort.signal.aborted) {
      const batch = await sub.next(abort.signal);
      if (batch.length === 0) return;
      try {
        for (const run of await readRunOutcomes(deps.db, [...new Set(batch.map((e) => e.runId!))])) {
          const labels = { workflow: boundedLabel("workflow", run.workflowName), outcome: run.status };
          metrics.runsFinished.inc(labels);
          metrics.runDuration.observe(labels, run.durationSeconds);
        }
      } catch (err) {
        if (!abort.signal.aborted) warnDbFailure(deps.log, "could not read finished runs for metrics", err);
      }
    }
  })().catch((err) => deps.log.warn("run outcome metrics stopped", { error: String(err) }));
  return {
    async close() {
      abort.abort();
      sub.close();
      await following;
    },
  };
}
