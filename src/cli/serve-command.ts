/** `fabric serve [--no-migrate]`: the control plane alone. */
import { ConfigError } from "../config.js";
import { startControlPlane } from "../control-plane/server.js";
import { openDatabase } from "../db/database.js";
import { createLogger } from "../logger.js";
import { createProviders } from "../providers/registry.js";
import { databaseOptions, orClose, refuseOutdatedSchema, serverSettings, untilSignal, warnIfDevelopment } from "./server-process.js";

export async function serveCommand(args: string[]): Promise<number> {
  const { config, values } = serverSettings("serve", args, { "no-migrate": { type: "boolean" } });
  const log = createLogger(config.LOG_LEVEL, { service: "fabric-serve" });
  warnIfDevelopment(config, log);
  if (config.FABRIC_ENV === "production" && !config.JWT_SECRET) throw new ConfigError("invalid configuration:\n  JWT_SECRET: required when FABRIC_ENV=production");
  const migrate = !values["no-migrate"];
  const database = await openDatabase({ ...databaseOptions(config, log), migrate });
  if (!migrate) await refuseOutdatedSchema(database);
  if (database.kind === "pglite") log.warn("no DATABASE_URL: serving from the embedded database, which no separate executor can reach — use `fabric dev` for a single process");
  const cp = await orClose(() => startControlPlane({ config, database, log, providers: createProviders(config) }), database);
  log.info("control plane listening", { rest: cp.restUrl, grpc: cp.grpcUrl, console: `${cp.restUrl}/`, metrics: cp.metricsUrl });
  await untilSignal();
  await cp.close();
  await database.close();
  return 0;
}
