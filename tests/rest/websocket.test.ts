/**
 * The event streams over WebSockets (GET /v1/workflow-runs/{id}/events/ws and
 * GET /v1/events/ws): the same cases as the SSE tests (tests/rest/events.test.ts,
 * tests/events/stream.test.ts) — replay, resume with after_id, live follow, the end after
 * the terminal event, filters, visibility, refusals — with the SSE stream as the oracle
 * where both can be read; and the WebSocket's own bounds (per-principal limit, client
 * message size, ping/pong liveness, shutdown).
 */
import { randomUUID } from "node:crypto";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openApiDocument } from "../../src/control-plane/contract.js";
import { apiKeys, memberships, principals, teams } from "../../src/db/schema.js";
import { newApiKey } from "../../src/services/identity/authenticator.js";
import { eventually, smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { expectValid } from "../helpers/openapi.js";
import { openSse, readAll } from "./sse.js";
import { openedWs, openWs, readAllWs, readUntilWs, type WsStream } from "./ws.js";

let fabric: TestFabric;
let seq = 0;
const unique = (base: string) => `${base}-${Date.now().toString(36)}-${++seq}`;
const terminal = new Set(["workflow.run.completed", "workflow.run.failed", "workflow.run.cancelled"]);
const maxPerPrincipal = 3;

/** The schema of each message (`x-fabric-message-schema` of the 101 response). */
const validators = (() => {
  const ajv = new Ajv2020({ strict: false, allErrors: true, formats: { int32: true, int64: true } });
  (addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
  ajv.addSchema(openApiDocument, "openapi.json");
  const of = (path: string) => ajv.compile({ $ref: `openapi.json${openApiDocument.paths[path].get.responses["101"]["x-fabric-message-schema"].$ref}` });
  return { run: of("/v1/workflow-runs/{id}/events/ws"), org: of("/v1/events/ws") };
})();

beforeAll(async () => {
  fabric = await startTestFabric({ webSockets: { heartbeatMs: 200, maxPerPrincipal } });
});
afterAll(() => fabric?.close());

const auth = (key = fabric.apiKey) => ({ authorization: `Bearer ${key}` });
const runWsUrl = (id: string, query = "") => `${fabric.restUrl}/v1/workflow-runs/${id}/events/ws${query}`;
const orgWsUrl = (query = "") => `${fabric.restUrl}/v1/events/ws${query}`;

async function createWorkflow(spec: Record<string, unknown>) {
  return (await expectValid(await fabric.rest("/v1/workflows", { method: "POST", json: spec }), "/v1/workflows", "post")).data;
}
async function startRun(workflowId: string, input: Record<string, unknown> = {}) {
  const res = await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: workflowId, input } });
  expect(res.status).toBe(202);
  return (await res.json()).data;
}
const waitForStatus = (id: string, statuses: string[]) =>
  eventually(async () => {
    const r = (await (await fabric.rest(`/v1/workflow-runs/${id}`)).json()).data;
    return statuses.includes(r.status) ? r : undefined;
  }, 15_000, `run ${id} to reach ${statuses.join("|")}`);

/** Every message is `{"event": Event}` matching the document; returns the events. */
function eventsOf(messages: any[], which: "run" | "org"): any[] {
  return messages.map((m) => {
    expect(validators[which](m), `message does not match the document: ${JSON.stringify(validators[which].errors)}\n${JSON.stringify(m)}`).toBe(true);
    expect(Object.keys(m)).toEqual(["event"]);
    return m.event;
  });
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

describe("GET /v1/workflow-runs/{id}/events/ws", () => {
  let completedRun: any;
  let sseReplay: any[];

  beforeAll(async () => {
    const wf = await createWorkflow(twoStep(unique("ws-done")));
    completedRun = await startRun(wf.id, { topic: "hey" });
    await waitForStatus(completedRun.id, ["completed"]);
    sseReplay = (await readAll(await openSse(`${fabric.restUrl}/v1/workflow-runs/${completedRun.id}/events`, auth()))).map((m) => JSON.parse(m.data));
  });

  it("replays exactly what the SSE stream replays, then closes with 1000 after the terminal event", async () => {
    const opened = await openWs(runWsUrl(completedRun.id), auth());
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    expect(opened.requestId).toBeTruthy();
    const { messages, code } = await readAllWs(opened.stream);
    const events = eventsOf(messages, "run");
    expect(events).toEqual(sseReplay);
    expect(events[0].kind).toBe("workflow.run.created");
    expect(events.at(-1).kind).toBe("workflow.run.completed");
    expect(events.filter((e) => terminal.has(e.kind))).toHaveLength(1);
    expect(code).toBe(1000);
  });

  it("after_id resumes exactly after that id; after the terminal event it closes at once with nothing", async () => {
    for (const k of [0, Math.floor(sseReplay.length / 2), sseReplay.length - 2]) {
      const { messages, code } = await readAllWs(await openedWs(runWsUrl(completedRun.id, `?after_id=${sseReplay[k].id}`), auth()));
      expect(eventsOf(messages, "run")).toEqual(sseReplay.slice(k + 1));
      expect(code).toBe(1000);
    }
    const end = await readAllWs(await openedWs(runWsUrl(completedRun.id, `?after_id=${sseReplay.at(-1).id}`), auth()), 3000);
    expect(end.messages).toEqual([]);
    expect(end.code).toBe(1000);
  });

  it("a live run: events arrive as they happen, across a signal, and the socket closes after completion", async () => {
    const wf = await createWorkflow(gated(unique("ws-live")));
    const run = await startRun(wf.id);
    const s = await openedWs(runWsUrl(run.id), auth());
    const before = eventsOf(await readUntilWs(s, (m) => m.event?.kind === "workflow.run.waiting"), "run");
    expect(before.some((e) => terminal.has(e.kind))).toBe(false);
    await fabric.rest(`/v1/workflow-runs/${run.id}/signal`, { method: "POST", json: { payload: { answer: 42 } } });
    const { messages, code } = await readAllWs(s);
    const after = eventsOf(messages, "run");
    expect(after.at(-1).kind).toBe("workflow.run.completed");
    expect(code).toBe(1000);
    // What arrived live is what a replay returns.
    const replay = (await readAll(await openSse(`${fabric.restUrl}/v1/workflow-runs/${run.id}/events`, auth()))).map((m) => JSON.parse(m.data));
    expect([...before, ...after]).toEqual(replay);
  });

  it("a cancelled run's socket closes after workflow.run.cancelled", async () => {
    const wf = await createWorkflow(gated(unique("ws-cancel")));
    const run = await startRun(wf.id);
    const s = await openedWs(runWsUrl(run.id), auth());
    await readUntilWs(s, (m) => m.event?.kind === "workflow.run.waiting");
    await fabric.rest(`/v1/workflow-runs/${run.id}/cancel`, { method: "POST", json: { reason: "stop" } });
    const { messages, code } = await readAllWs(s);
    expect(eventsOf(messages, "run").at(-1).kind).toBe("workflow.run.cancelled");
    expect(code).toBe(1000);
  });

  it("refuses before the upgrade, as problem+json: 401 without credentials, 404 for an unknown run or another tenant's run, 400 for a bad after_id", async () => {
    const anonymous = await openWs(runWsUrl(completedRun.id));
    expect(anonymous.ok).toBe(false);
    if (!anonymous.ok) {
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers["content-type"]).toMatch(/^application\/problem\+json/);
      expect(anonymous.body.code).toBe("unauthenticated");
      expect(anonymous.body.request_id).toBeTruthy();
    }
    const wrongKey = await openWs(runWsUrl(completedRun.id), auth("fab_not_a_key"));
    expect(wrongKey.ok ? 101 : wrongKey.status).toBe(401);

    for (const id of ["00000000-0000-4000-8000-000000000000", "nope"]) {
      const r = await openWs(runWsUrl(id), auth());
      expect(r.ok ? 101 : r.status).toBe(404);
    }
    // Positive control: the same run opens for its own organization (first test); another's key gets a 404.
    const other = await fabric.otherOrg();
    const foreign = await openWs(runWsUrl(completedRun.id), auth(other.apiKey));
    expect(foreign.ok ? 101 : foreign.status).toBe(404);
    if (!foreign.ok) expect(foreign.body.code).toBe("not_found");

    const bad = await openWs(runWsUrl(completedRun.id, "?after_id=abc"), auth());
    expect(bad.ok ? 101 : bad.status).toBe(400);
  });

  it("a plain GET (no upgrade) is refused with 426 and Upgrade: websocket", async () => {
    const res = await fetch(runWsUrl(completedRun.id), { headers: auth() });
    expect(res.status).toBe(426);
    expect(res.headers.get("upgrade")).toBe("websocket");
    expect((await res.json()).code).toBe("upgrade_required");
  });

  it("browsers authenticate with the fabric.bearer.<token> subprotocol; the server selects fabric.v1 and never echoes the token", async () => {
    const s = await openedWs(runWsUrl(completedRun.id), {}, { protocols: ["fabric.v1", `fabric.bearer.${fabric.apiKey}`] });
    expect(s.protocol).toBe("fabric.v1");
    const { messages } = await readAllWs(s);
    expect(eventsOf(messages, "run")).toEqual(sseReplay);
  });
});

describe("GET /v1/events/ws", () => {
  let teamId: string;
  let teamMemberKey: string;
  let orgWorkflowId: string;
  let teamWorkflowId: string;

  beforeAll(async () => {
    const db = fabric.database.db;
    const [team] = await db.insert(teams).values({ id: randomUUID(), organizationId: fabric.organizationId, slug: "ws-streamers", name: "WS" }).returning();
    teamId = team!.id;
    const pid = randomUUID();
    await db.insert(principals).values({ id: pid, kind: "user", email: `${pid}@ws.test`, displayName: "team member" });
    await db.insert(memberships).values({ id: randomUUID(), organizationId: fabric.organizationId, principalId: pid, teamId, role: "member" });
    const k = newApiKey();
    await db.insert(apiKeys).values({ id: randomUUID(), organizationId: fabric.organizationId, principalId: pid, name: "team", prefix: k.prefix, secretHash: k.secretHash });
    teamMemberKey = k.raw;
    orgWorkflowId = (await createWorkflow({ ...smokeWorkflow, name: unique("ws-org") })).id;
    teamWorkflowId = (await createWorkflow({ ...smokeWorkflow, name: unique("ws-team"), team_id: teamId })).id;
  });

  const completed = (runId: string) => (m: any) => m.event?.kind === "workflow.run.completed" && m.event.run_id === runId;
  /** The hub subscribes the stream before the 101, so events after the open are never missed. */
  const open = (key: string, query = "") => openedWs(orgWsUrl(query), auth(key));

  it("delivers a run's events live, in id order", async () => {
    const s = await open(fabric.apiKey);
    const run = await startRun(orgWorkflowId, { topic: "x" });
    const got = eventsOf(await readUntilWs(s, completed(run.id)), "org").filter((e) => e.run_id === run.id);
    s.close();
    expect(got.map((e) => e.kind)).toContain("workflow.node.completed");
    const ids = got.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });

  it("filters by kind pattern and by run", async () => {
    const byKind = await open(fabric.apiKey, "?kinds=workflow.run.*");
    const a = await startRun(orgWorkflowId, { topic: "x" });
    const got = eventsOf(await readUntilWs(byKind, completed(a.id)), "org");
    byKind.close();
    expect(got.length).toBeGreaterThan(2);
    expect(got.every((e) => e.kind.startsWith("workflow.run."))).toBe(true);

    const waitWf = (await createWorkflow({ name: unique("ws-wait"), nodes: [{ key: "w", operation: "workflow.wait_signal" }] })).id;
    const b = await startRun(waitWf);
    const other = await startRun(orgWorkflowId, { topic: "x" });
    const byRun = await open(fabric.apiKey, `?run_id=${b.id}`);
    await fabric.rest(`/v1/workflow-runs/${b.id}/signal`, { method: "POST", json: { payload: { ok: true } } });
    const mine = eventsOf(await readUntilWs(byRun, completed(b.id)), "org");
    byRun.close();
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((e) => e.run_id === b.id)).toBe(true);
    expect(mine.some((e) => e.run_id === other.id)).toBe(false);

    const badKind = await openWs(orgWsUrl("?kinds=not%20a%20kind"), auth());
    expect(badKind.ok ? 101 : badKind.status).toBe(400);
  });

  it("replays after after_id without gaps or duplicates, then follows live", async () => {
    const first = await open(fabric.apiKey);
    const run = await startRun(orgWorkflowId, { topic: "x" });
    const all = eventsOf(await readUntilWs(first, completed(run.id)), "org");
    first.close();
    const cut = all[1]!;
    const resumed = await open(fabric.apiKey, `?after_id=${cut.id}`);
    const next = await startRun(orgWorkflowId, { topic: "x" });
    const again = eventsOf(await readUntilWs(resumed, completed(next.id)), "org");
    resumed.close();
    expect(again.filter((e) => e.run_id === run.id).map((e) => e.id)).toEqual(all.filter((e) => e.run_id === run.id && Number(e.id) > Number(cut.id)).map((e) => e.id));
    expect(new Set(again.map((e) => e.id)).size).toBe(again.length);
  });

  it("shows a team member only their team's runs and no organization-wide events", async () => {
    const s = await open(teamMemberKey);
    const hidden = await startRun(orgWorkflowId, { topic: "x" });
    const shown = await startRun(teamWorkflowId, { topic: "x" });
    const got = eventsOf(await readUntilWs(s, completed(shown.id)), "org");
    s.close();
    expect(got.some((e) => e.run_id === shown.id)).toBe(true);
    expect(got.some((e) => e.run_id === hidden.id)).toBe(false);
    expect(got.every((e) => e.run_id)).toBe(true);
  });

  it("never shows another organization's events (positive control: our own stream sees them)", async () => {
    const other = await fabric.otherOrg();
    const theirs = await open(other.apiKey);
    const mine = await open(fabric.apiKey);
    const run = await startRun(orgWorkflowId, { topic: "x" });
    expect(eventsOf(await readUntilWs(mine, completed(run.id)), "org").some((e) => e.run_id === run.id)).toBe(true);
    mine.close();
    theirs.close();
    const seen: any[] = [];
    for await (const m of theirs.messages) seen.push(m);
    expect(seen.filter((m) => m.event?.run_id === run.id)).toEqual([]);
  });

  it("ends with an error message and close 1008 when its API key is revoked", async () => {
    const k = newApiKey();
    const keyId = randomUUID();
    await fabric.database.db.insert(apiKeys).values({ id: keyId, organizationId: fabric.organizationId, principalId: fabric.principalId, name: "ws-short-lived", prefix: k.prefix, secretHash: k.secretHash });
    const s = await open(k.raw);
    await fabric.rest(`/v1/organizations/${fabric.organizationId}/api-keys/${keyId}/revoke`, { method: "POST", json: {} });
    const { messages, code } = await readAllWs(s);
    expect(messages.at(-1)?.error?.code).toBe("unauthenticated");
    expect(messages.at(-1)?.error?.request_id).toBeTruthy();
    expect(code).toBe(1008);
  });
});

describe("WebSocket bounds", () => {
  it(`refuses the (${maxPerPrincipal}+1)th open stream of one principal with 429 too_many_streams, and frees the slot on close`, async () => {
    const open: WsStream[] = [];
    for (let i = 0; i < maxPerPrincipal; i++) open.push(await openedWs(orgWsUrl(), auth()));
    const refused = await openWs(orgWsUrl(), auth());
    expect(refused.ok ? 101 : refused.status).toBe(429);
    if (!refused.ok) expect(refused.body.code).toBe("too_many_streams");
    // Another principal is not affected.
    const other = await fabric.otherOrg();
    const theirs = await openedWs(orgWsUrl(), auth(other.apiKey));
    theirs.close();
    open.pop()!.close();
    const again = await eventually(async () => {
      const r = await openWs(orgWsUrl(), auth());
      return r.ok ? r.stream : undefined;
    }, 5000, "a freed slot");
    await Promise.all([...open, again].map((s) => (s.close(), s.closed)));
  });

  /** Opens once the previous tests' slots are free (the server frees them when it sees the close). */
  const openWhenFree = (opts: { autoPong?: boolean } = {}) =>
    eventually(async () => {
      const r = await openWs(orgWsUrl(), auth(), opts);
      return r.ok ? r.stream : undefined;
    }, 5000, "a free slot");

  it("closes a client that sends a message larger than the limit (1009)", async () => {
    const s = await openWhenFree();
    s.socket.send("x".repeat(64 * 1024));
    expect((await s.closed).code).toBe(1009);
  });

  it("pings; a client that answers stays open, one that does not is dropped", async () => {
    const answering = await openWhenFree();
    const silent = await openWhenFree({ autoPong: false });
    let pings = 0;
    answering.socket.on("ping", () => pings++);
    const dropped = await Promise.race([silent.closed.then((c) => c.code), new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
    expect(dropped).toBe(1006); // terminated without a close frame
    expect(pings).toBeGreaterThan(0);
    expect(answering.socket.readyState).toBe(answering.socket.OPEN);
    answering.close();
  });
});
