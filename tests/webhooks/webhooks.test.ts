/**
 * Webhooks against a local HTTP receiver on 127.0.0.1 (private targets allowed, as in
 * development): management over both transports (secret shown once, audit, events), a
 * run's events delivered and signed (verified with the SDK helper), retries on an
 * increasing schedule, retries exhausted → failed, auto-disable after persistent failure,
 * redelivery by hand, and — with private targets not allowed — SSRF targets refused at
 * create and at delivery time.
 */
import { randomUUID } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../../src/db/database.js";
import { webhooks } from "../../src/db/schema.js";
import { Webhook as StandardWebhook, WebhookVerificationError } from "standardwebhooks";
import { verifyWebhook, verifyWebhookSignature } from "../../src/sdk/index.js";
import { encryptSecret, webhookSettingsFrom } from "../../src/delivery/webhook-security.js";
import { eventually, smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { client, transports, type Actor } from "../helpers/calls.js";
import { expectOneAudit } from "../helpers/fixtures.js";
import { startReceiver } from "./receiver.js";

let fabric: TestFabric;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let owner: Actor;
let org: string;

beforeAll(async () => {
  receiver = await startReceiver();
  fabric = await startTestFabric({ webhooksAllowPrivate: true, webhooks: { baseDelayMs: 150, pollMs: 20, disableAfterFailures: 3 } });
  owner = { key: fabric.apiKey };
  org = fabric.organizationId;
});
afterAll(async () => {
  await fabric?.close();
  await receiver?.close();
});

const c = client;
const rest = () => c(fabric, "rest");

async function createHook(path: string, fields: Record<string, unknown> = {}) {
  return rest().ok("WebhookService/CreateWebhook", { organization_id: org, url: receiver.url(path), ...fields }, owner);
}
async function deliveries(webhookId: string) {
  return rest().ok("WebhookService/ListWebhookDeliveries", { organization_id: org, webhook_id: webhookId }, owner);
}
async function createTeam() {
  const res = await fabric.rest(`/v1/organizations/${org}/teams`, { method: "POST", json: { slug: `t-${randomUUID().slice(0, 8)}`, name: "T" } });
  expect(res.status).toBe(201);
  return ((await res.json()) as any).data.id as string;
}

describe.each(transports)("management over %s", (via) => {
  it("create (secret once) → list → update → delete, each audited with an event and no secret", async () => {
    const api = c(fabric, via);
    const createId = `wh-create-${randomUUID()}`;
    const created = await api.ok("WebhookService/CreateWebhook", { organization_id: org, url: receiver.url(`/mgmt-${via}`), event_filter: "team.*, workflow.run.completed", description: "d" }, owner, createId);
    // Standard Webhooks: whsec_ + standard base64 of 32 bytes.
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const hook = created.webhook;
    expect(hook).toMatchObject({ organization_id: org, url: receiver.url(`/mgmt-${via}`), event_filter: "team.*,workflow.run.completed", max_retries: 8, enabled: true, description: "d" });
    if (via === "rest") expect((await api.call("WebhookService/CreateWebhook", { organization_id: org, url: receiver.url("/s"), event_filter: "no.match" }, owner)).status).toBe(201);
    const audit = await expectOneAudit(fabric, createId, { action: "webhook.create", resource: `webhook:${hook.id}` });
    expect(JSON.stringify(audit)).not.toContain(created.secret);
    const [row] = await fabric.database.db.select().from(webhooks).where(eq(webhooks.id, hook.id));
    expect(JSON.stringify(row)).not.toContain(created.secret.slice(6));
    const events = await query<{ kind: string; payload: any }>(fabric.database.db, sql`SELECT kind, payload FROM events WHERE payload->>'webhook_id' = ${hook.id} ORDER BY id`);
    expect(events.map((e) => e.kind)).toEqual(["webhook.created"]);
    expect(JSON.stringify(events)).not.toContain(created.secret);

    const listed = await api.ok("WebhookService/ListWebhooks", { organization_id: org }, owner);
    expect(listed.map((w: any) => w.id)).toContain(hook.id);
    expect(JSON.stringify(listed)).not.toContain("whsec_");

    const updateId = `wh-update-${randomUUID()}`;
    const updated = await api.ok("WebhookService/UpdateWebhook", { organization_id: org, id: hook.id, enabled: false, max_retries: 2, event_filter: "*" }, owner, updateId);
    expect(updated).toMatchObject({ id: hook.id, enabled: false, max_retries: 2, event_filter: "*", url: hook.url });
    await expectOneAudit(fabric, updateId, { action: "webhook.update" });
    await api.fails("WebhookService/UpdateWebhook", { organization_id: org, id: hook.id, max_retries: 21 }, owner, 400, "invalid_argument");
    await api.fails("WebhookService/UpdateWebhook", { organization_id: org, id: randomUUID(), enabled: true }, owner, 404, "not_found");

    const deleteId = `wh-delete-${randomUUID()}`;
    await api.ok("WebhookService/DeleteWebhook", { organization_id: org, id: hook.id }, owner, deleteId);
    await expectOneAudit(fabric, deleteId, { action: "webhook.delete" });
    await api.fails("WebhookService/DeleteWebhook", { organization_id: org, id: hook.id }, owner, 404, "not_found");
    const kinds = await query<{ kind: string }>(fabric.database.db, sql`SELECT kind FROM events WHERE payload->>'webhook_id' = ${hook.id} ORDER BY id`);
    expect(kinds.map((e) => e.kind)).toEqual(["webhook.created", "webhook.updated", "webhook.deleted"]);
  });

  it("refuses bad input and other organizations", async () => {
    const api = c(fabric, via);
    await api.fails("WebhookService/CreateWebhook", { organization_id: org, url: "" }, owner, 400, "invalid_argument");
    await api.fails("WebhookService/CreateWebhook", { organization_id: org, url: "ftp://example.com/x" }, owner, 400, "url_not_allowed");
    await api.fails("WebhookService/CreateWebhook", { organization_id: org, url: receiver.url("/x"), event_filter: "Bad Kind" }, owner, 400, "invalid_argument");
    await api.fails("WebhookService/CreateWebhook", { organization_id: org, url: receiver.url("/x"), max_retries: 21 }, owner, 400, "invalid_argument");
    const other = await fabric.otherOrg();
    await api.fails("WebhookService/ListWebhooks", { organization_id: org }, { key: other.apiKey }, 404);
  });
});

describe("delivery", () => {
  it("a run's events are delivered, signed; the SDK verifies the signature", async () => {
    const { webhook, secret } = await createHook("/run", { event_filter: "workflow.run.*" });
    const res = await fabric.rest("/v1/workflows", { method: "POST", json: smokeWorkflow });
    const wf = ((await res.json()) as any).data;
    const started = await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: wf.id, input: { topic: "hooks" } } });
    const runId = ((await started.json()) as any).data.id;
    const done = await eventually(async () => receiver.at("/run").find((r) => JSON.parse(r.body).kind === "workflow.run.completed"), 20_000, "run completed delivery");
    const body = JSON.parse(done.body);
    expect(body).toMatchObject({ kind: "workflow.run.completed", organization_id: org, run_id: runId });
    expect(typeof body.id).toBe("number");
    expect(body.create_time).toMatch(/Z$/);
    expect(done.headers["content-type"]).toBe("application/json");
    // Standard Webhooks: the reference library verifies the delivery, and so does the SDK.
    expect(done.headers["webhook-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(done.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    const standardHeaders = { "webhook-id": String(done.headers["webhook-id"]), "webhook-timestamp": String(done.headers["webhook-timestamp"]), "webhook-signature": String(done.headers["webhook-signature"]) };
    expect(new StandardWebhook(secret).verify(done.body, standardHeaders)).toEqual(body);
    expect(() => new StandardWebhook(secret).verify(done.body + " ", standardHeaders)).toThrow(WebhookVerificationError);
    expect(verifyWebhook({ secret, body: done.body, headers: done.headers as Record<string, string> })).toBe(true);
    expect(verifyWebhook({ secret, body: done.body + " ", headers: done.headers as Record<string, string> })).toBe(false);
    // The deprecated fabric-webhook-* headers are still sent (one more release).
    expect(done.headers["fabric-webhook-id"]).toBe(done.headers["webhook-id"]);
    const sig = { secret, body: done.body, timestamp: String(done.headers["fabric-webhook-timestamp"]), signature: String(done.headers["fabric-webhook-signature"]) };
    expect(sig.signature).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature(sig)).toBe(true);
    expect(verifyWebhookSignature({ ...sig, body: done.body + " " })).toBe(false);
    expect(verifyWebhookSignature({ ...sig, secret: "whsec_other" })).toBe(false);
    expect(verifyWebhookSignature({ ...sig, now: (Number(sig.timestamp) + 301) * 1000 })).toBe(false);
    // Only run events, each once, in the recorded deliveries.
    const kinds = receiver.at("/run").map((r) => JSON.parse(r.body).kind as string);
    expect(kinds.every((k) => k.startsWith("workflow.run."))).toBe(true);
    const ids = receiver.at("/run").map((r) => JSON.parse(r.body).id);
    expect(new Set(ids).size).toBe(ids.length);
    const list = await deliveries(webhook.id);
    const completed = list.find((d: any) => d.event_kind === "workflow.run.completed");
    expect(completed).toMatchObject({ status: "succeeded", attempts: 1, response_status: 200, response_body: "answer 200 for /run", error: "" });
    expect(completed.next_attempt_time).toBeUndefined();
    expect(done.headers["fabric-webhook-id"]).toBe(list.find((d: any) => String(d.event_id) === String(body.id)).id);
  });

  it("500, 500, 200: retried on an increasing schedule, then delivered", async () => {
    receiver.plan["/flaky"] = [500, 500];
    const { webhook } = await createHook("/flaky", { event_filter: "team.created" });
    await createTeam();
    const got = await eventually(async () => (receiver.at("/flaky").length >= 3 ? receiver.at("/flaky") : undefined), 60_000, "3 attempts");
    expect(new Set(got.map((r) => r.headers["fabric-webhook-id"])).size).toBe(1);
    // The schedule grows: the wait before the second retry is at least 2 × 150 ms, longer than
    // the first wait's scheduled delay can be (150 ms + 25 % jitter). Only lower bounds are
    // checked: a loaded machine adds to every measured wait, so comparing two measured waits
    // (or bounding one from above) would test the machine, not the schedule.
    const gap1 = got[1]!.at - got[0]!.at;
    const gap2 = got[2]!.at - got[1]!.at;
    expect(gap1).toBeGreaterThanOrEqual(140);
    expect(gap2).toBeGreaterThanOrEqual(290);
    const [d] = await eventually(async () => {
      const l = await deliveries(webhook.id);
      return l[0]?.status === "succeeded" ? l : undefined;
    });
    expect(d).toMatchObject({ status: "succeeded", attempts: 3, response_status: 200 });
  });

  it("max_retries exhausted → failed; persistent failure disables the webhook; redelivery by hand", async () => {
    const { webhook } = await createHook("/always-fail", { event_filter: "team.created", max_retries: 1 });
    await createTeam();
    const [failed] = await eventually(async () => {
      const l = await deliveries(webhook.id);
      return l[0]?.status === "failed" ? l : undefined;
    });
    expect(failed).toMatchObject({ status: "failed", attempts: 2, response_status: 500, error: "http_status: 500", response_body: "answer 500 for /always-fail" });
    expect(failed.next_attempt_time).toBeUndefined();
    expect(receiver.at("/always-fail")).toHaveLength(2);

    // Two more failed deliveries (3 in a row) disable it.
    await createTeam();
    await createTeam();
    const disabled = await eventually(async () => {
      const l = await rest().ok("WebhookService/ListWebhooks", { organization_id: org }, owner);
      const w = l.find((x: any) => x.id === webhook.id);
      return w.enabled ? undefined : w;
    });
    expect(disabled.disabled_reason).toContain("3");
    const ev = await query<{ kind: string }>(fabric.database.db, sql`SELECT kind FROM events WHERE kind = 'webhook.disabled' AND payload->>'webhook_id' = ${webhook.id}`);
    expect(ev).toHaveLength(1);

    // Re-enable, make the receiver answer 200, redeliver the first failed delivery.
    await rest().ok("WebhookService/UpdateWebhook", { organization_id: org, id: webhook.id, enabled: true }, owner);
    receiver.plan["/always-fail"] = [200];
    const before = receiver.at("/always-fail").length;
    for (const via of transports) {
      const redeliverId = `redeliver-${randomUUID()}`;
      const r = await c(fabric, via).ok("WebhookService/RedeliverWebhookDelivery", { organization_id: org, webhook_id: webhook.id, id: failed.id }, owner, redeliverId);
      expect(r).toMatchObject({ id: failed.id, status: "pending", attempts: 0 });
      await expectOneAudit(fabric, redeliverId, { action: "webhook.redeliver" });
      if (via === "rest") {
        const again = await eventually(async () => {
          const l = await deliveries(webhook.id);
          const d = l.find((x: any) => x.id === failed.id);
          return d.status === "succeeded" ? d : undefined;
        });
        expect(again).toMatchObject({ attempts: 1, response_status: 200 });
        receiver.plan["/always-fail"] = [200];
      }
    }
    await eventually(async () => (receiver.at("/always-fail").length >= before + 2 ? true : undefined));
    await rest().fails("WebhookService/RedeliverWebhookDelivery", { organization_id: org, webhook_id: webhook.id, id: randomUUID() }, owner, 404, "not_found");
  });
});

describe("SSRF (private targets not allowed)", () => {
  let strict: TestFabric;
  beforeAll(async () => {
    strict = await startTestFabric({ worker: false, webhooks: { pollMs: 20, baseDelayMs: 50 } });
  });
  afterAll(() => strict?.close());

  const targets = ["http://127.0.0.1:9/x", "http://10.0.0.1/x", "http://169.254.169.254/latest/meta-data", "http://[::1]:9/x", "http://localhost:9/x", "http://[::ffff:127.0.0.1]/x", "http://0.0.0.0/x", "http://192.168.1.1/x", "http://172.16.0.1/x", "http://[fd00:ec2::254]/x", "http://[fe80::1]/x"];

  it.each(transports)("refused at create and update over %s (invalid_argument url_not_allowed)", async (via) => {
    const api = c(strict, via);
    const actor = { key: strict.apiKey };
    for (const url of targets) {
      const f = await api.fails("WebhookService/CreateWebhook", { organization_id: strict.organizationId, url }, actor, 400, "url_not_allowed");
      expect(f.detail).toMatch(/non-public|resolve/);
    }
    const ok = await api.ok("WebhookService/CreateWebhook", { organization_id: strict.organizationId, url: "https://203.0.113.10/hook", event_filter: "no.match" }, actor);
    await api.fails("WebhookService/UpdateWebhook", { organization_id: strict.organizationId, id: ok.webhook.id, url: "http://localhost/x" }, actor, 400, "url_not_allowed");
  });

  it("refused at delivery time too (an address that became private, or a host resolving to loopback)", async () => {
    const settings = webhookSettingsFrom({ FABRIC_ENV: "development" });
    for (const path of ["/literal", "/named"]) {
      const url = path === "/literal" ? receiver.url(path) : `http://localhost:${receiver.port}${path}`;
      // Straight into the database: as if DNS had changed since the URL was checked.
      await strict.database.db.insert(webhooks).values({ id: randomUUID(), organizationId: strict.organizationId, url, eventFilter: "team.created", maxRetries: 0, secretCiphertext: encryptSecret(settings.secretsKey, "whsec_x") });
    }
    const res = await strict.rest(`/v1/organizations/${strict.organizationId}/teams`, { method: "POST", json: { slug: "ssrf", name: "S" } });
    expect(res.status).toBe(201);
    const rows = await eventually(async () => {
      const r = await query<{ status: string; error: string }>(strict.database.db, sql`SELECT status, error FROM webhook_deliveries WHERE organization_id = ${strict.organizationId} AND event_kind = 'team.created'`);
      return r.length === 2 && r.every((x) => x.status === "failed") ? r : undefined;
    });
    for (const r of rows) expect(r.error).toMatch(/^url_not_allowed/);
    expect(receiver.at("/literal")).toHaveLength(0);
    expect(receiver.at("/named")).toHaveLength(0);
  });
});
