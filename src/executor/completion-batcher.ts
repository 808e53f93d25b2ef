/**
 * Group commit for step completions. The first completion commits at once; those that
 * finish while a commit is in flight wait and go together in the next one — batches
 * grow with load and cost nothing when idle. If a batch fails (a database error), each
 * of its completions is retried on its own, so one bad item cannot fail the others — and
 * while the failure is transient (the database away, a connection cut) for up to
 * `retryMs` with backoff, so a short outage does not give the step up (its lease would
 * expire and the step run again). A retry after a commit whose answer was lost is safe:
 * the node's guard no longer holds and the retry reports `lost`, writing nothing.
 */
import type { Db } from "../db/database.js";
import { metrics } from "../telemetry/metrics.js";
import { completeNodes, type CompletionOutcome, type NodeCompletion } from "../db/complete-nodes.js";
import { defaultSizeLimits, type SizeLimits } from "../domain/size-limits.js";
import { retryWhileTransient } from "../db/transient-errors.js";

export interface CompletionBatcher {
  submit(item: NodeCompletion): Promise<CompletionOutcome>;
}

export function createCompletionBatcher(db: Db, limits: SizeLimits = defaultSizeLimits, maxBatch = 128, opts: { retryMs?: number } = {}): CompletionBatcher {
  const retryMs = opts.retryMs ?? 0;
  let queue: { item: NodeCompletion; resolve: (o: CompletionOutcome) => void; reject: (e: unknown) => void }[] = [];
  let flushing = false;

  async function flush() {
    if (flushing) return;
    flushing = true;
    try {
      while (queue.length) {
        const batch = queue.slice(0, maxBatch);
        queue = queue.slice(maxBatch);
        metrics.completionBatchSize.observe(batch.length);
        try {
          const outcomes = await completeNodes(db, batch.map((b) => b.item), limits);
          batch.forEach((b, i) => b.resolve(outcomes[i]!));
        } catch {
          for (const b of batch) retryWhileTransient(() => completeNodes(db, [b.item], limits), { maxMs: retryMs }).then(([outcome]) => b.resolve(outcome!), b.reject);
        }
      }
    } finally {
      flushing = false;
    }
  }

  return {
    submit(item) {
      return new Promise((resolve, reject) => {
        queue.push({ item, resolve, reject });
        void flush();
      });
    },
  };
}
