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

/**
 * Failed logins of one (client address, email) pair, for an exponential delay: the pair's
 * failure count and when the last one happened (`request_counters`, subject
 * `login_failures:…`; `window_start` holds the last failure's time). Failures older than
 * `forgetAfterSeconds` start the count over.
 */
export async function loginFailures(ex: Executor, subject: string, forgetAfterSeconds: number): Promise<{ failures: number; secondsSinceLast: number }> {
  const [row] = await query<{ count: number; since: number }>(
    ex,
    sql`SELECT count, extract(epoch FROM now() - window_start)::float8 AS since FROM request_counters
        WHERE subject = ${subject} AND window_start > now() - make_interval(secs => ${forgetAfterSeconds})`,
  );
  return row ? { failures: Number(row.count), secondsSinceLast: Number(row.since) } : { failures: 0, secondsSinceLast: Infinity };
}

/** Counts one failed login of the pair (see `loginFailures`). */
export async function recordLoginFailure(ex: Executor, subject: string, forgetAfterSeconds: number): Promise<void> {
  await ex.execute(
    sql`INSERT INTO request_counters (subject, window_start, count) VALUES (${subject}, now(), 1)
        ON CONFLICT (subject) DO UPDATE SET
          count = CASE WHEN request_counters.window_start > now() - make_interval(secs => ${forgetAfterSeconds}) THEN request_counters.count + 1 ELSE 1 END,
          window_start = now()`,
  );
}

/** A successful login forgets the pair's failures. */
export async function clearLoginFailures(ex: Executor, subject: string): Promise<void> {
  await ex.execute(sql`DELETE FROM request_counters WHERE subject = ${subject}`);
}
