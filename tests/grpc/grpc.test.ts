/**
 * The gRPC edge on the wire: a real Fabric on loopback, the generated service
 * descriptors, and three real Node transports (gRPC over HTTP/2, Connect over HTTP/1.1,
 * gRPC-Web over HTTP/1.1) against the one dual-protocol port. Every behaviour is
 * checked on each transport; raw malformed frames go through node:http2 directly.
 */
import { randomUUID } from "node:crypto";
import http2 from "node:http2";
import { fromJson, type JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunService, type Event, type Run } from "../../gen/proto/fabric/v1/run_pb.js";
import { ValidationIssueSchema, WorkflowService, WorkflowSpecSchema, type WorkflowSpec } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { eventually, smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";

const terminal = new Set(["workflow.run.completed", "workflow.run.failed", "workflow.run.cancelled"]);

const bearer =
  (key: string | undefined): Interceptor =>
  (next) =>
  (req) => {
    if (key) req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };

const spec = (json: unknown): WorkflowSpec => fromJson(WorkflowSpecSchema, json as JsonObject);

/** A workflow that stays live (waiting) until it is signalled. */
const gateWorkflow = (name: string) => ({
  name,
  nodes: [
    { key: "gate", operation: "workflow.wait_signal", config: { timeout_ms: 60_000 }, outputs: { approved: "$context.approved" } },
    { key: "after", operation: "text.transform_basic", config: { op: "upper" }, depends_on: ["gate"], inputs: { text: "$context.word" }, outputs: { text: "$context.loud" } },
  ],
});

/** Catches the ConnectError a call throws (fails when it does not throw one). */
async function connectError(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected the call to fail");
}

interface TransportCase {
  name: string;
  make(baseUrl: string, interceptors: Interceptor[]): Transport;
}

const sessionManagers: Http2SessionManager[] = [];

const transports: TransportCase[] = [
  {
    name: "gRPC over HTTP/2",
    // createGrpcTransport is HTTP/2 only (it forces httpVersion "2"; its options type has no httpVersion).
    make(baseUrl, interceptors) {
      const sessionManager = new Http2SessionManager(baseUrl);
      sessionManagers.push(sessionManager);
      return createGrpcTransport({ baseUrl, sessionManager, interceptors });
    },
  },
  { name: "Connect over HTTP/1.1", make: (baseUrl, interceptors) => createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors }) },
  { name: "gRPC-Web over HTTP/1.1", make: (baseUrl, interceptors) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors }) },
];

let fabric: TestFabric;

beforeAll(async () => {
  fabric = await startTestFabric();
});

afterAll(async () => {
  for (const m of sessionManagers) m.abort();
  await fabric?.close();
});

describe.each(transports)("$name", (tc) => {
  let workflows: Client<typeof WorkflowService>;
  let runs: Client<typeof RunService>;
  const clients = (key: string | undefined) => {
    const t = tc.make(fabric.grpcUrl, [bearer(key)]);
    return { workflows: createClient(WorkflowService, t), runs: createClient(RunService, t) };
  };
  const tag = tc.name.replace(/\W+/g, "-").toLowerCase();

  beforeAll(() => {
    ({ workflows, runs } = clients(fabric.apiKey));
  });

  async function finished(id: string): Promise<Run> {
    return eventually(async () => {
      const { run } = await runs.getRun({ id });
      return run && terminal.has(`workflow.run.${run.status}`) ? run : undefined;
    }, 15_000, `run ${id} to finish`);
  }

  async function startSmoke(input: JsonObject = { topic: "hello world" }) {
    const up = await workflows.upsertWorkflow({ spec: spec(smokeWorkflow) });
    const started = await runs.startRun({ workflowId: up.workflow!.id, input });
    return { workflow: up.workflow!, run: started.run!, created: started.created };
  }

  it("acceptance: UpsertWorkflow(smoke) → StartRun → GetRun completes with answer HELLO WORLD", async () => {
    const up = await workflows.upsertWorkflow({ spec: spec(smokeWorkflow) });
    expect(up.workflow?.name).toBe("smoke");
    expect(up.workflow?.spec?.nodes.map((n) => n.key)).toEqual(["shout", "gen"]);
    const started = await runs.startRun({ workflowId: up.workflow!.id, input: { topic: "hello world" } });
    expect(started.created).toBe(true);
    expect(started.run?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(started.run?.input).toEqual({ topic: "hello world" });
    const done = await finished(started.run!.id);
    expect(done.status).toBe("completed");
    expect(done.context?.["answer"]).toBe("HELLO WORLD");
    expect(done.nodes.map((n) => [n.key, n.status])).toEqual([
      ["shout", "succeeded"],
      ["gen", "succeeded"],
    ]);
  });

  it("answers with an x-request-id response header (and echoes a well-formed one)", async () => {
    let header: Headers | undefined;
    await workflows.listWorkflows({}, { onHeader: (h) => (header = h) });
    expect(header?.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const mine = `req-${randomUUID()}`;
    await workflows.listWorkflows({}, { headers: { "x-request-id": mine }, onHeader: (h) => (header = h) });
    expect(header?.get("x-request-id")).toBe(mine);
    await workflows.listWorkflows({}, { headers: { "x-request-id": "bad id with spaces" }, onHeader: (h) => (header = h) });
    expect(header?.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("an error carries exactly one x-request-id (the request's)", async () => {
    const mine = `req-${randomUUID()}`;
    const err = await connectError(runs.getRun({ id: randomUUID() }, { headers: { "x-request-id": mine } }));
    expect(err.code).toBe(Code.NotFound);
    // Not "id, id": the id must not be sent both as a response header and again as a trailer.
    expect(err.metadata.get("x-request-id")).toBe(mine);
  });

  it("WatchRun replays, then follows live, ends after the terminal event; after_id resumes exactly", async () => {
    const up = await workflows.upsertWorkflow({ spec: spec(gateWorkflow(`gate-watch-${tag}`)) });
    const { run } = await runs.startRun({ workflowId: up.workflow!.id, input: { word: "follow" } });
    const seen: Event[] = [];
    let signalledAt = -1;
    for await (const res of runs.watchRun({ id: run!.id }, { timeoutMs: 20_000 })) {
      const ev = res.event!;
      seen.push(ev);
      if (ev.kind === "workflow.node.waiting" && signalledAt < 0) {
        signalledAt = seen.length;
        // The stream is live: the events after this one can only arrive by following.
        await runs.signalRun({ id: run!.id, nodeKey: "gate", payload: { approved: true } });
      }
    }
    expect(signalledAt).toBeGreaterThan(0);
    expect(seen.length).toBeGreaterThan(signalledAt);
    const ids = seen.map((e) => e.id);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    expect(seen.every((e) => e.runId === run!.id)).toBe(true);
    expect(seen[0]?.kind).toBe("workflow.run.created");
    expect(seen.at(-1)?.kind).toBe("workflow.run.completed");
    expect(seen.filter((e) => terminal.has(e.kind))).toHaveLength(1);
    const kinds = seen.map((e) => e.kind);
    expect(kinds).toContain("workflow.node.waiting");
    expect(kinds.slice(signalledAt)).toContain("workflow.node.completed");

    // A replay of the finished run returns the same events and ends by itself.
    const replay: bigint[] = [];
    for await (const res of runs.watchRun({ id: run!.id }, { timeoutMs: 10_000 })) replay.push(res.event!.id);
    expect(replay).toEqual(ids);

    // after_id resumes exactly after the given event, from several points.
    for (const k of [0, Math.floor(ids.length / 2), ids.length - 2]) {
      const resumed: bigint[] = [];
      for await (const res of runs.watchRun({ id: run!.id, afterId: ids[k]! }, { timeoutMs: 10_000 })) resumed.push(res.event!.id);
      expect(resumed).toEqual(ids.slice(k + 1));
    }
    const done = await runs.getRun({ id: run!.id });
    expect(done.run?.context).toMatchObject({ approved: true, loud: "FOLLOW" });
  });

  it("WatchRun of an unknown run is NotFound", async () => {
    const err = await connectError(
      (async () => {
        for await (const _ of runs.watchRun({ id: randomUUID() }, { timeoutMs: 5_000 })) void _;
      })(),
    );
    expect(err.code).toBe(Code.NotFound);
    expect(err.metadata.get("fabric-error-code")).toBe("not_found");
  });

  const invalid: { what: string; code: string; path: string; nodes: unknown[] }[] = [
    {
      what: "a cycle",
      code: "cycle",
      path: "/nodes",
      nodes: [
        { key: "a", operation: "text.transform_basic", config: { op: "upper" }, depends_on: ["b"], inputs: { text: "$context.x" } },
        { key: "b", operation: "text.transform_basic", config: { op: "upper" }, depends_on: ["a"], inputs: { text: "$context.x" } },
      ],
    },
    {
      what: "an unknown dependency",
      code: "unknown_dependency",
      path: "/nodes/0/depends_on/0",
      nodes: [{ key: "a", operation: "text.transform_basic", config: { op: "upper" }, depends_on: ["ghost"], inputs: { text: "$context.x" } }],
    },
    {
      what: "a duplicate key",
      code: "duplicate_key",
      path: "/nodes/1/key",
      nodes: [
        { key: "a", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.x" } },
        { key: "a", operation: "text.transform_basic", config: { op: "lower" }, inputs: { text: "$context.x" } },
      ],
    },
    {
      what: "a malformed binding",
      code: "malformed_binding",
      path: "/nodes/0/inputs/text",
      nodes: [{ key: "a", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$ctx.x" } }],
    },
  ];

  it.each(invalid)("UpsertWorkflow with $what → InvalidArgument with ValidationIssue details, nothing stored", async ({ code, path, nodes }) => {
    const name = `bad-${code}-${tag}`;
    const err = await connectError(workflows.upsertWorkflow({ spec: spec({ name, nodes }) }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.metadata.get("fabric-error-code")).toBe("invalid_argument");
    const issues = err.findDetails(ValidationIssueSchema);
    expect(issues.length).toBeGreaterThan(0);
    expect(issues.map((i) => ({ code: i.code, path: i.path }))).toContainEqual({ code, path });
    for (const i of issues) expect(i.message).not.toBe("");
    const listed = await workflows.listWorkflows({ name });
    expect(listed.workflows).toEqual([]);
    // ValidateWorkflow reports the same issues without an error.
    const v = await workflows.validateWorkflow({ spec: spec({ name, nodes }) });
    expect(v.valid).toBe(false);
    expect(v.issues.map((i) => [i.path, i.code])).toEqual(issues.map((i) => [i.path, i.code]));
  });

  it("unknown ids are NotFound", async () => {
    for (const call of [() => runs.getRun({ id: randomUUID() }), () => runs.getRun({ id: "not-a-uuid" }), () => workflows.getWorkflow({ id: randomUUID() }), () => runs.cancelRun({ id: randomUUID() })]) {
      const err = await connectError(call());
      expect(err.code).toBe(Code.NotFound);
      expect(err.metadata.get("fabric-error-code")).toBe("not_found");
    }
  });

  it("another organization's run and workflow are NotFound (not PermissionDenied)", async () => {
    const { workflow, run } = await startSmoke();
    const other = clients((await fabric.otherOrg()).apiKey);
    for (const call of [
      () => other.runs.getRun({ id: run.id }),
      () => other.runs.cancelRun({ id: run.id }),
      () => other.runs.pauseRun({ id: run.id }),
      () => other.runs.rerunRun({ id: run.id }),
      () => other.workflows.getWorkflow({ id: workflow.id }),
      () => other.runs.startRun({ workflowId: workflow.id }),
    ]) {
      const err = await connectError(call());
      expect(err.code).toBe(Code.NotFound);
    }
    expect((await other.runs.listRuns({})).runs).toEqual([]);
    expect((await other.workflows.listWorkflows({})).workflows).toEqual([]);
    await finished(run.id);
  });

  it("no key (or a bad key) is Unauthenticated", async () => {
    const anon = clients(undefined);
    for (const call of [() => anon.workflows.listWorkflows({}), () => anon.runs.getRun({ id: randomUUID() }), () => anon.workflows.upsertWorkflow({ spec: spec(smokeWorkflow) })]) {
      const err = await connectError(call());
      expect(err.code).toBe(Code.Unauthenticated);
      expect(err.metadata.get("fabric-error-code")).toBe("unauthenticated");
    }
    const bad = clients("fab_abcdefgh_000000000000000000000000");
    const err = await connectError(bad.runs.listRuns({}));
    expect(err.code).toBe(Code.Unauthenticated);
  });

  it("cancelling a finished run is FailedPrecondition", async () => {
    const { run } = await startSmoke();
    expect((await finished(run.id)).status).toBe("completed");
    const err = await connectError(runs.cancelRun({ id: run.id }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.metadata.get("fabric-error-code")).toBe("run_finished");
    expect((await runs.getRun({ id: run.id })).run?.status).toBe("completed");
  });

  it("an idempotency key returns the same run with created=false", async () => {
    const up = await workflows.upsertWorkflow({ spec: spec(smokeWorkflow) });
    const idempotencyKey = `idem-${randomUUID()}`;
    const first = await runs.startRun({ workflowId: up.workflow!.id, input: { topic: "once" }, idempotencyKey });
    const second = await runs.startRun({ workflowId: up.workflow!.id, input: { topic: "twice" }, idempotencyKey });
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.run?.id).toBe(first.run?.id);
    expect(second.run?.input).toEqual({ topic: "once" });
    expect(second.run?.idempotencyKey).toBe(idempotencyKey);
    const listed = await runs.listRuns({ workflowId: up.workflow!.id, pageSize: 200 });
    expect(listed.runs.filter((r) => r.idempotencyKey === idempotencyKey)).toHaveLength(1);
    await finished(first.run!.id);
  });
});

describe("malformed gRPC frames (raw HTTP/2)", () => {
  type Answer = { status: number; grpcStatus?: string; grpcMessage?: string; body: Buffer };

  /** One gRPC call with a hand-made body; grpc-status may come in headers (trailers-only) or trailers. */
  function rawCall(session: http2.ClientHttp2Session, path: string, body: Buffer, extra: Record<string, string> = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        authorization: `Bearer ${fabric.apiKey}`,
        ...extra,
      });
      let status = 0;
      let grpcStatus: string | undefined;
      let grpcMessage: string | undefined;
      const chunks: Buffer[] = [];
      const take = (h: http2.IncomingHttpHeaders) => {
        if (h["grpc-status"] !== undefined) grpcStatus = String(h["grpc-status"]);
        if (h["grpc-message"] !== undefined) grpcMessage = decodeURIComponent(String(h["grpc-message"]));
      };
      req.on("response", (h) => {
        status = Number(h[":status"]);
        take(h);
      });
      req.on("trailers", take);
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => resolve({ status, grpcStatus, grpcMessage, body: Buffer.concat(chunks) }));
      req.on("error", reject);
      req.setTimeout(10_000, () => reject(new Error("raw call timed out")));
      req.end(body);
    });
  }

  const frame = (payload: Buffer, declaredLength = payload.length, flags = 0) => {
    const head = Buffer.alloc(5);
    head.writeUInt8(flags, 0);
    head.writeUInt32BE(declaredLength, 1);
    return Buffer.concat([head, payload]);
  };

  // Field 1 (id, length-delimited) claiming 2^28 bytes, then an invalid wire type 7.
  const garbage = Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x01, 0x0f, 0xff, 0xfe, 0x00, 0x13]);

  it.each([
    { what: "a garbage protobuf payload", body: frame(garbage) },
    { what: "a frame shorter than its declared length", body: frame(Buffer.from([0x0a, 0x02]), 64) },
    { what: "a compressed flag without grpc-encoding", body: frame(Buffer.from([0x0a, 0x00]), 2, 1) },
    { what: "a truncated frame header", body: Buffer.from([0x00, 0x00]) },
  ])("$what → a gRPC error status (InvalidArgument/Internal), not a crash; the server keeps serving", async ({ body }) => {
    const session = http2.connect(fabric.grpcUrl);
    try {
      const a = await rawCall(session, "/fabric.v1.RunService/GetRun", body);
      expect(a.status).toBe(200);
      expect([String(Code.InvalidArgument), String(Code.Internal)]).toContain(a.grpcStatus);
      expect(a.grpcMessage ?? "").not.toMatch(/\bat .*\.(ts|js):\d+/); // no stack trace
      // The same connection still answers a well-formed call (GetRun of an unknown id → NotFound).
      const unknownId = Buffer.from(randomUUID());
      const ok = await rawCall(session, "/fabric.v1.RunService/GetRun", frame(Buffer.concat([Buffer.from([0x0a, unknownId.length]), unknownId])));
      expect(ok.grpcStatus).toBe(String(Code.NotFound));
    } finally {
      session.close();
    }
    // And a fresh client on every transport is still served.
    for (const tc of transports) {
      const t = tc.make(fabric.grpcUrl, [bearer(fabric.apiKey)]);
      await expect(createClient(WorkflowService, t).listWorkflows({})).resolves.toBeDefined();
    }
  });
});
