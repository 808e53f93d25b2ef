/**
 * API keys over both transports: the lifecycle (create → use → rotate → revoke, each
 * taking effect on the very next request), expiry, scopes that only narrow, who sees and
 * manages whose keys, no way to mint a key stronger than oneself, isolation between
 * organizations, and the events and audit entries each change leaves (never a secret).
 */
import { randomUUID } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../../src/db/database.js";
import { apiKeys } from "../../src/db/schema.js";
import { hashSecret, parseApiKey } from "../../src/services/identity/authenticator.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { client, transports, type Actor, type Client } from "../helpers/calls.js";
import { auditFor, expectNoAudit, expectOneAudit, insertKey, insertUser, member } from "../helpers/fixtures.js";

let fabric: TestFabric;
let org: string;
let owner: Actor;

beforeAll(async () => {
  fabric = await startTestFabric({ worker: false });
  org = fabric.organizationId;
  owner = { key: fabric.apiKey };
});
afterAll(() => fabric?.close());

/** The status a call with `key` gets: ListWorkflows (read) or UpsertWorkflow (write), over the client's transport. */
async function use(c: Client, key: string, write = false): Promise<number> {
  const r = write
    ? await c.call("WorkflowService/UpsertWorkflow", { spec: { name: `k-${randomUUID().slice(0, 8)}`, nodes: [{ key: "a", operation: "workflow.noop" }] } }, { key })
    : await c.call("WorkflowService/ListWorkflows", {}, { key });
  return r.status === 201 || r.status === 202 ? 200 : r.status;
}

const keyIds = async (c: Client, actor: Actor): Promise<string[]> => (await c.ok("ApiKeyService/ListApiKeys", { organization_id: org }, actor)).map((k: any) => k.id);

async function events(kind: string, keyId: string) {
  return query<{ payload: Record<string, any> }>(fabric.database.db, sql`SELECT payload FROM events WHERE organization_id = ${org} AND kind = ${kind} AND payload->>'api_key_id' = ${keyId}`);
}

describe.each(transports)("over %s", (via) => {
  const c = () => client(fabric, via);

  it("create → use → rotate (old key dies at once) → revoke (idempotent)", async () => {
    const createId = `create-${randomUUID()}`;
    const created = await c().ok("ApiKeyService/CreateApiKey", { organization_id: org, name: `ci ${via}`, scopes: ["workflows:read", "workflows:read"] }, owner, createId);
    const raw: string = created.key;
    const id: string = created.api_key.id;
    const parsed = parseApiKey(raw)!;
    expect(parsed, raw).not.toBeNull();
    expect(created.api_key).toMatchObject({ organization_id: org, principal_id: fabric.principalId, name: `ci ${via}`, prefix: parsed.prefix, scopes: ["workflows:read"] });
    expect(created.api_key.create_time).toBeTruthy();
    if (via === "rest") {
      const r = await c().call("ApiKeyService/CreateApiKey", { organization_id: org, name: "status" }, owner);
      expect(r.status, "REST answers a new key with 201").toBe(201);
    }

    // Only the hash is stored; nothing answers the secret again.
    const [row] = await fabric.database.db.select().from(apiKeys).where(eq(apiKeys.id, id));
    expect(row!.secretHash).toBe(hashSecret(parsed.secret));
    expect(JSON.stringify(row)).not.toContain(parsed.secret);
    const listed = await c().ok("ApiKeyService/ListApiKeys", { organization_id: org }, owner);
    expect(listed.map((k: any) => k.id)).toContain(id);
    expect(JSON.stringify(listed)).not.toContain(parsed.secret);
    expect(JSON.stringify(listed)).not.toContain(row!.secretHash);

    expect(await use(c(), raw)).toBe(200);

    const rotateId = `rotate-${randomUUID()}`;
    const rotated = await c().ok("ApiKeyService/RotateApiKey", { organization_id: org, id }, owner, rotateId);
    expect(rotated.api_key.id).toBe(id);
    expect(rotated.api_key.prefix).not.toBe(parsed.prefix);
    expect(rotated.key).not.toBe(raw);
    expect(parseApiKey(rotated.key)!.prefix).toBe(rotated.api_key.prefix);
    expect(await use(c(), raw), "the old key on the very next request").toBe(401);
    expect(await use(c(), rotated.key)).toBe(200);

    const revokeId = `revoke-${randomUUID()}`;
    const revoked = await c().ok("ApiKeyService/RevokeApiKey", { organization_id: org, id }, owner, revokeId);
    expect(revoked.revoke_time).toBeTruthy();
    expect(await use(c(), rotated.key), "the revoked key on the very next request").toBe(401);
    const again = await c().ok("ApiKeyService/RevokeApiKey", { organization_id: org, id }, owner, `revoke-again-${randomUUID()}`);
    expect(again.revoke_time).toBe(revoked.revoke_time);
    await c().fails("ApiKeyService/RotateApiKey", { organization_id: org, id }, owner, 409, "api_key_revoked");

    // One audit entry per change (none for the no-op revoke), never a secret or hash.
    const secrets = [parsed.secret, parseApiKey(rotated.key)!.secret, row!.secretHash, hashSecret(parseApiKey(rotated.key)!.secret)];
    for (const [rid, action] of [
      [createId, "api_key.create"],
      [rotateId, "api_key.rotate"],
      [revokeId, "api_key.revoke"],
    ] as const) {
      const entry = await expectOneAudit(fabric, rid, { action, resource: `api_key:${id}`, organizationId: org });
      expect(entry.actor_principal_id).toBe(fabric.principalId);
      expect(entry.api_key_id).toBeTruthy();
      expect(entry.summary).toMatchObject({ name: `ci ${via}`, scopes: ["workflows:read"] });
      for (const s of secrets) expect(JSON.stringify(entry.summary)).not.toContain(s);
    }
    expect((await auditFor(fabric, rotateId))[0]!.summary).toMatchObject({ prefix: rotated.api_key.prefix, previous_prefix: parsed.prefix });
    for (const kind of ["api_key.created", "api_key.rotated", "api_key.revoked"]) {
      const evs = await events(kind, id);
      expect(evs, kind).toHaveLength(1);
      for (const s of secrets) expect(JSON.stringify(evs[0]!.payload)).not.toContain(s);
    }
  });

  it("an expired key is refused; expire_time must lie in the future", async () => {
    const expired = await insertKey(fabric, org, fabric.principalId, { expiresAt: new Date(Date.now() - 1000) });
    expect(await use(c(), expired.key)).toBe(401);
    await c().fails("ApiKeyService/CreateApiKey", { organization_id: org, name: "past", expire_time: new Date(Date.now() - 60_000).toISOString() }, owner, 400, "invalid_argument");

    const soon = await c().ok("ApiKeyService/CreateApiKey", { organization_id: org, name: "soon", expire_time: new Date(Date.now() + 1500).toISOString() }, owner);
    expect(soon.api_key.expire_time).toBeTruthy();
    expect(await use(c(), soon.key)).toBe(200);
    await new Promise((r) => setTimeout(r, 1600));
    expect(await use(c(), soon.key), "past its expiry").toBe(401);
    await c().fails("ApiKeyService/RotateApiKey", { organization_id: org, id: soon.api_key.id }, owner, 409, "api_key_expired");
  });

  it("validates name and scopes", async () => {
    await c().fails("ApiKeyService/CreateApiKey", { organization_id: org, name: "" }, owner, 400, "invalid_argument");
    await c().fails("ApiKeyService/CreateApiKey", { organization_id: org, name: "   " }, owner, 400, "invalid_argument");
    await c().fails("ApiKeyService/CreateApiKey", { organization_id: org, name: "x".repeat(101) }, owner, 400, "invalid_argument");
    await c().ok("ApiKeyService/CreateApiKey", { organization_id: org, name: "x".repeat(100) }, owner);
    await c().fails("ApiKeyService/CreateApiKey", { organization_id: org, name: "bad scope", scopes: ["workflows:read", "workflows:fly"] }, owner, 400, "invalid_argument");
  });

  it("scopes narrow: a workflows:read key may list workflows but not write them", async () => {
    const created = await c().ok("ApiKeyService/CreateApiKey", { organization_id: org, name: "reader", scopes: ["workflows:read"] }, owner);
    expect(await use(c(), created.key)).toBe(200);
    expect(await use(c(), created.key, true)).toBe(403);
    await c().fails("RunService/ListRuns", {}, { key: created.key }, 403, "permission_denied");
    const writer = await c().ok("ApiKeyService/CreateApiKey", { organization_id: org, name: "writer", scopes: ["workflows:write"] }, owner);
    expect(await use(c(), writer.key, true)).toBe(200);
  });

  it("a key never exceeds its principal's role, whatever its scopes", async () => {
    const m = await member(fabric, org, "member");
    const own = await c().ok("ApiKeyService/CreateApiKey", { organization_id: org, name: "all I can", scopes: ["admin"] }, m.actor);
    expect(own.api_key.principal_id).toBe(m.principalId);
    expect(await use(c(), own.key, true)).toBe(200); // members write workflows
    await c().fails("AuditService/ListAuditEntries", { organization_id: org }, { key: own.key }, 403, "permission_denied");
    await c().fails("TenancyService/CreateTeam", { organization_id: org, slug: `t-${randomUUID().slice(0, 6)}`, name: "T" }, { key: own.key }, 403, "permission_denied");
    expect(await keyIds(c(), { key: own.key })).toEqual(expect.arrayContaining([own.api_key.id, m.keyId]));
    expect((await keyIds(c(), { key: own.key })).every((id) => [own.api_key.id, m.keyId].includes(id))).toBe(true);

    // A viewer's key scoped to audit:read still cannot read the audit log.
    const v = await member(fabric, org, "viewer", undefined, ["audit:read"]);
    await c().fails("AuditService/ListAuditEntries", { organization_id: org }, v.actor, 403, "permission_denied");
  });

  it("keys for other principals: admins and owners only, members of the organization only, never for someone who outranks the caller", async () => {
    const m = await member(fabric, org, "member");
    const other = await member(fabric, org, "member");
    const admin = await member(fabric, org, "admin");

    await c().fails("ApiKeyService/CreateApiKey", { organization_id: org, name: "for you", principal_id: other.principalId }, m.actor, 403, "permission_denied");
    const forMember = await c().ok("ApiKeyService/CreateApiKey", { organization_id: org, name: "for member", principal_id: m.principalId }, admin.actor);
    expect(forMember.api_key.principal_id).toBe(m.principalId);
    // It acts as the member, not as the admin who made it.
    await c().fails("AuditService/ListAuditEntries", { organization_id: org }, { key: forMember.key }, 403, "permission_denied");
    // Handing oneself an owner's key is an escalation: refused to admins, allowed to owners.
    await c().fails("ApiKeyService/CreateApiKey", { organization_id: org, name: "owner's", principal_id: fabric.principalId }, admin.actor, 403, "permission_denied");
    const ownerKeyByOwner = await c().ok("ApiKeyService/CreateApiKey", { organization_id: org, name: "admin's", principal_id: admin.principalId }, owner);
    expect(ownerKeyByOwner.api_key.principal_id).toBe(admin.principalId);
    await c().fails("ApiKeyService/RotateApiKey", { organization_id: org, id: (await insertKey(fabric, org, fabric.principalId)).id }, admin.actor, 403, "permission_denied");

    // Not a member here (or no such principal): not found, alike.
    const outsider = (await insertUser(fabric)).principalId;
    const a = await c().fails("ApiKeyService/CreateApiKey", { organization_id: org, name: "x", principal_id: outsider }, owner, 404, "not_found");
    const b = await c().fails("ApiKeyService/CreateApiKey", { organization_id: org, name: "x", principal_id: randomUUID() }, owner, 404, "not_found");
    expect(a.detail.replace(outsider, "")).toBe(b.detail.replace(/"[^"]+"/, `""`));
    await c().fails("ApiKeyService/CreateApiKey", { organization_id: org, name: "x", principal_id: "nope" }, owner, 404, "not_found");
  });

  it("a scoped key cannot mint or rotate a key its scopes do not cover", async () => {
    const keyAdmin = await insertKey(fabric, org, fabric.principalId, { scopes: ["api_keys:write"] });
    const actor = { key: keyAdmin.key };
    await c().fails("ApiKeyService/CreateApiKey", { organization_id: org, name: "everything" }, actor, 403, "permission_denied");
    await c().fails("ApiKeyService/CreateApiKey", { organization_id: org, name: "wider", scopes: ["workflows:read"] }, actor, 403, "permission_denied");
    const narrower = await c().ok("ApiKeyService/CreateApiKey", { organization_id: org, name: "narrower", scopes: ["api_keys:read"] }, actor);
    expect(narrower.api_key.scopes).toEqual(["api_keys:read"]);
    const unscoped = await insertKey(fabric, org, fabric.principalId);
    await c().fails("ApiKeyService/RotateApiKey", { organization_id: org, id: unscoped.id }, actor, 403, "permission_denied");
    await c().ok("ApiKeyService/RotateApiKey", { organization_id: org, id: narrower.api_key.id }, actor);
    // Revoking takes power away: allowed.
    await c().ok("ApiKeyService/RevokeApiKey", { organization_id: org, id: unscoped.id }, actor);
  });

  it("members see and manage only their own keys; admins see everyone's", async () => {
    const a = await member(fabric, org, "member");
    const b = await member(fabric, org, "member");
    const viewer = await member(fabric, org, "viewer");

    expect(await keyIds(c(), a.actor)).toEqual([a.keyId]);
    expect(await keyIds(c(), viewer.actor)).toEqual([viewer.keyId]);
    const all = await keyIds(c(), owner);
    expect(all).toEqual(expect.arrayContaining([a.keyId, b.keyId, viewer.keyId]));

    // Another member's key is as absent as a missing one.
    const hidden = await c().fails("ApiKeyService/RotateApiKey", { organization_id: org, id: b.keyId }, a.actor, 404, "not_found");
    const missing = await c().fails("ApiKeyService/RotateApiKey", { organization_id: org, id: randomUUID() }, a.actor, 404, "not_found");
    expect(hidden.detail.replace(b.keyId, "")).toBe(missing.detail.replace(/"[^"]+"/, `""`));
    await c().fails("ApiKeyService/RevokeApiKey", { organization_id: org, id: b.keyId }, a.actor, 404, "not_found");
    await c().fails("ApiKeyService/RotateApiKey", { organization_id: org, id: a.keyId }, viewer.actor, 403, "permission_denied");
    await c().fails("ApiKeyService/RotateApiKey", { organization_id: org, id: viewer.keyId }, viewer.actor, 403, "permission_denied");

    const rotated = await c().ok("ApiKeyService/RotateApiKey", { organization_id: org, id: a.keyId }, a.actor);
    expect(await use(c(), a.key)).toBe(401);
    await c().ok("ApiKeyService/RevokeApiKey", { organization_id: org, id: b.keyId }, owner);
    expect(await use(c(), b.key)).toBe(401);
    // A key may revoke itself; the next request is refused.
    await c().ok("ApiKeyService/RevokeApiKey", { organization_id: org, id: a.keyId }, { key: rotated.key });
    expect(await use(c(), rotated.key)).toBe(401);
  });

  it("another organization's keys do not exist here, and ours not there", async () => {
    const other = await fabric.otherOrg();
    const [theirs] = await fabric.database.db.select().from(apiKeys).where(eq(apiKeys.organizationId, other.organizationId));
    const a = await c().fails("ApiKeyService/RotateApiKey", { organization_id: org, id: theirs!.id }, owner, 404, "not_found");
    const b = await c().fails("ApiKeyService/RotateApiKey", { organization_id: org, id: randomUUID() }, owner, 404, "not_found");
    expect(a.detail.replace(theirs!.id, "")).toBe(b.detail.replace(/"[^"]+"/, `""`));
    await c().fails("ApiKeyService/RevokeApiKey", { organization_id: org, id: theirs!.id }, owner, 404, "not_found");
    await c().fails("ApiKeyService/ListApiKeys", { organization_id: org }, { key: other.apiKey }, 404, "not_found");
    await c().fails("ApiKeyService/CreateApiKey", { organization_id: org, name: "in" }, { key: other.apiKey }, 404, "not_found");
    expect(await keyIds(c(), owner)).not.toContain(theirs!.id);
    // Our owner cannot make a key for their principal in our organization either.
    await c().fails("ApiKeyService/CreateApiKey", { organization_id: org, name: "x", principal_id: theirs!.principalId }, owner, 404, "not_found");
    expect(await use(c(), other.apiKey)).toBe(200);
  });

  it("a revoke of a revoked key changes nothing and leaves no audit entry", async () => {
    const k = await insertKey(fabric, org, fabric.principalId, { revoked: true });
    const rid = `noop-${randomUUID()}`;
    await c().ok("ApiKeyService/RevokeApiKey", { organization_id: org, id: k.id }, owner, rid);
    await expectNoAudit(fabric, rid);
  });
});
