/**
 * The RBAC model, pure (no I/O): the closed catalogue of actions, what each organization
 * and team role grants, resources and their scope, effective permissions of a principal in
 * one organization, API-key scopes (which can only narrow), and last-owner protection.
 *
 * Decision rule: an action is allowed on a resource of organization O and team T when
 *   - it is granted organization-wide by the principal's organization role in O, or
 *   - T is set and the principal's team role in T grants it, or
 *   - the resource belongs to the caller (e.g. their own API key) and the role grants it
 *     on own resources —
 * and, for an API key with scopes, one of those scopes covers the action too.
 */
import { invalidArgument } from "./errors.js";

// ─── Actions ────────────────────────────────────────────────────────────────────────────

/** Every action of Fabric, named `resource.verb`. Closed: nothing outside it can be granted or checked. */
export const actions = [
  "organization.read",
  "organization.update",
  "organization.archive",
  "team.create",
  "team.read",
  "team.update",
  "team.delete",
  "member.read",
  "member.invite",
  "member.update",
  "member.remove",
  "invitation.read",
  "invitation.revoke",
  "api_key.create",
  "api_key.read",
  "api_key.rotate",
  "api_key.revoke",
  "audit.read",
  "workflow.read",
  "workflow.write",
  "run.create",
  "run.read",
  "run.cancel",
  "run.control",
  "job.create",
  "job.read",
  "provider.read",
  "provider.execute",
  "usage.read",
  "budget.read",
  "budget.write",
  "policy.read",
  "policy.write",
  "webhook.read",
  "webhook.write",
  "event.read",
  "schedule.read",
  "schedule.write",
] as const;
export type Action = (typeof actions)[number];

const actionSet: ReadonlySet<string> = new Set(actions);
export const isAction = (s: unknown): s is Action => typeof s === "string" && actionSet.has(s);

/** `invalid_argument` unless `s` is in the catalogue. */
export function requireAction(s: string): Action {
  if (!isAction(s)) throw invalidArgument(`unknown action ${JSON.stringify(s)}`, [{ path: "/action", code: "unknown_action", message: "not an action of the catalogue" }]);
  return s;
}

// ─── Roles ──────────────────────────────────────────────────────────────────────────────

export const organizationRoles = ["owner", "admin", "member", "viewer"] as const;
export type OrganizationRole = (typeof organizationRoles)[number];
export const teamRoles = ["maintainer", "member"] as const;
export type TeamRole = (typeof teamRoles)[number];

export const isOrganizationRole = (s: unknown): s is OrganizationRole => typeof s === "string" && (organizationRoles as readonly string[]).includes(s);
export const isTeamRole = (s: unknown): s is TeamRole => typeof s === "string" && (teamRoles as readonly string[]).includes(s);

/** Organization roles from most to least powerful; `rank` is the index (lower = more). */
const orgRank = (r: OrganizationRole) => organizationRoles.indexOf(r);

export interface RoleGrants {
  /** Granted on every resource of the organization (for a team role: of the team). */
  readonly all: readonly Action[];
  /** Granted only on resources owned by the caller (their own API keys). */
  readonly own: readonly Action[];
}

const viewerAll = [
  "organization.read",
  "team.read",
  "member.read",
  "workflow.read",
  "run.read",
  "job.read",
  "provider.read",
  "usage.read",
  "budget.read",
  "policy.read",
  "event.read",
  "schedule.read",
] as const satisfies readonly Action[];

const memberAll = [
  ...viewerAll,
  "workflow.write",
  "schedule.write",
  "run.create",
  "run.cancel",
  "run.control",
  "job.create",
  "provider.execute",
] as const satisfies readonly Action[];

/** Admins do everything but archive the organization (and, see `mayChangeRole`, manage owners). */
const adminAll = actions.filter((a) => a !== "organization.archive");

/**
 * What each organization role grants. owner ⊇ admin ⊇ member ⊇ viewer (a test holds it so).
 * - viewer: reads only (not audit, invitations, webhooks, other people's keys).
 * - member: also writes and runs workflows, starts jobs, calls providers; manages only
 *   their own API keys; no member/team/key-of-others/audit/budget/policy/webhook management.
 * - admin: everything except `organization.archive`.
 * - owner: everything.
 */
export const organizationRoleGrants: Readonly<Record<OrganizationRole, RoleGrants>> = {
  owner: { all: actions, own: [] },
  admin: { all: adminAll, own: [] },
  member: { all: memberAll, own: ["api_key.create", "api_key.read", "api_key.rotate", "api_key.revoke"] },
  viewer: { all: viewerAll, own: ["api_key.read"] },
};

const teamMemberAll = [
  "team.read",
  "member.read",
  "workflow.read",
  "run.create",
  "run.read",
  "run.cancel",
  "job.create",
  "job.read",
  "provider.read",
  "provider.execute",
  "usage.read",
  "budget.read",
  "policy.read",
  "event.read",
  "schedule.read",
] as const satisfies readonly Action[];

/** What each team role grants — on the team's own resources only (never organization-wide). */
export const teamRoleGrants: Readonly<Record<TeamRole, RoleGrants>> = {
  maintainer: {
    all: [...teamMemberAll, "workflow.write", "schedule.write", "run.control", "team.update", "member.invite", "invitation.read", "invitation.revoke"],
    own: [],
  },
  member: { all: teamMemberAll, own: [] },
};

// ─── Resources ──────────────────────────────────────────────────────────────────────────

export const resourceKinds = ["organization", "team", "member", "invitation", "api_key", "workflow", "run", "job", "webhook", "budget", "policy"] as const;
export type ResourceKind = (typeof resourceKinds)[number];

/** A reference such as `workflow:0d5c…`; ids are UUIDs (kept lower-case). */
export interface ResourceRef {
  kind: ResourceKind;
  id: string;
}

/**
 * Where a resource lives — what a permission decision needs. Resources created inside a
 * team belong to it (`teamId`); the rest are organization-wide (`teamId: null`).
 */
export interface ResourceScope {
  organizationId: string;
  teamId: string | null;
  /** The resource belongs to the caller (an API key of theirs); enables `own` grants. */
  ownedByCaller?: boolean;
}

/** Looks a reference up (I/O lives in the services); `null` when it does not exist. */
export type ResourceResolver = (ref: ResourceRef) => Promise<ResourceScope | null>;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const kindSet: ReadonlySet<string> = new Set(resourceKinds);

/** `kind:uuid` → the reference, or `null` for anything else (unknown kind, bad id, spaces, extra parts). */
export function parseResource(s: unknown): ResourceRef | null {
  if (typeof s !== "string" || s.length > 64) return null;
  const i = s.indexOf(":");
  if (i < 0) return null;
  const kind = s.slice(0, i);
  const id = s.slice(i + 1);
  if (!kindSet.has(kind) || !uuidPattern.test(id)) return null;
  return { kind: kind as ResourceKind, id: id.toLowerCase() };
}

/** Like `parseResource`, throwing `invalid_argument` for garbage. */
export function requireResource(s: unknown, path = "/resource"): ResourceRef {
  const ref = parseResource(s);
  if (!ref) {
    throw invalidArgument(`resource must look like "<kind>:<uuid>" with kind one of ${resourceKinds.join(", ")}`, [
      { path, code: "invalid_resource", message: "not a resource reference" },
    ]);
  }
  return ref;
}

export function formatResource(ref: ResourceRef): string {
  if (!kindSet.has(ref.kind) || !uuidPattern.test(ref.id)) throw new TypeError(`not a resource reference: ${JSON.stringify(ref)}`);
  return `${ref.kind}:${ref.id.toLowerCase()}`;
}

/** An organization resolves to itself (no lookup needed). */
export const organizationScope = (organizationId: string): ResourceScope => ({ organizationId, teamId: null });

// ─── Effective permissions ──────────────────────────────────────────────────────────────

/** One membership row: an organization role when `teamId` is null, a team role otherwise. */
export interface MembershipLike {
  organizationId: string;
  teamId: string | null;
  role: string;
}

export interface EffectivePermissions {
  organizationId: string;
  /** The strongest organization role held, if any. */
  organizationRole: OrganizationRole | null;
  /** Granted on every resource of the organization. */
  organization: Set<Action>;
  /** Per team the principal belongs to: its team role grants ∪ `organization`. */
  teams: Map<string, Set<Action>>;
  /** The team role held in each team. */
  teamRoles: Map<string, TeamRole>;
  /** Granted only on resources the caller owns (`ResourceScope.ownedByCaller`). */
  own: Set<Action>;
}

/**
 * What a principal may do in `organizationId`, from all their memberships (other
 * organizations' rows are ignored; unknown roles grant nothing — fail closed).
 */
export function effectivePermissions(memberships: readonly MembershipLike[], organizationId: string): EffectivePermissions {
  let organizationRole: OrganizationRole | null = null;
  const teamRolesHeld = new Map<string, TeamRole>();
  for (const m of memberships) {
    if (m.organizationId !== organizationId) continue;
    if (m.teamId === null) {
      if (isOrganizationRole(m.role) && (organizationRole === null || orgRank(m.role) < orgRank(organizationRole))) organizationRole = m.role;
    } else if (isTeamRole(m.role)) {
      const held = teamRolesHeld.get(m.teamId);
      if (!held || (held === "member" && m.role === "maintainer")) teamRolesHeld.set(m.teamId, m.role);
    }
  }
  const orgGrants = organizationRole ? organizationRoleGrants[organizationRole] : { all: [], own: [] };
  const organization = new Set<Action>(orgGrants.all);
  const own = new Set<Action>(orgGrants.own);
  const teams = new Map<string, Set<Action>>();
  for (const [teamId, role] of teamRolesHeld) teams.set(teamId, new Set<Action>([...organization, ...teamRoleGrants[role].all]));
  return { organizationId, organizationRole, organization, teams, teamRoles: teamRolesHeld, own };
}

/** Whether `perms` allow `action` on a resource in `resource`'s organization/team. */
export function can(perms: EffectivePermissions, action: Action, resource: ResourceScope): boolean {
  if (resource.organizationId !== perms.organizationId) return false;
  if (perms.organization.has(action)) return true;
  if (resource.teamId !== null && perms.teams.get(resource.teamId)?.has(action)) return true;
  return resource.ownedByCaller === true && perms.own.has(action);
}

/** Every action `perms` allow on `resource` (for "my effective permissions" and batch checks). */
export function allowedActions(perms: EffectivePermissions, resource: ResourceScope): Action[] {
  return actions.filter((a) => can(perms, a, resource));
}

/** A JSON-friendly view (sorted in catalogue order). */
export function describePermissions(perms: EffectivePermissions): {
  organizationId: string;
  organizationRole: OrganizationRole | null;
  organization: Action[];
  own: Action[];
  teams: { teamId: string; role: TeamRole | null; actions: Action[] }[];
} {
  const ordered = (s: ReadonlySet<Action>) => actions.filter((a) => s.has(a));
  return {
    organizationId: perms.organizationId,
    organizationRole: perms.organizationRole,
    organization: ordered(perms.organization),
    own: ordered(perms.own),
    teams: [...perms.teams].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([teamId, s]) => ({ teamId, role: perms.teamRoles.get(teamId) ?? null, actions: ordered(s) })),
  };
}

// ─── API key scopes ─────────────────────────────────────────────────────────────────────

/**
 * Scopes an API key may carry and the actions each covers. `<things>:write` covers
 * everything on that resource including reads; `admin` covers every action (it still
 * cannot exceed what the key's principal may do).
 */
export const scopeActions = {
  "organizations:read": ["organization.read"],
  "organizations:write": ["organization.read", "organization.update", "organization.archive"],
  "teams:read": ["team.read"],
  "teams:write": ["team.create", "team.read", "team.update", "team.delete"],
  "members:read": ["member.read"],
  "members:write": ["member.read", "member.invite", "member.update", "member.remove"],
  "invitations:read": ["invitation.read"],
  "invitations:write": ["invitation.read", "invitation.revoke"],
  "api_keys:read": ["api_key.read"],
  "api_keys:write": ["api_key.create", "api_key.read", "api_key.rotate", "api_key.revoke"],
  "audit:read": ["audit.read"],
  "workflows:read": ["workflow.read"],
  "workflows:write": ["workflow.read", "workflow.write"],
  "runs:read": ["run.read"],
  "runs:write": ["run.create", "run.read", "run.cancel", "run.control"],
  "jobs:read": ["job.read"],
  "jobs:write": ["job.create", "job.read"],
  "providers:read": ["provider.read"],
  "providers:execute": ["provider.read", "provider.execute"],
  "usage:read": ["usage.read"],
  "budgets:read": ["budget.read"],
  "budgets:write": ["budget.read", "budget.write"],
  "policies:read": ["policy.read"],
  "policies:write": ["policy.read", "policy.write"],
  "webhooks:read": ["webhook.read"],
  "webhooks:write": ["webhook.read", "webhook.write"],
  "events:read": ["event.read"],
  "schedules:read": ["schedule.read"],
  "schedules:write": ["schedule.read", "schedule.write"],
  admin: actions,
} as const satisfies Readonly<Record<string, readonly Action[]>>;
export type Scope = keyof typeof scopeActions;
export const scopes = Object.keys(scopeActions) as Scope[];

const scopeMap: ReadonlyMap<string, ReadonlySet<Action>> = new Map(Object.entries(scopeActions).map(([s, a]) => [s, new Set<Action>(a)]));
export const isScope = (s: unknown): s is Scope => typeof s === "string" && scopeMap.has(s);

/** Validates the scopes of a key being created: `invalid_argument` naming the unknown ones. Deduplicates. */
export function requireScopes(input: readonly string[], path = "/scopes"): Scope[] {
  const issues = input.flatMap((s, i) => (isScope(s) ? [] : [{ path: `${path}/${i}`, code: "unknown_scope", message: `unknown scope ${JSON.stringify(s)}` }]));
  if (issues.length) throw invalidArgument(`unknown scope(s); known: ${scopes.join(", ")}`, issues);
  return [...new Set(input as readonly Scope[])];
}

/** Whether a key with `keyScopes` may use `action` (empty = no narrowing; unknown scopes cover nothing). */
export function scopeAllows(keyScopes: readonly string[], action: Action): boolean {
  return keyScopes.length === 0 || keyScopes.some((s) => scopeMap.get(s)?.has(action) === true);
}

/** `perms` narrowed to what `keyScopes` cover — never wider. Empty scopes = `perms` unchanged (a copy). */
export function narrowByScopes(perms: EffectivePermissions, keyScopes: readonly string[]): EffectivePermissions {
  const keep = (s: ReadonlySet<Action>) => new Set([...s].filter((a) => scopeAllows(keyScopes, a)));
  return {
    organizationId: perms.organizationId,
    organizationRole: perms.organizationRole,
    organization: keep(perms.organization),
    teams: new Map([...perms.teams].map(([t, s]) => [t, keep(s)])),
    teamRoles: new Map(perms.teamRoles),
    own: keep(perms.own),
  };
}

// ─── Membership changes ─────────────────────────────────────────────────────────────────

/**
 * A change to one membership (or an invitation, which becomes one): `from` null = added
 * (invite), `to` null = removed. Org roles when `teamId` is null, team roles otherwise.
 */
export interface RoleChange {
  teamId: string | null;
  from: string | null;
  to: string | null;
}

/** The action a `RoleChange` needs. */
export const roleChangeAction = (c: RoleChange): Action => (c.from === null ? "member.invite" : c.to === null ? "member.remove" : "member.update");

/**
 * Whether `perms` may make `change` in their organization: the matching `member.*` action
 * (on the team for team roles), a role of the right kind, and — for anything that grants,
 * changes or removes `owner` — being an owner. Admins manage everyone but owners;
 * team maintainers invite into their team.
 */
export function mayChangeRole(perms: EffectivePermissions, change: RoleChange): boolean {
  if (change.from === null && change.to === null) return false;
  const validRole = change.teamId === null ? isOrganizationRole : isTeamRole;
  if ((change.from !== null && !validRole(change.from)) || (change.to !== null && !validRole(change.to))) return false;
  if (change.teamId === null && (change.from === "owner" || change.to === "owner") && perms.organizationRole !== "owner") return false;
  return can(perms, roleChangeAction(change), { organizationId: perms.organizationId, teamId: change.teamId });
}

export interface OwnedMembership extends MembershipLike {
  principalId: string;
}

/** Removing `principalId`'s membership (org-level when `teamId` is null), or changing its role. */
export type MembershipChange =
  | { kind: "remove"; organizationId: string; principalId: string; teamId: string | null }
  | { kind: "update"; organizationId: string; principalId: string; teamId: string | null; role: string };

const isOwnerRow = (m: MembershipLike, organizationId: string) => m.organizationId === organizationId && m.teamId === null && m.role === "owner";

/**
 * True when `change` would leave its organization without an owner (an organization always
 * keeps at least one). Team memberships never count; an organization that somehow has no
 * owner is not made worse by the change, so that is false.
 */
export function wouldRemoveLastOwner(memberships: readonly OwnedMembership[], change: MembershipChange): boolean {
  const org = change.organizationId;
  const before = memberships.filter((m) => isOwnerRow(m, org));
  if (before.length === 0 || change.teamId !== null) return false;
  const after = before.filter((m) => {
    if (m.principalId !== change.principalId) return true;
    return change.kind === "update" && change.role === "owner";
  });
  return after.length === 0;
}

/**
 * Whether `after` grants less than `before` somewhere (an action lost organization-wide,
 * on a team, or on owned resources): a demotion. Long-lived streams end on one, since
 * they were opened under what `before` allowed.
 */
export function permissionsNarrowed(before: EffectivePermissions, after: EffectivePermissions): boolean {
  const lost = (a: ReadonlySet<Action>, b: ReadonlySet<Action> | undefined) => [...a].some((x) => !b?.has(x));
  if (lost(before.organization, after.organization) || lost(before.own, after.own)) return true;
  for (const [team, actions] of before.teams) if (lost(actions, after.teams.get(team))) return true;
  return false;
}
