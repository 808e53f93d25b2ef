/**
 * New versions of a workflow definition. A version is the next number after the name's
 * latest, so two writers of one name must not both read the same latest and insert it:
 * `(organization_id, name, version)` is unique, and one of them would fail.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import type { Executor, Tx } from "./database.js";

/**
 * Serialises upserts of one workflow name in one organization until `tx` ends: a
 * transaction-scoped advisory lock keyed by the name, taken before the latest version is
 * read. Different names take different keys and do not wait for each other (a hash
 * collision only makes two names wait, never breaks the rule). No row lock is taken, so it
 * cannot deadlock with a run writer.
 */
export async function lockWorkflowName(tx: Tx, organizationId: string, name: string): Promise<void> {
  await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${organizationId + "/" + name}, 0))`);
}

/**
 * Inserts `spec` as the next version of `name` unless a version with this spec hash exists
 * already; the caller re-selects to find the row. One statement, no lock: the select and
 * the insert see one snapshot, and two concurrent inserts of one version meet on the unique
 * key, where ON CONFLICT DO NOTHING drops the later one, so the caller's next round finds
 * the winner's row (or, if the winner wrote another spec, inserts the version after).
 */
export async function insertVersionUnlessPresent(ex: Executor, args: { organizationId: string; name: string; spec: unknown; specHash: string }): Promise<void> {
  const { organizationId: org, name, specHash } = args;
  await ex.execute(
    sql`INSERT INTO workflow_definitions (id, organization_id, team_id, name, version, spec, spec_hash, created_by)
        SELECT ${randomUUID()}::uuid, ${org}::uuid, NULL, ${name}, coalesce(max(version), 0) + 1, ${JSON.stringify(args.spec)}::jsonb, ${specHash}, NULL
        FROM workflow_definitions WHERE organization_id = ${org} AND name = ${name}
        HAVING NOT coalesce(bool_or(spec_hash = ${specHash}), false)
        ON CONFLICT (organization_id, name, version) DO NOTHING`,
  );
}
