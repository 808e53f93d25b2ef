/**
 * Invitations over both transports: the single-use token (shown once, only its hash
 * stored), computed status, revoke, and accept with its edge cases — expired, reused,
 * wrong email, revoked, unknown token, an API key instead of a user, concurrent accepts —
 * each mutation audited once (accept in the invitation's organization).
 */
import { createHash, randomUUID } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../../src/db/database.js";
import { invitations, memberships } from "../../src/db/schema.js";
import { client, transports, type Actor } from "../helpers/calls.js";
import { eventsOfKind, expectNoAudit, expectOneAudit, insertUser, member, newOrganization } from "../helpers/fixtures.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";

let fabric: TestFabric;
beforeAll(async () => {
  fabric = await startTestFabric({ worker: false });
});
afterAll(() => fabric?.close());

const short = () => randomUUID().slice(0, 8);
const as = (principalId: string): Actor => ({ principalId });

describe.each(transports)("invitations (%s)", (via) => {
  it("create returns the token once (only its sha256 is stored); list shows status; accept makes the membership", async () => {
    const t = client(fabric, via);
    const { id: org, owner } = await newOrganization(fabric);
    const email = `Invitee-${short()}@Example.com`;
    const c = await t.call("TenancyService/CreateInvitation", { organization_id: org, email: `  ${email} `, role: "admin" }, owner.actor);
    expect(c.ok, JSON.stringify(c)).toBe(true);
    const { invitation, token } = (c as any).data;
    expect(token).toMatch(/^fabi_[A-Za-z0-9_-]{43}$/);
    expect(invitation).toMatchObject({ organization_id: org, email: email.toLowerCase(), role: "admin", status: "pending" });
    const hours = (Date.parse(invitation.expire_time) - Date.parse(invitation.create_time)) / 3_600_000;
    expect(Math.round(hours)).toBe(168);

    const audit = await expectOneAudit(fabric, c.requestId, { action: "invitation.create", resource: `invitation:${invitation.id}`, organizationId: org });
    expect(JSON.stringify(audit.summary)).not.toContain(token.slice(5));
    const [stored] = await fabric.database.db.select().from(invitations).where(eq(invitations.id, invitation.id));
    expect(stored!.tokenHash).toBe(createHash("sha256").update(token).digest("hex"));
    expect(JSON.stringify(stored)).not.toContain(token.slice(5));
    const events = await eventsOfKind(fabric, org, "invitation.created");
    expect(events).toHaveLength(1);
    expect(JSON.stringify(events)).not.toContain(token.slice(5));

    const listed = await t.ok("TenancyService/ListInvitations", { organization_id: org }, owner.actor);
    expect(listed).toEqual([expect.objectContaining({ id: invitation.id, status: "pending" })]);
    expect(JSON.stringify(listed)).not.toContain(token.slice(5));

    // The invitee (a user whose email differs only in case) accepts.
    const invitee = await insertUser(fabric, email);
    const a = await t.call("TenancyService/AcceptInvitation", { token }, as(invitee.principalId));
    expect(a).toMatchObject({ ok: true, data: { organization_id: org, role: "admin", principal: { id: invitee.principalId } } });
    await expectOneAudit(fabric, a.requestId, { action: "invitation.accept", resource: `invitation:${invitation.id}`, organizationId: org });
    expect(await eventsOfKind(fabric, org, "invitation.accepted")).toHaveLength(1);
    expect(await t.ok("TenancyService/ListInvitations", { organization_id: org }, owner.actor)).toEqual([expect.objectContaining({ status: "accepted" })]);
    // The new admin acts in the organization right away.
    expect(await t.ok("TenancyService/ListMembers", { organization_id: org }, as(invitee.principalId))).toHaveLength(2);

    // Single use.
    const again = await t.fails("TenancyService/AcceptInvitation", { token }, as(invitee.principalId), 409, "invitation_used");
    await expectNoAudit(fabric, again.requestId);
    await t.fails("TenancyService/RevokeInvitation", { organization_id: org, id: invitation.id }, owner.actor, 409, "invitation_used");
  });

  it("a team invitation creates the team membership only", async () => {
    const t = client(fabric, via);
    const { id: org, owner } = await newOrganization(fabric);
    const team = await t.ok("TenancyService/CreateTeam", { organization_id: org, slug: `t-${short()}`, name: "T" }, owner.actor);
    const invitee = await insertUser(fabric);
    await t.fails("TenancyService/CreateInvitation", { organization_id: org, email: invitee.email, role: "admin", team_id: team.id }, owner.actor, 400);
    await t.fails("TenancyService/CreateInvitation", { organization_id: org, email: invitee.email, role: "member", team_id: randomUUID() }, owner.actor, 404);
    const { invitation, token } = await t.ok("TenancyService/CreateInvitation", { organization_id: org, email: invitee.email, role: "maintainer", team_id: team.id, expires_in_hours: 2 }, owner.actor);
    expect(invitation).toMatchObject({ team_id: team.id, role: "maintainer" });
    expect(Math.round((Date.parse(invitation.expire_time) - Date.parse(invitation.create_time)) / 3_600_000)).toBe(2);
    const m = await t.ok("TenancyService/AcceptInvitation", { token }, as(invitee.principalId));
    expect(m).toMatchObject({ team_id: team.id, role: "maintainer" });
    const rows = await fabric.database.db.select().from(memberships).where(eq(memberships.principalId, invitee.principalId));
    expect(rows.map((r) => [r.teamId, r.role])).toEqual([[team.id, "maintainer"]]);
    // A team maintainer sees (and may revoke) only their team's invitations.
    await t.ok("TenancyService/CreateInvitation", { organization_id: org, email: "org-wide@example.com", role: "member" }, owner.actor);
    const teamInv = await t.ok("TenancyService/CreateInvitation", { organization_id: org, email: "teammate@example.com", role: "member", team_id: team.id }, as(invitee.principalId));
    const seen = await t.ok("TenancyService/ListInvitations", { organization_id: org }, as(invitee.principalId));
    expect(seen.every((i: any) => i.team_id === team.id)).toBe(true);
    expect(seen).toHaveLength(2);
    expect(await t.ok("TenancyService/RevokeInvitation", { organization_id: org, id: teamInv.invitation.id }, as(invitee.principalId))).toMatchObject({ status: "revoked" });
  });

  it("edge cases: wrong email, expired, revoked, unknown token, an API key, already a member", async () => {
    const t = client(fabric, via);
    const { id: org, owner } = await newOrganization(fabric);
    const invitee = await insertUser(fabric);
    const invite = async (email = invitee.email) => (await t.ok("TenancyService/CreateInvitation", { organization_id: org, email, role: "member" }, owner.actor)) as { invitation: any; token: string };

    // Wrong email.
    const stranger = await insertUser(fabric);
    const wrong = await invite();
    const w = await t.fails("TenancyService/AcceptInvitation", { token: wrong.token }, as(stranger.principalId), 403, "email_mismatch");
    await expectNoAudit(fabric, w.requestId);
    // A service account has no email: never matches.
    const sa = await t.ok("TenancyService/CreateServiceAccount", { organization_id: org, display_name: "bot" }, owner.actor);
    await t.fails("TenancyService/AcceptInvitation", { token: wrong.token }, as(sa.principal.id), 403, "email_mismatch");
    // An API key (even the invitee's own) is not a user's token.
    const invited = await member(fabric, (await newOrganization(fabric)).id, "member");
    const forKeyHolder = await invite(invited.email);
    await t.fails("TenancyService/AcceptInvitation", { token: forKeyHolder.token }, invited.actor, 403, "permission_denied");

    // Expired.
    const exp = await invite();
    await fabric.database.db.update(invitations).set({ expiresAt: sql`now() - interval '1 minute'` }).where(eq(invitations.id, exp.invitation.id));
    await t.fails("TenancyService/AcceptInvitation", { token: exp.token }, as(invitee.principalId), 409, "invitation_expired");
    await t.fails("TenancyService/RevokeInvitation", { organization_id: org, id: exp.invitation.id }, owner.actor, 409, "invitation_expired");
    const statuses = await t.ok("TenancyService/ListInvitations", { organization_id: org }, owner.actor);
    expect(statuses.find((i: any) => i.id === exp.invitation.id).status).toBe("expired");

    // Revoked.
    const rev = await invite();
    const r = await t.call("TenancyService/RevokeInvitation", { organization_id: org, id: rev.invitation.id }, owner.actor);
    expect(r).toMatchObject({ ok: true, data: { id: rev.invitation.id, status: "revoked" } });
    await expectOneAudit(fabric, r.requestId, { action: "invitation.revoke", resource: `invitation:${rev.invitation.id}` });
    await t.fails("TenancyService/RevokeInvitation", { organization_id: org, id: rev.invitation.id }, owner.actor, 409, "invitation_revoked");
    await t.fails("TenancyService/AcceptInvitation", { token: rev.token }, as(invitee.principalId), 409, "invitation_revoked");
    await t.fails("TenancyService/RevokeInvitation", { organization_id: org, id: randomUUID() }, owner.actor, 404);

    // Unknown tokens, well-formed or not; a missing one.
    await t.fails("TenancyService/AcceptInvitation", { token: `fabi_${"A".repeat(43)}` }, as(invitee.principalId), 404, "not_found");
    await t.fails("TenancyService/AcceptInvitation", { token: "garbage" }, as(invitee.principalId), 404, "not_found");
    await t.fails("TenancyService/AcceptInvitation", { token: "" }, as(invitee.principalId), 400, "invalid_argument");

    // Already a member: refused, and the invitation stays usable.
    const dup = await invite();
    await t.ok("TenancyService/AcceptInvitation", { token: (await invite()).token }, as(invitee.principalId));
    await t.fails("TenancyService/AcceptInvitation", { token: dup.token }, as(invitee.principalId), 409, "already_exists");
    const after = await t.ok("TenancyService/ListInvitations", { organization_id: org }, owner.actor);
    expect(after.find((i: any) => i.id === dup.invitation.id).status).toBe("pending");
  });

  it("refuses at invitation time an email no one could sign up with: one email rule for both", async () => {
    const t = client(fabric, via);
    const anyRpc = client(fabric, via);
    const { id: org, owner } = await newOrganization(fabric);
    const tooLong = `${"a".repeat(64)}@${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(58)}.com`;
    expect(tooLong).toHaveLength(255);
    for (const email of ["ops@intranet", tooLong, 'a"b@example.com']) {
      const signUp = await anyRpc.call("IdentityService/SignUp", { email, password: "correct horse battery staple" }, owner.actor);
      expect(signUp, email).toMatchObject({ ok: false, status: 400, issues: [{ path: "/email", code: "invalid_email" }] });
      const invited = await anyRpc.call("TenancyService/CreateInvitation", { organization_id: org, email, role: "member" }, owner.actor);
      expect(invited, email).toMatchObject({ ok: false, status: 400, issues: [{ path: "/email", code: "invalid_email" }] });
      await expectNoAudit(fabric, invited.requestId);
    }
    expect(await fabric.database.db.select().from(invitations).where(eq(invitations.organizationId, org))).toEqual([]);
    // An address a user can sign up with can be invited.
    expect((await t.ok("TenancyService/CreateInvitation", { organization_id: org, email: "ops@intranet.example", role: "member" }, owner.actor)).invitation.status).toBe("pending");
  });

  it("validates email, role and expiry; admins cannot invite owners; viewers cannot invite", async () => {
    const t = client(fabric, via);
    const { id: org, owner } = await newOrganization(fabric);
    for (const [fields, code] of [
      [{ email: "", role: "member" }, "invalid_argument"],
      [{ email: "not an email", role: "member" }, "invalid_argument"],
      [{ email: "a@b.c", role: "" }, "invalid_argument"],
      [{ email: "a@b.c", role: "superuser" }, "invalid_argument"],
      [{ email: "a@b.c", role: "member", expires_in_hours: 0 }, "invalid_argument"],
      [{ email: "a@b.c", role: "member", expires_in_hours: 721 }, "invalid_argument"],
    ] as const) {
      const r = await t.fails("TenancyService/CreateInvitation", { organization_id: org, ...fields }, owner.actor, 400, code);
      await expectNoAudit(fabric, r.requestId);
    }
    expect((await t.ok("TenancyService/CreateInvitation", { organization_id: org, email: "a@b.c", role: "member", expires_in_hours: 720 }, owner.actor)).invitation.status).toBe("pending");
    expect((await t.ok("TenancyService/CreateInvitation", { organization_id: org, email: "o@b.c", role: "owner" }, owner.actor)).invitation.role).toBe("owner");
    const admin = await member(fabric, org, "admin");
    await t.fails("TenancyService/CreateInvitation", { organization_id: org, email: "o@b.c", role: "owner" }, admin.actor, 403, "permission_denied");
    expect((await t.ok("TenancyService/CreateInvitation", { organization_id: org, email: "adm@b.c", role: "admin" }, admin.actor)).invitation.role).toBe("admin");
    const viewer = await member(fabric, org, "viewer");
    await t.fails("TenancyService/CreateInvitation", { organization_id: org, email: "v@b.c", role: "viewer" }, viewer.actor, 403, "permission_denied");
    await t.fails("TenancyService/ListInvitations", { organization_id: org }, viewer.actor, 403, "permission_denied");
  });

  it("two accepts of one token at once: exactly one membership", async () => {
    const t = client(fabric, via);
    const { id: org, owner } = await newOrganization(fabric);
    const invitee = await insertUser(fabric);
    const { token, invitation } = await t.ok("TenancyService/CreateInvitation", { organization_id: org, email: invitee.email, role: "member" }, owner.actor);
    const results = await Promise.all([1, 2, 3].map(() => t.call("TenancyService/AcceptInvitation", { token }, as(invitee.principalId))));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok).map((r: any) => r.code)).toEqual(["invitation_used", "invitation_used"]);
    const rows = await fabric.database.db.select().from(memberships).where(eq(memberships.principalId, invitee.principalId));
    expect(rows).toHaveLength(1);
    const audits = await query<{ n: number }>(fabric.database.db, sql`SELECT count(*)::int AS n FROM audit_log WHERE resource = ${`invitation:${invitation.id}`} AND action = 'invitation.accept'`);
    expect(audits[0]!.n).toBe(1);
  });
});
