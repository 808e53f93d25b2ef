/**
 * Schema migrations (drizzle-kit's SQL files in `drizzle/`) and the check that the
 * database's schema is the one this code was written for.
 *
 * Several processes may migrate at once (N `fabric serve` replicas starting together, a
 * migration job racing a replica): on Postgres, `openDatabase` applies them under a
 * session-level advisory lock (`migrationLockKey`), so one process applies each migration
 * and the others wait, then find nothing left to do. Without the lock, two of them run
 * `CREATE SCHEMA IF NOT EXISTS drizzle` and the same `CREATE TABLE`s concurrently and one
 * fails with a unique violation (23505). PGlite is one process by construction (a lock
 * file guards its data dir), so it needs no lock.
 *
 * Drizzle's migrator records each applied migration in `drizzle.__drizzle_migrations`
 * with the journal's `when` as `created_at`, and applies every file newer than the newest
 * row; `schemaStatus` reads the same row to tell whether a process that does not migrate
 * (`serve --no-migrate`, `executor`) may start.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { sql, type SQL } from "drizzle-orm";
import { packagePath } from "../package-files.js";

/** Anything that runs SQL (a database or a transaction); database.ts imports this module, not the other way round. */
interface Queryable {
  execute(statement: SQL): PromiseLike<unknown>;
}

async function rows<T>(db: Queryable, statement: SQL): Promise<T[]> {
  const result: any = await db.execute(statement);
  return (Array.isArray(result) ? result : result.rows) as T[];
}

export const migrationsFolder = packagePath("drizzle");

/** Key of the advisory lock held while migrating ("Fabr" in ASCII; any fixed bigint would do). */
export const migrationLockKey = 0x46616272;

export interface Migration {
  tag: string;
  /** The journal's timestamp, which drizzle stores as `created_at`. */
  when: number;
}

/** The migrations this code ships, oldest first. */
export function shippedMigrations(): Migration[] {
  const journal = JSON.parse(readFileSync(join(migrationsFolder, "meta/_journal.json"), "utf8")) as { entries: Migration[] };
  return journal.entries.map(({ tag, when }) => ({ tag, when }));
}

export type SchemaStatus =
  | { state: "current"; applied: number }
  /** Migrations this code needs are missing (an empty database included). */
  | { state: "behind"; missing: string[] }
  /** The database has a migration this code does not know (a newer release migrated it). */
  | { state: "ahead"; applied: number };

export async function schemaStatus(db: Queryable): Promise<SchemaStatus> {
  const shipped = shippedMigrations();
  const [table] = await rows<{ exists: boolean }>(db, sql`select to_regclass('drizzle.__drizzle_migrations') is not null as exists`);
  if (!table?.exists) return { state: "behind", missing: shipped.map((m) => m.tag) };
  const [row] = await rows<{ latest: string | null; applied: string }>(db, sql`select max(created_at)::text as latest, count(*)::text as applied from drizzle.__drizzle_migrations`);
  const latest = row?.latest == null ? 0 : Number(row.latest);
  const missing = shipped.filter((m) => m.when > latest).map((m) => m.tag);
  if (missing.length) return { state: "behind", missing };
  if (shipped.length && latest > shipped[shipped.length - 1]!.when) return { state: "ahead", applied: Number(row!.applied) };
  return { state: "current", applied: Number(row!.applied) };
}

/** The schema is older than the code: start refused, with what to do. */
export class SchemaBehindError extends Error {
  override readonly name = "SchemaBehindError";
  constructor(readonly missing: string[]) {
    super(
      `the database schema is older than this fabric: ${missing.length} migration(s) not applied (${missing[0]}${missing.length > 1 ? ` … ${missing[missing.length - 1]}` : ""}); run \`fabric migrate\` first`,
    );
  }
}

/** Throws `SchemaBehindError` unless every shipped migration is applied. */
export async function assertSchemaCurrent(db: Queryable): Promise<SchemaStatus> {
  const status = await schemaStatus(db);
  if (status.state === "behind") throw new SchemaBehindError(status.missing);
  return status;
}
