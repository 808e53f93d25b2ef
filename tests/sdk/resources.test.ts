/**
 * The SDK's identity, tenancy, API-key, authz, audit and organization-event resources
 * against a real Fabric on loopback: a user signs up, logs in, creates an organization
 * and acts in it through a client holding its JWT and `organizationId`.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FabricClient, type FabricEvent, type FetchLike } from "../../src/sdk/index.js";
import { smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { rejection } from "./support.js";

let fabric: TestFabric;
let anon: FabricClient;
const password = "correct horse battery staple";

beforeAll(async () => {
  fabric = await startTestFabric();
  anon = new FabricClient({ baseUrl: fabric.restUrl, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
});

afterAll(async () => {
  await fabric?.close();
});

describe("identity and tenancy resources", () => {
  const email = `sdk-${randomUUID().slice(0, 8)}@example.test`;
  let user: FabricClient;
  let org: FabricClient;
  let organizationId: string;
  let teamId: string;

  it("signs up and logs in; the token authenticates `me`", async () => {
    const signed = await anon.auth.signUp({ email, password, display_name: "SDK User" });
    expect(signed.principal).toMatchObject({ email, kind: "user", display_name: "SDK User" });
    expect(signed.tokens.access_token).toBeTruthy();

    const logged = await anon.auth.login({ email, password });
    expect(logged.principal.id).toBe(signed.principal.id);
    user = anon.withAuth({ token: logged.tokens.access_token });
    expect((await user.me.get()).principal.id).toBe(signed.principal.id);
    expect(await user.me.organizations()).toEqual([]);

    const wrong = await rejection(anon.auth.login({ email, password: "nope nope nope" }));
    expect(wrong.code).toBe("unauthenticated");
    expect((await rejection(anon.me.get())).code).toBe("unauthenticated");

    // Refresh rotates within the session; logout ends it, its access tokens included.
    const tokens = await anon.auth.refresh(logged.tokens.refresh_token);
    expect(tokens.access_token).toBeTruthy();
    expect((await user.me.get()).principal.id).toBe(signed.principal.id);
    await user.auth.logout(tokens.refresh_token);
    expect((await rejection(user.me.get())).status).toBe(401);
    expect((await rejection(anon.auth.refresh(tokens.refresh_token))).status).toBe(401);
    // A new session for the tests below.
    user = anon.withAuth({ token: (await anon.auth.login({ email, password })).tokens.access_token });
  });

  it("creates an organization with the user token, then acts in it with token + organizationId", async () => {
    const slug = `sdk-${randomUUID().slice(0, 8)}`;
    const created = await user.organizations.create({ slug, name: "SDK Org" });
    expect(created).toMatchObject({ slug, name: "SDK Org", archived: false });
    organizationId = created.id;
    expect((await user.me.organizations()).map((o) => [o.id, o.role])).toEqual([[organizationId, "owner"]]);

    const { tokens } = await anon.auth.login({ email, password });
    org = new FabricClient({ baseUrl: fabric.restUrl, token: tokens.access_token, organizationId, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
    expect(org.organizationId).toBe(organizationId);
    expect((await org.me.get()).organization_id).toBe(organizationId);
    expect((await org.organizations.update(organizationId, { name: "SDK Org 2" })).name).toBe("SDK Org 2");
    expect((await org.organizations.get(organizationId)).name).toBe("SDK Org 2");
    // Organization-scoped calls use X-Organization-Id.
    const wf = await org.workflows.upsert({ ...smokeWorkflow, name: "sdk-jwt" });
    expect(wf.organization_id).toBe(organizationId);
    expect((await org.me.permissions()).role).toBe("owner");
  });

  it("teams and members", async () => {
    const team = await org.teams.create(organizationId, { slug: "platform", name: "Platform" });
    teamId = team.id;
    expect(team).toMatchObject({ organization_id: organizationId, slug: "platform" });
    expect((await org.teams.get(organizationId, team.id)).name).toBe("Platform");
    expect((await org.teams.update(organizationId, team.id, { name: "Platform Eng" })).name).toBe("Platform Eng");
    expect((await org.teams.list(organizationId)).map((t) => t.id)).toContain(team.id);

    const members = await org.members.list(organizationId);
    expect(members.some((m) => m.principal?.email === email && m.role === "owner")).toBe(true);

    const sa = await org.members.createServiceAccount(organizationId, { display_name: "ci bot", role: "member" });
    expect(sa.principal?.kind).toBe("service_account");
    const inTeam = await org.members.add(organizationId, { principal_id: sa.principal!.id, team_id: team.id, role: "member" });
    expect((await org.members.list(organizationId, { team_id: team.id })).map((m) => m.id)).toContain(inTeam.id);
    expect((await org.members.update(organizationId, inTeam.id, { role: "maintainer" })).role).toBe("maintainer");
    await org.members.remove(organizationId, inTeam.id);
    expect((await org.members.list(organizationId, { team_id: team.id })).map((m) => m.id)).not.toContain(inTeam.id);

    const other = await org.teams.create(organizationId, { slug: "doomed", name: "Doomed" });
    await org.teams.delete(organizationId, other.id);
    expect((await rejection(org.teams.get(organizationId, other.id))).code).toBe("not_found");
  });

  it("invitations: create, list, revoke", async () => {
    const inv = await org.invitations.create(organizationId, { email: `invitee-${randomUUID().slice(0, 8)}@example.test`, role: "member" });
    expect(inv.token).toBeTruthy();
    expect(inv.invitation.status).toBe("pending");
    expect((await org.invitations.list(organizationId)).map((i) => i.id)).toContain(inv.invitation.id);
    expect((await org.invitations.revoke(organizationId, inv.invitation.id)).status).toBe("revoked");
    expect((await rejection(user.invitations.accept(inv.token))).status).toBeGreaterThanOrEqual(400);
  });

  it("API keys: create, use, rotate, revoke; a revoked key fails with unauthenticated", async () => {
    const created = await org.apiKeys.create(organizationId, { name: "sdk key" });
    expect(created.key).toMatch(/^fab_/);
    expect(created.api_key).toMatchObject({ organization_id: organizationId, name: "sdk key" });
    const viaKey = new FabricClient({ baseUrl: fabric.restUrl, apiKey: created.key });
    expect((await viaKey.me.get()).api_key_id).toBe(created.api_key.id);
    expect((await org.apiKeys.list(organizationId)).map((k) => k.id)).toContain(created.api_key.id);

    const rotated = await org.apiKeys.rotate(organizationId, created.api_key.id);
    expect(rotated.key).not.toBe(created.key);
    expect((await rejection(viaKey.me.get())).code).toBe("unauthenticated");
    const viaRotated = viaKey.withAuth({ apiKey: rotated.key });
    expect((await viaRotated.workflows.list()).data.map((w) => w.name)).toContain("sdk-jwt");

    const revoked = await org.apiKeys.revoke(organizationId, created.api_key.id);
    expect(revoked.revoke_time).toBeTruthy();
    const err = await rejection(viaRotated.workflows.list());
    expect(err.code).toBe("unauthenticated");
    expect(err.status).toBe(401);
  });

  it("authz.check and batchCheck", async () => {
    expect(await org.authz.check({ resource: `organization:${organizationId}`, action: "workflow.write" })).toEqual({ resource: `organization:${organizationId}`, action: "workflow.write", allowed: true });
    const results = await org.authz.batchCheck([
      { resource: `team:${teamId}`, action: "team.delete" },
      { resource: `organization:${organizationId}`, action: "workflow.read" },
    ]);
    expect(results.map((r) => r.allowed)).toEqual([true, true]);
    expect((await rejection(org.authz.check({ resource: "nonsense", action: "workflow.read" }))).code).toBe("invalid_argument");
  });

  it("audit.list finds the team.create entry; listAll walks the pages", async () => {
    const page = await org.audit.list(organizationId, { action: "team.create" });
    const entry = page.data.find((e) => e.resource === `team:${teamId}`);
    expect(entry).toMatchObject({ action: "team.create", organization_id: organizationId });
    expect(entry?.summary).toMatchObject({ slug: "platform" });

    const all: string[] = [];
    for await (const e of org.audit.listAll(organizationId, { page_size: 2 })) all.push(e.action);
    expect(all).toContain("team.create");
    expect(all).toContain("api_key.revoke");
    expect(all.length).toBeGreaterThan(2);
  });
});

describe("events.stream", () => {
  it("yields a started run's events, and stops when the signal aborts", async () => {
    const client = new FabricClient({ baseUrl: fabric.restUrl, apiKey: fabric.apiKey, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
    const wf = await client.workflows.upsert({ ...smokeWorkflow, name: `sdk-stream-${randomUUID().slice(0, 8)}` });
    const run = await client.runs.start({ workflow_id: wf.id, input: { topic: "stream me" } });
    const ac = new AbortController();
    const seen: FabricEvent[] = [];
    // afterId with a run filter: the run's history first (replayed), then live, whatever
    // the timing. (Ids start at 1 and the upsert above recorded an event: the run's are later.)
    for await (const ev of client.events.stream({ runId: run.id, afterId: 1, signal: ac.signal })) {
      seen.push(ev);
      // The stream never ends by itself: stop it a little after the terminal event.
      if (ev.kind === "workflow.run.completed") setTimeout(() => ac.abort(), 50);
    }
    expect(seen.every((e) => e.run_id === run.id)).toBe(true);
    expect(seen.map((e) => e.kind)).toContain("workflow.node.completed");
    expect(seen.at(-1)?.kind).toBe("workflow.run.completed");
    const ids = seen.map((e) => BigInt(e.id));
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
  });

  it("filters by kind, live, and ends at once on an already-aborted signal", async () => {
    const client = new FabricClient({ baseUrl: fabric.restUrl, apiKey: fabric.apiKey });
    const wf = await client.workflows.upsert({ ...smokeWorkflow, name: `sdk-kinds-${randomUUID().slice(0, 8)}` });
    const ac = new AbortController();
    const it = client.events.stream({ kinds: ["workflow.run.*"], signal: ac.signal })[Symbol.asyncIterator]();
    const first = it.next(); // connects
    await new Promise((r) => setTimeout(r, 200));
    const run = await client.runs.start({ workflow_id: wf.id, input: { topic: "kinds" } });
    const kinds: string[] = [];
    let r = await first;
    while (!r.done) {
      expect(r.value.kind.startsWith("workflow.run.")).toBe(true);
      if (r.value.run_id === run.id) kinds.push(r.value.kind);
      if (r.value.kind === "workflow.run.completed" && r.value.run_id === run.id) break;
      r = await it.next();
    }
    expect(kinds).toContain("workflow.run.completed");
    // Aborting while waiting for the next event ends the iterator normally.
    const pending = it.next();
    ac.abort();
    expect((await pending).done).toBe(true);

    const aborted = AbortSignal.abort();
    const none: FabricEvent[] = [];
    for await (const ev of client.events.stream({ signal: aborted })) none.push(ev);
    expect(none).toEqual([]);
  });

  it("reconnects a dropped stream with Last-Event-ID: no gap, no duplicate", async () => {
    const lastEventIds: (string | null)[] = [];
    const fetchImpl: FetchLike = async (input, init) => {
      const res = await fetch(input, init);
      if (!String(input).includes("/v1/events/stream") || !res.body) return res;
      lastEventIds.push(new Headers(init.headers).get("last-event-id"));
      if (lastEventIds.length > 1) return res;
      // Cut the first connection after two complete messages, as a reset does.
      const reader = res.body.getReader();
      let text = "";
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const chunk = await reader.read();
          if (chunk.done) return controller.close();
          text += new TextDecoder().decode(chunk.value);
          const parts = text.split("\n\n");
          if (parts.length > 2) {
            controller.enqueue(new TextEncoder().encode(parts.slice(0, 2).join("\n\n") + "\n\n"));
            controller.error(new TypeError("terminated: connection reset by test"));
            await reader.cancel().catch(() => {});
          }
        },
        cancel: (reason) => reader.cancel(reason),
      });
      return new Response(body, { status: res.status, headers: res.headers });
    };
    const client = new FabricClient({ baseUrl: fabric.restUrl, apiKey: fabric.apiKey, fetch: fetchImpl, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
    const wf = await client.workflows.upsert({ ...smokeWorkflow, name: `sdk-drop-${randomUUID().slice(0, 8)}` });
    const run = await client.runs.start({ workflow_id: wf.id, input: { topic: "drop" } });
    await client.runs.wait(run.id, { timeoutMs: 15_000 });
    const ac = new AbortController();
    const seen: FabricEvent[] = [];
    for await (const ev of client.events.stream({ runId: run.id, afterId: 1, signal: ac.signal })) {
      seen.push(ev);
      if (ev.kind === "workflow.run.completed") ac.abort();
    }
    expect(lastEventIds[0]).toBe("1");
    expect(lastEventIds[1]).toBe(String(seen[1]!.id));
    const ids = seen.map((e) => String(e.id));
    expect(new Set(ids).size).toBe(ids.length);
    expect(seen.at(-1)?.kind).toBe("workflow.run.completed");
  });

  it("a bad filter is a FabricError at once", async () => {
    const client = new FabricClient({ baseUrl: fabric.restUrl, apiKey: fabric.apiKey });
    const err = await rejection(client.events.stream({ runId: "not-a-uuid" }).next());
    expect(err.status).toBeGreaterThanOrEqual(400);
    expect(err.status).toBeLessThan(500);
  });
});
