/**
 * Database failures outside a request (settling usage, metrics reads, cache refreshes) are
 * logged as one line with their cause — never a stack, the SQL text's parameters or the
 * SQL itself — and, when they are the infrastructure's (connection refused), at most once
 * per period with a count of the rest. Real driver errors: a Drizzle query against a port
 * nothing listens on (ECONNREFUSED), and a unique violation on the test database.
 */
import { createServer } from "node:net";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { warnDbFailure } from "../../src/db/transient-errors.js";
import { createLogger } from "../../src/logger.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";

const lines: string[] = [];
const log = createLogger("debug", { service: "db-failure-logs-test" }, { destination: { write: (s: string) => void lines.push(s) } });
const secretParam = "param-that-must-not-be-logged-7f3a";

/** A TCP port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

let database: TestDatabase;
let refused: postgres.Sql;

beforeAll(async () => {
  database = await createTestDatabase();
  refused = postgres(`postgres://fabric@127.0.0.1:${await closedPort()}/none`, { max: 1, connect_timeout: 2, onnotice: () => {} });
});
afterAll(async () => {
  await refused?.end({ timeout: 1 }).catch(() => {});
  await database?.close();
});

/** A real "Failed query" error whose cause is the driver's ECONNREFUSED. */
async function refusedError(): Promise<unknown> {
  try {
    await drizzle(refused).execute(sql`SELECT ${secretParam}::text AS secret`);
  } catch (err) {
    return err;
  }
  throw new Error("the query against a closed port succeeded");
}

describe("database failure logs", () => {
  it("an outage: one line with the cause, no stack, no SQL or parameters; the rest counted, not logged", async () => {
    const err = await refusedError();
    // Positive control: the error itself carries what must not be logged.
    expect(String(err)).toContain(secretParam);
    expect(String(err)).toContain("Failed query");

    lines.length = 0;
    for (let i = 0; i < 5; i++) warnDbFailure(log, "could not settle usage (test outage)", err, { organization_id: "org-1" }, 60_000);
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ level: "warn", msg: "could not settle usage (test outage)", organization_id: "org-1", transient: true });
    expect(line.cause).toMatch(/ECONNREFUSED/);
    const text = lines.join("\n");
    expect(text).not.toContain(secretParam);
    expect(text).not.toContain("Failed query");
    expect(text).not.toContain("SELECT");
    expect(text).not.toMatch(/"stack"|\n\s+at /);

    // The next period's line says how many were left out.
    lines.length = 0;
    warnDbFailure(log, "could not settle usage (test outage, short period)", err, {}, 0);
    for (let i = 0; i < 3; i++) warnDbFailure(log, "could not settle usage (test outage, short period)", err, {}, 60_000);
    await new Promise((r) => setTimeout(r, 5));
    warnDbFailure(log, "could not settle usage (test outage, short period)", err, {}, 1);
    expect(lines.map((l) => JSON.parse(l).suppressed_since_last)).toEqual([undefined, 3]);
  });

  it("a failure that is not the infrastructure's is logged every time, with its code and without its parameters", async () => {
    await database.db.execute(sql`CREATE TABLE IF NOT EXISTS log_probe (k text PRIMARY KEY)`);
    await database.db.execute(sql`INSERT INTO log_probe VALUES (${secretParam})`);
    let err: unknown;
    try {
      await database.db.execute(sql`INSERT INTO log_probe VALUES (${secretParam})`);
    } catch (e) {
      err = e;
    }
    expect(String(err)).toContain(secretParam); // positive control
    lines.length = 0;
    warnDbFailure(log, "could not record (test bug)", err, {}, 60_000);
    warnDbFailure(log, "could not record (test bug)", err, {}, 60_000);
    expect(lines).toHaveLength(2);
    const line = JSON.parse(lines[0]!);
    expect(line.transient).toBe(false);
    expect(line.cause).toMatch(/23505|duplicate key/);
    expect(lines.join("\n")).not.toContain(secretParam);
    expect(lines.join("\n")).not.toMatch(/"stack"|\n\s+at /);
  });
});
