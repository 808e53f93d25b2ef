/**
 * Rolled-back event ids against a running control plane: after `BEGIN; INSERT k events;
 * ROLLBACK` (what a rolled-back claim or completion leaves, and what a crash leaves in the
 * sequence), the next run's events still reach a live SSE reader and a webhook within
 * about the hub's gap timeout, whatever k. Runs on the engine FABRIC_TEST_DB names.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { openSse, readUntil } from "../rest/sse.js";
import { startReceiver } from "../webhooks/receiver.js";

const gapTimeoutMs = 1000;

describe("event delivery after rolled-back event ids", () => {
  let fabric: TestFabric;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let workflowId: string;

  beforeAll(async () => {
    receiver = await startReceiver();
    fabric = await startTestFabric({ eventGapTimeoutMs: gapTimeoutMs, webhooksAllowPrivate: true, webhooks: { pollMs: 20 } });
    workflowId = (((await (await fabric.rest("/v1/workflows", { method: "POST", json: { ...smokeWorkflow, name: "gaps" } })).json()) as any).data.id as string);
    const hook = await fabric.rest(`/v1/organizations/${fabric.organizationId}/webhooks`, { method: "POST", json: { url: receiver.url("/gaps"), event_filter: "workflow.run.created" } });
    expect(hook.status).toBe(201);
  });
  afterAll(async () => {
    await fabric?.close();
    await receiver?.close();
  });

  async function rollBack(k: number) {
    const rollback = new Error("rollback");
    await fabric.database.db
      .transaction(async (tx) => {
        await tx.execute(sql`INSERT INTO events (organization_id, kind, payload) SELECT ${fabric.organizationId}::uuid, 'rolled.back', '{}'::jsonb FROM generate_series(1, ${k})`);
        throw rollback;
      })
      .catch((err) => {
        if (err !== rollback) throw err;
      });
  }

  for (const k of [1, 6, 50]) {
    it(`${k} rolled-back id(s): the next run's first event arrives live (SSE and webhook) within about the gap timeout`, async () => {
      const stream = await openSse(`${fabric.restUrl}/v1/events/stream?kinds=workflow.run.created`, { authorization: `Bearer ${fabric.apiKey}` });
      expect(stream.response.status).toBe(200);
      await rollBack(k);
      const t0 = Date.now();
      const started = await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: workflowId, input: { topic: `gap ${k}` } } });
      const runId = ((await started.json()) as any).data.id as string;
      const got = await readUntil(stream, (m) => m.event === "workflow.run.created" && JSON.parse(m.data).run_id === runId, 20 * gapTimeoutMs);
      const sseMs = Date.now() - t0;
      stream.close();
      expect(got.at(-1)!.event).toBe("workflow.run.created");
      await eventually(async () => receiver.at("/gaps").find((r) => JSON.parse(r.body).run_id === runId), 20 * gapTimeoutMs, "the webhook delivery");
      const hookMs = Date.now() - t0;
      console.log(`gap of ${k}: first SSE event after ${sseMs} ms, webhook after ${hookMs} ms (gap timeout ${gapTimeoutMs} ms)`);
      // Gap timeout + one 1 s poll is the expected wait; before the fix 6 ids cost ~2^5 times that.
      expect(sseMs).toBeLessThan(4 * gapTimeoutMs);
      expect(hookMs).toBeLessThan(4 * gapTimeoutMs);
    });
  }
});
