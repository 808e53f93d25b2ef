/**
 * `fabric admin bootstrap` may be run by several deploy steps at once (one per replica).
 * The first-owner check ("does any owner exist?") and the inserts that follow must not
 * interleave, or two runs would each find no owner and both create one. A
 * transaction-scoped advisory lock on one fixed key serialises them until `tx` ends; it
 * takes no row lock, so it cannot deadlock with the API's writers.
 */
import { sql } from "drizzle-orm";
import type { Tx } from "./database.js";

/** "Fabs" in ASCII; distinct from the migration lock's key. */
const bootstrapLockKey = 0x46616273;

export async function lockBootstrap(tx: Tx): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${bootstrapLockKey})`);
}
