/**
 * #14 item 7 — membership without consent. An admin (or a team maintainer) cannot make an
 * existing account a member of their organization by its principal id: a person joins by
 * accepting an invitation. AddMember without a team answers 409 `invitation_required`, the
 * same for an existing account of another organization as for an id that exists nowhere;
 * adding someone outside the organization to a team answers 404 like a missing principal.
 * No answer carries the outsider's email, and nothing is written (no membership, audit or
 * event). The legitimate paths keep working (positive controls): the invitation the user
 * accepts, then adding that member to a team.
 */
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memberships, principals } from "../../src/db/schema.js";
import { client, transports } from "../helpers/calls.js";
import { eventsOfKind, expectNoAudit, insertUser, member, newOrganization } from "../helpers/fixtures.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";

let fabric: TestFabric;
beforeAll(async () => {
  fabric = await startTestFabric({ worker: false });
});
afterAll(() => fabric?.close());

const short = () => randomUUID().slice(0, 8);

describe.each(transports)("membership needs the user's consent (%s)", (via) => {
  it("an admin cannot add another organization's user by principal id; the answer leaks nothing and writes nothing", async () => {
    const t = client(fabric, via);
    const ours = await newOrganization(fabric);
    const theirs = await newOrganization(fabric);
    const victim = theirs.owner; // an existing account, a member elsewhere
    const admin = await member(fabric, ours.id, "admin");
    const team = await t.ok("TenancyService/CreateTeam", { organization_id: ours.id, slug: `t-${short()}`, name: "T" }, ours.owner.actor);
    const [row] = await fabric.database.db.select({ email: principals.email }).from(principals).where(eq(principals.id, victim.principalId));
    const victimEmail = row!.email!;
    expect(victimEmail).toContain("@");

    for (const actor of [ours.owner.actor, admin.actor]) {
      const existing = await t.fails("TenancyService/AddMember", { organization_id: ours.id, principal_id: victim.principalId, role: "member" }, actor, 409, "invitation_required");
      const unknown = await t.fails("TenancyService/AddMember", { organization_id: ours.id, principal_id: randomUUID(), role: "member" }, actor, 409, "invitation_required");
      // An existing account and an id that exists nowhere answer alike.
      expect(existing.detail).toBe(unknown.detail);
      const toTeam = await t.fails("TenancyService/AddMember", { organization_id: ours.id, principal_id: victim.principalId, team_id: team.id, role: "member" }, actor, 404, "not_found");
      for (const r of [existing, unknown, toTeam]) {
        expect(JSON.stringify(r)).not.toContain(victimEmail);
        expect(JSON.stringify(r)).not.toContain(theirs.id);
        await expectNoAudit(fabric, r.requestId);
      }
    }
    expect(await fabric.database.db.select().from(memberships).where(eq(memberships.organizationId, ours.id))).toHaveLength(2); // owner + admin
    expect(await eventsOfKind(fabric, ours.id, "member.added")).toHaveLength(0);

    // Positive control: the invitation the user accepts makes the membership, and then the
    // member can be added to a team, the response naming them (now a member).
    const { token } = await t.ok("TenancyService/CreateInvitation", { organization_id: ours.id, email: victimEmail, role: "member" }, admin.actor);
    const joined = await t.ok("TenancyService/AcceptInvitation", { token }, { principalId: victim.principalId });
    expect(joined).toMatchObject({ organization_id: ours.id, role: "member", principal: { id: victim.principalId } });
    const inTeam = await t.ok("TenancyService/AddMember", { organization_id: ours.id, principal_id: victim.principalId, team_id: team.id, role: "member" }, admin.actor);
    expect(inTeam).toMatchObject({ organization_id: ours.id, team_id: team.id, principal: { id: victim.principalId, email: victimEmail } });
    await t.fails("TenancyService/AddMember", { organization_id: ours.id, principal_id: victim.principalId, role: "viewer" }, admin.actor, 409, "already_exists");
  });

  it("a team maintainer cannot pull an outsider into their team", async () => {
    const t = client(fabric, via);
    const ours = await newOrganization(fabric);
    const red = await t.ok("TenancyService/CreateTeam", { organization_id: ours.id, slug: `red-${short()}`, name: "Red" }, ours.owner.actor);
    const maintainer = await member(fabric, ours.id, null, { teamId: red.id, role: "maintainer" });
    const outsider = await insertUser(fabric);
    const r = await t.fails("TenancyService/AddMember", { organization_id: ours.id, principal_id: outsider.principalId, team_id: red.id, role: "member" }, maintainer.actor, 404, "not_found");
    expect(JSON.stringify(r)).not.toContain(outsider.email);
    expect(await fabric.database.db.select().from(memberships).where(eq(memberships.principalId, outsider.principalId))).toHaveLength(0);
  });
});
