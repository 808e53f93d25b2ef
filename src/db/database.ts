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
import { migrationLockKey, migrationsFolder, schemaStatus } from "./migrations.js";
import * as schema from "./schema.js";
import { backoffMs } from "./transient-errors.js";

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
  /**
   * Subscribes to a NOTIFY channel; resolves once listening. On Postgres the notification
   * connection reconnects by itself after it is lost (backoff with jitter) and LISTENs
   * again; notifications sent meanwhile are lost, so `onRestored` runs after each
   * recovery for the subscriber to catch up from its own durable position.
   */
  listen(channel: string, onPayload: (payload: string) => void, onRestored?: () => void): Promise<() => Promise<void>>;
  /** Whether the notification connection is up and listening (always true on PGlite). */
  listening(): boolean;
  /**
   * The connection pool's state (Postgres; undefined on PGlite, which has one connection
   * and no pool). Read from the driver on each call: cheap, for metrics.
   */
  poolStats(): PoolStats | undefined;
  close(): Promise<void>;
}

/** A snapshot of a postgres.js pool (exposed by patches/postgres+3.4.9.patch). */
export interface PoolStats {
  /** DATABASE_POOL_MAX. */
  max: number;
  /** Connections open and idle. */
  idle: number;
  /** Connections running queries (including those whose pipeline is full). */
  busy: number;
  /** Connections held by a transaction (`begin`) or a reserved session. */
  reserved: number;
  /** Connections being opened. */
  connecting: number;
  /** Queries waiting for a connection: every connection is full or reserved. */
  waiting: number;
}

interface DriverPoolStats {
  max: number;
  open: number;
  busy: number;
  full: number;
  reserved: number;
  connecting: number;
  waiting: number;
}

/** The part of the logger the database uses (db/ sits beside logger.ts, not above it). */
export interface ConnectionLog {
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
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
  /** Postgres: statement_timeout of the application's sessions (FABRIC_DB_STATEMENT_TIMEOUT_MS). Default 60 s; 0 = none. */
  statementTimeoutMs?: number;
  /**
   * Postgres: idle_in_transaction_session_timeout (FABRIC_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS):
   * a transaction left idle this long — its process frozen or cut off — is ended by the
   * server, releasing its locks. Default 15 s; 0 = none.
   */
  idleInTransactionTimeoutMs?: number;
  /** Postgres: how long opening a connection may take before the query fails (FABRIC_DB_CONNECT_TIMEOUT_MS). Default 5 s. */
  connectTimeoutMs?: number;
  /**
   * Postgres: a connection with queries outstanding that receives nothing for this long is
   * torn down, its queries failing with the transient `ANSWER_TIMEOUT` (the driver patch's
   * answer watchdog: after a burst of killed backends a connection could wait for good).
   * Default the statement timeout plus 5 s — a slow query is ended by the server first —
   * and off when there is no statement timeout (migrations).
   */
  answerTimeoutMs?: number;
  /** Logs the notification connection's losses and recoveries (the process's logger). */
  log?: ConnectionLog;
}

export async function openDatabase(options: DatabaseOptions = {}): Promise<Database> {
  const database = options.url ? await openPostgres(options.url, options) : await openPglite(options.dataDir ?? ".fabric");
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

async function openPostgres(url: string, options: DatabaseOptions): Promise<Database & { migrate(): Promise<void> }> {
  const { default: postgres } = await import("postgres");
  const { drizzle } = await import("drizzle-orm/postgres-js");
  const statementTimeoutMs = options.statementTimeoutMs ?? 60_000;
  const answerTimeoutMs = options.answerTimeoutMs ?? (statementTimeoutMs > 0 ? statementTimeoutMs + 5000 : 0);
  const settings = {
    onnotice: () => {},
    // postgres.js's default reconnect backoff grows with every connection error of the
    // pool (3^n/100 s, up to 20 s) and resets only after a clean connect, so after a
    // burst of killed connections a query waited 10-20 s for its connection to come
    // back. Short, capped, jittered instead: a query during an outage fails fast anyway
    // (connection refused), and one after it gets a connection at once.
    backoff: (attempt: number) => Math.min(0.05 * 2 ** attempt, 1) * (0.5 + Math.random() / 2),
    connect_timeout: Math.max(1, Math.ceil((options.connectTimeoutMs ?? 5000) / 1000)),
    // patches/postgres+3.4.9.patch adds it (seconds; null = off).
    answer_timeout: answerTimeoutMs > 0 ? answerTimeoutMs / 1000 : null,
    connection: {
      application_name: "fabric",
      statement_timeout: statementTimeoutMs,
      idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? 15_000,
    },
  };
  const client = postgres(url, { ...settings, max: options.poolMax ?? 10 } as Parameters<typeof postgres>[1]);
  const db = drizzle(client, { schema }) as unknown as Db;
  const notifications = createNotificationConnection(postgres, url, settings, options.log);
  return {
    kind: "postgres",
    db,
    async migrate() {
      // Nothing to apply: no lock and no DDL at all (drizzle's migrator starts with CREATE
      // SCHEMA), so a runtime role without DDL rights can open a migrated database.
      if ((await schemaStatus(db as any)).state !== "behind") return;
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
    listen: notifications.listen,
    listening: notifications.up,
    poolStats() {
      const s = (client as unknown as { stats?: () => DriverPoolStats }).stats?.();
      if (!s) return undefined;
      return { max: s.max, idle: s.open, busy: s.busy + s.full, reserved: s.reserved, connecting: s.connecting, waiting: s.waiting };
    },
    async close() {
      await notifications.close();
      await client.end({ timeout: 5 });
    },
  };
}

/**
 * The LISTEN connection of a process, supervised: postgres.js re-LISTENs once when its
 * listen connection closes and gives up for good if the server is still down, so this
 * keeps its own dedicated connection instead and, whenever it closes, LISTENs on every
 * channel again with backoff and jitter until that succeeds; then each subscriber's
 * `onRestored` runs (notifications sent while it was down are lost).
 */
function createNotificationConnection(postgres: typeof import("postgres"), url: string, settings: Record<string, unknown>, log?: ConnectionLog) {
  const subscribers = new Map<string, Set<{ onPayload: (payload: string) => void; onRestored?: () => void }>>();
  let up = false;
  let closing = false;
  let attempt = 0;
  let retry: NodeJS.Timeout | undefined;
  let downSince = 0;
  const sql = postgres(url, {
    ...settings,
    max: 1,
    idle_timeout: null as unknown as undefined,
    max_lifetime: null as unknown as undefined,
    fetch_types: false,
    connection: { ...(settings.connection as object), application_name: "fabric-listen" },
    onnotify: (channel: string, payload: string) => {
      for (const s of subscribers.get(channel) ?? []) s.onPayload(payload);
    },
    onclose: () => {
      if (closing || !up) return;
      up = false;
      downSince = Date.now();
      log?.warn("notification connection lost; reconnecting", {});
      schedule();
    },
  } as Parameters<typeof postgres>[1]);
  const listenOn = (channel: string) => sql.unsafe(`LISTEN "${channel.replace(/"/g, '""')}"`);

  function schedule() {
    if (closing || retry) return;
    // Capped at 0.5 s: /readyz turns 200 again within about that of the server's return.
    retry = setTimeout(() => void relisten(), backoffMs(attempt++, 100, 500));
    retry.unref();
  }

  async function relisten() {
    retry = undefined;
    try {
      for (const channel of subscribers.keys()) await listenOn(channel);
    } catch {
      schedule();
      return;
    }
    if (closing) return;
    up = true;
    attempt = 0;
    log?.info("notification connection restored", { down_ms: Date.now() - downSince });
    for (const set of subscribers.values()) for (const s of set) s.onRestored?.();
  }

  return {
    up: () => up,
    async listen(channel: string, onPayload: (payload: string) => void, onRestored?: () => void) {
      const entry = { onPayload, onRestored };
      let set = subscribers.get(channel);
      if (!set) {
        await listenOn(channel); // fails (as before) when the database is down at start-up
        set = subscribers.get(channel) ?? new Set();
        subscribers.set(channel, set);
        if (!retry) up = true;
      }
      set.add(entry);
      return async () => {
        set!.delete(entry);
        if (set!.size === 0 && subscribers.get(channel) === set) {
          subscribers.delete(channel);
          if (up) await sql.unsafe(`UNLISTEN "${channel.replace(/"/g, '""')}"`).catch(() => {});
        }
      };
    },
    async close() {
      closing = true;
      clearTimeout(retry);
      await sql.end({ timeout: 5 });
    },
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
    listening: () => true,
    poolStats: () => undefined,
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
