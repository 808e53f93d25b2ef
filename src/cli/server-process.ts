/**
 * What the commands that run Fabric itself share (dev, serve, executor, migrate, admin):
 * configuration from flags and the environment, opening the database, refusing an older
 * schema, waiting for a signal.
 */
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { loadConfig, type Config } from "../config.js";
import { openDatabase, type ConnectionLog, type Database, type DatabaseOptions } from "../db/database.js";
import { backoffMs, createOutageLog, isTransientDbError } from "../db/transient-errors.js";
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

/**
 * Opens the database — and, when this process does not migrate, checks its schema —
 * waiting while it cannot be reached: a process started during a database outage (or
 * before the database, as an orchestrator may start them) retries with backoff and jitter
 * (0.2 s doubling to 5 s) instead of exiting, logging the cause once and then at most every
 * 30 s. Other failures (an older schema, a refused login) still end the process. Resolves
 * null when SIGINT/SIGTERM arrives while waiting.
 */
export async function openDatabaseWhenReachable(
  options: DatabaseOptions,
  log: { warn(msg: string, fields?: Record<string, unknown>): void; info(msg: string, fields?: Record<string, unknown>): void },
  opts: { refuseOutdated?: boolean } = {},
): Promise<Database | null> {
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopped = true;
    wake?.();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const outage = createOutageLog(log, "database unreachable at start; retrying", 30_000);
  try {
    for (let attempt = 0; ; attempt++) {
      let database: Database | undefined;
      try {
        database = await openDatabase(options);
        if (opts.refuseOutdated) await refuseOutdatedSchema(database);
        outage.ok();
        return database;
      } catch (err) {
        if (!isTransientDbError(err)) throw err;
        await database?.close().catch(() => {});
        outage.failed(err);
      }
      if (stopped) return null;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, backoffMs(attempt, 200, 5000));
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      if (stopped) return null;
    }
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

/**
 * While `serve` waits for its database: a stand-in on the REST address answering every
 * request 503 `database_unavailable` with Retry-After (so /readyz says not ready, and a
 * load balancer keeps traffic away) and /healthz 200 (the process is alive). Closed before
 * the control plane binds the same address.
 */
export async function startWaitingResponder(host: string, port: number, log: { info(msg: string, fields?: Record<string, unknown>): void }): Promise<{ close(): Promise<void> }> {
  const server = createHttpServer((req, res) => {
    const alive = req.url === "/healthz" || req.url?.startsWith("/healthz?");
    res.writeHead(alive ? 200 : 503, { "content-type": alive ? "application/json" : "application/problem+json", ...(alive ? {} : { "retry-after": "1" }) });
    res.end(
      JSON.stringify(
        alive
          ? { status: "ok" }
          : { type: "https://fabric.dev/problems/unavailable", title: "Unavailable", status: 503, detail: "the database cannot be reached yet", code: "database_unavailable" },
      ),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  log.info("waiting for the database; answering 503 meanwhile", { rest: `http://${host}:${address.port}` });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
