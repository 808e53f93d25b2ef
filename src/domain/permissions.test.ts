import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { operationRules } from "../control-plane/operation-rules.js";
import { DomainError } from "./errors.js";
import {
  actions,
  allowedActions,
  can,
  describePermissions,
  effectivePermissions,
  formatResource,
  isAction,
  mayChangeRole,
  narrowByScopes,
  organizationRoleGrants,
  organizationRoles,
  parseResource,
  requireAction,
  requireResource,
  requireScopes,
  resourceKinds,
  scopeActions,
  scopeAllows,
  scopes,
  teamRoleGrants,
  teamRoles,
  wouldRemoveLastOwner,
  type Action,
  type EffectivePermissions,
  type MembershipLike,
  type OrganizationRole,
  type OwnedMembership,
  type ResourceScope,
} from "./permissions.js";

const ORG = "00000000-0000-4000-8000-00000000000a";
const OTHER_ORG = "00000000-0000-4000-8000-00000000000b";
const TEAM_A = "00000000-0000-4000-8000-0000000000a1";
const TEAM_B = "00000000-0000-4000-8000-0000000000b1";
const TEAM_C = "00000000-0000-4000-8000-0000000000c1";

const org = (role: string, organizationId = ORG): MembershipLike => ({ organizationId, teamId: null, role });
const team = (teamId: string, role: string, organizationId = ORG): MembershipLike => ({ organizationId, teamId, role });
const orgWide: ResourceScope = { organizationId: ORG, teamId: null };
const inTeam = (teamId: string): ResourceScope => ({ organizationId: ORG, teamId });
const asRole = (role: OrganizationRole) => effectivePermissions([org(role)], ORG);

const isSubset = <T>(a: ReadonlySet<T>, b: ReadonlySet<T>) => [...a].every((x) => b.has(x));
/** 2 = granted org-wide, 1 = only on own resources, 0 = not at all. */
const level = (role: OrganizationRole, a: Action) => (organizationRoleGrants[role].all.includes(a) ? 2 : organizationRoleGrants[role].own.includes(a) ? 1 : 0);

describe("the action catalogue", () => {
  it("is closed, unique and named resource.verb", () => {
    expect(new Set(actions).size).toBe(actions.length);
    for (const a of actions) expect(a).toMatch(/^[a-z][a-z_]*\.[a-z][a-z_]*$/);
  });

  it("contains every action an operation declares", () => {
    const declared = new Set(Object.values(operationRules).flatMap((r) => ("action" in r && r.action ? [r.action] : [])));
    expect(declared.size).toBeGreaterThan(0);
    for (const a of declared) expect(isAction(a), a).toBe(true);
  });

  it("contains the tenancy, key, audit and provider actions", () => {
    for (const a of [
      "organization.read", "organization.update", "organization.archive",
      "team.create", "team.read", "team.update", "team.delete",
      "member.read", "member.invite", "member.update", "member.remove",
      "invitation.read", "invitation.revoke",
      "api_key.create", "api_key.read", "api_key.rotate", "api_key.revoke",
      "audit.read", "provider.execute", "usage.read", "budget.read", "budget.write",
      "policy.read", "policy.write", "webhook.read", "webhook.write", "event.read",
    ]) expect(isAction(a), a).toBe(true);
  });

  it("rejects anything else", () => {
    for (const s of ["", "workflow", "workflow.delete", "WORKFLOW.READ", " workflow.read", "toString", "__proto__", 5, null, undefined]) expect(isAction(s)).toBe(false);
    expect(requireAction("run.cancel")).toBe("run.cancel");
    expect(() => requireAction("run.nuke")).toThrow(DomainError);
    try {
      requireAction("run.nuke");
    } catch (e) {
      expect((e as DomainError).kind).toBe("invalid_argument");
    }
  });
});

describe("the role table", () => {
  it("only grants actions of the catalogue", () => {
    for (const g of [...Object.values(organizationRoleGrants), ...Object.values(teamRoleGrants)]) {
      for (const a of [...g.all, ...g.own]) expect(isAction(a), a).toBe(true);
    }
  });

  it("is monotonic: owner ⊇ admin ⊇ member ⊇ viewer (org-wide and own grants)", () => {
    for (let i = 0; i + 1 < organizationRoles.length; i++) {
      const stronger = organizationRoles[i]!;
      const weaker = organizationRoles[i + 1]!;
      for (const a of actions) expect(level(stronger, a), `${stronger} vs ${weaker} on ${a}`).toBeGreaterThanOrEqual(level(weaker, a));
    }
    for (const a of teamRoleGrants.member.all) expect(teamRoleGrants.maintainer.all).toContain(a);
  });

  it("gives the owner everything", () => {
    expect(new Set(organizationRoleGrants.owner.all)).toEqual(new Set(actions));
  });

  it("gives the admin everything except archiving the organization", () => {
    expect(actions.filter((a) => !organizationRoleGrants.admin.all.includes(a))).toEqual(["organization.archive"]);
  });

  it("lets the viewer only read", () => {
    for (const a of [...organizationRoleGrants.viewer.all, ...organizationRoleGrants.viewer.own]) expect(a).toMatch(/\.read$/);
    expect(organizationRoleGrants.viewer.all).not.toContain("audit.read");
  });

  it("lets a member write and run workflows but not manage members, others' keys or the audit log", () => {
    const m = organizationRoleGrants.member;
    for (const a of ["workflow.read", "workflow.write", "run.create", "run.read", "run.cancel", "run.control", "job.create", "provider.execute", "team.read", "member.read"] as const) {
      expect(m.all).toContain(a);
    }
    for (const a of ["member.invite", "member.update", "member.remove", "api_key.create", "api_key.read", "api_key.rotate", "api_key.revoke", "audit.read", "organization.update", "team.create", "invitation.read", "budget.write", "policy.write", "webhook.write"] as const) {
      expect(m.all).not.toContain(a);
    }
    expect(new Set(m.own)).toEqual(new Set(["api_key.create", "api_key.read", "api_key.rotate", "api_key.revoke"]));
  });

  it("lets team roles act within the team only, as described", () => {
    expect(teamRoleGrants.member.all).toEqual(expect.arrayContaining(["workflow.read", "run.create", "run.read", "run.cancel"]));
    expect(teamRoleGrants.member.all).not.toContain("workflow.write");
    expect(teamRoleGrants.maintainer.all).toEqual(expect.arrayContaining(["workflow.write", "run.control", "team.update", "member.invite"]));
    for (const g of Object.values(teamRoleGrants)) {
      expect(g.own).toEqual([]);
      for (const a of ["team.create", "team.delete", "organization.update", "organization.archive", "audit.read", "api_key.create", "member.remove", "member.update"] as const) {
        expect(g.all).not.toContain(a);
      }
    }
  });
});

describe("resources", () => {
  const id = "0d5c7c3e-1b2a-4c3d-9e8f-aabbccddeeff";

  it.each(resourceKinds)("parses and formats %s:<uuid>", (kind) => {
    const ref = parseResource(`${kind}:${id}`);
    expect(ref).toEqual({ kind, id });
    expect(formatResource(ref!)).toBe(`${kind}:${id}`);
  });

  it("lower-cases the id", () => {
    expect(parseResource(`run:${id.toUpperCase()}`)).toEqual({ kind: "run", id });
  });

  it.each([
    "",
    "organization",
    "organization:",
    `:${id}`,
    `org:${id}`,
    `Organization:${id}`,
    `organizations:${id}`,
    "organization:not-a-uuid",
    `organization:${id}:x`,
    `organization:${id} `,
    ` organization:${id}`,
    `organization: ${id}`,
    `organization::${id}`,
    `workflow:${id.slice(0, -1)}`,
    `__proto__:${id}`,
    `constructor:${id}`,
    `toString:${id}`,
    `team:${id}\n`,
  ])("rejects %j", (s) => {
    expect(parseResource(s)).toBeNull();
    expect(() => requireResource(s)).toThrow(DomainError);
  });

  it("rejects non-strings", () => {
    for (const v of [null, undefined, 42, {}, [], { kind: "team", id }]) expect(parseResource(v)).toBeNull();
  });

  it("round-trips whatever it accepts, and accepts nothing else (property)", () => {
    const kindArb = fc.oneof(fc.constantFrom(...resourceKinds), fc.string({ maxLength: 14 }));
    const idArb = fc.oneof(fc.uuid(), fc.string({ maxLength: 40 }));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 70 }), fc.tuple(kindArb, idArb).map(([k, i]) => `${k}:${i}`)), (s) => {
        const ref = parseResource(s);
        if (ref === null) return;
        expect(resourceKinds).toContain(ref.kind);
        expect(s.startsWith(`${ref.kind}:`)).toBe(true);
        expect(formatResource(ref)).toBe(`${ref.kind}:${s.slice(ref.kind.length + 1).toLowerCase()}`);
        expect(parseResource(formatResource(ref))).toEqual(ref);
      }),
      { numRuns: 500 },
    );
  });

  it("refuses to format garbage", () => {
    expect(() => formatResource({ kind: "nope" as never, id })).toThrow(TypeError);
    expect(() => formatResource({ kind: "run", id: "x" })).toThrow(TypeError);
  });
});

describe("effectivePermissions and can", () => {
  it("grants nothing without a membership in that organization", () => {
    const p = effectivePermissions([org("owner", OTHER_ORG), team(TEAM_A, "maintainer", OTHER_ORG)], ORG);
    expect(p.organizationRole).toBeNull();
    expect(p.organization.size).toBe(0);
    expect(p.teams.size).toBe(0);
    for (const a of actions) {
      expect(can(p, a, orgWide)).toBe(false);
      expect(can(p, a, inTeam(TEAM_A))).toBe(false);
    }
  });

  it("never allows anything in another organization", () => {
    const p = asRole("owner");
    for (const a of actions) {
      expect(can(p, a, { organizationId: OTHER_ORG, teamId: null })).toBe(false);
      expect(can(p, a, { organizationId: OTHER_ORG, teamId: TEAM_A, ownedByCaller: true })).toBe(false);
    }
  });

  it("treats unknown roles as granting nothing (fail closed)", () => {
    const p = effectivePermissions([org("superuser"), org("Owner"), team(TEAM_A, "owner"), team(TEAM_B, "admin")], ORG);
    expect(p.organizationRole).toBeNull();
    expect(p.organization.size).toBe(0);
    expect(p.teams.size).toBe(0);
  });

  it("lets an organization grant reach every team's resources", () => {
    const p = asRole("member");
    expect(can(p, "workflow.write", orgWide)).toBe(true);
    expect(can(p, "workflow.write", inTeam(TEAM_A))).toBe(true);
    expect(can(p, "workflow.write", inTeam(TEAM_C))).toBe(true);
    expect(can(p, "member.invite", inTeam(TEAM_A))).toBe(false);
  });

  it("takes the strongest of duplicate memberships", () => {
    expect(effectivePermissions([org("viewer"), org("admin"), org("member")], ORG).organizationRole).toBe("admin");
    const p = effectivePermissions([org("viewer"), team(TEAM_A, "member"), team(TEAM_A, "maintainer"), team(TEAM_A, "member")], ORG);
    expect(p.teamRoles.get(TEAM_A)).toBe("maintainer");
    expect(can(p, "workflow.write", inTeam(TEAM_A))).toBe(true);
  });

  it("combines an organization role with several team roles, each only on its team", () => {
    const p = effectivePermissions([org("viewer"), team(TEAM_A, "maintainer"), team(TEAM_B, "member"), team(TEAM_C, "maintainer", OTHER_ORG)], ORG);
    expect(p.organizationRole).toBe("viewer");
    expect([...p.teams.keys()].sort()).toEqual([TEAM_A, TEAM_B]);
    // per team: team grants ∪ org grants
    for (const [t, s] of p.teams) {
      expect(isSubset(p.organization, s), t).toBe(true);
      expect(isSubset(new Set(teamRoleGrants[p.teamRoles.get(t)!].all), s), t).toBe(true);
    }

    // Team A (maintainer)
    expect(can(p, "workflow.write", inTeam(TEAM_A))).toBe(true);
    expect(can(p, "run.control", inTeam(TEAM_A))).toBe(true);
    expect(can(p, "team.update", inTeam(TEAM_A))).toBe(true);
    expect(can(p, "member.invite", inTeam(TEAM_A))).toBe(true);
    expect(can(p, "team.delete", inTeam(TEAM_A))).toBe(false);

    // Team B (member)
    expect(can(p, "run.create", inTeam(TEAM_B))).toBe(true);
    expect(can(p, "run.cancel", inTeam(TEAM_B))).toBe(true);
    expect(can(p, "workflow.read", inTeam(TEAM_B))).toBe(true);
    expect(can(p, "workflow.write", inTeam(TEAM_B))).toBe(false);
    expect(can(p, "run.control", inTeam(TEAM_B))).toBe(false);
    expect(can(p, "team.update", inTeam(TEAM_B))).toBe(false);

    // Team C is in another organization; in this one it is just some team: org grants only.
    expect(can(p, "run.create", inTeam(TEAM_C))).toBe(false);
    expect(can(p, "workflow.read", inTeam(TEAM_C))).toBe(true);

    // Organization-wide resources: the viewer role only — team grants do not leak out.
    expect(can(p, "workflow.write", orgWide)).toBe(false);
    expect(can(p, "run.create", orgWide)).toBe(false);
    expect(can(p, "member.invite", orgWide)).toBe(false);
    expect(can(p, "workflow.read", orgWide)).toBe(true);
  });

  it("lets a team-only principal act in their team and nowhere else", () => {
    const p = effectivePermissions([team(TEAM_A, "member")], ORG);
    expect(p.organizationRole).toBeNull();
    expect(can(p, "run.create", inTeam(TEAM_A))).toBe(true);
    expect(can(p, "run.read", inTeam(TEAM_B))).toBe(false);
    expect(can(p, "run.read", orgWide)).toBe(false);
    expect(can(p, "organization.read", orgWide)).toBe(false);
  });

  it("grants own-resource actions only on what the caller owns", () => {
    const m = asRole("member");
    expect(can(m, "api_key.create", { ...orgWide, ownedByCaller: true })).toBe(true);
    expect(can(m, "api_key.revoke", { ...orgWide, ownedByCaller: true })).toBe(true);
    expect(can(m, "api_key.revoke", orgWide)).toBe(false);
    expect(can(m, "api_key.read", { ...orgWide, ownedByCaller: false })).toBe(false);
    const v = asRole("viewer");
    expect(can(v, "api_key.read", { ...orgWide, ownedByCaller: true })).toBe(true);
    expect(can(v, "api_key.create", { ...orgWide, ownedByCaller: true })).toBe(false);
    const a = asRole("admin");
    expect(can(a, "api_key.revoke", orgWide)).toBe(true);
  });

  it("agrees with the role table for every org role × action (org-wide and in a team)", () => {
    for (const role of organizationRoles) {
      const p = asRole(role);
      for (const a of actions) {
        const expected = organizationRoleGrants[role].all.includes(a);
        expect(can(p, a, orgWide), `${role} ${a}`).toBe(expected);
        expect(can(p, a, inTeam(TEAM_A)), `${role} ${a} in team`).toBe(expected);
      }
    }
  });

  it("agrees with the team table for every team role × action, on its team only", () => {
    for (const role of teamRoles) {
      const p = effectivePermissions([team(TEAM_A, role)], ORG);
      for (const a of actions) {
        expect(can(p, a, inTeam(TEAM_A)), `${role} ${a}`).toBe(teamRoleGrants[role].all.includes(a));
        expect(can(p, a, inTeam(TEAM_B))).toBe(false);
        expect(can(p, a, orgWide)).toBe(false);
      }
    }
  });

  it("lists allowed actions and describes permissions in catalogue order", () => {
    const p = effectivePermissions([org("viewer"), team(TEAM_B, "member"), team(TEAM_A, "maintainer")], ORG);
    expect(allowedActions(p, orgWide)).toEqual(actions.filter((a) => organizationRoleGrants.viewer.all.includes(a)));
    expect(allowedActions(p, inTeam(TEAM_A))).toContain("workflow.write");
    const d = describePermissions(p);
    expect(d.organizationRole).toBe("viewer");
    expect(d.own).toEqual(["api_key.read"]);
    expect(d.teams.map((t) => [t.teamId, t.role])).toEqual([
      [TEAM_A, "maintainer"],
      [TEAM_B, "member"],
    ]);
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
  });
});

describe("API key scopes", () => {
  it("map only to catalogue actions, and write covers read", () => {
    for (const [s, as] of Object.entries(scopeActions)) {
      for (const a of as) expect(isAction(a), `${s} → ${a}`).toBe(true);
      const [res, level] = s.split(":");
      if (level === "write") {
        const read = (scopeActions as Record<string, readonly Action[]>)[`${res}:read`];
        expect(read, s).toBeDefined();
        for (const a of read!) expect(as, s).toContain(a);
      }
    }
  });

  it("include the names users expect, and together cover every action", () => {
    for (const s of ["workflows:read", "workflows:write", "runs:read", "runs:write", "jobs:read", "jobs:write", "providers:execute", "admin"]) expect(scopes).toContain(s);
    const covered = new Set(scopes.filter((s) => s !== "admin").flatMap((s) => scopeActions[s]));
    expect(actions.filter((a) => !covered.has(a))).toEqual([]);
  });

  it("scopeAllows: empty allows all; unknown scopes allow nothing", () => {
    for (const a of actions) {
      expect(scopeAllows([], a)).toBe(true);
      expect(scopeAllows(["admin"], a)).toBe(true);
      expect(scopeAllows(["bogus", "workflows:*", "*"], a)).toBe(false);
    }
    expect(scopeAllows(["workflows:read"], "workflow.read")).toBe(true);
    expect(scopeAllows(["workflows:read"], "workflow.write")).toBe(false);
    expect(scopeAllows(["workflows:write"], "workflow.read")).toBe(true);
    expect(scopeAllows(["runs:read"], "run.cancel")).toBe(false);
    expect(scopeAllows(["runs:read", "runs:write"], "run.cancel")).toBe(true);
    expect(scopeAllows(["jobs:write"], "job.create")).toBe(true);
    expect(scopeAllows(["jobs:write"], "provider.execute")).toBe(false);
    expect(scopeAllows(["providers:execute"], "provider.execute")).toBe(true);
  });

  it("requireScopes validates and deduplicates", () => {
    expect(requireScopes(["runs:read", "runs:read", "admin"])).toEqual(["runs:read", "admin"]);
    expect(requireScopes([])).toEqual([]);
    try {
      requireScopes(["runs:read", "runs:delete", "toString"]);
      expect.unreachable();
    } catch (e) {
      expect((e as DomainError).kind).toBe("invalid_argument");
      expect((e as DomainError).options.issues?.map((i) => i.path)).toEqual(["/scopes/1", "/scopes/2"]);
    }
  });

  it("narrowByScopes with no scopes changes nothing (and copies)", () => {
    const p = effectivePermissions([org("member"), team(TEAM_A, "maintainer")], ORG);
    const n = narrowByScopes(p, []);
    expect(n).toEqual(p);
    expect(n.organization).not.toBe(p.organization);
    n.organization.clear();
    expect(p.organization.size).toBeGreaterThan(0);
  });

  it("narrowByScopes keeps only what the scopes cover", () => {
    const p = effectivePermissions([org("viewer"), team(TEAM_A, "maintainer")], ORG);
    const n = narrowByScopes(p, ["runs:write"]);
    expect(can(n, "run.read", orgWide)).toBe(true);
    expect(can(n, "run.create", orgWide)).toBe(false); // the viewer cannot, whatever the scope says
    expect(can(n, "run.create", inTeam(TEAM_A))).toBe(true);
    expect(can(n, "workflow.read", inTeam(TEAM_A))).toBe(false);
    expect(can(n, "api_key.read", { ...orgWide, ownedByCaller: true })).toBe(false);
    expect(can(narrowByScopes(p, ["admin"]), "workflow.write", inTeam(TEAM_A))).toBe(true);
    expect(can(narrowByScopes(p, ["admin"]), "workflow.write", orgWide)).toBe(false);
  });

  const membershipArb = fc.record({
    organizationId: fc.constantFrom(ORG, OTHER_ORG),
    teamId: fc.constantFrom<string | null>(null, TEAM_A, TEAM_B, TEAM_C),
    role: fc.constantFrom("owner", "admin", "member", "viewer", "maintainer", "bogus"),
  });
  const scopesArb = fc.subarray([...scopes, "bogus", "runs:*"]);
  const resourceArb = fc.record({
    organizationId: fc.constantFrom(ORG, OTHER_ORG),
    teamId: fc.constantFrom<string | null>(null, TEAM_A, TEAM_B, TEAM_C),
    ownedByCaller: fc.boolean(),
  });
  const within = (n: EffectivePermissions, p: EffectivePermissions) => {
    expect(isSubset(n.organization, p.organization)).toBe(true);
    expect(isSubset(n.own, p.own)).toBe(true);
    for (const [t, s] of n.teams) expect(isSubset(s, p.teams.get(t) ?? new Set())).toBe(true);
  };

  it("narrowByScopes never widens, for any role and scope set (property)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...organizationRoles), fc.array(membershipArb, { maxLength: 6 }), scopesArb, (role, extra, s) => {
        const p = effectivePermissions([org(role), ...extra], ORG);
        const n = narrowByScopes(p, s);
        within(n, p);
        // narrowing twice is narrowing once; and it is exactly the intersection with the scopes
        expect(narrowByScopes(n, s)).toEqual(n);
        for (const a of actions) expect(n.organization.has(a)).toBe(p.organization.has(a) && scopeAllows(s, a));
      }),
      { numRuns: 300 },
    );
  });

  it("can(narrowed) implies can(original) and the scope allows it (property)", () => {
    fc.assert(
      fc.property(fc.array(membershipArb, { maxLength: 6 }), scopesArb, fc.constantFrom(...actions), resourceArb, (ms, s, a, r) => {
        const p = effectivePermissions(ms, ORG);
        const n = narrowByScopes(p, s);
        expect(can(n, a, r)).toBe(can(p, a, r) && scopeAllows(s, a));
      }),
      { numRuns: 1000 },
    );
  });
});

describe("mayChangeRole", () => {
  const owner = asRole("owner");
  const admin = asRole("admin");
  const member = asRole("member");
  const maintainer = effectivePermissions([org("member"), team(TEAM_A, "maintainer")], ORG);

  it("lets owners manage any role, including owners", () => {
    expect(mayChangeRole(owner, { teamId: null, from: null, to: "owner" })).toBe(true);
    expect(mayChangeRole(owner, { teamId: null, from: "owner", to: "admin" })).toBe(true);
    expect(mayChangeRole(owner, { teamId: null, from: "owner", to: null })).toBe(true);
  });

  it("lets admins manage everyone but owners", () => {
    expect(mayChangeRole(admin, { teamId: null, from: null, to: "admin" })).toBe(true);
    expect(mayChangeRole(admin, { teamId: null, from: "member", to: "viewer" })).toBe(true);
    expect(mayChangeRole(admin, { teamId: null, from: "admin", to: null })).toBe(true);
    expect(mayChangeRole(admin, { teamId: TEAM_A, from: null, to: "maintainer" })).toBe(true);
    expect(mayChangeRole(admin, { teamId: null, from: null, to: "owner" })).toBe(false);
    expect(mayChangeRole(admin, { teamId: null, from: "admin", to: "owner" })).toBe(false);
    expect(mayChangeRole(admin, { teamId: null, from: "owner", to: "admin" })).toBe(false);
    expect(mayChangeRole(admin, { teamId: null, from: "owner", to: null })).toBe(false);
  });

  it("does not let members manage memberships", () => {
    expect(mayChangeRole(member, { teamId: null, from: null, to: "viewer" })).toBe(false);
    expect(mayChangeRole(member, { teamId: TEAM_A, from: null, to: "member" })).toBe(false);
  });

  it("lets a maintainer invite into their team only", () => {
    expect(mayChangeRole(maintainer, { teamId: TEAM_A, from: null, to: "member" })).toBe(true);
    expect(mayChangeRole(maintainer, { teamId: TEAM_B, from: null, to: "member" })).toBe(false);
    expect(mayChangeRole(maintainer, { teamId: null, from: null, to: "viewer" })).toBe(false);
    expect(mayChangeRole(maintainer, { teamId: TEAM_A, from: "member", to: null })).toBe(false);
  });

  it("refuses roles of the wrong kind and no-op changes", () => {
    expect(mayChangeRole(owner, { teamId: null, from: null, to: "maintainer" })).toBe(false);
    expect(mayChangeRole(owner, { teamId: TEAM_A, from: null, to: "owner" })).toBe(false);
    expect(mayChangeRole(owner, { teamId: TEAM_A, from: null, to: "admin" })).toBe(false);
    expect(mayChangeRole(owner, { teamId: null, from: "bogus", to: "member" })).toBe(false);
    expect(mayChangeRole(owner, { teamId: null, from: null, to: null })).toBe(false);
  });

  it("requires the scope for the member action when narrowed by a key", () => {
    expect(mayChangeRole(narrowByScopes(owner, ["members:read"]), { teamId: null, from: "member", to: "viewer" })).toBe(false);
    expect(mayChangeRole(narrowByScopes(owner, ["members:write"]), { teamId: null, from: "member", to: "viewer" })).toBe(true);
  });
});

describe("wouldRemoveLastOwner", () => {
  const P1 = "10000000-0000-4000-8000-000000000001";
  const P2 = "10000000-0000-4000-8000-000000000002";
  const P3 = "10000000-0000-4000-8000-000000000003";
  const row = (principalId: string, role: string, teamId: string | null = null, organizationId = ORG): OwnedMembership => ({ principalId, organizationId, teamId, role });
  const rows = [row(P1, "owner"), row(P2, "admin"), row(P1, "maintainer", TEAM_A), row(P3, "owner", null, OTHER_ORG)];

  it("refuses removing or demoting the only owner", () => {
    expect(wouldRemoveLastOwner(rows, { kind: "remove", organizationId: ORG, principalId: P1, teamId: null })).toBe(true);
    expect(wouldRemoveLastOwner(rows, { kind: "update", organizationId: ORG, principalId: P1, teamId: null, role: "admin" })).toBe(true);
  });

  it("allows it when another owner remains", () => {
    const two = [...rows, row(P2, "owner")];
    expect(wouldRemoveLastOwner(two, { kind: "remove", organizationId: ORG, principalId: P1, teamId: null })).toBe(false);
    expect(wouldRemoveLastOwner(two, { kind: "update", organizationId: ORG, principalId: P1, teamId: null, role: "viewer" })).toBe(false);
  });

  it("ignores changes that keep the owner, other principals, team memberships and other organizations", () => {
    expect(wouldRemoveLastOwner(rows, { kind: "update", organizationId: ORG, principalId: P1, teamId: null, role: "owner" })).toBe(false);
    expect(wouldRemoveLastOwner(rows, { kind: "remove", organizationId: ORG, principalId: P2, teamId: null })).toBe(false);
    expect(wouldRemoveLastOwner(rows, { kind: "remove", organizationId: ORG, principalId: P1, teamId: TEAM_A })).toBe(false);
    // P3 is the only owner of the other organization; P1 owning this one does not save it
    expect(wouldRemoveLastOwner(rows, { kind: "remove", organizationId: OTHER_ORG, principalId: P3, teamId: null })).toBe(true);
    // owner rows of another organization do not count for this one
    expect(wouldRemoveLastOwner([row(P1, "owner"), row(P2, "owner", null, OTHER_ORG)], { kind: "remove", organizationId: ORG, principalId: P1, teamId: null })).toBe(true);
  });

  it("holds for any membership set (property): true iff owners existed and none remain", () => {
    const principals = [P1, P2, P3];
    fc.assert(
      fc.property(
        fc.array(fc.record({ principalId: fc.constantFrom(...principals), organizationId: fc.constantFrom(ORG, OTHER_ORG), teamId: fc.constantFrom<string | null>(null, TEAM_A), role: fc.constantFrom("owner", "admin", "member", "maintainer") }), { maxLength: 8 }),
        fc.constantFrom(...principals),
        fc.option(fc.constantFrom("owner", "admin", "viewer"), { nil: undefined }),
        (ms, principalId, role) => {
          const change = role === undefined ? { kind: "remove" as const, organizationId: ORG, principalId, teamId: null } : { kind: "update" as const, organizationId: ORG, principalId, teamId: null, role };
          const owners = (xs: OwnedMembership[]) => xs.filter((m) => m.organizationId === ORG && m.teamId === null && m.role === "owner").length;
          const after: OwnedMembership[] = ms.flatMap((m): OwnedMembership[] => (m.organizationId === ORG && m.teamId === null && m.principalId === principalId ? (role === undefined ? [] : [{ ...m, role }]) : [m]));
          expect(wouldRemoveLastOwner(ms, change)).toBe(owners(ms) > 0 && owners(after) === 0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
