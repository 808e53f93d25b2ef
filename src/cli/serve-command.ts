/** `fabric serve [--no-migrate]`: the control plane alone. */
import { ConfigError } from "../config.js";
import { startControlPlane } from "../control-plane/server.js";
import { openDatabase, type Database } from "../db/database.js";
import { createLogger } from "../logger.js";
import { createProviders } from "../providers/registry.js";
import { isTransientDbError } from "../db/transient-errors.js";
import { databaseOptions, openDatabaseWhenReachable, orClose, refuseOutdatedSchema, serverSettings, startWaitingResponder, untilSignal, warnIfDevelopment } from "./server-process.js";

export async function serveCommand(args: string[]): Promise<number> {
  const { config, values } = serverSettings("serve", args, { "no-migrate": { type: "boolean" } });
  const log = createLogger(config.LOG_LEVEL, { service: "fabric-serve" });
  warnIfDevelopment(config, log);
  if (config.FABRIC_ENV === "production" && !config.JWT_SECRET) throw new ConfigError("invalid configuration:\n  JWT_SECRET: required when FABRIC_ENV=production");
  const migrate = !values["no-migrate"];
  let database: Database | null;
  try {
    database = await openDatabase({ ...databaseOptions(config, log), migrate });
    if (!migrate) await refuseOutdatedSchema(database);
  } catch (err) {
    if (!config.DATABASE_URL || !isTransientDbError(err)) throw err;
    // The database server cannot be reached yet: wait for it, answering 503 on the REST address meanwhile.
    const waiting = await startWaitingResponder(config.HOST, config.PORT, log);
    try {
      database = await openDatabaseWhenReachable({ ...databaseOptions(config, log), migrate }, log, { refuseOutdated: !migrate });
    } finally {
      await waiting.close();
    }
    if (!database) return 0; // stopped while waiting
  }
  if (database.kind === "pglite") log.warn("no DATABASE_URL: serving from the embedded database, which no separate executor can reach — use `fabric dev` for a single process");
  const cp = await orClose(() => startControlPlane({ config, database, log, providers: createProviders(config) }), database);
  log.info("control plane listening", { rest: cp.restUrl, grpc: cp.grpcUrl, console: `${cp.restUrl}/`, metrics: cp.metricsUrl });
  await untilSignal();
  await cp.close();
  await database.close();
  return 0;
}
