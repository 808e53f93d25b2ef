/**
 * The runtime role: what `fabric serve` and `fabric executor` need, and no more. Migrations
 * run as the schema's owner (`fabric migrate` with `MIGRATION_DATABASE_URL`); the owner
 * then grants the runtime role (`FABRIC_RUNTIME_ROLE`) data rights only:
 *
 * - SELECT, INSERT, UPDATE, DELETE on the application's tables, USAGE and SELECT on their
 *   sequences, and SELECT on drizzle's migration journal (to check the schema is current);
 * - on `audit_log` only SELECT and INSERT — an UPDATE or DELETE is refused by privilege
 *   before the append-only trigger is even reached;
 * - no ownership, so no ALTER TABLE: the runtime role cannot disable the audit trigger,
 *   drop a table or change the schema (only a table's owner may).
 *
 * Default privileges make tables and sequences that later migrations (run by the same
 * owner) create readable and writable by the runtime role too, and the grants are re-run
 * after every migration (idempotent). `tests/db/runtime-role.test.ts` proves all of it.
 */
import { sql } from "drizzle-orm";
import type { Executor } from "./database.js";

const roleName = /^[a-z_][a-z0-9_]{0,62}$/;

export async function grantRuntimeRole(ex: Executor, role: string): Promise<void> {
  if (!roleName.test(role)) throw new Error(`not a plain Postgres role name: ${JSON.stringify(role)}`);
  const r = sql.identifier(role);
  await ex.execute(sql`GRANT USAGE ON SCHEMA public TO ${r}`);
  await ex.execute(sql`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${r}`);
  await ex.execute(sql`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${r}`);
  await ex.execute(sql`REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM ${r}`);
  await ex.execute(sql`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${r}`);
  await ex.execute(sql`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ${r}`);
  await ex.execute(sql`GRANT USAGE ON SCHEMA drizzle TO ${r}`);
  await ex.execute(sql`GRANT SELECT ON ALL TABLES IN SCHEMA drizzle TO ${r}`);
}
