/**
 * The organization event stream (GET /v1/events/stream, EventService/StreamEvents):
 * live delivery, filters, replay with Last-Event-ID, per-event visibility by team and
 * organization, and a revoked key ending the stream.
 */
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventService } from "../../gen/proto/fabric/v1/events_pb.js";
import { smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { insertKey, insertTeam, member } from "../helpers/fixtures.js";
import { openSse, readUntil, type SseMessage } from "../rest/sse.js";

describe("organization event stream", () => {
  let fabric: TestFabric;
  let teamId: string;
  let teamMemberKey: string;
  let teamWorkflowId: string;
  let orgWorkflowId: string;

  beforeAll(async () => {
    fabric = await startTestFabric();
    teamId = await insertTeam(fabric, fabric.organizationId, { slugPrefix: "streamers", name: "Streamers" });
    teamMemberKey = (await member(fabric, fabric.organizationId, null, { teamId, role: "member" })).key;
    const up = async (spec: object) => (((await (await fabric.rest("/v1/workflows", { method: "POST", json: spec })).json()) as any).data.id as string);
    orgWorkflowId = await up({ ...smokeWorkflow, name: "stream-org" });
    teamWorkflowId = await up({ ...smokeWorkflow, name: "stream-team", team_id: teamId });
  });
  afterAll(() => fabric?.close());

  const start = async (workflowId: string) => (((await (await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: workflowId, input: { topic: "x" } } })).json()) as any).data.id as string);
  const stream = (key: string, query = "", headers: Record<string, string> = {}) => openSse(`${fabric.restUrl}/v1/events/stream${query}`, { authorization: `Bearer ${key}`, ...headers });
  const parse = (m: SseMessage) => JSON.parse(m.data);
  const completedRun = (runId: string) => (m: SseMessage) => m.event === "workflow.run.completed" && parse(m).run_id === runId;

  it("delivers a run's events live, in id order, to an organization-wide reader", async () => {
    const s = await stream(fabric.apiKey);
    expect(s.response.status).toBe(200);
    const runId = await start(orgWorkflowId);
    const got = (await readUntil(s, completedRun(runId))).map(parse).filter((e) => e.run_id === runId);
    s.close();
    expect(got.map((e) => e.kind)).toContain("workflow.node.completed");
    const ids = got.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });

  it("filters by kind pattern and by run", async () => {
    const byKind = await stream(fabric.apiKey, "?kinds=workflow.run.*");
    const a = await start(orgWorkflowId);
    const got = (await readUntil(byKind, completedRun(a))).map(parse);
    byKind.close();
    expect(got.length).toBeGreaterThan(2);
    expect(got.every((e) => e.kind.startsWith("workflow.run."))).toBe(true);

    // A run that waits for a signal, so the run-filtered stream is open before it moves on.
    const waitWf = (((await (await fabric.rest("/v1/workflows", { method: "POST", json: { name: "stream-wait", nodes: [{ key: "w", operation: "workflow.wait_signal" }] } })).json()) as any).data.id as string);
    const b = await start(waitWf);
    const other = await start(orgWorkflowId);
    const byRun = await stream(fabric.apiKey, `?run_id=${b}`);
    await fabric.rest(`/v1/workflow-runs/${b}/signal`, { method: "POST", json: { payload: { ok: true } } });
    const mine = (await readUntil(byRun, completedRun(b))).map(parse);
    byRun.close();
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((e) => e.run_id === b)).toBe(true);
    expect(mine.some((e) => e.run_id === other)).toBe(false);
  });

  it("replays after Last-Event-ID without gaps or duplicates, then follows live", async () => {
    const first = await stream(fabric.apiKey);
    const runId = await start(orgWorkflowId);
    const all = (await readUntil(first, completedRun(runId))).map(parse);
    first.close();
    const cut = all[1]!;
    const resumed = await stream(fabric.apiKey, "", { "last-event-id": String(cut.id) });
    const next = await start(orgWorkflowId);
    const again = (await readUntil(resumed, completedRun(next))).map(parse);
    resumed.close();
    const replayedOfFirst = again.filter((e) => e.run_id === runId).map((e) => e.id);
    expect(replayedOfFirst).toEqual(all.filter((e) => e.run_id === runId && Number(e.id) > Number(cut.id)).map((e) => e.id));
    expect(new Set(again.map((e) => e.id)).size).toBe(again.length);
  });

  it("shows a team member only their team's runs, and no organization-wide events", async () => {
    const s = await stream(teamMemberKey);
    const hidden = await start(orgWorkflowId);
    const shown = await start(teamWorkflowId);
    const got = (await readUntil(s, completedRun(shown))).map(parse);
    s.close();
    expect(got.some((e) => e.run_id === shown)).toBe(true);
    expect(got.some((e) => e.run_id === hidden)).toBe(false);
    expect(got.every((e) => e.run_id)).toBe(true);
  });

  it("never shows another organization's events", async () => {
    const other = await fabric.otherOrg();
    const s = await stream(other.apiKey);
    expect(s.response.status).toBe(200);
    const runId = await start(orgWorkflowId);
    // Our own stream sees the run finish; the other organization's saw nothing of it.
    const mine = await stream(fabric.apiKey);
    await readUntil(mine, completedRun(runId)).catch(() => []);
    mine.close();
    s.close();
    const seen: SseMessage[] = [];
    for await (const m of s.messages) seen.push(m);
    expect(seen.filter((m) => m.data && parse(m).run_id === runId)).toEqual([]);
  });

  it("ends the stream when its API key is revoked", async () => {
    const { id: keyId, key } = await insertKey(fabric, fabric.organizationId, fabric.principalId, { name: "short-lived" });
    const s = await stream(key);
    expect(s.response.status).toBe(200);
    await fabric.rest(`/v1/organizations/${fabric.organizationId}/api-keys/${keyId}/revoke`, { method: "POST", json: {} });
    const tail: SseMessage[] = [];
    const deadline = Date.now() + 5000;
    for await (const m of s.messages) {
      tail.push(m);
      if (Date.now() > deadline) break;
    }
    const error = tail.find((m) => m.event === "error");
    expect(error && JSON.parse(error.data).code).toBe("unauthenticated");
  });

  it("is a gRPC server stream too", async () => {
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${fabric.apiKey}`);
      return next(req);
    };
    const client = createClient(EventService, createGrpcTransport({ baseUrl: fabric.grpcUrl, interceptors: [auth] }));
    const abort = new AbortController();
    const kinds: string[] = [];
    const reading = (async () => {
      for await (const r of client.streamEvents({ kinds: "workflow.run.*" }, { signal: abort.signal })) {
        kinds.push(r.event!.kind);
        if (r.event!.kind === "workflow.run.completed") break;
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    await start(orgWorkflowId);
    await reading;
    abort.abort();
    expect(kinds).toContain("workflow.run.created");
    expect(kinds.at(-1)).toBe("workflow.run.completed");
  });
});
