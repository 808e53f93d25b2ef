/** `fabric executor`: one worker process of the execution plane. It never loads the control plane. */
import { ConfigError } from "../config.js";
import { startWorker } from "../executor/worker.js";
import { createLogger } from "../logger.js";
import { createProviders } from "../providers/registry.js";
import { databaseOptions, openDatabaseWhenReachable, orClose, serverSettings, untilSignal, warnIfDevelopment } from "./server-process.js";

export async function executorCommand(args: string[]): Promise<number> {
  const { config } = serverSettings("executor", args);
  const log = createLogger(config.LOG_LEVEL, { service: "fabric-executor" });
  warnIfDevelopment(config, log);
  if (!config.DATABASE_URL) throw new ConfigError("invalid configuration:\n  DATABASE_URL: required for `fabric executor` (the embedded database belongs to one process; use `fabric dev`)");
  const database = await openDatabaseWhenReachable({ ...databaseOptions(config, log), migrate: false }, log, { refuseOutdated: true });
  if (!database) return 0; // stopped while waiting for the database
  const worker = await orClose(() => startWorker({ database, config, providers: createProviders(config), log: log.child({ worker_id: config.WORKER_ID }) }), database);
  log.info("executor started", { concurrency: config.WORKER_CONCURRENCY, lease_seconds: config.WORKER_LEASE_SECONDS, run_id: config.RUN_ID, metrics: worker.metricsUrl });
  await Promise.race([untilSignal(), worker.done]);
  await worker.stop();
  await database.close();
  return 0;
}
