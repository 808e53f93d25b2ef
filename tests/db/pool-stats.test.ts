/**
 * The pool statistics behind the `fabric_db_pool_*` gauges come from the driver itself
 * (patches/postgres+3.4.9.patch exposes its connection queues): transactions hold
 * connections as "reserved", and a query that finds every connection held waits.
 * Postgres only: PGlite has a single connection and no pool.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../../src/db/database.js";
import { createTestDatabase, engine, type TestDatabase } from "../helpers/database.js";
import { eventually } from "../helpers/fabric.js";

describe.skipIf(engine !== "postgres")("database pool statistics", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase({ poolMax: 2 });
  });
  afterAll(async () => {
    await database?.close();
  });

  it("counts connections held by transactions and the queries waiting for one", async () => {
    await query(database.db, sql`SELECT 1`);
    expect(database.poolStats()).toMatchObject({ max: 2, reserved: 0, waiting: 0 });

    // Two transactions hold both connections until released.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const holders = [0, 1].map(() => database.db.transaction(async (tx) => {
      await query(tx, sql`SELECT 1`);
      await released;
    }));
    await eventually(async () => (database.poolStats()!.reserved === 2 ? true : undefined), 30_000, "both connections reserved");

    // A third query has no connection to run on.
    const waiting = query<{ n: number }>(database.db, sql`SELECT 42 AS n`);
    await eventually(async () => (database.poolStats()!.waiting === 1 ? true : undefined), 30_000, "the query to wait");

    release();
    await Promise.all(holders);
    expect((await waiting)[0]!.n).toBe(42);
    expect(database.poolStats()).toMatchObject({ reserved: 0, waiting: 0 });
  });
});
