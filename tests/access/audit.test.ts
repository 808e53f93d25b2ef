/**
 * The audit log: each workflow and run mutation (over both transports) leaves exactly one
 * matching entry written in its transaction — and a call that changes nothing leaves none;
 * the query (filters, time window, keyset pagination, permissions, isolation) over both
 * transports; and the table refuses UPDATE, DELETE and TRUNCATE whatever the application
 * does.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../../src/db/database.js";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { client, transports, type Actor, type Client } from "../helpers/calls.js";
import { expectNoAudit, expectOneAudit, insertOrganization, member } from "../helpers/fixtures.js";

let fabric: TestFabric;
let org: string;
let owner: Actor;
let devKeyId: string;

beforeAll(async () => {
  fabric = await startTestFabric();
  org = fabric.organizationId;
  owner = { key: fabric.apiKey };
  const [k] = await query<{ id: string }>(fabric.database.db, sql`SELECT id FROM api_keys WHERE prefix = ${fabric.apiKey.split("_")[1]}`);
  devKeyId = k!.id;
});
afterAll(() => fabric?.close());

const rid = (what: string) => `${what}-${randomUUID()}`;

describe.each(transports)("each mutation leaves exactly one matching entry (%s)", (via) => {
  const c = (): Client => client(fabric, via);
  const waitFor = (id: string, status: string) =>
    eventually(async () => {
      const run = await c().ok("RunService/GetRun", { id }, owner);
      return run.status === status ? run : undefined;
    }, 10_000, `run ${id} ${status}`);

  it("workflows and runs: upsert, start, pause, resume, signal, cancel, rerun", async () => {
    const name = `audit-gate-${via}-${randomUUID().slice(0, 6)}`;
    const spec = { name, nodes: [{ key: "gate", operation: "workflow.wait_signal", config: { timeout_ms: 60_000 }, outputs: { approved: "$context.approved" } }] };

    const up = rid("upsert");
    const wf = await c().ok("WorkflowService/UpsertWorkflow", { spec }, owner, up);
    const entry = await expectOneAudit(fabric, up, { action: "workflow.upsert", resource: `workflow:${wf.id}`, organizationId: org });
    expect(entry).toMatchObject({ actor_principal_id: fabric.principalId, api_key_id: devKeyId, request_id: up });
    expect(entry.client_address).not.toBe("");
    expect(entry.summary).toMatchObject({ name, version: 1, team_id: null });
    const same = rid("upsert-same");
    await c().ok("WorkflowService/UpsertWorkflow", { spec }, owner, same);
    await expectNoAudit(fabric, same);
    const v2 = rid("upsert-v2");
    const wf2 = await c().ok("WorkflowService/UpsertWorkflow", { spec: { ...spec, description: "v2" } }, owner, v2);
    expect((await expectOneAudit(fabric, v2, { action: "workflow.upsert", resource: `workflow:${wf2.id}` })).summary).toMatchObject({ version: 2, previous_version: 1 });

    const idem = `idem-${randomUUID()}`;
    const st = rid("start");
    const run = await c().ok("RunService/StartRun", { workflow_id: wf.id, input: {}, idempotency_key: idem }, owner, st);
    expect((await expectOneAudit(fabric, st, { action: "run.start", resource: `run:${run.id}` })).summary).toMatchObject({ operation: "start", workflow_id: wf.id, idempotency_key: idem });
    const st2 = rid("start-again");
    expect((await c().ok("RunService/StartRun", { workflow_id: wf.id, input: {}, idempotency_key: idem }, owner, st2)).id).toBe(run.id);
    await expectNoAudit(fabric, st2);

    await waitFor(run.id, "waiting");
    const pause = rid("pause");
    await c().ok("RunService/PauseRun", { id: run.id }, owner, pause);
    expect((await expectOneAudit(fabric, pause, { action: "run.pause", resource: `run:${run.id}` })).summary).toMatchObject({ operation: "pause", previous_status: "waiting" });
    const pause2 = rid("pause-again");
    await c().ok("RunService/PauseRun", { id: run.id }, owner, pause2);
    await expectNoAudit(fabric, pause2);
    const resume = rid("resume");
    await c().ok("RunService/ResumeRun", { id: run.id }, owner, resume);
    expect((await expectOneAudit(fabric, resume, { action: "run.resume", resource: `run:${run.id}` })).summary).toMatchObject({ operation: "resume", status: "waiting" });
    const resume2 = await c().call("RunService/ResumeRun", { id: run.id }, owner, rid("resume-again"));
    expect(resume2).toMatchObject({ ok: false, status: 409, code: "run_not_paused" });
    await expectNoAudit(fabric, resume2.requestId);

    const signal = rid("signal");
    await c().ok("RunService/SignalRun", { id: run.id, payload: { approved: true } }, owner, signal);
    expect((await expectOneAudit(fabric, signal, { action: "run.signal", resource: `run:${run.id}` })).summary).toMatchObject({ operation: "signal", node_key: "gate" });
    await waitFor(run.id, "completed");
    const r = await c().call("RunService/SignalRun", { id: run.id, payload: {} }, owner, rid("signal-again"));
    expect(r).toMatchObject({ ok: false, status: 409 });
    await expectNoAudit(fabric, r.requestId);

    const other = await c().ok("RunService/StartRun", { workflow_id: wf.id, input: {} }, owner);
    const cancel = rid("cancel");
    await c().ok("RunService/CancelRun", { id: other.id, reason: "audit test" }, owner, cancel);
    expect((await expectOneAudit(fabric, cancel, { action: "run.cancel", resource: `run:${other.id}` })).summary).toMatchObject({ operation: "cancel", reason: "audit test" });
    const cancel2 = rid("cancel-again");
    await c().ok("RunService/CancelRun", { id: other.id }, owner, cancel2);
    await expectNoAudit(fabric, cancel2);

    const rerun = rid("rerun");
    const again = await c().ok("RunService/RerunRun", { id: other.id }, owner, rerun);
    expect(again.id).not.toBe(other.id);
    expect((await expectOneAudit(fabric, rerun, { action: "run.rerun", resource: `run:${again.id}` })).summary).toMatchObject({ operation: "rerun", rerun_of: other.id });
    await c().ok("RunService/CancelRun", { id: again.id }, owner);

    // Reads leave nothing.
    const read = rid("read");
    await c().ok("RunService/GetRun", { id: run.id }, owner, read);
    await c().ok("WorkflowService/ListWorkflows", {}, owner, read);
    await expectNoAudit(fabric, read);
  });
});

describe("querying the audit log", () => {
  let qorg: string;
  let alice: Awaited<ReturnType<typeof member>>;
  let bob: Awaited<ReturnType<typeof member>>;
  /** Audit entry ids of the fixture, oldest first, with their exact times (microseconds). */
  let made: { id: string; action: string; resource: string; actor: string; at: string }[] = [];

  beforeAll(async () => {
    qorg = await insertOrganization(fabric);
    alice = await member(fabric, qorg, "owner");
    bob = await member(fabric, qorg, "admin");
    const c = client(fabric, "rest");
    for (let i = 0; i < 7; i++) {
      const actor = i % 3 === 2 ? bob : alice;
      const k = await c.ok("ApiKeyService/CreateApiKey", { organization_id: qorg, name: `q${i}` }, actor.actor);
      if (i % 2 === 1) await c.ok("ApiKeyService/RevokeApiKey", { organization_id: qorg, id: k.api_key.id }, actor.actor);
    }
    const rows = await query<{ id: string; action: string; resource: string; actor: string; at: string }>(
      fabric.database.db,
      sql`SELECT id::text AS id, action, resource, actor_principal_id AS actor, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at
          FROM audit_log WHERE organization_id = ${qorg} ORDER BY id`,
    );
    made = rows;
    expect(made).toHaveLength(10);
  });

  describe.each(transports)("over %s", (via) => {
    const c = (): Client => client(fabric, via);
    const list = async (fields: Record<string, unknown>, actor: Actor = alice.actor) => {
      const r = await c().call("AuditService/ListAuditEntries", { organization_id: qorg, ...fields }, actor);
      expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
      return { entries: (r as any).data as any[], next: (r as any).json.next_page_token as string };
    };
    const ids = (entries: any[]) => entries.map((e) => String(e.id));
    const newestFirst = (rows: typeof made) => rows.map((r) => r.id).reverse();

    it("everything, newest first, with the entry's fields", async () => {
      const { entries, next } = await list({});
      expect(ids(entries)).toEqual(newestFirst(made));
      expect(next).toBe("");
      expect(entries[0]).toMatchObject({ organization_id: qorg, action: made.at(-1)!.action, resource: made.at(-1)!.resource, actor_principal_id: made.at(-1)!.actor });
      expect(entries[0].api_key_id).toBeTruthy();
      expect(entries[0].request_id).toBeTruthy();
      expect(entries[0].create_time).toBeTruthy();
      expect(entries[0].summary).toMatchObject({ name: expect.any(String), prefix: expect.any(String) });
    });

    it("filters by actor, action and resource, alone and together", async () => {
      expect(ids((await list({ actor_principal_id: bob.principalId })).entries)).toEqual(newestFirst(made.filter((m) => m.actor === bob.principalId)));
      expect(ids((await list({ action: "api_key.revoke" })).entries)).toEqual(newestFirst(made.filter((m) => m.action === "api_key.revoke")));
      const res = made.find((m) => m.action === "api_key.revoke")!.resource;
      expect(ids((await list({ resource: res })).entries)).toEqual(newestFirst(made.filter((m) => m.resource === res)));
      expect(ids((await list({ resource: res, action: "api_key.create", actor_principal_id: alice.principalId })).entries)).toEqual(
        newestFirst(made.filter((m) => m.resource === res && m.action === "api_key.create" && m.actor === alice.principalId)),
      );
      expect((await list({ action: "no.such" })).entries).toEqual([]);
      expect((await list({ actor_principal_id: randomUUID() })).entries).toEqual([]);
    });

    it("filters by time: since inclusive, until exclusive (RFC 3339, any offset)", async () => {
      const t3 = made[3]!.at;
      const t7 = made[7]!.at;
      expect(ids((await list({ since: t3 })).entries)).toEqual(newestFirst(made.filter((m) => m.at >= t3)));
      expect(ids((await list({ until: t3 })).entries)).toEqual(newestFirst(made.filter((m) => m.at < t3)));
      expect(ids((await list({ since: t3, until: t7 })).entries)).toEqual(newestFirst(made.filter((m) => m.at >= t3 && m.at < t7)));
      // The same instant written with another offset.
      const shifted = new Date(Date.parse(made[0]!.at) + 2 * 3600_000).toISOString().replace("Z", "+02:00");
      expect((await list({ since: shifted.replace(/\.\d+/, ".000") })).entries.length).toBeGreaterThan(0);
      expect((await list({ since: "2999-01-01T00:00:00Z" })).entries).toEqual([]);
    });

    it("refuses what is not RFC 3339, bad tokens and page sizes", async () => {
      for (const bad of ["yesterday", "2024-01-01", "2024-02-30T00:00:00Z", "2024-01-01T25:00:00Z", "2024-01-01T00:00:00", "1714000000"]) {
        await c().fails("AuditService/ListAuditEntries", { organization_id: qorg, since: bad }, alice.actor, 400, "invalid_argument");
        await c().fails("AuditService/ListAuditEntries", { organization_id: qorg, until: bad }, alice.actor, 400, "invalid_argument");
      }
      await c().fails("AuditService/ListAuditEntries", { organization_id: qorg, page_token: "garbage" }, alice.actor, 400, "invalid_argument");
      await c().fails("AuditService/ListAuditEntries", { organization_id: qorg, actor_principal_id: "someone" }, alice.actor, 400, "invalid_argument");
      if (via === "grpc") await c().fails("AuditService/ListAuditEntries", { organization_id: qorg, page_size: 201 }, alice.actor, 400, "invalid_argument");
      else await c().fails("AuditService/ListAuditEntries", { organization_id: qorg, page_size: 201 }, alice.actor, 400);
    });

    it("pages with an opaque token: every entry once, in order, filters kept", async () => {
      const seen: string[] = [];
      let token = "";
      let pages = 0;
      do {
        const { entries, next } = await list({ page_size: 3, ...(token ? { page_token: token } : {}) });
        expect(entries.length).toBeLessThanOrEqual(3);
        seen.push(...ids(entries));
        token = next;
        pages++;
      } while (token && pages < 10);
      expect(pages).toBe(4);
      expect(seen).toEqual(newestFirst(made));

      const creates: string[] = [];
      token = "";
      do {
        const { entries, next } = await list({ page_size: 2, action: "api_key.create", ...(token ? { page_token: token } : {}) });
        creates.push(...ids(entries));
        token = next;
      } while (token);
      expect(creates).toEqual(newestFirst(made.filter((m) => m.action === "api_key.create")));
      // Exactly one page's worth: no empty extra page.
      expect((await list({ page_size: 10 })).next).toBe("");
    });

    it("needs audit.read, and another organization sees nothing of it", async () => {
      const m = await member(fabric, qorg, "member");
      await c().fails("AuditService/ListAuditEntries", { organization_id: qorg }, m.actor, 403, "permission_denied");
      const k = await member(fabric, qorg, "owner", undefined, ["workflows:read"]);
      await c().fails("AuditService/ListAuditEntries", { organization_id: qorg }, k.actor, 403, "permission_denied");
      const scoped = await member(fabric, qorg, "admin", undefined, ["audit:read"]);
      expect((await list({}, scoped.actor)).entries.length).toBeGreaterThan(0);
      await c().fails("AuditService/ListAuditEntries", { organization_id: qorg }, owner, 404, "not_found");
      // Our organization's log holds none of theirs.
      const ours = await c().ok("AuditService/ListAuditEntries", { organization_id: org, page_size: 200 }, owner);
      expect(ours.every((e: any) => e.organization_id === org)).toBe(true);
      expect(ids(ours).some((id) => made.some((m) => m.id === id))).toBe(false);
    });
  });
});

describe("append-only at the database level", () => {
  it("UPDATE, DELETE and TRUNCATE of audit_log fail", async () => {
    const db = fabric.database.db;
    const count = async () => (await query<{ n: number }>(db, sql`SELECT count(*)::int AS n FROM audit_log`))[0]!.n;
    await client(fabric, "rest").ok("WorkflowService/UpsertWorkflow", { spec: { name: `ao-${randomUUID().slice(0, 6)}`, nodes: [{ key: "a", operation: "workflow.noop" }] } }, owner);
    const before = await count();
    expect(before).toBeGreaterThan(0);
    const [first] = await query<{ action: string }>(db, sql`SELECT action FROM audit_log ORDER BY id LIMIT 1`);
    await expect(db.execute(sql`UPDATE audit_log SET action = 'tampered'`)).rejects.toThrow();
    await expect(db.execute(sql`UPDATE audit_log SET summary = '{}'::jsonb WHERE id = (SELECT min(id) FROM audit_log)`)).rejects.toThrow();
    await expect(db.execute(sql`DELETE FROM audit_log`)).rejects.toThrow();
    await expect(db.execute(sql`DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)`)).rejects.toThrow();
    await expect(db.execute(sql`TRUNCATE audit_log`)).rejects.toThrow();
    expect(await count()).toBe(before);
    const [still] = await query<{ action: string }>(db, sql`SELECT action FROM audit_log ORDER BY id LIMIT 1`);
    expect(still!.action).toBe(first!.action);
    // Inserting still works (the log only grows).
    await client(fabric, "grpc").ok("WorkflowService/UpsertWorkflow", { spec: { name: `ao-${randomUUID().slice(0, 6)}`, nodes: [{ key: "a", operation: "workflow.noop" }] } }, owner);
    expect(await count()).toBe(before + 1);
  });
});
