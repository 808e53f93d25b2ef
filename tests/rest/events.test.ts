/**
 * Wire-level tests of the SSE event stream (GET /v1/workflow-runs/{id}/events): replay,
 * live follow, resumption with Last-Event-ID, end of stream after the terminal event —
 * and the anonymous health / contract / docs endpoints.
 */
import { readFileSync } from "node:fs";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openApiDocument, openApiPath } from "../../src/control-plane/contract.js";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { expectValid } from "../helpers/openapi.js";
import { openSse, readAll, readUntil, type SseMessage } from "./sse.js";

let fabric: TestFabric;
let seq = 0;
const unique = (base: string) => `${base}-${Date.now().toString(36)}-${++seq}`;
const terminal = new Set(["workflow.run.completed", "workflow.run.failed", "workflow.run.cancelled"]);

/** The schema each SSE message's data must match (`x-fabric-event-schema`). */
const validateEvent = (() => {
  const ajv = new Ajv2020({ strict: false, allErrors: true, formats: { int32: true, int64: true } });
  (addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
  ajv.addSchema(openApiDocument, "openapi.json");
  const ref = openApiDocument.paths["/v1/workflow-runs/{id}/events"].get.responses["200"].content["text/event-stream"]["x-fabric-event-schema"].$ref as string;
  return ajv.compile({ $ref: `openapi.json${ref}` });
})();

beforeAll(async () => {
  fabric = await startTestFabric();
});
afterAll(() => fabric?.close());

const auth = () => ({ authorization: `Bearer ${fabric.apiKey}` });
const eventsUrl = (id: string, query = "") => `${fabric.restUrl}/v1/workflow-runs/${id}/events${query}`;

async function createWorkflow(spec: Record<string, unknown>) {
  const res = await fabric.rest("/v1/workflows", { method: "POST", json: spec });
  return (await expectValid(res, "/v1/workflows", "post")).data;
}
async function startRun(workflowId: string, input: Record<string, unknown> = {}) {
  const res = await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: workflowId, input } });
  expect(res.status).toBe(202);
  return (await expectValid(res, "/v1/workflow-runs", "post")).data;
}
const getRun = async (id: string) => (await expectValid(await fabric.rest(`/v1/workflow-runs/${id}`), "/v1/workflow-runs/{id}", "get")).data;
const waitForStatus = (id: string, statuses: string[]) =>
  eventually(async () => {
    const r = await getRun(id);
    return statuses.includes(r.status) ? r : undefined;
  }, 15_000, `run ${id} to reach ${statuses.join("|")}`);

/** Checks the wire shape of every message and returns the parsed events. */
function parseEvents(messages: SseMessage[], runId: string): any[] {
  return messages.map((m) => {
    const data = JSON.parse(m.data);
    expect(validateEvent(data), `event does not match the document: ${JSON.stringify(validateEvent.errors)}\n${m.data}`).toBe(true);
    expect(m.id).toBe(String(data.id));
    expect(m.event).toBe(data.kind);
    expect(data.run_id).toBe(runId);
    expect(data.organization_id).toBe(fabric.organizationId);
    expect(typeof data.payload).toBe("object");
    expect(Date.parse(data.create_time)).not.toBeNaN();
    if (data.kind.startsWith("workflow.node.")) expect(data.node_key).toBeTruthy();
    return data;
  });
}

function expectIncreasingIds(events: any[]) {
  const ids = events.map((e) => BigInt(e.id));
  for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!, `event ids not increasing at ${i}: ${ids.join(",")}`).toBe(true);
}

const twoStep = (name: string) => ({
  name,
  nodes: [
    { key: "shout", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.topic" }, outputs: { text: "$context.shouted" } },
    { key: "copy", operation: "workflow.noop", depends_on: ["shout"], inputs: { v: "$context.shouted" }, outputs: { v: "$context.copy" } },
  ],
});
const gated = (name: string) => ({
  name,
  nodes: [
    { key: "gate", operation: "workflow.wait_signal", outputs: { "*": "$context.signal" } },
    { key: "after", operation: "workflow.noop", depends_on: ["gate"], inputs: { v: "$context.signal.answer" }, outputs: { v: "$context.answer" } },
  ],
});

describe("GET /v1/workflow-runs/{id}/events", () => {
  let completedRun: any;
  let replay: any[] = [];

  beforeAll(async () => {
    const wf = await createWorkflow(twoStep(unique("sse-done")));
    completedRun = await startRun(wf.id, { topic: "hey" });
    await waitForStatus(completedRun.id, ["completed"]);
  });

  it("replays every event of a completed run in increasing id order, then ends the stream", async () => {
    const stream = await openSse(eventsUrl(completedRun.id), auth());
    expect(stream.response.status).toBe(200);
    expect(stream.response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(stream.response.headers.get("cache-control")).toMatch(/no-cache/);
    expect(stream.response.headers.get("x-request-id")).toBeTruthy();
    const messages = await readAll(stream); // resolves only when the server closes the stream
    replay = parseEvents(messages, completedRun.id);
    expectIncreasingIds(replay);

    const kinds = replay.map((e) => e.kind);
    expect(kinds[0]).toBe("workflow.run.created");
    expect(kinds.at(-1)).toBe("workflow.run.completed");
    expect(kinds.filter((k) => terminal.has(k))).toHaveLength(1);
    expect(kinds).toEqual(expect.arrayContaining(["workflow.run.queued", "workflow.run.started", "workflow.node.completed"]));
    const completedNodes = replay.filter((e) => e.kind === "workflow.node.completed").map((e) => e.node_key);
    expect(completedNodes).toEqual(["shout", "copy"]);
    // Run-level events carry no node key.
    for (const e of replay.filter((x) => x.kind.startsWith("workflow.run."))) expect(e.node_key ?? "").toBe("");
  });

  it("a second replay is identical (the history is stable)", async () => {
    const again = parseEvents(await readAll(await openSse(eventsUrl(completedRun.id), auth())), completedRun.id);
    expect(again).toEqual(replay);
  });

  it("Last-Event-ID resumes exactly after that id: no gap, no duplicate", async () => {
    expect(replay.length).toBeGreaterThan(3);
    for (const k of [0, 1, Math.floor(replay.length / 2), replay.length - 2]) {
      const stream = await openSse(eventsUrl(completedRun.id), { ...auth(), "last-event-id": String(replay[k].id) });
      expect(stream.response.status).toBe(200);
      const resumed = parseEvents(await readAll(stream), completedRun.id);
      expect(resumed.map((e) => e.id)).toEqual(replay.slice(k + 1).map((e) => e.id));
      expect(resumed).toEqual(replay.slice(k + 1));
    }
    // An id below the first one replays everything; after_id does the same as the header.
    const all = parseEvents(await readAll(await openSse(eventsUrl(completedRun.id), { ...auth(), "last-event-id": "0" })), completedRun.id);
    expect(all).toEqual(replay);
    const k = Math.floor(replay.length / 2);
    const byQuery = parseEvents(await readAll(await openSse(eventsUrl(completedRun.id, `?after_id=${replay[k].id}`), auth())), completedRun.id);
    expect(byQuery).toEqual(replay.slice(k + 1));
  });

  it("resuming after the terminal event answers at once and ends (nothing more will come)", async () => {
    const last = replay.at(-1);
    expect(terminal.has(last.kind)).toBe(true);
    let res: Response | undefined;
    try {
      res = await fetch(eventsUrl(completedRun.id), { headers: { ...auth(), "last-event-id": String(last.id) }, signal: AbortSignal.timeout(3000) });
    } catch (err) {
      if ((err as Error).name !== "TimeoutError") throw err;
    }
    expect(res, "no response within 3 s to a resume after the run's terminal event (the server waits for an event that will never come)").toBeDefined();
    expect([200, 204]).toContain(res!.status);
    const text = await res!.text();
    expect(text.replace(/^:.*\n/gm, "").trim()).toBe("");
  });

  it("400 for a Last-Event-ID that is not an event id", async () => {
    for (const bad of ["abc", "-1", "1.5", "9".repeat(30)]) {
      const res = await fetch(eventsUrl(completedRun.id), { headers: { ...auth(), "last-event-id": bad } });
      expect(res.status, bad).toBe(400);
      expect((await expectValid(res, "/v1/workflow-runs/{id}/events", "get")).code).toBe("invalid_argument");
    }
  });

  it("a live run: events arrive as they happen, across a signal, and the stream ends after completion", async () => {
    const wf = await createWorkflow(gated(unique("sse-live")));
    const run = await startRun(wf.id, { topic: "live" });
    const stream = await openSse(eventsUrl(run.id), auth());
    expect(stream.response.status).toBe(200);
    expect(stream.response.headers.get("content-type")).toMatch(/^text\/event-stream/);

    const before = await readUntil(stream, (m) => m.event === "workflow.run.waiting");
    const beforeEvents = parseEvents(before, run.id);
    expect(beforeEvents.map((e) => e.kind)).toEqual(expect.arrayContaining(["workflow.run.created", "workflow.node.waiting", "workflow.run.waiting"]));
    expect(beforeEvents.find((e) => e.kind === "workflow.node.waiting").node_key).toBe("gate");
    expect(beforeEvents.some((e) => terminal.has(e.kind))).toBe(false);

    const signalled = await fabric.rest(`/v1/workflow-runs/${run.id}/signal`, { method: "POST", json: { payload: { answer: 42 } } });
    expect(signalled.status).toBe(200);
    await expectValid(signalled, "/v1/workflow-runs/{id}/signal", "post");

    const after = parseEvents(await readAll(stream), run.id);
    const all = [...beforeEvents, ...after];
    expectIncreasingIds(all);
    expect(after.filter((e) => e.kind === "workflow.node.completed").map((e) => e.node_key)).toEqual(["gate", "after"]);
    expect(after.at(-1).kind).toBe("workflow.run.completed");
    expect(after.filter((e) => terminal.has(e.kind))).toHaveLength(1);

    // What arrived live is exactly what a replay now returns.
    const replayed = parseEvents(await readAll(await openSse(eventsUrl(run.id), auth())), run.id);
    expect(replayed).toEqual(all);
    const done = await getRun(run.id);
    expect(done.status).toBe("completed");
    expect(done.context).toMatchObject({ topic: "live", signal: { answer: 42 }, answer: 42 });
  });

  it("resuming a live run at its newest event answers at once and then follows live", async () => {
    const wf = await createWorkflow(gated(unique("sse-resume-live")));
    const run = await startRun(wf.id);
    const first = await openSse(eventsUrl(run.id), auth());
    const seen = parseEvents(await readUntil(first, (m) => m.event === "workflow.run.waiting"), run.id);
    first.close();
    const lastId = String(seen.at(-1).id);

    // The response (headers) must not wait for the next event, which may be hours away.
    const opening = openSse(eventsUrl(run.id), { ...auth(), "last-event-id": lastId });
    const answered = await Promise.race([opening.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 3000))]);
    // Either way, signal the run so the stream (and the server's side of it) can end.
    const signalled = await fabric.rest(`/v1/workflow-runs/${run.id}/signal`, { method: "POST", json: { payload: { answer: 1 } } });
    await expectValid(signalled, "/v1/workflow-runs/{id}/signal", "post");
    const stream = await opening;
    const rest = parseEvents(await readAll(stream), run.id);
    expect(answered, "no response headers within 3 s when resuming at the newest event of a waiting run").toBe(true);
    expect(stream.response.status).toBe(200);
    expect(BigInt(rest[0].id) > BigInt(lastId)).toBe(true);
    expect(rest.at(-1).kind).toBe("workflow.run.completed");
  });

  it("a cancelled run's stream ends after workflow.run.cancelled", async () => {
    const wf = await createWorkflow(gated(unique("sse-cancel")));
    const run = await startRun(wf.id);
    const stream = await openSse(eventsUrl(run.id), auth());
    await readUntil(stream, (m) => m.event === "workflow.run.waiting");
    await expectValid(await fabric.rest(`/v1/workflow-runs/${run.id}/cancel`, { method: "POST", json: { reason: "stop" } }), "/v1/workflow-runs/{id}/cancel", "post");
    const rest = parseEvents(await readAll(stream), run.id);
    expect(rest.at(-1).kind).toBe("workflow.run.cancelled");
    expect(rest.at(-1).payload).toBeTypeOf("object");
  });

  it("404 problem (not an empty stream) for an unknown run, a non-UUID id; 401 without credentials", async () => {
    for (const id of ["00000000-0000-4000-8000-000000000000", "nope"]) {
      const res = await fetch(eventsUrl(id), { headers: { ...auth(), accept: "text/event-stream" } });
      expect(res.status).toBe(404);
      expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      expect((await expectValid(res, "/v1/workflow-runs/{id}/events", "get")).code).toBe("not_found");
    }
    const res = await fetch(eventsUrl(completedRun.id), { headers: { accept: "text/event-stream" } });
    expect(res.status).toBe(401);
    expect((await expectValid(res, "/v1/workflow-runs/{id}/events", "get")).code).toBe("unauthenticated");
  });
});

describe("health, contract and docs (anonymous)", () => {
  it("/healthz → 200 {status: ok}", async () => {
    const res = await fetch(`${fabric.restUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(await expectValid(res, "/healthz", "get")).toEqual({ status: "ok" });
  });

  it("/readyz → 200 {status: ready}", async () => {
    const res = await fetch(`${fabric.restUrl}/readyz`);
    expect(res.status).toBe(200);
    expect(await expectValid(res, "/readyz", "get")).toEqual({ status: "ready" });
  });

  it("/openapi.json is gen/openapi/openapi.json, naming this server (served-contract.ts)", async () => {
    const res = await fetch(`${fabric.restUrl}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const served = await expectValid(res, "/openapi.json", "get");
    const file = JSON.parse(readFileSync(openApiPath, "utf8"));
    expect(served.servers).toEqual([{ url: fabric.restUrl, description: "this server" }]);
    expect(served.info.description.endsWith(file.info.description)).toBe(true);
    expect({ ...served, servers: file.servers, info: { ...served.info, description: file.info.description } }).toEqual(file);
    expect(openApiPath).toMatch(/gen\/openapi\/openapi\.json$/);
  });

  it("/docs is an HTML page whose Swagger UI assets are served", async () => {
    const res = await fetch(`${fabric.restUrl}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain('src="/docs/assets/swagger-ui-bundle.js"');
    expect(html).toContain("/openapi.json");
    const assets = [...html.matchAll(/(?:src|href)="(\/docs\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toEqual(expect.arrayContaining(["/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"]));
    for (const asset of assets) {
      const a = await fetch(`${fabric.restUrl}${asset}`);
      expect(a.status, asset).toBe(200);
      const type = a.headers.get("content-type") ?? "";
      if (asset.endsWith(".js")) expect(type).toMatch(/javascript/);
      if (asset.endsWith(".css")) expect(type).toMatch(/^text\/css/);
      const body = await a.arrayBuffer();
      expect(body.byteLength, asset).toBeGreaterThan(asset.endsWith(".js") ? 100_000 : 100);
    }
  });
});
