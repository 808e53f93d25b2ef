/** A run's status, read without a lock: for a caller that only polls whether the run is still going. */
import { sql } from "drizzle-orm";
import { query, type Executor } from "./database.js";
import type { RunStatus } from "./schema.js";

/** The run's status; null when it does not exist. */
export async function readRunStatus(ex: Executor, runId: string): Promise<RunStatus | null> {
  const [r] = await query<{ status: RunStatus }>(ex, sql`SELECT status FROM workflow_runs WHERE id = ${runId}`);
  return r?.status ?? null;
}
