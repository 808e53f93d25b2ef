/** `fabric migrate`: applies the migrations (under an advisory lock on Postgres) and exits. */
import { openDatabase } from "../db/database.js";
import { databaseOptions, serverSettings } from "./server-process.js";

export async function migrateCommand(args: string[]): Promise<number> {
  const { config } = serverSettings("migrate", args);
  const database = await openDatabase({ ...databaseOptions(config), statementTimeoutMs: 0 }); // a migration may take long
  await database.close();
  console.log(`migrations applied (${database.kind})`);
  return 0;
}
