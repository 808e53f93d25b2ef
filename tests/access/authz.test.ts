/**
 * POST /v1/authz/check and check-batch (AuthzService.Check / BatchCheck) over both
 * transports: the guard's decision on each kind of resource, for each kind of caller;
 * another tenant's resource answers exactly like a missing one; an API key sees only its
 * own organization; scopes narrow; malformed checks are refused.
 */
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiKeys, invitations, workflowDefinitions, workflowRuns } from "../../src/db/schema.js";
import { hashSecret } from "../../src/services/identity/authenticator.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { client, transports, type Actor, type Client } from "../helpers/calls.js";
import { insertKey, insertMembership, insertOrganization, insertTeam, member } from "../helpers/fixtures.js";

let fabric: TestFabric;
let org: string;
let owner: Actor;

/** Look-alike data in two organizations: a team, a team workflow, an org-wide workflow, a run, an invitation, a membership, a key. */
interface World {
  organizationId: string;
  teamId: string;
  teamWorkflowId: string;
  orgWorkflowId: string;
  runId: string;
  invitationId: string;
  membershipId: string;
  apiKeyId: string;
}

let ours: World;
let theirs: World;

async function world(organizationId: string, ownerPrincipal: string): Promise<World> {
  const db = fabric.database.db;
  const teamId = await insertTeam(fabric, organizationId);
  const wf = async (name: string, team: string | null) => {
    const id = randomUUID();
    await db.insert(workflowDefinitions).values({ id, organizationId, teamId: team, name, version: 1, spec: { name, nodes: [{ key: "a", operation: "workflow.noop" }] }, specHash: randomUUID() });
    return id;
  };
  const teamWorkflowId = await wf(`team-${teamId.slice(0, 6)}`, teamId);
  const orgWorkflowId = await wf(`org-${teamId.slice(0, 6)}`, null);
  const runId = randomUUID();
  await db.insert(workflowRuns).values({ id: runId, organizationId, teamId, workflowId: teamWorkflowId, workflowName: "team", workflowVersion: 1, status: "completed", input: {}, context: {}, metadata: {}, nodesPending: 0 });
  const invitationId = randomUUID();
  await db.insert(invitations).values({ id: invitationId, organizationId, teamId, email: `${invitationId}@inv.test`, role: "member", tokenHash: hashSecret(invitationId), expiresAt: new Date(Date.now() + 86_400_000) });
  const m = await member(fabric, organizationId, "member");
  const [key] = await db.select().from(apiKeys).where(eq(apiKeys.principalId, ownerPrincipal));
  return { organizationId, teamId, teamWorkflowId, orgWorkflowId, runId, invitationId, membershipId: m.membershipId!, apiKeyId: key!.id };
}

const resources = (w: World) => [
  `organization:${w.organizationId}`,
  `team:${w.teamId}`,
  `workflow:${w.teamWorkflowId}`,
  `workflow:${w.orgWorkflowId}`,
  `run:${w.runId}`,
  `invitation:${w.invitationId}`,
  `member:${w.membershipId}`,
  `api_key:${w.apiKeyId}`,
];

beforeAll(async () => {
  fabric = await startTestFabric({ worker: false });
  org = fabric.organizationId;
  owner = { key: fabric.apiKey };
  ours = await world(org, fabric.principalId);
  const other = await fabric.otherOrg();
  const [k] = await fabric.database.db.select().from(apiKeys).where(eq(apiKeys.organizationId, other.organizationId));
  theirs = await world(other.organizationId, k!.principalId);
});
afterAll(() => fabric?.close());

describe.each(transports)("over %s", (via) => {
  const c = (): Client => client(fabric, via);
  const check = async (actor: Actor, resource: string, action: string): Promise<boolean> => {
    const r = await c().ok("AuthzService/Check", { resource, action }, actor);
    expect(r).toEqual({ allowed: r.allowed, resource, action });
    return r.allowed;
  };

  it("the owner may do anything on every resource of the organization", async () => {
    for (const r of resources(ours)) expect(await check(owner, r, "workflow.write"), r).toBe(true);
    expect(await check(owner, `organization:${org}`, "organization.archive")).toBe(true);
  });

  it("answers as the roles say: member, viewer, team maintainer, own keys", async () => {
    const m = await member(fabric, org, "member");
    expect(await check(m.actor, `organization:${org}`, "workflow.write")).toBe(true);
    expect(await check(m.actor, `organization:${org}`, "audit.read")).toBe(false);
    expect(await check(m.actor, `organization:${org}`, "team.create")).toBe(false);
    expect(await check(m.actor, `api_key:${m.keyId}`, "api_key.rotate"), "own key").toBe(true);
    expect(await check(m.actor, `api_key:${ours.apiKeyId}`, "api_key.rotate"), "the owner's key").toBe(false);

    const v = await member(fabric, org, "viewer");
    expect(await check(v.actor, `workflow:${ours.orgWorkflowId}`, "workflow.read")).toBe(true);
    expect(await check(v.actor, `workflow:${ours.orgWorkflowId}`, "workflow.write")).toBe(false);
    expect(await check(v.actor, `api_key:${v.keyId}`, "api_key.read")).toBe(true);
    expect(await check(v.actor, `api_key:${v.keyId}`, "api_key.revoke")).toBe(false);

    // A team maintainer with no organization role: their team's resources only.
    const t = await member(fabric, org, null, { teamId: ours.teamId, role: "maintainer" });
    expect(await check(t.actor, `team:${ours.teamId}`, "team.update")).toBe(true);
    expect(await check(t.actor, `workflow:${ours.teamWorkflowId}`, "workflow.write")).toBe(true);
    expect(await check(t.actor, `run:${ours.runId}`, "run.control")).toBe(true);
    expect(await check(t.actor, `invitation:${ours.invitationId}`, "invitation.revoke")).toBe(true);
    expect(await check(t.actor, `workflow:${ours.orgWorkflowId}`, "workflow.read")).toBe(false);
    expect(await check(t.actor, `organization:${org}`, "workflow.write")).toBe(false);
    const otherTeam = await insertTeam(fabric, org);
    expect(await check(t.actor, `team:${otherTeam}`, "team.update")).toBe(false);
  });

  it("another tenant's resource answers exactly like a missing one", async () => {
    const missing = (r: string) => r.replace(/:.*/, `:${randomUUID()}`);
    const callers: Actor[] = [owner, (await member(fabric, org, "member")).actor, { principalId: fabric.principalId }];
    for (const actor of callers) {
      for (const r of resources(theirs)) {
        for (const action of ["workflow.read", "organization.read", "api_key.revoke"]) {
          const a = await c().call("AuthzService/Check", { resource: r, action }, actor);
          const b = await c().call("AuthzService/Check", { resource: missing(r), action }, actor);
          expect(a, `${r} ${action}`).toMatchObject({ ok: true, data: { allowed: false, resource: r, action } });
          expect(b).toMatchObject({ ok: true, data: { allowed: false, action } });
        }
      }
    }
  });

  it("an API key only ever sees its own organization; the same principal elsewhere decides per organization", async () => {
    // Our owner is also a viewer of a second organization.
    const second = await insertOrganization(fabric);
    const secondOwner = await member(fabric, second, "owner");
    const w = await world(second, secondOwner.principalId);
    await insertMembership(fabric, second, fabric.principalId, "viewer");
    expect(await check(owner, `organization:${second}`, "organization.read"), "via our key").toBe(false);
    expect(await check(owner, `workflow:${w.orgWorkflowId}`, "workflow.read"), "via our key").toBe(false);
    const dev: Actor = { principalId: fabric.principalId };
    expect(await check(dev, `organization:${second}`, "organization.read"), "as the principal").toBe(true);
    expect(await check(dev, `workflow:${w.orgWorkflowId}`, "workflow.read"), "as the principal").toBe(true);
    expect(await check(dev, `workflow:${w.orgWorkflowId}`, "workflow.write"), "a viewer there").toBe(false);
    expect(await check(dev, `workflow:${ours.orgWorkflowId}`, "workflow.write"), "an owner here").toBe(true);
  });

  it("scopes narrow the answer as they narrow the guard", async () => {
    const k = await insertKey(fabric, org, fabric.principalId, { scopes: ["workflows:read"] });
    const actor = { key: k.key };
    expect(await check(actor, `workflow:${ours.orgWorkflowId}`, "workflow.read")).toBe(true);
    expect(await check(actor, `workflow:${ours.orgWorkflowId}`, "workflow.write")).toBe(false);
    expect(await check(actor, `run:${ours.runId}`, "run.read")).toBe(false);
  });

  it("refuses unknown actions and malformed resources; kinds with nothing stored answer false", async () => {
    await c().fails("AuthzService/Check", { resource: `organization:${org}`, action: "workflow.fly" }, owner, 400, "invalid_argument");
    await c().fails("AuthzService/Check", { resource: `organization:${org}`, action: "" }, owner, 400, "invalid_argument");
    await c().fails("AuthzService/Check", { resource: "organization:nope", action: "workflow.read" }, owner, 400, "invalid_argument");
    await c().fails("AuthzService/Check", { resource: `spaceship:${randomUUID()}`, action: "workflow.read" }, owner, 400, "invalid_argument");
    await c().fails("AuthzService/Check", { resource: "", action: "workflow.read" }, owner, 400, "invalid_argument");
    expect(await check(owner, `job:${randomUUID()}`, "job.read")).toBe(false);
    // Upper-case ids are the same resource.
    expect(await check(owner, `workflow:${ours.orgWorkflowId.toUpperCase()}`, "workflow.read")).toBe(true);
    await c().fails("AuthzService/Check", { resource: `organization:${org}`, action: "workflow.read" }, { key: "fab_nope" }, 401, "unauthenticated");
  });

  it("batch: one verdict per check, in order, each as Check answers it", async () => {
    const m = await member(fabric, org, "member");
    const checks = [
      { resource: `organization:${org}`, action: "workflow.write" },
      { resource: `organization:${org}`, action: "audit.read" },
      { resource: `workflow:${theirs.orgWorkflowId}`, action: "workflow.read" },
      { resource: `workflow:${randomUUID()}`, action: "workflow.read" },
      { resource: `api_key:${m.keyId}`, action: "api_key.revoke" },
      { resource: `workflow:${ours.teamWorkflowId}`, action: "workflow.read" },
      { resource: `organization:${org}`, action: "workflow.write" },
    ];
    const results = await c().ok("AuthzService/BatchCheck", { checks }, m.actor);
    expect(results).toEqual(checks.map((x, i) => ({ ...x, allowed: [true, false, false, false, true, true, true][i] })));
    for (const [i, x] of checks.entries()) expect(await check(m.actor, x.resource, x.action), `check ${i}`).toBe(results[i].allowed);

    const hundred = Array.from({ length: 100 }, (_, i) => ({ resource: i % 2 ? `run:${ours.runId}` : `run:${theirs.runId}`, action: "run.read" }));
    const many = await c().ok("AuthzService/BatchCheck", { checks: hundred }, owner);
    expect(many.map((r: any) => r.allowed)).toEqual(hundred.map((_, i) => i % 2 === 1));
  });

  it("batch: 1..100 checks, and a malformed one fails the whole batch", async () => {
    await c().fails("AuthzService/BatchCheck", { checks: [] }, owner, 400, "invalid_argument");
    const x = { resource: `organization:${org}`, action: "workflow.read" };
    await c().fails("AuthzService/BatchCheck", { checks: Array.from({ length: 101 }, () => x) }, owner, 400, "invalid_argument");
    await c().fails("AuthzService/BatchCheck", { checks: [x, { resource: `organization:${org}`, action: "nope.nope" }] }, owner, 400, "invalid_argument");
  });
});
