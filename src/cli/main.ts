/**
 * `fabric` — dev | serve | executor | migrate | run. Flags override the environment
 * (defaults < environment < flags); see `fabric help`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig, type Config } from "../config.js";
import { openDatabase } from "../db/database.js";
import { assertSchemaCurrent, SchemaBehindError } from "../db/migrations.js";
import { startControlPlane } from "../control-plane/server.js";
import { startWorker } from "../executor/worker.js";
import { createLogger } from "../logger.js";
import { createProviders } from "../providers/registry.js";
import { bootstrapDevOrganization } from "../services/tenancy/dev-organization.js";
import { issueSignInToken, signInTokenSeconds } from "../services/identity/sign-in-tokens.js";
import { runCommand } from "./run-command.js";

const usage = `fabric — AI workflow platform

Usage:
  fabric dev                 control plane + executor in one process (embedded Postgres unless DATABASE_URL)
  fabric serve [--no-migrate] control plane: REST + SSE on PORT (3001), gRPC on GRPC_PORT (3002);
                             migrates first unless --no-migrate (then refuses an older schema)
  fabric executor            an executor (needs DATABASE_URL; run as many as you like)
  fabric migrate             apply database migrations and exit
  fabric run <file.json|yaml> [--input k=v ...] [--input-json '{…}'] [--follow]
                             register a workflow, start a run, optionally follow it live

Flags for dev/serve: --port N --grpc-port N --host H --data-dir DIR
Flags for run:       --url URL (FABRIC_URL, default http://127.0.0.1:3001) --api-key KEY (FABRIC_API_KEY)
Environment: DATABASE_URL, FABRIC_DATA_DIR, FABRIC_ENV, WORKER_* (see README).`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "help" || command === "--help" || command === "-h") {
    console.log(usage);
    return command ? 0 : 2;
  }
  if (command === "run") return runCommand(rest);

  const { values } = parseArgs({
    args: rest,
    options: { port: { type: "string" }, "grpc-port": { type: "string" }, host: { type: "string" }, "data-dir": { type: "string" }, "no-migrate": { type: "boolean" } },
    strict: true,
  });
  const env = { ...process.env };
  if (values.port) env.PORT = values.port;
  if (values["grpc-port"]) env.GRPC_PORT = values["grpc-port"];
  if (values.host) env.HOST = values.host;
  if (values["data-dir"]) env.FABRIC_DATA_DIR = values["data-dir"];
  const config = loadConfig(env);
  const log = createLogger(config.LOG_LEVEL, { service: `fabric-${command}` });

  switch (command) {
    case "migrate": {
      const database = await openDatabase(dbOptions(config));
      await database.close();
      console.log(`migrations applied (${database.kind})`);
      return 0;
    }
    case "dev":
      return dev(config, log);
    case "serve":
      return serveOnly(config, log, { migrate: !values["no-migrate"] });
    case "executor":
      return executor(config, log);
    default:
      console.error(`unknown command ${JSON.stringify(command)}\n\n${usage}`);
      return 2;
  }
}

const dbOptions = (config: Config) => ({ url: config.DATABASE_URL, dataDir: config.FABRIC_DATA_DIR, poolMax: config.DATABASE_POOL_MAX });

async function dev(config: Config, log: ReturnType<typeof createLogger>): Promise<number> {
  if (config.FABRIC_ENV === "production") throw new ConfigError("fabric dev is for development; use fabric serve and fabric executor in production");
  const database = await openDatabase(dbOptions(config));
  const boot = await bootstrapDevOrganization(database.db, { apiKey: config.FABRIC_DEV_API_KEY });
  if (database.kind === "pglite") {
    mkdirSync(config.FABRIC_DATA_DIR, { recursive: true });
    writeFileSync(join(config.FABRIC_DATA_DIR, "dev-api-key"), boot.apiKey + "\n", { mode: 0o600 });
  }
  const cp = await startControlPlane({ config, database, log, providers: createProviders(config) });
  const worker = await startWorker({ database, config, providers: createProviders(config), log: log.child({ worker_id: config.WORKER_ID }) });
  // The token rides in the fragment: browsers never send it to the server, so no access log holds it.
  const signIn = await issueSignInToken(database.db, boot.principalId);
  console.log(
    [
      `Fabric is running (${database.kind === "pglite" ? `embedded Postgres in ${config.FABRIC_DATA_DIR}` : "Postgres"}).`,
      `  console      ${cp.restUrl}/#sign-in=${signIn.token}`,
      `               (one-time sign-in link, valid ${signInTokenSeconds / 60} minutes; after that, sign in with the key below)`,
      `  REST + SSE   ${cp.restUrl}        docs: ${cp.restUrl}/docs`,
      `  gRPC         ${cp.grpcUrl}        (gRPC, gRPC-Web, Connect; reflection on)`,
      `  organization ${boot.organizationId}`,
      `  API key      ${boot.apiKey}`,
      ``,
      `Try: npx fabric run examples/smoke.json --input topic="hello world" --follow`,
    ].join("\n"),
  );
  await untilSignal();
  log.info("shutting down");
  await worker.stop();
  await cp.close();
  await database.close();
  return 0;
}

async function serveOnly(config: Config, log: ReturnType<typeof createLogger>, opts: { migrate: boolean }): Promise<number> {
  if (config.FABRIC_ENV === "production" && !config.JWT_SECRET) throw new ConfigError("invalid configuration:\n  JWT_SECRET: required when FABRIC_ENV=production");
  const database = await openDatabase({ ...dbOptions(config), migrate: opts.migrate });
  if (!opts.migrate) await refuseOutdatedSchema(database);
  if (database.kind === "pglite") log.warn("no DATABASE_URL: serving from the embedded database, which no separate executor can reach — use `fabric dev` for a single process");
  const cp = await startControlPlane({ config, database, log, providers: createProviders(config) });
  log.info("control plane listening", { rest: cp.restUrl, grpc: cp.grpcUrl, console: `${cp.restUrl}/` });
  await untilSignal();
  await cp.close();
  await database.close();
  return 0;
}

async function executor(config: Config, log: ReturnType<typeof createLogger>): Promise<number> {
  if (!config.DATABASE_URL) throw new ConfigError("invalid configuration:\n  DATABASE_URL: required for `fabric executor` (the embedded database belongs to one process; use `fabric dev`)");
  const database = await openDatabase({ ...dbOptions(config), migrate: false });
  await refuseOutdatedSchema(database);
  const worker = await startWorker({ database, config, providers: createProviders(config), log: log.child({ worker_id: config.WORKER_ID }) });
  log.info("executor started", { concurrency: config.WORKER_CONCURRENCY, lease_seconds: config.WORKER_LEASE_SECONDS, run_id: config.RUN_ID });
  await Promise.race([untilSignal(), worker.done]);
  await worker.stop();
  await database.close();
  return 0;
}

/** A process that does not migrate starts only on the schema its code expects. */
async function refuseOutdatedSchema(database: Awaited<ReturnType<typeof openDatabase>>) {
  try {
    await assertSchemaCurrent(database.db);
  } catch (err) {
    await database.close();
    throw err;
  }
}

function untilSignal(): Promise<void> {
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof ConfigError || err instanceof SchemaBehindError || (err instanceof Error && /embedded database|FABRIC_DEV_API_KEY/.test(err.message))) console.error(`fabric: ${err.message}`);
    else console.error(err);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
