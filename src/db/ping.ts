/**
 * The readiness probe's statement: the database answers a trivial query. No table is read
 * and nothing is locked, so a probe never waits behind a writer.
 */
import { sql } from "drizzle-orm";
import type { Executor } from "./database.js";

export async function pingDatabase(ex: Executor): Promise<void> {
  await ex.execute(sql`SELECT 1`);
}
