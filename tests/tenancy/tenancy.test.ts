/**
 * TenancyService over both transports: organizations, teams, members, service accounts —
 * happy paths, validation, role rules, last-owner protection (also under concurrency),
 * tenant isolation, and exactly one audit entry (plus an event) per mutation.
 */
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memberships, principals, teams, workflowDefinitions } from "../../src/db/schema.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { client, transports, type Actor } from "../helpers/calls.js";
import { eventsOfKind, expectNoAudit, expectOneAudit, insertKey, insertMembership, insertUser, member, newOrganization } from "../helpers/fixtures.js";

let fabric: TestFabric;
beforeAll(async () => {
  fabric = await startTestFabric({ worker: false });
});
afterAll(() => fabric?.close());

const short = () => randomUUID().slice(0, 8);

describe.each(transports)("organizations (%s)", (via) => {
  it("a user creates an organization and becomes its owner; get, update, archive (idempotent)", async () => {
    const t = client(fabric, via);
    const user = await insertUser(fabric);
    const asUser: Actor = { principalId: user.principalId };
    const slug = `acme-${short()}`;

    const created = await t.call("TenancyService/CreateOrganization", { slug, name: "  Acme  " }, asUser);
    expect(created.ok).toBe(true);
    const org = (created as any).data;
    expect(org).toMatchObject({ slug, name: "Acme", archived: false });
    const audit = await expectOneAudit(fabric, created.requestId, { action: "organization.create", resource: `organization:${org.id}`, organizationId: org.id });
    expect(audit.actor_principal_id).toBe(user.principalId);
    expect(await eventsOfKind(fabric, org.id, "organization.created")).toHaveLength(1);

    const members = await t.ok("TenancyService/ListMembers", { organization_id: org.id }, asUser);
    expect(members).toHaveLength(1);
    expect(members[0]).toMatchObject({ role: "owner", principal: { id: user.principalId, kind: "user", email: user.email } });
    expect(members[0].team_id).toBeUndefined();

    expect(await t.ok("TenancyService/GetOrganization", { id: org.id }, asUser)).toMatchObject({ id: org.id, slug, name: "Acme" });

    const upd = await t.call("TenancyService/UpdateOrganization", { id: org.id, name: "Acme Inc" }, asUser);
    expect(upd).toMatchObject({ ok: true, data: { name: "Acme Inc", slug } });
    const updAudit = await expectOneAudit(fabric, upd.requestId, { action: "organization.update", resource: `organization:${org.id}` });
    expect(updAudit.summary).toEqual({ changes: { name: { from: "Acme", to: "Acme Inc" } } });
    expect(await eventsOfKind(fabric, org.id, "organization.updated")).toHaveLength(1);

    const invitee = await insertUser(fabric);
    const early = await t.ok("TenancyService/CreateInvitation", { organization_id: org.id, email: invitee.email, role: "member" }, asUser);
    const arch = await t.call("TenancyService/ArchiveOrganization", { id: org.id }, asUser);
    expect(arch).toMatchObject({ ok: true, data: { archived: true } });
    await expectOneAudit(fabric, arch.requestId, { action: "organization.archive" });
    const again = await t.call("TenancyService/ArchiveOrganization", { id: org.id }, asUser);
    expect(again).toMatchObject({ ok: true, data: { archived: true } });
    await expectOneAudit(fabric, again.requestId, { action: "organization.archive" });
    expect(await eventsOfKind(fabric, org.id, "organization.archived")).toHaveLength(1);

    // Nothing new can be added to an archived organization; reads still work.
    await t.fails("TenancyService/CreateTeam", { organization_id: org.id, slug: "late", name: "Late" }, asUser, 409, "organization_archived");
    await t.fails("TenancyService/CreateInvitation", { organization_id: org.id, email: "x@example.com", role: "member" }, asUser, 409, "organization_archived");
    await t.fails("TenancyService/AcceptInvitation", { token: early.token }, { principalId: invitee.principalId }, 409, "organization_archived");
    expect(await t.ok("TenancyService/GetOrganization", { id: org.id }, asUser)).toMatchObject({ archived: true });
  });

  it("validates slug and name; a taken slug is already_exists; only users create organizations", async () => {
    const t = client(fabric, via);
    const user = await insertUser(fabric);
    const asUser: Actor = { principalId: user.principalId };
    for (const slug of ["", "a", "-abc", "Abc", "a_b", "a".repeat(64)]) {
      const r = await t.fails("TenancyService/CreateOrganization", { slug, name: "X" }, asUser, 400, "invalid_argument");
      await expectNoAudit(fabric, r.requestId);
    }
    await t.fails("TenancyService/CreateOrganization", { slug: `ok-${short()}`, name: "   " }, asUser, 400);
    await t.fails("TenancyService/CreateOrganization", { slug: `ok-${short()}`, name: "n".repeat(201) }, asUser, 400);
    await t.fails("TenancyService/CreateOrganization", { slug: "default", name: "Dup" }, asUser, 409, "already_exists");
    // An API key acts in its own organization; a service account cannot create one either.
    await t.fails("TenancyService/CreateOrganization", { slug: `k-${short()}`, name: "K" }, { key: fabric.apiKey }, 403, "permission_denied");
    const sa = await t.ok("TenancyService/CreateServiceAccount", { organization_id: fabric.organizationId, display_name: "bot" }, { key: fabric.apiKey });
    await t.fails("TenancyService/CreateOrganization", { slug: `sa-${short()}`, name: "SA" }, { principalId: sa.principal.id }, 403, "permission_denied");
  });
});

describe.each(transports)("teams (%s)", (via) => {
  it("create, get, list, update, delete — each audited once", async () => {
    const t = client(fabric, via);
    const { id: org, owner } = await newOrganization(fabric);
    const slug = `core-${short()}`;
    const c = await t.call("TenancyService/CreateTeam", { organization_id: org, slug, name: "Core" }, owner.actor);
    expect(c).toMatchObject({ ok: true, data: { organization_id: org, slug, name: "Core" } });
    const team = (c as any).data;
    await expectOneAudit(fabric, c.requestId, { action: "team.create", resource: `team:${team.id}`, organizationId: org });
    expect(await eventsOfKind(fabric, org, "team.created")).toHaveLength(1);

    await t.fails("TenancyService/CreateTeam", { organization_id: org, slug, name: "Again" }, owner.actor, 409, "already_exists");
    await t.fails("TenancyService/CreateTeam", { organization_id: org, slug: "Bad Slug", name: "X" }, owner.actor, 400);
    // The same slug is fine in another organization.
    const other = await newOrganization(fabric);
    await t.ok("TenancyService/CreateTeam", { organization_id: other.id, slug, name: "Core elsewhere" }, other.owner.actor);

    expect(await t.ok("TenancyService/GetTeam", { organization_id: org, id: team.id }, owner.actor)).toMatchObject({ id: team.id, slug });
    const second = await t.ok("TenancyService/CreateTeam", { organization_id: org, slug: `aaa-${short()}`, name: "Second" }, owner.actor);
    const listed = await t.ok("TenancyService/ListTeams", { organization_id: org }, owner.actor);
    expect(listed.map((x: any) => x.id).sort()).toEqual([team.id, second.id].sort());

    const u = await t.call("TenancyService/UpdateTeam", { organization_id: org, id: team.id, name: "Core team" }, owner.actor);
    expect(u).toMatchObject({ ok: true, data: { name: "Core team", slug } });
    const ua = await expectOneAudit(fabric, u.requestId, { action: "team.update", resource: `team:${team.id}` });
    expect(ua.summary).toMatchObject({ changes: { name: { from: "Core", to: "Core team" } } });

    // Deleting removes the team's memberships.
    const someone = await insertUser(fabric);
    await insertMembership(fabric, org, someone.principalId, "member", team.id);
    const d = await t.call("TenancyService/DeleteTeam", { organization_id: org, id: team.id }, owner.actor);
    expect(d.ok).toBe(true);
    const da = await expectOneAudit(fabric, d.requestId, { action: "team.delete", resource: `team:${team.id}` });
    expect(da.summary).toMatchObject({ memberships_removed: 1 });
    await t.fails("TenancyService/GetTeam", { organization_id: org, id: team.id }, owner.actor, 404, "not_found");
    expect(await fabric.database.db.select().from(memberships).where(eq(memberships.teamId, team.id))).toHaveLength(0);
    await t.fails("TenancyService/DeleteTeam", { organization_id: org, id: team.id }, owner.actor, 404);
  });

  it("a team that owns workflows cannot be deleted (team_in_use)", async () => {
    const t = client(fabric, via);
    const { id: org, owner } = await newOrganization(fabric);
    const team = await t.ok("TenancyService/CreateTeam", { organization_id: org, slug: `wf-${short()}`, name: "WF" }, owner.actor);
    await fabric.database.db.insert(workflowDefinitions).values({ id: randomUUID(), organizationId: org, teamId: team.id, name: `w-${short()}`, version: 1, spec: {}, specHash: "x" });
    const r = await t.fails("TenancyService/DeleteTeam", { organization_id: org, id: team.id }, owner.actor, 409, "team_in_use");
    await expectNoAudit(fabric, r.requestId);
    await t.ok("TenancyService/GetTeam", { organization_id: org, id: team.id }, owner.actor);
  });
});

describe.each(transports)("members and service accounts (%s)", (via) => {
  it("add (an organization member to a team), list with team filter, update, remove — each audited once", async () => {
    const t = client(fabric, via);
    const { id: org, owner } = await newOrganization(fabric);
    const team = await t.ok("TenancyService/CreateTeam", { organization_id: org, slug: `t-${short()}`, name: "T" }, owner.actor);
    const alice = await insertUser(fabric);
    // Alice joined the organization (by an accepted invitation: tests/tenancy/invitations.test.ts).
    const m = { id: await insertMembership(fabric, org, alice.principalId, "member") };

    const addTeam = await t.call("TenancyService/AddMember", { organization_id: org, principal_id: alice.principalId, team_id: team.id, role: "maintainer" }, owner.actor);
    expect(addTeam).toMatchObject({ ok: true, data: { organization_id: org, team_id: team.id, role: "maintainer", principal: { id: alice.principalId, email: alice.email } } });
    await expectOneAudit(fabric, addTeam.requestId, { action: "member.add", resource: `member:${(addTeam as any).data.id}`, organizationId: org });
    expect(await eventsOfKind(fabric, org, "member.added")).toHaveLength(1);
    const addedTeam = (addTeam as any).data;

    await t.fails("TenancyService/AddMember", { organization_id: org, principal_id: alice.principalId, role: "viewer" }, owner.actor, 409, "already_exists");
    await t.fails("TenancyService/AddMember", { organization_id: org, principal_id: alice.principalId, team_id: team.id, role: "member" }, owner.actor, 409, "already_exists");
    await t.fails("TenancyService/AddMember", { organization_id: org, principal_id: randomUUID(), team_id: team.id, role: "member" }, owner.actor, 404, "not_found");
    await t.fails("TenancyService/AddMember", { organization_id: org, principal_id: "not-a-uuid", team_id: team.id, role: "member" }, owner.actor, 404);
    const bob = await insertUser(fabric);
    await t.fails("TenancyService/AddMember", { organization_id: org, principal_id: bob.principalId, role: "maintainer" }, owner.actor, 400, "invalid_argument");
    await t.fails("TenancyService/AddMember", { organization_id: org, principal_id: bob.principalId, team_id: team.id, role: "owner" }, owner.actor, 400, "invalid_argument");
    await t.fails("TenancyService/AddMember", { organization_id: org, principal_id: bob.principalId, team_id: randomUUID(), role: "member" }, owner.actor, 404);

    const all = await t.ok("TenancyService/ListMembers", { organization_id: org }, owner.actor);
    expect(all).toHaveLength(3); // owner, alice (org), alice (team)
    const onlyTeam = await t.ok("TenancyService/ListMembers", { organization_id: org, team_id: team.id }, owner.actor);
    expect(onlyTeam).toHaveLength(1);
    expect(onlyTeam[0]).toMatchObject({ team_id: team.id, principal: { id: alice.principalId } });
    await t.fails("TenancyService/ListMembers", { organization_id: org, team_id: randomUUID() }, owner.actor, 404);

    const upd = await t.call("TenancyService/UpdateMember", { organization_id: org, id: m.id, role: "admin" }, owner.actor);
    expect(upd).toMatchObject({ ok: true, data: { id: m.id, role: "admin" } });
    const ua = await expectOneAudit(fabric, upd.requestId, { action: "member.update", resource: `member:${m.id}` });
    expect(ua.summary).toMatchObject({ changes: { role: { from: "member", to: "admin" } } });
    await t.fails("TenancyService/UpdateMember", { organization_id: org, id: m.id, role: "maintainer" }, owner.actor, 400);
    await t.fails("TenancyService/UpdateMember", { organization_id: org, id: addedTeam.id, role: "admin" }, owner.actor, 400);
    expect(await t.ok("TenancyService/UpdateMember", { organization_id: org, id: addedTeam.id, role: "member" }, owner.actor)).toMatchObject({ role: "member" });

    // Leaving the organization means leaving its teams too.
    const rm = await t.call("TenancyService/RemoveMember", { organization_id: org, id: m.id }, owner.actor);
    expect(rm.ok).toBe(true);
    const ra = await expectOneAudit(fabric, rm.requestId, { action: "member.remove", resource: `member:${m.id}` });
    expect(ra.summary).toMatchObject({ principal_id: alice.principalId, role: "admin", team_memberships_removed: 1 });
    expect(await t.ok("TenancyService/ListMembers", { organization_id: org }, owner.actor)).toHaveLength(1);
    await t.fails("TenancyService/RemoveMember", { organization_id: org, id: m.id }, owner.actor, 404);
  });

  it("service accounts: a principal of kind service_account with an organization role (default member)", async () => {
    const t = client(fabric, via);
    const { id: org, owner } = await newOrganization(fabric);
    const r = await t.call("TenancyService/CreateServiceAccount", { organization_id: org, display_name: "ci bot" }, owner.actor);
    expect(r).toMatchObject({ ok: true, data: { organization_id: org, role: "member", principal: { kind: "service_account", display_name: "ci bot" } } });
    const sa = (r as any).data;
    expect(sa.principal.email).toBeUndefined();
    await expectOneAudit(fabric, r.requestId, { action: "service_account.create", resource: `member:${sa.id}` });
    expect(await eventsOfKind(fabric, org, "service_account.created")).toHaveLength(1);
    const [p] = await fabric.database.db.select().from(principals).where(eq(principals.id, sa.principal.id));
    expect(p).toMatchObject({ kind: "service_account", email: null, passwordHash: null });

    expect(await t.ok("TenancyService/CreateServiceAccount", { organization_id: org, display_name: "viewer bot", role: "viewer" }, owner.actor)).toMatchObject({ role: "viewer" });
    await t.fails("TenancyService/CreateServiceAccount", { organization_id: org, display_name: "" }, owner.actor, 400);
    await t.fails("TenancyService/CreateServiceAccount", { organization_id: org, display_name: "x", role: "maintainer" }, owner.actor, 400);
    const admin = await member(fabric, org, "admin");
    await t.fails("TenancyService/CreateServiceAccount", { organization_id: org, display_name: "root bot", role: "owner" }, admin.actor, 403, "permission_denied");

    // The service account can join one of its organization's teams, but another organization
    // cannot add it: there it does not exist.
    const team = await t.ok("TenancyService/CreateTeam", { organization_id: org, slug: `sa-${short()}`, name: "SA" }, owner.actor);
    await t.ok("TenancyService/AddMember", { organization_id: org, principal_id: sa.principal.id, team_id: team.id, role: "member" }, owner.actor);
    const other = await newOrganization(fabric);
    const otherTeam = await t.ok("TenancyService/CreateTeam", { organization_id: other.id, slug: `sa-${short()}`, name: "SA" }, other.owner.actor);
    await t.fails("TenancyService/AddMember", { organization_id: other.id, principal_id: sa.principal.id, team_id: otherTeam.id, role: "member" }, other.owner.actor, 404);
    await t.fails("TenancyService/AddMember", { organization_id: other.id, principal_id: sa.principal.id, role: "member" }, other.owner.actor, 409, "invitation_required");
  });
});

describe.each(transports)("role rules (%s)", (via) => {
  it("admins cannot grant, change or remove owner; viewers cannot create teams; maintainers act only in their team", async () => {
    const t = client(fabric, via);
    const { id: org, owner } = await newOrganization(fabric);
    const admin = await member(fabric, org, "admin");
    const viewer = await member(fabric, org, "viewer");
    const target = await insertUser(fabric);

    const r = await t.fails("TenancyService/AddMember", { organization_id: org, principal_id: target.principalId, role: "owner" }, admin.actor, 403, "permission_denied");
    await expectNoAudit(fabric, r.requestId);
    await t.fails("TenancyService/AddMember", { organization_id: org, principal_id: target.principalId, role: "member" }, admin.actor, 409, "invitation_required");
    const m = { id: await insertMembership(fabric, org, target.principalId, "member") };
    await t.fails("TenancyService/UpdateMember", { organization_id: org, id: m.id, role: "owner" }, admin.actor, 403);
    await t.fails("TenancyService/UpdateMember", { organization_id: org, id: owner.membershipId, role: "admin" }, admin.actor, 403);
    await t.fails("TenancyService/RemoveMember", { organization_id: org, id: owner.membershipId }, admin.actor, 403);
    await t.fails("TenancyService/CreateInvitation", { organization_id: org, email: "boss@example.com", role: "owner" }, admin.actor, 403);
    expect(await t.ok("TenancyService/UpdateMember", { organization_id: org, id: m.id, role: "viewer" }, admin.actor)).toMatchObject({ role: "viewer" });

    await t.fails("TenancyService/CreateTeam", { organization_id: org, slug: `v-${short()}`, name: "V" }, viewer.actor, 403, "permission_denied");
    await t.fails("TenancyService/AddMember", { organization_id: org, principal_id: target.principalId, role: "viewer" }, viewer.actor, 403);
    expect(await t.ok("TenancyService/ListTeams", { organization_id: org }, viewer.actor)).toEqual([]);

    const red = await t.ok("TenancyService/CreateTeam", { organization_id: org, slug: `red-${short()}`, name: "Red" }, owner.actor);
    const blue = await t.ok("TenancyService/CreateTeam", { organization_id: org, slug: `blue-${short()}`, name: "Blue" }, owner.actor);
    const maintainer = await member(fabric, org, null, { teamId: red.id, role: "maintainer" });
    const newcomer = await insertUser(fabric);
    await insertMembership(fabric, org, newcomer.principalId, "viewer");
    expect(await t.ok("TenancyService/AddMember", { organization_id: org, principal_id: newcomer.principalId, team_id: red.id, role: "member" }, maintainer.actor)).toMatchObject({ team_id: red.id });
    await t.fails("TenancyService/AddMember", { organization_id: org, principal_id: newcomer.principalId, team_id: blue.id, role: "member" }, maintainer.actor, 403);
    await t.fails("TenancyService/AddMember", { organization_id: org, principal_id: newcomer.principalId, role: "member" }, maintainer.actor, 403);
    expect(await t.ok("TenancyService/UpdateTeam", { organization_id: org, id: red.id, name: "Red!" }, maintainer.actor)).toMatchObject({ name: "Red!" });
    await t.fails("TenancyService/UpdateTeam", { organization_id: org, id: blue.id, name: "Mine" }, maintainer.actor, 403);
    await t.fails("TenancyService/DeleteTeam", { organization_id: org, id: red.id }, maintainer.actor, 403);
    // A team-only maintainer sees their team and its memberships, nothing else.
    expect((await t.ok("TenancyService/ListTeams", { organization_id: org }, maintainer.actor)).map((x: any) => x.id)).toEqual([red.id]);
    const seen = await t.ok("TenancyService/ListMembers", { organization_id: org }, maintainer.actor);
    expect(seen.every((x: any) => x.team_id === red.id)).toBe(true);
    expect(seen).toHaveLength(2);
  });
});

describe.each(transports)("last owner (%s)", (via) => {
  it("the only owner can be neither demoted nor removed; with two owners it works", async () => {
    const t = client(fabric, via);
    const { id: org, owner } = await newOrganization(fabric);
    const d = await t.fails("TenancyService/UpdateMember", { organization_id: org, id: owner.membershipId, role: "admin" }, owner.actor, 409, "last_owner");
    await expectNoAudit(fabric, d.requestId);
    await t.fails("TenancyService/RemoveMember", { organization_id: org, id: owner.membershipId }, owner.actor, 409, "last_owner");

    // Team memberships never count as owners.
    const second = await insertUser(fabric);
    const m2 = { id: await insertMembership(fabric, org, second.principalId, "owner") };
    expect(await t.ok("TenancyService/UpdateMember", { organization_id: org, id: owner.membershipId, role: "admin" }, owner.actor)).toMatchObject({ role: "admin" });
    await t.fails("TenancyService/RemoveMember", { organization_id: org, id: m2.id }, owner.actor, 403); // an admin now
    const secondKey = (await insertKey(fabric, org, second.principalId)).key;
    await t.fails("TenancyService/RemoveMember", { organization_id: org, id: m2.id }, { key: secondKey }, 409, "last_owner");
    expect(await t.ok("TenancyService/UpdateMember", { organization_id: org, id: owner.membershipId, role: "owner" }, { key: secondKey })).toMatchObject({ role: "owner" });
    const rm = await t.call("TenancyService/RemoveMember", { organization_id: org, id: m2.id }, { key: secondKey });
    expect(rm.ok).toBe(true);
    await expectOneAudit(fabric, rm.requestId, { action: "member.remove" });
  });

  it("two owners demoting each other at once: exactly one succeeds", async () => {
    const t = client(fabric, via);
    const { id: org, owner } = await newOrganization(fabric);
    const b = await member(fabric, org, "owner");
    const results = await Promise.all([
      t.call("TenancyService/UpdateMember", { organization_id: org, id: owner.membershipId, role: "member" }, owner.actor),
      t.call("TenancyService/UpdateMember", { organization_id: org, id: b.membershipId, role: "member" }, b.actor),
    ]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.code === "last_owner")).toHaveLength(1);
    const owners = await fabric.database.db.select().from(memberships).where(eq(memberships.organizationId, org));
    expect(owners.filter((m) => m.role === "owner" && m.teamId === null)).toHaveLength(1);
  });
});

describe.each(transports)("isolation (%s)", (via) => {
  it("another organization's key sees none of this organization's ids and lists nothing of it", async () => {
    const t = client(fabric, via);
    const ours = await newOrganization(fabric);
    const theirs = await newOrganization(fabric);
    const team = await t.ok("TenancyService/CreateTeam", { organization_id: ours.id, slug: "shared-name", name: "Ours" }, ours.owner.actor);
    await t.ok("TenancyService/CreateTeam", { organization_id: theirs.id, slug: "shared-name", name: "Theirs" }, theirs.owner.actor);
    const inv = await t.ok("TenancyService/CreateInvitation", { organization_id: ours.id, email: "someone@example.com", role: "member" }, ours.owner.actor);
    const them = theirs.owner.actor;

    // Naming our organization: exactly like a missing one.
    for (const [method, fields] of [
      ["TenancyService/GetOrganization", { id: ours.id }],
      ["TenancyService/UpdateOrganization", { id: ours.id, name: "pwned" }],
      ["TenancyService/ArchiveOrganization", { id: ours.id }],
      ["TenancyService/GetTeam", { organization_id: ours.id, id: team.id }],
      ["TenancyService/ListTeams", { organization_id: ours.id }],
      ["TenancyService/DeleteTeam", { organization_id: ours.id, id: team.id }],
      ["TenancyService/ListMembers", { organization_id: ours.id }],
      ["TenancyService/AddMember", { organization_id: ours.id, principal_id: theirs.owner.principalId, role: "owner" }],
      ["TenancyService/UpdateMember", { organization_id: ours.id, id: ours.owner.membershipId, role: "viewer" }],
      ["TenancyService/RemoveMember", { organization_id: ours.id, id: ours.owner.membershipId }],
      ["TenancyService/CreateServiceAccount", { organization_id: ours.id, display_name: "x" }],
      ["TenancyService/CreateInvitation", { organization_id: ours.id, email: "a@b.c", role: "member" }],
      ["TenancyService/ListInvitations", { organization_id: ours.id }],
      ["TenancyService/RevokeInvitation", { organization_id: ours.id, id: inv.invitation.id }],
    ] as const) {
      const r = await t.fails(method, fields, them, 404, "not_found");
      expect(r.detail).toContain(ours.id);
    }
    // Our ids through their own organization: not found either.
    const missing: [string, Record<string, unknown>][] = [
      ["TenancyService/GetTeam", { organization_id: theirs.id, id: team.id }],
      ["TenancyService/UpdateTeam", { organization_id: theirs.id, id: team.id, name: "x" }],
      ["TenancyService/DeleteTeam", { organization_id: theirs.id, id: team.id }],
      ["TenancyService/ListMembers", { organization_id: theirs.id, team_id: team.id }],
      ["TenancyService/AddMember", { organization_id: theirs.id, principal_id: theirs.owner.principalId, team_id: team.id, role: "member" }],
      ["TenancyService/UpdateMember", { organization_id: theirs.id, id: ours.owner.membershipId, role: "viewer" }],
      ["TenancyService/RemoveMember", { organization_id: theirs.id, id: ours.owner.membershipId }],
      ["TenancyService/CreateInvitation", { organization_id: theirs.id, email: "a@b.c", role: "member", team_id: team.id }],
      ["TenancyService/RevokeInvitation", { organization_id: theirs.id, id: inv.invitation.id }],
    ];
    for (const [method, fields] of missing) {
      const r = await t.fails(method, fields, them, 404, "not_found");
      await expectNoAudit(fabric, r.requestId);
    }
    // Their lists hold only their things.
    const teamsSeen = await t.ok("TenancyService/ListTeams", { organization_id: theirs.id }, them);
    expect(teamsSeen.map((x: any) => x.name)).toEqual(["Theirs"]);
    const membersSeen = await t.ok("TenancyService/ListMembers", { organization_id: theirs.id }, them);
    expect(membersSeen.map((x: any) => x.principal.id)).toEqual([theirs.owner.principalId]);
    expect(await t.ok("TenancyService/ListInvitations", { organization_id: theirs.id }, them)).toEqual([]);
    // And nothing of ours changed.
    const [still] = await fabric.database.db.select().from(teams).where(eq(teams.id, team.id));
    expect(still?.name).toBe("Ours");
  });
});
