/**
 * A fresh database per test file, on the engine `FABRIC_TEST_DB` names:
 * `pglite` (default; in memory) or `postgres` (a new database on the local server,
 * `FABRIC_TEST_POSTGRES_URL`, default postgres://postgres@127.0.0.1:5432/postgres,
 * dropped again on close).
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { openDatabase, type Database } from "../../src/db/database.js";

export type Engine = "pglite" | "postgres";
export const engine: Engine = process.env.FABRIC_TEST_DB === "postgres" ? "postgres" : "pglite";
export const adminUrl = process.env.FABRIC_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export interface TestDatabase extends Database {
  /** postgres:// URL of this database (Postgres engine only), for child processes. */
  url?: string;
}

export async function createTestDatabase(opts: { engine?: Engine; poolMax?: number } = {}): Promise<TestDatabase> {
  const which = opts.engine ?? engine;
  if (which === "pglite") return openDatabase({ dataDir: "memory://" });
  const name = `fabric_test_${randomBytes(6).toString("hex")}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const database = await openDatabase({ url: url.toString(), poolMax: opts.poolMax ?? 8 });
  return {
    ...database,
    url: url.toString(),
    async close() {
      await database.close();
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}
