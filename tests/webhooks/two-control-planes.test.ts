/**
 * Two control planes (two dispatchers) on one database: every event matching a webhook
 * is delivered exactly once — one delivery row per webhook × event, and each attempt
 * claimed by one dispatcher — including retried deliveries. Runs on the engine
 * FABRIC_TEST_DB names (the Postgres run is the one that proves it across connections).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startControlPlane, type ControlPlane } from "../../src/control-plane/server.js";
import { eventually, startTestFabric, testLog, type TestFabric } from "../helpers/fabric.js";
import { startReceiver } from "./receiver.js";

let fabric: TestFabric;
let second: ControlPlane;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
const fast = { baseDelayMs: 100, pollMs: 10 };

beforeAll(async () => {
  receiver = await startReceiver();
  fabric = await startTestFabric({ worker: false, webhooksAllowPrivate: true, webhooks: fast });
  second = await startControlPlane({
    config: { HOST: "127.0.0.1", PORT: 0, GRPC_PORT: 0, FABRIC_ENV: "development", FABRIC_MAX_BODY_BYTES: 1 << 20, FABRIC_WEBHOOKS_ALLOW_PRIVATE: true },
    database: fabric.database,
    log: testLog,
    webhooks: fast,
  });
});
afterAll(async () => {
  await second?.close();
  await fabric?.close();
  await receiver?.close();
});

it("each event is delivered once, whichever control plane sees it", async () => {
  const org = fabric.organizationId;
  const hook = await fabric.rest(`/v1/organizations/${org}/webhooks`, { method: "POST", json: { url: receiver.url("/both"), event_filter: "team.created" } });
  expect(hook.status).toBe(201);
  const flakyRes = await fabric.rest(`/v1/organizations/${org}/webhooks`, { method: "POST", json: { url: receiver.url("/both-flaky"), event_filter: "team.created" } });
  expect(flakyRes.status).toBe(201);
  receiver.plan["/both-flaky"] = [500, 500, 500];
  const n = 12;
  // Half the changes through each control plane.
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      fetch(`${i % 2 ? second.restUrl : fabric.restUrl}/v1/organizations/${org}/teams`, {
        method: "POST",
        headers: { authorization: `Bearer ${fabric.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ slug: `two-${i}-${randomUUID().slice(0, 6)}`, name: "Two" }),
      }).then((r) => expect(r.status).toBe(201)),
    ),
  );
  await eventually(async () => (receiver.at("/both").length >= n ? true : undefined), 15_000, `${n} deliveries`);
  await eventually(async () => (receiver.at("/both-flaky").filter((r) => r.body).length >= n + 3 ? true : undefined), 15_000, `${n} + 3 flaky attempts`);
  await new Promise((r) => setTimeout(r, 500)); // room for a duplicate to show up
  const ids = receiver.at("/both").map((r) => JSON.parse(r.body).id);
  expect(ids).toHaveLength(n);
  expect(new Set(ids).size).toBe(n);
  const flaky = receiver.at("/both-flaky");
  expect(flaky).toHaveLength(n + 3); // three failed attempts retried once each, nothing twice
  expect(new Set(flaky.map((r) => JSON.parse(r.body).id)).size).toBe(n);
});
