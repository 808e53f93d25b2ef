import { sql } from "drizzle-orm";
import { query, type Executor } from "./database.js";

/**
 * Counts one request of `subject` in the current minute unless that would exceed `limit`:
 * true when admitted. One upsert: a new minute starts the count over; within a minute the
 * update applies only while the count is under the limit (the row lock serializes
 * concurrent requests, so the limit holds exactly).
 */
export async function countRequest(ex: Executor, subject: string, limit: number): Promise<boolean> {
  const rows = await query(
    ex,
    sql`INSERT INTO request_counters (subject, window_start, count) VALUES (${subject}, date_trunc('minute', now()), 1)
        ON CONFLICT (subject) DO UPDATE SET
          count = CASE WHEN request_counters.window_start = excluded.window_start THEN request_counters.count + 1 ELSE 1 END,
          window_start = excluded.window_start
        WHERE request_counters.window_start <> excluded.window_start OR request_counters.count < ${limit}
        RETURNING count`,
  );
  return rows.length > 0;
}
