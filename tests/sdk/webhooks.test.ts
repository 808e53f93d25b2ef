/**
 * The SDK's webhooks resource against a real Fabric on loopback, delivering to a local
 * receiver (private targets allowed, as in development): create (the secret once), list,
 * update, delete; a delivery received, signed (checked with `verifyWebhookSignature`),
 * listed with the receiver's answer; a failed delivery redelivered by hand; and the
 * errors as FabricErrors with their codes.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FabricClient, verifyWebhookSignature, type WebhookDelivery } from "../../src/sdk/index.js";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { startReceiver } from "../webhooks/receiver.js";
import { rejection } from "./support.js";

let fabric: TestFabric;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let client: FabricClient;
let org: string;

beforeAll(async () => {
  receiver = await startReceiver();
  fabric = await startTestFabric({ webhooksAllowPrivate: true, webhooks: { baseDelayMs: 100, pollMs: 20 } });
  client = new FabricClient({ baseUrl: fabric.restUrl, apiKey: fabric.apiKey });
  org = fabric.organizationId;
});

afterAll(async () => {
  await fabric?.close();
  await receiver?.close();
});

const newTeam = (name: string) => client.teams.create(org, { slug: `${name}-${randomUUID().slice(0, 8)}`, name });

/** The webhook's deliveries once `done` says they are settled. */
async function settledDeliveries(webhookId: string, done: (ds: WebhookDelivery[]) => boolean, what: string): Promise<WebhookDelivery[]> {
  return eventually(async () => {
    const ds = await client.webhooks.listDeliveries(org, webhookId);
    return done(ds) ? ds : undefined;
  }, 20_000, what);
}

describe("webhooks resource", () => {
  it("create shows the secret once; list, update and delete manage the webhook", async () => {
    const created = await client.webhooks.create(org, { url: receiver.url("/sdk-manage"), event_filter: "team.*, workflow.run.completed", description: "from the SDK" });
    expect(created.secret).toMatch(/^whsec_/);
    const hook = created.webhook;
    expect(hook).toMatchObject({ organization_id: org, url: receiver.url("/sdk-manage"), event_filter: "team.*,workflow.run.completed", max_retries: 8, enabled: true, description: "from the SDK", disabled_reason: "" });

    const listed = await client.webhooks.list(org);
    expect(listed.find((w) => w.id === hook.id)).toEqual(hook);
    expect(JSON.stringify(listed)).not.toContain("whsec_");

    const updated = await client.webhooks.update(org, hook.id, { enabled: false, max_retries: 2, event_filter: "*" });
    expect(updated).toMatchObject({ id: hook.id, enabled: false, max_retries: 2, event_filter: "*", url: hook.url, description: "from the SDK" });
    expect(JSON.stringify(updated)).not.toContain("whsec_");

    const deleted = await client.webhooks.delete(org, hook.id);
    expect(deleted).toMatchObject({ id: hook.id, enabled: false });
    expect((await client.webhooks.list(org)).map((w) => w.id)).not.toContain(hook.id);
    expect(await rejection(client.webhooks.listDeliveries(org, hook.id))).toMatchObject({ status: 404, code: "not_found" });
  });

  it("an event is delivered signed with the secret, and listed with the receiver's answer", async () => {
    const { webhook, secret } = await client.webhooks.create(org, { url: receiver.url("/sdk-delivered"), event_filter: "team.created" });
    const team = await newTeam("delivered");
    const [req] = await eventually(async () => (receiver.at("/sdk-delivered").length ? receiver.at("/sdk-delivered") : undefined), 20_000, "a delivery");
    const body = JSON.parse(req!.body);
    expect(body).toMatchObject({ kind: "team.created", organization_id: org });
    expect(JSON.stringify(body.payload)).toContain(team.id);
    const signed = { secret, body: req!.body, timestamp: String(req!.headers["fabric-webhook-timestamp"]), signature: String(req!.headers["fabric-webhook-signature"]) };
    expect(verifyWebhookSignature(signed)).toBe(true);
    expect(verifyWebhookSignature({ ...signed, secret: "whsec_not-this-one" })).toBe(false);

    const [delivery] = await settledDeliveries(webhook.id, (ds) => ds.length === 1 && ds[0]!.status === "succeeded", "a succeeded delivery");
    expect(delivery).toMatchObject({ id: req!.headers["fabric-webhook-id"], webhook_id: webhook.id, event_kind: "team.created", status: "succeeded", attempts: 1, response_status: 200, error: "" });
    expect(String(delivery!.event_id)).toBe(String(body.id));
    expect(delivery!.response_body).toContain("answer 200");
    expect(await client.webhooks.listDeliveries(org, webhook.id, { status: "failed" })).toEqual([]);
    await client.webhooks.delete(org, webhook.id);
  });

  it("a failed delivery is redelivered by hand: pending again, then succeeded, with the same delivery id", async () => {
    receiver.plan["/sdk-redeliver"] = [500];
    const { webhook } = await client.webhooks.create(org, { url: receiver.url("/sdk-redeliver"), event_filter: "team.created", max_retries: 0 });
    await newTeam("redeliver");
    const [failed] = await settledDeliveries(webhook.id, (ds) => ds.length === 1 && ds[0]!.status === "failed", "a failed delivery");
    expect(failed).toMatchObject({ status: "failed", attempts: 1, response_status: 500 });
    expect((await client.webhooks.listDeliveries(org, webhook.id, { status: "failed" })).map((d) => d.id)).toEqual([failed!.id]);

    const again = await client.webhooks.redeliver(org, webhook.id, failed!.id);
    expect(again).toMatchObject({ id: failed!.id, status: "pending" });
    const [succeeded] = await settledDeliveries(webhook.id, (ds) => ds[0]?.status === "succeeded", "the redelivery to succeed");
    expect(succeeded).toMatchObject({ id: failed!.id, status: "succeeded", response_status: 200 });
    const requests = receiver.at("/sdk-redeliver");
    expect(requests).toHaveLength(2);
    expect(requests.map((r) => r.headers["fabric-webhook-id"])).toEqual([failed!.id, failed!.id]);
    await client.webhooks.delete(org, webhook.id);
  });

  it("errors are FabricErrors with their codes: a refused URL, an unknown webhook or delivery, a caller who may not", async () => {
    const refused = await rejection(client.webhooks.create(org, { url: "ftp://example.com/hook" }));
    expect(refused).toMatchObject({ status: 400, code: "url_not_allowed" });
    expect(refused.issues).toEqual([expect.objectContaining({ path: "/url", code: "url_not_allowed" })]);
    const badRetries = await rejection(client.webhooks.create(org, { url: receiver.url("/never"), max_retries: 21 }));
    expect(badRetries).toMatchObject({ status: 400, code: "invalid_argument" });
    expect(badRetries.issues.map((i) => i.path)).toEqual(["/max_retries"]);
    expect((await client.webhooks.list(org)).map((w) => w.url)).not.toContain(receiver.url("/never"));

    const unknown = randomUUID();
    expect(await rejection(client.webhooks.update(org, unknown, { enabled: true }))).toMatchObject({ status: 404, code: "not_found" });
    expect(await rejection(client.webhooks.delete(org, unknown))).toMatchObject({ status: 404, code: "not_found" });
    const { webhook } = await client.webhooks.create(org, { url: receiver.url("/sdk-errors"), event_filter: "no.such.kind" });
    expect(await rejection(client.webhooks.redeliver(org, webhook.id, unknown))).toMatchObject({ status: 404, code: "not_found" });

    // Webhooks are for admins and owners: a viewer may neither read nor change them.
    const viewer = await client.members.createServiceAccount(org, { display_name: "webhook viewer", role: "viewer" });
    const { key } = await client.apiKeys.create(org, { name: "viewer", principal_id: viewer.principal!.id });
    const asViewer = client.withAuth({ apiKey: key });
    expect((await asViewer.me.get()).principal.id).toBe(viewer.principal!.id);
    expect(await rejection(asViewer.webhooks.list(org))).toMatchObject({ status: 403, code: "permission_denied" });
    expect(await rejection(asViewer.webhooks.update(org, webhook.id, { enabled: false }))).toMatchObject({ status: 403, code: "permission_denied" });
    expect((await client.webhooks.list(org)).find((w) => w.id === webhook.id)?.enabled).toBe(true);
    await client.webhooks.delete(org, webhook.id);
  });
});
