/**
 * Optimistic updates with entity tags (issue 15, item 6; domain/etags.ts) on both
 * transports: reads of workflows, webhooks, policies and budgets carry an `etag` (REST: also
 * the `ETag` header); an update or delete naming a stale one (REST `If-Match`, gRPC the
 * request's `etag`) is refused — REST 412, gRPC ABORTED, code `precondition_failed` — and
 * changes nothing; the current one, `*`, or none applies it, and the tag changes on every
 * update. Concurrent writers holding the same tag: exactly one wins, because the tag is
 * checked in the statement (or under the lock) that makes the change.
 */
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { client, transports, type Failed, type Via } from "../helpers/calls.js";
import { smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { insertTeam } from "../helpers/fixtures.js";

let fabric: TestFabric;
beforeAll(async () => {
  fabric = await startTestFabric({ worker: false, webhooksAllowPrivate: true });
});
afterAll(async () => fabric?.close());

const me = () => ({ key: fabric.apiKey });
const org = () => fabric.organizationId;

/** What a write answered: the new etag (from the body, and on REST the ETag header) or the failure. */
type Written = { ok: true; etag: string; header: string | null; data: any } | Failed;

/**
 * One resource with an update operation: how to make one, read its etag, and write it with
 * an optional etag (REST: If-Match header; gRPC: the request's `etag` field).
 */
interface Resource {
  name: string;
  /** Makes a fresh instance; returns what identifies it to read/write. */
  make(): Promise<string>;
  read(via: Via, id: string): Promise<{ etag: string; header: string | null; data: any }>;
  write(via: Via, id: string, etag: string | undefined, n: number): Promise<Written>;
  /** The value a write `n` leaves (to check a refused write changed nothing). */
  value(data: any): unknown;
}

async function rest(method: string, path: string, body: unknown, ifMatch?: string): Promise<Response> {
  return fabric.rest(path, { method, json: body, headers: ifMatch === undefined ? {} : { "if-match": ifMatch } });
}

async function restWritten(res: Response): Promise<Written> {
  const json: any = await res.json();
  if (res.status >= 300) return { ok: false, status: res.status, code: json.code, detail: json.detail, requestId: json.request_id, issues: json.issues ?? [], retryAfter: null };
  return { ok: true, etag: json.data.etag, header: res.headers.get("etag"), data: json.data };
}

async function grpcWritten(rpc: string, fields: Record<string, unknown>): Promise<Written> {
  const r = await client(fabric, "grpc").call(rpc, fields, me());
  return r.ok ? { ok: true, etag: r.data.etag, header: null, data: r.data } : r;
}

const quoted = (etag: string | undefined) => (etag === undefined ? undefined : etag === "*" ? "*" : `"${etag}"`);

const resources: Resource[] = [
  {
    name: "workflow (upsert by name; the etag names the latest version)",
    async make() {
      const name = `etag-${randomUUID().slice(0, 8)}`;
      await client(fabric, "rest").ok("WorkflowService/UpsertWorkflow", { spec: { ...smokeWorkflow, name } }, me());
      return name;
    },
    async read(via, name) {
      const list = await client(fabric, via).ok("WorkflowService/ListWorkflows", { name }, me());
      const latest = list[0];
      if (via === "grpc") return { etag: latest.etag, header: null, data: latest };
      const res = await fabric.rest(`/v1/workflows/${latest.id}`);
      const json: any = await res.json();
      return { etag: json.data.etag, header: res.headers.get("etag"), data: json.data };
    },
    write(via, name, etag, n) {
      const spec = { ...smokeWorkflow, name, description: `write ${n}` };
      return via === "rest" ? rest("POST", "/v1/workflows", spec, quoted(etag)).then(restWritten) : grpcWritten("WorkflowService/UpsertWorkflow", { spec, ...(etag === undefined ? {} : { etag }) });
    },
    value: (data) => data.spec.description,
  },
  {
    name: "webhook",
    async make() {
      const made = await client(fabric, "rest").ok("WebhookService/CreateWebhook", { organization_id: org(), url: "http://127.0.0.1:9/hook" }, me());
      return made.webhook.id;
    },
    async read(via, id) {
      const list = await client(fabric, via).ok("WebhookService/ListWebhooks", { organization_id: org() }, me());
      const hook = list.find((w: any) => w.id === id);
      return { etag: hook.etag, header: null, data: hook };
    },
    write(via, id, etag, n) {
      const body = { description: `write ${n}` };
      return via === "rest"
        ? rest("PATCH", `/v1/organizations/${org()}/webhooks/${id}`, body, quoted(etag)).then(restWritten)
        : grpcWritten("WebhookService/UpdateWebhook", { organization_id: org(), id, ...body, ...(etag === undefined ? {} : { etag }) });
    },
    value: (data) => data.description,
  },
  ...(["policy", "budget"] as const).map(
    (part): Resource => ({
      name: `${part} (of a team)`,
      make: () => insertTeam(fabric, org()),
      async read(via, teamId) {
        if (via === "grpc") {
          const data = await client(fabric, "grpc").ok(part === "policy" ? "PolicyService/GetPolicy" : "PolicyService/GetBudget", { organization_id: org(), team_id: teamId }, me());
          return { etag: data.etag, header: null, data };
        }
        const res = await fabric.rest(`/v1/organizations/${org()}/${part}?team_id=${teamId}`);
        const json: any = await res.json();
        return { etag: json.data.etag, header: res.headers.get("etag"), data: json.data };
      },
      write(via, teamId, etag, n) {
        const body = part === "policy" ? { team_id: teamId, allowed_models: [`model-${n}`] } : { team_id: teamId, daily_limit_usd: `${n}.5` };
        return via === "rest"
          ? rest("PUT", `/v1/organizations/${org()}/${part}`, body, quoted(etag)).then(restWritten)
          : grpcWritten(part === "policy" ? "PolicyService/SetPolicy" : "PolicyService/SetBudget", { organization_id: org(), ...body, ...(etag === undefined ? {} : { etag }) });
      },
      value: (data) => (part === "policy" ? data.allowed_models : data.daily_limit_usd),
    }),
  ),
];

function expectStale(w: Written, via: Via) {
  expect(w.ok, JSON.stringify(w)).toBe(false);
  const f = w as Failed;
  expect(f.code).toBe("precondition_failed");
  if (via === "rest") expect(f.status).toBe(412);
  else expect(f.grpcCode).toBe(Code.Aborted);
}

describe.each(resources)("$name", (r) => {
  describe.each(transports)("over %s", (via) => {
    it("a read carries the etag (REST: also the ETag header); each update changes it; a stale one is refused and changes nothing", async () => {
      const id = await r.make();
      const first = await r.read(via, id);
      expect(first.etag).toMatch(/^[a-z]+-\d+$/);
      if (via === "rest" && first.header !== null) expect(first.header).toBe(`"${first.etag}"`);

      const w1 = await r.write(via, id, first.etag, 1);
      expect(w1.ok, JSON.stringify(w1)).toBe(true);
      const e1 = (w1 as { etag: string }).etag;
      expect(e1).not.toBe(first.etag);
      if (via === "rest") expect((w1 as { header: string }).header).toBe(`"${e1}"`);
      expect((await r.read(via, id)).etag).toBe(e1);

      // The tag read before the update is stale now.
      expectStale(await r.write(via, id, first.etag, 2), via);
      const after = await r.read(via, id);
      expect(after.etag).toBe(e1);
      expect(r.value(after.data)).toEqual(r.value((w1 as { data: unknown }).data));

      // A tag of another kind of resource, or of no form Fabric makes, never matches.
      expectStale(await r.write(via, id, "webhook-999999", 2), via);
      expectStale(await r.write(via, id, "nonsense", 2), via);

      // `*` and no etag at all both apply, and each write changes the tag again.
      const w2 = await r.write(via, id, "*", 3);
      expect(w2.ok, JSON.stringify(w2)).toBe(true);
      const w3 = await r.write(via, id, undefined, 4);
      expect(w3.ok, JSON.stringify(w3)).toBe(true);
      const tags = [first.etag, e1, (w2 as { etag: string }).etag, (w3 as { etag: string }).etag];
      expect(new Set(tags).size).toBe(4);
    });

    it("writers holding the same etag at once: exactly one wins", async () => {
      const id = await r.make();
      const { etag } = await r.read(via, id);
      const results = await Promise.all([1, 2, 3, 4, 5].map((n) => r.write(via, id, etag, n)));
      const won = results.filter((w) => w.ok);
      expect(won, JSON.stringify(results)).toHaveLength(1);
      for (const w of results.filter((x) => !x.ok)) expectStale(w, via);
      const now = await r.read(via, id);
      expect(now.etag).toBe((won[0] as { etag: string }).etag);
      expect(r.value(now.data)).toEqual(r.value((won[0] as { data: unknown }).data));
    });
  });
});

describe("webhook delete", () => {
  it.each(transports)("over %s: a stale etag keeps the webhook; the current one deletes it", async (via) => {
    const id = await resources[1]!.make();
    const { etag } = await resources[1]!.read(via, id);
    const updated = await resources[1]!.write(via, id, etag, 1);
    expect(updated.ok).toBe(true);
    const del = async (tag: string): Promise<Written> =>
      via === "rest"
        ? fabric.rest(`/v1/organizations/${org()}/webhooks/${id}`, { method: "DELETE", headers: { "if-match": `"${tag}"` } }).then(restWritten)
        : grpcWritten("WebhookService/DeleteWebhook", { organization_id: org(), id, etag: tag });
    expectStale(await del(etag), via);
    expect((await resources[1]!.read(via, id)).etag).toBe((updated as { etag: string }).etag);
    const ok = await del((updated as { etag: string }).etag);
    expect(ok.ok, JSON.stringify(ok)).toBe(true);
    const list = await client(fabric, via).ok("WebhookService/ListWebhooks", { organization_id: org() }, me());
    expect(list.map((w: any) => w.id)).not.toContain(id);
  });
});

describe("REST If-Match", () => {
  it("a workflow that does not exist yet fails If-Match: * (412); the ETag of a read is what If-Match takes", async () => {
    const name = `etag-new-${randomUUID().slice(0, 8)}`;
    const res = await rest("POST", "/v1/workflows", { ...smokeWorkflow, name }, "*");
    expect(res.status).toBe(412);
    expect(await res.json()).toMatchObject({ code: "precondition_failed", status: 412 });
    const list = await client(fabric, "rest").ok("WorkflowService/ListWorkflows", { name }, me());
    expect(list).toHaveLength(0);

    const made = await rest("POST", "/v1/workflows", { ...smokeWorkflow, name });
    const tag = made.headers.get("etag");
    expect(tag).toMatch(/^"workflow-1"$/);
    const next = await rest("POST", "/v1/workflows", { ...smokeWorkflow, name, description: "v2" }, tag!);
    expect(next.status).toBe(201);
    expect(next.headers.get("etag")).toBe(`"workflow-2"`);
  });

  it("a weak tag never matches; a list or an unquoted tag is 400; If-Match and a different body etag is 422; nothing changes", async () => {
    const teamId = await insertTeam(fabric, org());
    const path = `/v1/organizations/${org()}/budget`;
    const current = JSON.parse(await (await fabric.rest(`${path}?team_id=${teamId}`)).text()).data.etag as string;
    const weak = await rest("PUT", path, { team_id: teamId, daily_limit_usd: "1" }, `W/"${current}"`);
    expect(weak.status).toBe(412);
    const list = await rest("PUT", path, { team_id: teamId, daily_limit_usd: "1" }, `"${current}", "budget-7"`);
    expect(list.status).toBe(400);
    const bare = await rest("PUT", path, { team_id: teamId, daily_limit_usd: "1" }, current);
    expect(bare.status).toBe(400);
    const both = await rest("PUT", path, { team_id: teamId, daily_limit_usd: "1", etag: "budget-7" }, `"${current}"`);
    expect(both.status).toBe(422);
    expect(await both.json()).toMatchObject({ code: "etag_mismatch" });
    const after = JSON.parse(await (await fabric.rest(`${path}?team_id=${teamId}`)).text()).data;
    expect(after.etag).toBe(current);
    expect(after.daily_limit_usd).toBeUndefined();
    // Positive control: the same request with the current tag applies.
    const ok = await rest("PUT", path, { team_id: teamId, daily_limit_usd: "1" }, `"${current}"`);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as any).data.daily_limit_usd).toBe("1");
  });
});
