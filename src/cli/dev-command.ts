/** `fabric dev`: control plane and executor in one process, with a ready-made organization and key. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../config.js";
import { startControlPlane } from "../control-plane/server.js";
import { openDatabase } from "../db/database.js";
import { startWorker } from "../executor/worker.js";
import { createLogger } from "../logger.js";
import { createProviders } from "../providers/registry.js";
import { issueSignInToken, signInTokenSeconds } from "../services/identity/sign-in-tokens.js";
import { bootstrapDevOrganization } from "../services/tenancy/dev-organization.js";
import { isLoopbackAddress } from "../services/identity/authenticator.js";
import { databaseOptions, orClose, serverSettings, untilSignal } from "./server-process.js";

export async function devCommand(args: string[]): Promise<number> {
  const { config } = serverSettings("dev", args);
  const log = createLogger(config.LOG_LEVEL, { service: "fabric-dev" });
  if (config.FABRIC_ENV === "production") throw new ConfigError("fabric dev is for development; use fabric serve and fabric executor in production");
  const database = await openDatabase(databaseOptions(config, log));
  const boot = await orClose(() => bootstrapDevOrganization(database.db, { apiKey: config.FABRIC_DEV_API_KEY }), database);
  if (database.kind === "pglite") {
    mkdirSync(config.FABRIC_DATA_DIR, { recursive: true });
    writeFileSync(join(config.FABRIC_DATA_DIR, "dev-api-key"), boot.apiKey + "\n", { mode: 0o600 });
  }
  // X-Principal-Id (impersonation by id) only when nothing but this machine can connect.
  const principalHeader = isLoopbackAddress(config.HOST) || config.HOST === "localhost";
  const cp = await orClose(() => startControlPlane({ config, database, log, providers: createProviders(config), principalHeader }), database);
  log.warn(`development mode (fabric dev)${principalHeader ? ": X-Principal-Id is honoured from loopback clients" : ""} — not for production`);
  const worker = await orClose(() => startWorker({ database, config: { ...config, METRICS_PORT: undefined }, providers: createProviders(config), log: log.child({ worker_id: config.WORKER_ID }) }), cp, database);
  // The token rides in the fragment: browsers never send it to the server, so no access log holds it.
  const signIn = await issueSignInToken(database.db, boot.principalId);
  console.log(
    [
      `Fabric is running (${database.kind === "pglite" ? `embedded Postgres in ${config.FABRIC_DATA_DIR}` : "Postgres"}).`,
      `  console      ${cp.restUrl}/#sign-in=${signIn.token}`,
      `               (one-time sign-in link, valid ${signInTokenSeconds / 60} minutes; after that, sign in with the key below)`,
      `  REST + SSE   ${cp.restUrl}        docs: ${cp.restUrl}/docs`,
      `  gRPC         ${cp.grpcUrl}        (gRPC, gRPC-Web, Connect; reflection on)`,
      ...(cp.metricsUrl ? [`  metrics      ${cp.metricsUrl}/metrics`] : []),
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
