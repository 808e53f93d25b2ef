/**
 * AuthzService: "may the caller do `action` on `resource`?" — the decision every
 * operation makes, answered on request. The resource is looked up to find its
 * organization and team; the caller's permissions there are loaded as the guard loads
 * them (`loadPermissions`: memberships × roles, narrowed by the API key's scopes), and
 * `can` decides, with the caller's own API keys counting as owned.
 *
 * A resource that does not exist, one of another organization, and — for an API key —
 * anything outside the key's own organization all answer the same `allowed: false`, so
 * the answer never says whether something exists. Only malformed requests are errors.
 */
import { eq } from "drizzle-orm";
import { create } from "@bufbuild/protobuf";
import {
  BatchCheckResponseSchema,
  CheckResponseSchema,
  type BatchCheckRequest,
  type BatchCheckResponse,
  type CheckRequest,
  type CheckResponse,
} from "../../../gen/proto/fabric/v1/access_pb.js";
import type { Db } from "../../db/database.js";
import { apiKeys, invitations, memberships, organizations, teams, workflowDefinitions, workflowRuns } from "../../db/schema.js";
import { invalidArgument, type Issue } from "../../domain/errors.js";
import { can, isAction, organizationScope, parseResource, resourceKinds, type Action, type EffectivePermissions, type ResourceRef, type ResourceScope } from "../../domain/permissions.js";
import { loadPermissions } from "./permission-checks.js";
import type { CallContext } from "../call-context.js";
import type { ServiceDeps } from "../service-deps.js";

export type AuthzService = ReturnType<typeof createAuthzService>;

export const maxBatchChecks = 100;

/** Where `ref` lives, or `null` when it does not exist (or is of a kind with no table yet). */
export async function resolveResource(db: Db, ref: ResourceRef, callerPrincipalId: string): Promise<ResourceScope | null> {
  const one = async <T>(rows: Promise<T[]>) => (await rows)[0];
  switch (ref.kind) {
    case "organization": {
      const r = await one(db.select({ id: organizations.id }).from(organizations).where(eq(organizations.id, ref.id)));
      return r ? organizationScope(r.id) : null;
    }
    case "team": {
      const r = await one(db.select({ organizationId: teams.organizationId }).from(teams).where(eq(teams.id, ref.id)));
      return r ? { organizationId: r.organizationId, teamId: ref.id } : null;
    }
    case "workflow": {
      const t = workflowDefinitions;
      const r = await one(db.select({ organizationId: t.organizationId, teamId: t.teamId }).from(t).where(eq(t.id, ref.id)));
      return r ?? null;
    }
    case "run": {
      const t = workflowRuns;
      const r = await one(db.select({ organizationId: t.organizationId, teamId: t.teamId }).from(t).where(eq(t.id, ref.id)));
      return r ?? null;
    }
    case "api_key": {
      const r = await one(db.select({ organizationId: apiKeys.organizationId, principalId: apiKeys.principalId }).from(apiKeys).where(eq(apiKeys.id, ref.id)));
      return r ? { organizationId: r.organizationId, teamId: null, ownedByCaller: r.principalId === callerPrincipalId } : null;
    }
    case "invitation": {
      const r = await one(db.select({ organizationId: invitations.organizationId, teamId: invitations.teamId }).from(invitations).where(eq(invitations.id, ref.id)));
      return r ?? null;
    }
    case "member": {
      // A membership (its id, as the tenancy operations name members).
      const r = await one(db.select({ organizationId: memberships.organizationId, teamId: memberships.teamId }).from(memberships).where(eq(memberships.id, ref.id)));
      return r ?? null;
    }
    default:
      return null; // jobs, webhooks, budgets, policies: nothing stored yet, so nothing to allow
  }
}

interface ValidCheck {
  resource: string;
  action: Action;
  ref: ResourceRef;
}

function validate(checks: readonly CheckRequest[], at: (i: number) => string): ValidCheck[] {
  const issues: Issue[] = [];
  const valid: ValidCheck[] = [];
  checks.forEach((c, i) => {
    const ref = parseResource(c.resource);
    if (!ref) issues.push({ path: `${at(i)}/resource`, code: "invalid_resource", message: `resource must look like "<kind>:<uuid>" with kind one of ${resourceKinds.join(", ")}` });
    if (!isAction(c.action)) issues.push({ path: `${at(i)}/action`, code: "unknown_action", message: `unknown action ${JSON.stringify(c.action)}` });
    if (ref && isAction(c.action)) valid.push({ resource: c.resource, action: c.action, ref });
  });
  if (issues.length) throw invalidArgument(issues.map((i) => i.message).join("; "), issues);
  return valid;
}

export function createAuthzService(deps: ServiceDeps) {
  const { db } = deps;

  /** Verdicts in order; permissions are loaded once per organization and resources once each. */
  async function decide(ctx: CallContext, checks: ValidCheck[]): Promise<CheckResponse[]> {
    const perms = new Map<string, Promise<EffectivePermissions | null>>();
    const scopes = new Map<string, Promise<ResourceScope | null>>();
    const { caller } = ctx;
    const permissionsIn = (organizationId: string) => {
      let p = perms.get(organizationId);
      if (!p) perms.set(organizationId, (p = loadPermissions(db, caller.principalId, organizationId, caller.scopes)));
      return p;
    };
    const out: CheckResponse[] = [];
    for (const c of checks) {
      const key = `${c.ref.kind}:${c.ref.id}`;
      let s = scopes.get(key);
      if (!s) scopes.set(key, (s = resolveResource(db, c.ref, caller.principalId)));
      const scope = await s;
      let allowed = false;
      // An API key belongs to one organization: nothing else exists for it.
      if (scope && !(caller.via === "api_key" && scope.organizationId !== caller.organizationId)) {
        const p = await permissionsIn(scope.organizationId);
        allowed = !!p && can(p, c.action, scope);
      }
      out.push(create(CheckResponseSchema, { allowed, resource: c.resource, action: c.action }));
    }
    return out;
  }

  return {
    async check(ctx: CallContext, req: CheckRequest): Promise<CheckResponse> {
      const [result] = await decide(ctx, validate([req], () => ""));
      return result!;
    },

    async batchCheck(ctx: CallContext, req: BatchCheckRequest): Promise<BatchCheckResponse> {
      if (req.checks.length < 1 || req.checks.length > maxBatchChecks) {
        throw invalidArgument(`checks must hold 1..${maxBatchChecks} checks`, [{ path: "/checks", code: "invalid_value", message: `1..${maxBatchChecks} checks` }]);
      }
      return create(BatchCheckResponseSchema, { results: await decide(ctx, validate(req.checks, (i) => `/checks/${i}`)) });
    },
  };
}
