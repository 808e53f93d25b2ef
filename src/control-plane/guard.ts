/**
 * The one guard. Every operation of both transports passes `guard` before its service
 * runs: it finds the organization the call acts in (operation-rules.ts), computes the
 * caller's effective permissions there (memberships × roles, narrowed by the API key's
 * scopes) and refuses when the operation's action is allowed nowhere in it. Services then
 * check team-level resources with `requirePermission` (services/access/permission-checks.ts),
 * the same decision.
 *
 * Another tenant's organization answers exactly like a missing one (not_found).
 */
import type { Db } from "../db/database.js";
import { DomainError, invalidArgument, notFound } from "../domain/errors.js";
import { allowedSomewhere, loadPermissions } from "../services/access/permission-checks.js";
import { isUuid, type CallContext } from "../services/call-context.js";
import type { OperationRule } from "./operation-rules.js";

/** Checks a call against its operation's rule; sets `ctx.permissions` for organization-scoped ones. */
export type Guard = (ctx: CallContext, rule: OperationRule | undefined, request: unknown) => Promise<void>;

const camel = (snake: string) => snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

export function createGuard(db: Db): Guard {
  return async (ctx, rule, request) => {
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
