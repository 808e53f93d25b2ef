/**
 * `fabric migrate`: applies the migrations (under an advisory lock on Postgres) and exits.
 * With `MIGRATION_DATABASE_URL` it connects as that role (the schema owner) instead of
 * `DATABASE_URL`; with `FABRIC_RUNTIME_ROLE` it then grants that role the data rights the
 * runtime needs and nothing more (db/runtime-role.ts).
 */
import { openDatabase } from "../db/database.js";
import { grantRuntimeRole } from "../db/runtime-role.js";
import { databaseOptions, serverSettings } from "./server-process.js";

export async function migrateCommand(args: string[]): Promise<number> {
  const { config } = serverSettings("migrate", args);
  const options = databaseOptions(config);
  const url = config.MIGRATION_DATABASE_URL ?? options.url;
  if (config.FABRIC_RUNTIME_ROLE && !url) {
    console.error("fabric: FABRIC_RUNTIME_ROLE needs Postgres (MIGRATION_DATABASE_URL or DATABASE_URL)");
    return 2;
  }
  const database = await openDatabase({ ...options, url, statementTimeoutMs: 0 }); // a migration may take long
  try {
    if (config.FABRIC_RUNTIME_ROLE) await grantRuntimeRole(database.db, config.FABRIC_RUNTIME_ROLE);
  } finally {
    await database.close();
  }
  console.log(`migrations applied (${database.kind})${config.FABRIC_RUNTIME_ROLE ? `; runtime role ${config.FABRIC_RUNTIME_ROLE} granted data rights only` : ""}`);
  return 0;
}
