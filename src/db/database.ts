/**
 * The one database factory. No `DATABASE_URL` → PGlite (embedded Postgres) in a data
 * directory, guarded by a lock file so a second process cannot open (and corrupt) it.
 * With `DATABASE_URL` → postgres.js against a real Postgres. Both are Drizzle databases
 * over the same schema; `listen` hides the drivers' LISTEN APIs.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from "drizzle-orm/pg-core";
import { sql, type ExtractTablesWithRelations, type SQL } from "drizzle-orm";
import { migrationLockKey, migrationsFolder } from "./migrations.js";
import * as schema from "./schema.js";

export type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
/**
 * Either the database or a transaction: queries take this, and inside a transaction must
 * get `tx`. PGlite has a single connection that the open transaction holds, so a query on
 * the outer `db` from inside a transaction waits for that transaction forever.
 */
export type Executor = Db | Tx;

export interface Database {
  readonly kind: "pglite" | "postgres";
  readonly db: Db;
  /** Subscribes to a NOTIFY channel; resolves once listening. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres:// URL; absent → embedded PGlite. */
  url?: string;
  /** PGlite data directory (default `.fabric/`); `memory://` for a throwaway in-memory database. */
  dataDir?: string;
  /** postgres.js pool size (DATABASE_POOL_MAX). Default 10. */
  poolMax?: number;
  /**
   * Apply migrations on open (default true). On Postgres they run under an advisory lock,
   * so any number of processes may do this at once (see migrations.ts). Without it, call
   * `assertSchemaCurrent` (migrations.ts) before relying on the schema.
   */
  migrate?: boolean;
}

export async function openDatabase(options: DatabaseOptions = {}): Promise<Database> {
  const database = options.url ? await openPostgres(options.url, options.poolMax ?? 10) : await openPglite(options.dataDir ?? ".fabric");
  if (options.migrate !== false) {
    try {
      await database.migrate();
    } catch (err) {
      await database.close();
      throw err;
    }
  }
  return database;
}

async function openPostgres(url: string, max: number): Promise<Database & { migrate(): Promise<void> }> {
  const { default: postgres } = await import("postgres");
  const { drizzle } = await import("drizzle-orm/postgres-js");
  const client = postgres(url, { max, onnotice: () => {}, connection: { application_name: "fabric" } });
  const db = drizzle(client, { schema }) as unknown as Db;
  return {
    kind: "postgres",
    db,
    async migrate() {
      const { migrate } = await import("drizzle-orm/postgres-js/migrator");
      // The lock is held by a connection of its own (so a pool of one still has one for
      // the migrator) for the whole run; a second process blocks here until the first has
      // finished, then finds every migration recorded and applies nothing. Postgres
      // releases a session lock when its connection ends, so a crashed migrator never
      // leaves it held.
      const lock = postgres(url, { max: 1, onnotice: () => {}, connection: { application_name: "fabric-migrate-lock" } });
      try {
        await lock`select pg_advisory_lock(${migrationLockKey})`;
        await migrate(db as any, { migrationsFolder });
      } finally {
        await lock.end({ timeout: 5 });
      }
    },
    async listen(channel, onPayload) {
      const sub = await client.listen(channel, onPayload);
      return () => sub.unlisten();
    },
    close: () => client.end({ timeout: 5 }),
  };
}

async function openPglite(dataDir: string): Promise<Database & { migrate(): Promise<void> }> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");
  const inMemory = dataDir.startsWith("memory://");
  const release = inMemory ? () => {} : lockDataDir(dataDir);
  let pg;
  try {
    pg = inMemory ? new PGlite() : new PGlite(resolve(dataDir, "pgdata"));
    await pg.waitReady;
  } catch (err) {
    release();
    throw err;
  }
  const db = drizzle(pg, { schema }) as unknown as Db;
  return {
    kind: "pglite",
    db,
    async migrate() {
      // One process per data dir (the lock file below), so no database lock is needed.
      const { migrate } = await import("drizzle-orm/pglite/migrator");
      await migrate(db as any, { migrationsFolder });
    },
    async listen(channel, onPayload) {
      return pg.listen(channel, onPayload);
    },
    async close() {
      try {
        await pg.close();
      } finally {
        release();
      }
    },
  };
}

/**
 * One process per PGlite data directory: a lock file holding our pid. A stale lock (its
 * process is gone) is taken over; a live one is refused with a message saying what to do.
 */
function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const lockPath = join(dataDir, "fabric.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (err: any) {
      if (err.code !== "EEXIST") throw err;
      const pid = Number(readFileSync(lockPath, "utf8"));
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new Error(
          `the embedded database in ${resolve(dataDir)} is in use by process ${pid}; ` +
            "stop it, or set FABRIC_DATA_DIR to another directory, or set DATABASE_URL to share a Postgres between processes",
        );
      }
      if (existsSync(lockPath)) rmSync(lockPath, { force: true });
    }
  }
  throw new Error(`could not lock ${lockPath}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err: any) {
    return err.code === "EPERM";
  }
}

/** Rows of a raw `execute`, whichever the driver (postgres.js returns an array, PGlite `{rows}`). */
export async function query<T = Record<string, unknown>>(ex: Executor, statement: SQL): Promise<T[]> {
  const result: any = await ex.execute(statement);
  return (Array.isArray(result) ? result : result.rows) as T[];
}

/** `(a, b, c)`: parameters for an `IN` list (never empty: callers check). */
export function sqlIn(values: readonly unknown[]): SQL {
  return sql`(${sql.join(
    values.map((v) => sql`${v}`),
    sql`, `,
  )})`;
}
