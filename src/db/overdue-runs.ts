/**
 * Runs past their deadline fail with `timeout` (any worker's reaper, a bounded batch per
 * tick). Candidates are read without locks; each is then failed in its own transaction
 * that takes the run lock first (the lock order every run writer follows) and re-checks,
 * under the lock, that the run is still active and still overdue — a run that finished,
 * or that another reaper failed meanwhile, is left alone, so a run times out once.
 */
import { sql } from "drizzle-orm";
import { query, type Db, type Executor } from "./database.js";
import { activeRunStatuses, finishRun, lockRun } from "./run-state.js";

/**
 * Active runs past their deadline, most overdue first, at most `limit`. The statuses are
 * literals, not parameters, so that the planner can match the predicate of the partial
 * index `workflow_runs_deadline` and read only active runs with a deadline.
 */
export async function findOverdueRuns(ex: Executor, limit: number): Promise<string[]> {
  const rows = await query<{ id: string }>(
    ex,
    sql`SELECT id FROM workflow_runs WHERE deadline_at < now() AND status IN ('pending', 'running', 'paused', 'waiting') ORDER BY deadline_at LIMIT ${limit}`,
  );
  return rows.map((r) => r.id);
}

/** Fails `runId` with `timeout` if it is still active and overdue; true when it did. */
export async function failOverdueRun(db: Db, runId: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const run = await lockRun(tx, runId);
    if (!run || !activeRunStatuses.includes(run.status)) return false;
    const [due] = await query<{ due: boolean }>(tx, sql`SELECT deadline_at < now() AS due FROM workflow_runs WHERE id = ${runId}`);
    if (!due?.due) return false;
    await finishRun(tx, run, "failed", { code: "timeout", message: "the run exceeded its deadline" });
    return true;
  });
}
