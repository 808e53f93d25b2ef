/**
 * What the run metrics need of a finished run: its workflow, status and how long it took.
 * By primary key, no lock (a terminal run no longer changes).
 */
import { sql } from "drizzle-orm";
import { query, sqlIn, type Executor } from "./database.js";

export interface RunOutcome {
  id: string;
  workflowName: string;
  status: string;
  durationSeconds: number;
}

export async function readRunOutcomes(ex: Executor, runIds: readonly string[]): Promise<RunOutcome[]> {
  if (runIds.length === 0) return [];
  const rows = await query<{ id: string; workflow_name: string; status: string; seconds: number | null }>(
    ex,
    sql`SELECT id, workflow_name, status, extract(epoch from coalesce(finished_at, now()) - created_at)::float8 AS seconds
        FROM workflow_runs WHERE id IN ${sqlIn(runIds)}`,
  );
  return rows.map((r) => ({ id: r.id, workflowName: r.workflow_name, status: r.status, durationSeconds: Math.max(0, Number(r.seconds ?? 0)) }));
}
