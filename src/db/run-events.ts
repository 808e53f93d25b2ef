/**
 * Reads of a run's event stream for its watchers. No lock: events are append-only and a
 * committed event never changes.
 */
import { sql } from "drizzle-orm";
import { query, sqlIn, type Executor } from "./database.js";
import { terminalRunEventKinds } from "./run-state.js";

/** Whether the run's stream has ended at or before event `eventId` (its terminal event is there). */
export async function runEndedBy(ex: Executor, runId: string, eventId: number): Promise<boolean> {
  const rows = await query(ex, sql`SELECT 1 FROM events WHERE run_id = ${runId} AND id <= ${eventId} AND kind IN ${sqlIn(terminalRunEventKinds)} LIMIT 1`);
  return rows.length > 0;
}
