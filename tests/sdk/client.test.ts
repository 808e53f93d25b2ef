/**
 * The TypeScript SDK (src/sdk) against a real Fabric on loopback: the smoke workflow end to end,
 * the event stream (order, end, resumption after dropped connections), typed errors,
 * pagination, run control, and the typed gRPC clients.
 */
import { randomUUID } from "node:crypto";
import { fromJson, type JsonObject } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkflowSpecSchema } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { FabricClient, readSse, type FetchLike, type RunEvent, type WorkflowSpec } from "../../src/sdk/index.js";
import { eventually, smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { collect, gateWorkflow, rejection } from "./support.js";

let fabric: TestFabric;
let client: FabricClient;
let seq = 0;
const unique = (base: string) => `${base}-${Date.now().toString(36)}-${++seq}`;
const terminal = new Set(["workflow.run.completed", "workflow.run.failed", "workflow.run.cancelled"]);

const newClient = (extra: Partial<ConstructorParameters<typeof FabricClient>[0]> = {}) =>
  new FabricClient({ baseUrl: fabric.restUrl, apiKey: fabric.apiKey, grpcBaseUrl: fabric.grpcUrl, retry: { initialDelayMs: 10, maxDelayMs: 50 }, ...extra });

function expectIncreasing(ids: string[]) {
  for (let i = 1; i < ids.length; i++) expect(BigInt(ids[i]!) > BigInt(ids[i - 1]!), `ids not increasing at ${i}: ${ids.join(",")}`).toBe(true);
}

/**
 * A fetch that cuts the body of the n-th event-stream response (0-based) after
 * `cutAfter[n]` complete SSE messages, as a dropped connection does (or, with
 * `how.problem`, ends it with that problem as an `event: error` message); records every
 * event-stream request's Last-Event-ID.
 */
function droppingFetch(cutAfter: number[], how: { problem?: Record<string, unknown> } = {}) {
  const streamRequests: (string | null)[] = [];
  const fetchImpl: FetchLike = async (input, init) => {
    const res = await fetch(input, init);
    if (!String(input).endsWith("/events")) return res;
    const n = streamRequests.length;
    streamRequests.push(new Headers(init.headers).get("last-event-id"));
    const limit = cutAfter[n];
    if (limit === undefined || !res.body) return res;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let pending = "";
    let messages = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const chunk = await reader.read();
        if (chunk.done) return controller.close();
        pending += decoder.decode(chunk.value, { stream: true });
        let out = "";
        let i: number;
        while ((i = pending.indexOf("\n\n")) >= 0) {
          out += pending.slice(0, i + 2);
          pending = pending.slice(i + 2);
          if (++messages === limit) {
            controller.enqueue(encoder.encode(out));
            if (how.problem) {
              // The server's way to end a stream that failed after it started (e.g. a subscriber that fell behind).
              controller.enqueue(encoder.encode(`event: error\ndata: ${JSON.stringify(how.problem)}\n\n`));
              controller.close();
            } else controller.error(new TypeError("terminated: connection reset by test"));
            await reader.cancel().catch(() => {});
            return;
          }
        }
        if (out) controller.enqueue(encoder.encode(out));
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
  return { fetchImpl, streamRequests };
}

beforeAll(async () => {
  fabric = await startTestFabric();
  client = newClient();
});

afterAll(async () => {
  client?.close();
  await fabric?.close();
});

describe("FabricClient over REST", () => {
  it("acceptance: upsert(smoke) → start → wait completes with context.answer HELLO WORLD", async () => {
    const wf = await client.workflows.upsert(smokeWorkflow);
    expect(wf).toMatchObject({ name: "smoke", organization_id: fabric.organizationId });
    expect(wf.spec?.nodes.map((n) => n.key)).toEqual(["shout", "gen"]);
    expect(await client.workflows.get(wf.id)).toEqual(wf);
    // An identical spec returns the same version.
    expect((await client.workflows.upsert(smokeWorkflow)).id).toBe(wf.id);

    const run = await client.runs.start({ workflow_id: wf.id, input: { topic: "hello world" }, state: { ticket: 7 }, metadata: { via: "sdk" } });
    expect(run.status).toBe("pending");
    expect(run.input).toEqual({ topic: "hello world" });
    const done = await client.runs.wait(run.id, { timeoutMs: 15_000 });
    expect(done.status).toBe("completed");
    expect(done.context?.["answer"]).toBe("HELLO WORLD");
    expect(done.state).toEqual({ ticket: 7 });
    expect(done.nodes.map((n) => [n.key, n.status])).toEqual([
      ["shout", "succeeded"],
      ["gen", "succeeded"],
    ]);
    // By name, and idempotently.
    const key = randomUUID();
    const a = await client.runs.start({ workflow_name: "smoke", input: { topic: "again" }, idempotency_key: key });
    const b = await client.runs.start({ workflow_name: "smoke", input: { topic: "again" }, idempotency_key: key });
    expect(b.id).toBe(a.id);
    expect(a.workflow_id).toBe(wf.id);
    expect((await client.runs.wait(a.id)).context?.["answer"]).toBe("AGAIN");
  });

  it("watch yields the run's events in order, follows live, and ends after the terminal event", async () => {
    const wf = await client.workflows.upsert(gateWorkflow(unique("gate-watch")));
    const run = await client.runs.start({ workflow_id: wf.id, input: { word: "follow" } });
    const seen: RunEvent[] = [];
    let signalledAt = -1;
    for await (const ev of client.runs.watch(run.id)) {
      seen.push(ev);
      if (ev.kind === "workflow.node.waiting" && signalledAt < 0) {
        signalledAt = seen.length;
        // From here on, events can only arrive by following live.
        await client.runs.signal(run.id, { node_key: "gate", payload: { approved: true } });
      }
    }
    expect(signalledAt).toBeGreaterThan(0);
    expect(seen.length).toBeGreaterThan(signalledAt);
    const ids = seen.map((e) => String(e.id));
    expectIncreasing(ids);
    expect(seen.every((e) => e.run_id === run.id && e.organization_id === fabric.organizationId)).toBe(true);
    expect(seen[0]?.kind).toBe("workflow.run.created");
    expect(seen.at(-1)?.kind).toBe("workflow.run.completed");
    expect(seen.filter((e) => terminal.has(e.kind))).toHaveLength(1);

    // A replay of the finished run: the same events, then the iterator ends by itself.
    expect((await collect(client.runs.watch(run.id))).map((e) => String(e.id))).toEqual(ids);
    // afterId resumes exactly after the given event; after the terminal one, nothing comes and the iterator still ends.
    const k = Math.floor(ids.length / 2);
    expect((await collect(client.runs.watch(run.id, { afterId: ids[k]! }))).map((e) => String(e.id))).toEqual(ids.slice(k + 1));
    expect(await collect(client.runs.watch(run.id, { afterId: BigInt(ids.at(-1)!) }))).toEqual([]);
    expect((await client.runs.get(run.id)).context).toMatchObject({ approved: true, loud: "FOLLOW" });
  });

  it("watch resumes after dropped connections with Last-Event-ID: no gap, no duplicate", async () => {
    const { fetchImpl, streamRequests } = droppingFetch([3, 2]);
    const flaky = newClient({ fetch: fetchImpl });
    const wf = await client.workflows.upsert(gateWorkflow(unique("gate-drop")));
    const run = await client.runs.start({ workflow_id: wf.id, input: { word: "resume" } });
    const seen: RunEvent[] = [];
    let signalled = false;
    for await (const ev of flaky.runs.watch(run.id)) {
      seen.push(ev);
      if (ev.kind === "workflow.node.waiting" && !signalled) {
        signalled = true;
        await client.runs.signal(run.id, { payload: { approved: true } });
      }
    }
    const ids = seen.map((e) => String(e.id));
    // Two drops → three connections; each reconnect resumes after the last event delivered.
    expect(streamRequests).toEqual([null, ids[2], ids[4]]);
    expect(new Set(ids).size).toBe(ids.length);
    expectIncreasing(ids);
    expect(seen.at(-1)?.kind).toBe("workflow.run.completed");
    // Exactly what an undisturbed stream of the finished run holds.
    expect((await collect(client.runs.watch(run.id))).map((e) => String(e.id))).toEqual(ids);
  });

  it("watch resumes after a retryable stream error event and throws a non-retryable one", async () => {
    const problem = (status: number, code: string) => ({ type: `https://fabric.dev/problems/${code}`, title: code, status, detail: "injected", code, request_id: "injected-1" });
    const wf = await client.workflows.upsert(gateWorkflow(unique("gate-error")));
    const run = await client.runs.start({ workflow_id: wf.id, input: { word: "err" } });
    const internal = droppingFetch([2], { problem: problem(500, "internal") });
    const seen: RunEvent[] = [];
    for await (const ev of newClient({ fetch: internal.fetchImpl }).runs.watch(run.id)) {
      seen.push(ev);
      if (ev.kind === "workflow.node.waiting") await client.runs.signal(run.id, { payload: { approved: true } });
    }
    const ids = seen.map((e) => String(e.id));
    expect(internal.streamRequests).toEqual([null, ids[1]]);
    expect((await collect(client.runs.watch(run.id))).map((e) => String(e.id))).toEqual(ids);

    const denied = droppingFetch([2], { problem: problem(403, "permission_denied") });
    const got: RunEvent[] = [];
    const err = await rejection(
      (async () => {
        for await (const ev of newClient({ fetch: denied.fetchImpl }).runs.watch(run.id)) got.push(ev);
      })(),
    );
    expect(err).toMatchObject({ status: 403, code: "permission_denied", requestId: "injected-1" });
    expect(got.map((e) => String(e.id))).toEqual(ids.slice(0, 2));
    expect(denied.streamRequests).toHaveLength(1);
  });

  it("watch reconnects a stream that went silent (idle watchdog) without losing events", async () => {
    const { fetchImpl, streamRequests } = droppingFetch([]);
    const watchdog = newClient({ fetch: fetchImpl, retry: { idleTimeoutMs: 300, maxAttempts: 20, initialDelayMs: 5, maxDelayMs: 10 } });
    const wf = await client.workflows.upsert(gateWorkflow(unique("gate-idle")));
    const run = await client.runs.start({ workflow_id: wf.id, input: { word: "quiet" } });
    const seen: RunEvent[] = [];
    let signalled: Promise<unknown> | undefined;
    for await (const ev of watchdog.runs.watch(run.id)) {
      seen.push(ev);
      // Nothing (not even a ping: they come every 15 s) flows while the run waits: the
      // watchdog must reconnect. The run moves on once it has, twice — however long that takes.
      if (ev.kind === "workflow.node.waiting" && !signalled) {
        const before = streamRequests.length;
        signalled = eventually(async () => (streamRequests.length >= before + 2 ? true : undefined), 60_000, "two reconnects while the run waits").finally(() =>
          client.runs.signal(run.id, { payload: { approved: true } }),
        );
        signalled.catch(() => {}); // awaited below, after the stream ends
      }
    }
    await signalled;
    const ids = seen.map((e) => String(e.id));
    // Every reconnect resumes after the last event seen (none seen yet: no Last-Event-ID).
    expect(streamRequests.slice(1).every((h) => h === null || ids.includes(h))).toBe(true);
    expect(streamRequests.filter((h) => h !== null).length).toBeGreaterThanOrEqual(2);
    expect((await collect(client.runs.watch(run.id))).map((e) => String(e.id))).toEqual(ids);
  });

  it("watch gives up after the bounded retries when the server stays unreachable", async () => {
    const wf = await client.workflows.upsert(gateWorkflow(unique("gate-give-up")));
    const run = await client.runs.start({ workflow_id: wf.id });
    let calls = 0;
    const refused = newClient({
      fetch: async (input, init) => {
        if (!String(input).endsWith("/events")) return fetch(input, init);
        calls++;
        throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1") });
      },
      retry: { maxAttempts: 2, initialDelayMs: 5, maxDelayMs: 5 },
    });
    const err = await rejection(collect(refused.runs.watch(run.id)));
    expect(err).toMatchObject({ status: 0, code: "network_error" });
    expect(err.detail).toContain("ECONNREFUSED");
    expect(calls).toBe(3); // the first attempt and two retries
    await client.runs.cancel(run.id, "test over");
  });

  it("wait resolves with a failed run, times out with code timeout, and honours an abort signal", async () => {
    const wf = await client.workflows.upsert(gateWorkflow(unique("gate-wait")));
    const run = await client.runs.start({ workflow_id: wf.id });
    const started = Date.now();
    const err = await rejection(client.runs.wait(run.id, { timeoutMs: 150 }));
    expect(err).toMatchObject({ status: 0, code: "timeout" });
    expect(Date.now() - started).toBeLessThan(5_000);

    const abort = new AbortController();
    setTimeout(() => abort.abort(), 50);
    await expect(client.runs.wait(run.id, { signal: abort.signal })).rejects.toMatchObject({ name: "AbortError" });

    // Breaking out of watch early closes the stream (and does not hang).
    for await (const ev of client.runs.watch(run.id)) if (ev.kind === "workflow.run.created") break;

    const cancelled = await client.runs.cancel(run.id, "no longer needed");
    expect(cancelled.status).toBe("cancelled");
    const done = await client.runs.wait(run.id);
    expect(done.status).toBe("cancelled");
    const events = await collect(client.runs.watch(run.id));
    expect(events.at(-1)?.kind).toBe("workflow.run.cancelled");
  });

  it("pause, resume, signal and rerun", async () => {
    const wf = await client.workflows.upsert(gateWorkflow(unique("gate-control")));
    const run = await client.runs.start({ workflow_id: wf.id, input: { word: "ctl" } });
    for await (const ev of client.runs.watch(run.id)) if (ev.kind === "workflow.node.waiting") break;
    expect((await client.runs.pause(run.id)).status).toBe("paused");
    expect(["running", "waiting", "pending"]).toContain((await client.runs.resume(run.id)).status);
    await client.runs.signal(run.id, { node_key: "gate", payload: { approved: "yes" } });
    expect((await client.runs.wait(run.id, { timeoutMs: 10_000 })).context).toMatchObject({ approved: "yes", loud: "CTL" });

    // A wait that times out fails the run; rerun starts a new one from the failed node.
    const short = await client.workflows.upsert(gateWorkflow(unique("gate-timeout"), 100));
    const failing = await client.runs.start({ workflow_id: short.id, input: { word: "x" } });
    const failed = await client.runs.wait(failing.id, { timeoutMs: 10_000 });
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatchObject({ code: "node_failed", node_key: "gate" });
    const rerun = await client.runs.rerun(failing.id);
    expect(rerun.id).not.toBe(failing.id);
    expect(rerun.rerun_of).toBe(failing.id);
    const e = await rejection(client.runs.rerun((await client.runs.wait(run.id)).id));
    expect(e).toMatchObject({ status: 409, code: "run_not_failed" });
  });
});

describe("typed errors", () => {
  it("an invalid workflow is invalid_argument with every issue; validate reports the same without throwing", async () => {
    const bad: WorkflowSpec = {
      name: unique("bad"),
      nodes: [
        { key: "a", operation: "text.transform_basic", config: { op: "upper" }, depends_on: ["b"], inputs: { text: "$context.x" } },
        { key: "b", operation: "text.transform_basic", config: { op: "upper" }, depends_on: ["a"], inputs: { text: "$context.x" } },
      ],
    };
    const err = await rejection(client.workflows.upsert(bad, { headers: { "x-request-id": "sdk-test-1" } }));
    expect(err).toMatchObject({ status: 400, code: "invalid_argument", requestId: "sdk-test-1" });
    expect(err.issues.map((i) => i.code)).toContain("cycle");
    expect(err.detail).toBeTruthy();
    expect(err.problem?.type).toMatch(/^https:\/\//);
    expect(err.message).toContain("invalid_argument");

    const verdict = await client.workflows.validate(bad);
    expect(verdict.valid).toBe(false);
    expect(verdict.issues.map((i) => i.code)).toEqual(err.issues.map((i) => i.code));
    expect(await client.workflows.validate(smokeWorkflow)).toEqual({ valid: true, issues: [] });
  });

  it("an unknown run is not_found on get, control and watch (not retried)", async () => {
    const id = randomUUID();
    for (const call of [() => client.runs.get(id), () => client.runs.cancel(id), () => client.runs.signal(id, {}), () => collect(client.runs.watch(id))]) {
      const err = await rejection(call());
      expect(err).toMatchObject({ status: 404, code: "not_found" });
      expect(err.requestId).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(await rejection(client.workflows.get(randomUUID()))).toMatchObject({ status: 404, code: "not_found" });
    // A bad parameter: the issues point at it.
    const err = await rejection(client.runs.list({ page_token: "nope" }));
    expect(err).toMatchObject({ status: 400, code: "invalid_argument" });
    expect(err.issues[0]?.path).toBe("/page_token");
  });

  it("bad credentials are unauthenticated; an unreachable server is network_error", async () => {
    const stranger = new FabricClient({ baseUrl: fabric.restUrl, apiKey: "fab_aaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbb" });
    expect(await rejection(stranger.workflows.list())).toMatchObject({ status: 401, code: "unauthenticated" });
    const anonymous = new FabricClient({ baseUrl: fabric.restUrl });
    expect(await rejection(anonymous.runs.list())).toMatchObject({ status: 401, code: "unauthenticated" });
    const nowhere = new FabricClient({ baseUrl: "http://127.0.0.1:9", apiKey: fabric.apiKey });
    const err = await rejection(nowhere.runs.get(randomUUID()));
    expect(err).toMatchObject({ status: 0, code: "network_error" });
    expect(err.retryable).toBe(true);
    expect(() => new FabricClient({ baseUrl: fabric.restUrl, apiKey: "a", token: "b" })).toThrow(TypeError);
  });
});

describe("pagination", () => {
  it("list returns one page; listAll walks every page", async () => {
    const name = unique("paged");
    const versions: string[] = [];
    for (let i = 0; i < 5; i++) versions.push((await client.workflows.upsert({ ...gateWorkflow(name), description: `v${i}` })).id);

    const requests: string[] = [];
    const counting = newClient({ fetch: (input, init) => (requests.push(String(input)), fetch(input, init)) });
    const first = await counting.workflows.list({ name, page_size: 2 });
    expect(first.data).toHaveLength(2);
    expect(first.next_page_token).not.toBe("");
    requests.length = 0;
    const all: string[] = [];
    for await (const wf of counting.workflows.listAll({ name, page_size: 2 })) all.push(wf.id);
    expect(all.sort()).toEqual([...versions].sort());
    expect(requests).toHaveLength(3);
    // Starting from a token continues from there.
    const rest: string[] = [];
    for await (const wf of counting.workflows.listAll({ name, page_size: 2, page_token: first.next_page_token })) rest.push(wf.id);
    expect([...first.data.map((w) => w.id), ...rest].sort()).toEqual([...versions].sort());

    const runIds: string[] = [];
    for (let i = 0; i < 3; i++) runIds.push((await client.runs.start({ workflow_name: name })).id);
    const listed: string[] = [];
    for await (const r of client.runs.listAll({ workflow_name: name, page_size: 2 })) listed.push(r.id);
    expect(listed.sort()).toEqual(runIds.sort());
    for (const id of runIds) await client.runs.cancel(id);
    const cancelled: string[] = [];
    for await (const r of client.runs.listAll({ workflow_name: name, status: "cancelled", page_size: 1 })) cancelled.push(r.id);
    expect(cancelled).toHaveLength(3);
  });
});

describe("client.grpc", () => {
  it("typed Connect clients with the same auth: upsert, start, watch, get", async () => {
    const { workflows, runs } = client.grpc;
    const up = await workflows.upsertWorkflow({ spec: fromJson(WorkflowSpecSchema, smokeWorkflow as unknown as JsonObject) });
    expect(up.workflow?.name).toBe("smoke");
    const started = await runs.startRun({ workflowId: up.workflow!.id, input: { topic: "over grpc" } });
    expect(started.created).toBe(true);
    const kinds: string[] = [];
    for await (const res of runs.watchRun({ id: started.run!.id }, { timeoutMs: 15_000 })) kinds.push(res.event!.kind);
    expect(kinds.at(-1)).toBe("workflow.run.completed");
    const { run } = await runs.getRun({ id: started.run!.id });
    expect(run?.context?.["answer"]).toBe("OVER GRPC");
    // The same run over REST.
    expect((await client.runs.get(run!.id)).context).toEqual(run?.context);
  });

  it("gRPC errors are FabricErrors with the Fabric code, issues and request id", async () => {
    const { workflows, runs } = client.grpc;
    const err = await rejection(runs.getRun({ id: randomUUID() }, { headers: { "x-request-id": "sdk-grpc-1" } }));
    expect(err).toMatchObject({ status: 404, code: "not_found", requestId: "sdk-grpc-1" });
    const bad = fromJson(WorkflowSpecSchema, { name: unique("bad"), nodes: [{ key: "a", operation: "no.such_op" }] });
    const invalid = await rejection(workflows.upsertWorkflow({ spec: bad }));
    expect(invalid).toMatchObject({ status: 400, code: "invalid_argument" });
    expect(invalid.issues.map((i) => i.code)).toContain("unknown_operation");
    const streamErr = await rejection(collect((async function* () {
      for await (const res of runs.watchRun({ id: randomUUID() })) yield res.event as unknown as RunEvent;
    })()));
    expect(streamErr).toMatchObject({ code: "not_found" });
    // Without grpcBaseUrl there is no client.grpc.
    expect(() => new FabricClient({ baseUrl: fabric.restUrl }).grpc).toThrow(/grpcBaseUrl/);
  });
});

describe("readSse", () => {
  it("parses fields, comments, multi-line data and CRLF across chunk boundaries", async () => {
    const text = ": ping\r\nid: 1\r\nevent: a\r\ndata: x\r\ndata: y\r\n\r\nretry: 10\nid: 2\ndata: {}\n\n: ping\n\ndata: partial";
    const bytes = new TextEncoder().encode(text);
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += 3) c.enqueue(bytes.slice(i, i + 3));
        c.close();
      },
    });
    const out = [];
    for await (const m of readSse(body)) out.push(m);
    expect(out).toEqual([
      { id: "1", event: "a", data: "x\ny", retry: undefined },
      { id: "2", event: "message", data: "{}", retry: 10 },
    ]);
  });
});
