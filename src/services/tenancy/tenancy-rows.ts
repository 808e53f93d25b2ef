/**
 * Tenancy rows as the use cases load them: always within the caller's organization, so
 * another organization's id — or a malformed one — answers exactly like a missing one
 * (not_found).
 */
import { and, eq } from "drizzle-orm";
import type { Executor } from "../../db/database.js";
import { memberships, organizations, principals, teams } from "../../db/schema.js";
import { failedPrecondition, notFound, type DomainError } from "../../domain/errors.js";
import { isUuid, type CallContext } from "../call-context.js";
import type { TeamRow } from "./tenancy-messages.js";

export async function organizationRow(ex: Executor, id: string) {
  const [row] = await ex.select().from(organizations).where(eq(organizations.id, id));
  if (!row) throw notFound("organization", id);
  return row;
}

export async function requireActive(ex: Executor, organizationId: string): Promise<void> {
  const row = await organizationRow(ex, organizationId);
  if (row.archivedAt) throw failedPrecondition("the organization is archived: nothing new can be added to it", "organization_archived");
}

/** A team of the caller's organization; anything else (another org's, malformed) is not_found. */
export async function teamRow(ex: Executor, ctx: CallContext, id: string, lock = false): Promise<TeamRow> {
  if (!isUuid(id)) throw notFound("team", id);
  const q = ex
    .select()
    .from(teams)
    .where(and(eq(teams.id, id), eq(teams.organizationId, ctx.caller.organizationId)));
  const [row] = lock ? await q.for("update") : await q;
  if (!row) throw notFound("team", id);
  return row;
}

export async function membershipWithPrincipal(ex: Executor, ctx: CallContext, id: string, lock = false) {
  if (!isUuid(id)) throw notFound("membership", id);
  const q = ex
    .select({ m: memberships, p: principals })
    .from(memberships)
    .innerJoin(principals, eq(principals.id, memberships.principalId))
    .where(and(eq(memberships.id, id), eq(memberships.organizationId, ctx.caller.organizationId)));
  const [row] = lock ? await q.for("update", { of: memberships }) : await q;
  if (!row) throw notFound("membership", id);
  return row;
}

/** SQLSTATE of a database error, looking through driver/ORM wrappers. */
function sqlState(err: unknown): string | undefined {
  for (let e: any = err, depth = 0; e && depth < 4; e = e.cause, depth++) {
    if (typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  }
  return undefined;
}

/** Maps a foreign-key violation (a row vanished or appeared concurrently) to `onFk`; rethrows anything else. */
export async function mapForeignKey<T>(run: () => Promise<T>, onFk: () => DomainError): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (sqlState(err) === "23503") throw onFk();
    throw err;
  }
}
