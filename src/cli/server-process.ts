/**
 * What the commands that run Fabric itself share (dev, serve, executor, migrate, admin):
 * configuration from flags and the environment, opening the database, refusing an older
 * schema, waiting for a signal.
 */
import { loadConfig, type Config } from "../config.js";
import { openDatabase, type ConnectionLog, type Database } from "../db/database.js";
import { assertSchemaCurrent } from "../db/migrations.js";
import { parseCommandLine } from "./command-line.js";

const serverOptions = { port: { type: "string" }, "grpc-port": { type: "string" }, host: { type: "string" }, "data-dir": { type: "string" } } as const;

/**
 * Flags, then the environment, then defaults (flags are applied as environment
 * overrides, so config.ts validates them the same way). `extra` adds command flags.
 */
export function serverSettings<E extends NonNullable<Parameters<typeof parseCommandLine>[2]>>(command: string, args: string[], extra: E = {} as E) {
  const { values } = parseCommandLine(command, args, { ...serverOptions, ...extra });
  const v = values as Record<string, string | boolean | undefined>;
  const env = { ...process.env };
  // Production unless told otherwise: only `fabric dev` defaults to development.
  if (!env.FABRIC_ENV) env.FABRIC_ENV = command === "dev" ? "development" : "production";
  if (typeof v.port === "string") env.PORT = v.port;
  if (typeof v["grpc-port"] === "string") env.GRPC_PORT = v["grpc-port"];
  if (typeof v.host === "string") env.HOST = v.host;
  if (typeof v["data-dir"] === "string") env.FABRIC_DATA_DIR = v["data-dir"];
  return { config: loadConfig(env), values: v };
}

export const databaseOptions = (config: Config, log?: ConnectionLog) => ({
  url: config.DATABASE_URL,
  dataDir: config.FABRIC_DATA_DIR,
  poolMax: config.DATABASE_POOL_MAX,
  statementTimeoutMs: config.FABRIC_DB_STATEMENT_TIMEOUT_MS,
  idleInTransactionTimeoutMs: config.FABRIC_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
  connectTimeoutMs: config.FABRIC_DB_CONNECT_TIMEOUT_MS,
  log,
});

/** `serve` and `executor` in development only when asked to, and then loudly. */
export function warnIfDevelopment(config: Config, log: { warn(msg: string): void }): void {
  if (config.FABRIC_ENV !== "development") return;
  log.warn("!!! FABRIC_ENV=development: development defaults are on (a random per-process JWT secret, a fixed webhook secrets key, private webhook targets if allowed) — never expose this process; unset FABRIC_ENV for production");
}

/** A process that does not migrate starts only on the schema its code expects. */
export async function refuseOutdatedSchema(database: Database): Promise<void> {
  try {
    await assertSchemaCurrent(database.db);
  } catch (err) {
    await database.close();
    throw err;
  }
}

/** Runs `start`; if it throws (a busy port…), closes what was opened before rethrowing. */
export async function orClose<T>(start: () => Promise<T>, ...open: { close(): Promise<unknown> }[]): Promise<T> {
  try {
    return await start();
  } catch (err) {
    for (const o of open) await o.close().catch(() => {});
    throw err;
  }
}

export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    };
    process.on("SIGINT", done);
    process.on("SIGTERM", done);
  });
}
