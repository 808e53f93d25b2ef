/**
 * Permission checks the use cases make with what the guard computed (control-plane/guard.ts):
 * the caller's effective permissions in the organization the call acts in (memberships ×
 * roles, narrowed by the API key's scopes). `requirePermission` checks one loaded resource
 * (a team's workflow, someone else's key); `mayRead` and `readableTeams` filter lists.
 */
import { and, eq, inArray, type SQL } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import type { Db } from "../../db/database.js";
import { memberships } from "../../db/schema.js";
import { DomainError } from "../../domain/errors.js";
import { can, effectivePermissions, narrowByScopes, type Action, type EffectivePermissions } from "../../domain/permissions.js";
import type { CallContext } from "../call-context.js";

/** Whether `action` is allowed anywhere in the organization (org-wide, on some team, or on own resources). */
export function allowedSomewhere(perms: EffectivePermissions, action: Action): boolean {
  if (perms.organization.has(action) || perms.own.has(action)) return true;
  for (const s of perms.teams.values()) if (s.has(action)) return true;
  return false;
}

export async function loadPermissions(db: Db, principalId: string, organizationId: string, scopes: readonly string[]): Promise<EffectivePermissions | null> {
  const rows = await db
    .select({ organizationId: memberships.organizationId, teamId: memberships.teamId, role: memberships.role })
    .from(memberships)
    .where(and(eq(memberships.principalId, principalId), eq(memberships.organizationId, organizationId)));
  if (rows.length === 0) return null;
  return narrowByScopes(effectivePermissions(rows, organizationId), scopes);
}

/** Team-level check on a loaded resource, with the permissions the guard computed. */
export function requirePermission(ctx: CallContext, action: Action, resource: { teamId: string | null; ownedByCaller?: boolean }): void {
  if (!ctx.permissions) throw new DomainError("internal", "permission check outside a guarded call");
  if (!can(ctx.permissions, action, { organizationId: ctx.caller.organizationId, teamId: resource.teamId, ownedByCaller: resource.ownedByCaller })) {
    throw new DomainError("permission_denied", `the caller may not ${action} on this resource`);
  }
}

/** May the caller (with the guard's permissions) see resources of `teamId`? Used to filter lists. */
export function mayRead(ctx: CallContext, action: Action, teamId: string | null): boolean {
  return !!ctx.permissions && can(ctx.permissions, action, { organizationId: ctx.caller.organizationId, teamId });
}

/**
 * A filter keeping the rows of teams the caller may `action` on: none when allowed
 * organization-wide, else `team_id IN (teams allowed)`, or nothing at all.
 */
export function readableTeams(ctx: CallContext, action: Action): { all: true } | { all: false; teamIds: string[] } {
  if (mayRead(ctx, action, null)) return { all: true };
  return { all: false, teamIds: [...(ctx.permissions?.teams.keys() ?? [])].filter((t) => mayRead(ctx, action, t)) };
}

/**
 * `readableTeams` as a list's condition on `teamColumn`: undefined when the caller may
 * `action` organization-wide (no condition), `teamColumn IN (allowed teams)`, or null when
 * no team is allowed (the list is empty; callers answer without a query).
 */
export function readableTeamsCondition(ctx: CallContext, action: Action, teamColumn: AnyPgColumn): SQL | undefined | null {
  const visible = readableTeams(ctx, action);
  if (visible.all) return undefined;
  return visible.teamIds.length ? inArray(teamColumn, visible.teamIds) : null;
}
