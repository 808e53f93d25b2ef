/**
 * The one guard. Every operation of both transports passes `guard` before its service
 * runs: it finds the organization the call acts in (services/operations.ts), computes
 * the caller's effective permissions there (memberships × roles, narrowed by the API
 * key's scopes) and refuses when the operation's action is allowed nowhere in it.
 * Services then check team-level resources with `requirePermission`, the same decision.
 *
 * Another tenant's organization answers exactly like a missing one (not_found).
 */
import { and, eq } from "drizzle-orm";
import type { Db } from "../../db/database.js";
import { memberships } from "../../db/schema.js";
import { DomainError, invalidArgument, notFound } from "../../domain/errors.js";
import { can, effectivePermissions, narrowByScopes, type Action, type EffectivePermissions } from "../../domain/permissions.js";
import { isUuid, type CallContext } from "../call-context.js";
import { operationRules } from "../../control-plane/operation-rules.js";

export type Guard = (ctx: CallContext, rpc: string, request: unknown) => Promise<void>;

const camel = (snake: string) => snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

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

export function createGuard(db: Db): Guard {
  return async (ctx, rpc, request) => {
    const rule = operationRules[rpc];
    if (!rule) throw new DomainError("permission_denied", "this operation declares no permission and is refused");
    if ("anonymous" in rule && rule.anonymous) return;
    if (rule.org === "none") return;

    let orgId = ctx.caller.organizationId;
    if (typeof rule.org === "object") {
      const given = (request as Record<string, unknown>)[camel(rule.org.field)];
      orgId = typeof given === "string" && given ? given : "orCaller" in rule.org ? ctx.caller.organizationId : "";
      if (!orgId) throw invalidArgument(`${rule.org.field} is required`, [{ path: `/${rule.org.field}`, code: "required", message: `${rule.org.field} is required` }]);
    }
    if (!orgId) throw invalidArgument("this call acts in an organization: send X-Organization-Id (the caller belongs to several, or to none)");
    if (!isUuid(orgId)) throw notFound("organization", orgId);
    // An API key belongs to one organization; anything else does not exist for it.
    if (ctx.caller.via === "api_key" && orgId !== ctx.caller.organizationId) throw notFound("organization", orgId);
    const perms = await loadPermissions(db, ctx.caller.principalId, orgId, ctx.caller.scopes);
    if (!perms) throw notFound("organization", orgId);
    ctx.caller.organizationId = orgId;
    ctx.permissions = perms;
    if (rule.action && !allowedSomewhere(perms, rule.action)) {
      throw new DomainError("permission_denied", `the caller may not ${rule.action} in this organization${ctx.caller.scopes.length ? " (or the API key's scopes do not allow it)" : ""}`);
    }
  };
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
