/**
 * Shared by the execution-plane behaviour tests: the run-control operations over either
 * transport (answers normalised to the REST JSON shape, which is proto3 JSON with proto
 * field names on both), the run's events straight from the `events` table, and polling.
 */
import { randomUUID } from "node:crypto";
import { fromJson, toJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { sql } from "drizzle-orm";
import { expect } from "vitest";
import { RunSchema, RunService, type Run } from "../../gen/proto/fabric/v1/run_pb.js";
import { query } from "../../src/db/database.js";
import type { FakeServer, RecordedRequest } from "../../src/providers/fakes/index.js";
import { jsonOptions } from "../../src/control-plane/contract.js";
import { eventually, type TestFabric } from "../helpers/fabric.js";

export type Via = "rest" | "grpc";
export const transports: readonly Via[] = ["rest", "grpc"];

/** A run as REST answers it (`data`), which is also what a gRPC Run becomes in proto3 JSON. */
export type RunJson = Record<string, any> & { id: string; status: string; context: Record<string, any>; nodes: NodeJson[] };
export type NodeJson = Record<string, any> & { key: string; status: string; attempt: number };

export interface EventRow {
  id: number;
  kind: string;
  node_key: string | null;
  payload: Record<string, any>;
  created_at: Date;
}

export interface StartRunArgs {
  workflow_id: string;
  input?: JsonObject;
  idempotency_key?: string;
  priority?: number;
  state?: JsonValue;
  fail_fast?: boolean;
  timeout_ms?: number;
}

export interface RunControl {
  readonly via: Via;
  /** The run and whether it was created (false: an idempotency key matched). */
  start(args: StartRunArgs): Promise<{ run: RunJson; created: boolean }>;
  get(id: string): Promise<RunJson>;
  cancel(id: string, reason?: string): Promise<RunJson>;
  pause(id: string): Promise<RunJson>;
  resume(id: string): Promise<RunJson>;
  signal(id: string, payload: JsonObject, nodeKey?: string): Promise<RunJson>;
  rerun(id: string): Promise<RunJson>;
  /** The run's event kinds from its event stream (SSE on REST, WatchRun on gRPC), to the terminal one. */
  watchKinds(id: string): Promise<string[]>;
}

const grpcClients = new WeakMap<TestFabric, Client<typeof RunService>>();

export function grpcRunClient(fabric: TestFabric): Client<typeof RunService> {
  let client = grpcClients.get(fabric);
  if (!client) {
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${fabric.apiKey}`);
      return next(req);
    };
    client = createClient(RunService, createGrpcTransport({ baseUrl: fabric.grpcUrl, interceptors: [auth] }) /* gRPC: always HTTP/2 */);
    grpcClients.set(fabric, client);
  }
  return client;
}

const runJson = (run: Run | undefined): RunJson => toJson(RunSchema, run!, jsonOptions) as RunJson;

export function runControl(fabric: TestFabric, via: Via): RunControl {
  return via === "rest" ? restControl(fabric) : grpcControl(fabric);
}

function restControl(fabric: TestFabric): RunControl {
  const call = async (path: string, json?: unknown, expected = [200]) => {
    const res = await fabric.rest(path, json === undefined ? {} : { method: "POST", json });
    const body: any = await res.json();
    if (!expected.includes(res.status)) throw new RestError(res.status, body);
    return { status: res.status, run: body.data as RunJson };
  };
  return {
    via: "rest",
    async start(args) {
      const r = await call("/v1/workflow-runs", args, [200, 202]);
      return { run: r.run, created: r.status === 202 };
    },
    get: async (id) => (await call(`/v1/workflow-runs/${id}`)).run,
    cancel: async (id, reason) => (await call(`/v1/workflow-runs/${id}/cancel`, reason ? { reason } : {})).run,
    pause: async (id) => (await call(`/v1/workflow-runs/${id}/pause`, {})).run,
    resume: async (id) => (await call(`/v1/workflow-runs/${id}/resume`, {})).run,
    signal: async (id, payload, nodeKey) => (await call(`/v1/workflow-runs/${id}/signal`, { payload, ...(nodeKey ? { node_key: nodeKey } : {}) })).run,
    rerun: async (id) => (await call(`/v1/workflow-runs/${id}/rerun`, {}, [202])).run,
    async watchKinds(id) {
      const res = await fabric.rest(`/v1/workflow-runs/${id}/events`, { headers: { accept: "text/event-stream" } });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      // The stream ends by itself after the run's terminal event.
      const text = await res.text();
      return text
        .split("\n")
        .filter((l) => l.startsWith("event: "))
        .map((l) => l.slice("event: ".length));
    },
  };
}

function grpcControl(fabric: TestFabric): RunControl {
  const client = grpcRunClient(fabric);
  return {
    via: "grpc",
    async start(args) {
      const r = await client.startRun({
        workflowId: args.workflow_id,
        input: args.input,
        idempotencyKey: args.idempotency_key,
        priority: args.priority,
        state: args.state === undefined ? undefined : fromJson(ValueSchema, args.state),
        failFast: args.fail_fast,
        timeoutMs: args.timeout_ms,
      });
      return { run: runJson(r.run), created: r.created };
    },
    get: async (id) => runJson((await client.getRun({ id })).run),
    cancel: async (id, reason) => runJson((await client.cancelRun({ id, reason })).run),
    pause: async (id) => runJson((await client.pauseRun({ id })).run),
    resume: async (id) => runJson((await client.resumeRun({ id })).run),
    signal: async (id, payload, nodeKey) => runJson((await client.signalRun({ id, payload, nodeKey })).run),
    rerun: async (id) => runJson((await client.rerunRun({ id })).run),
    async watchKinds(id) {
      const kinds: string[] = [];
      for await (const r of client.watchRun({ id })) kinds.push(r.event!.kind);
      return kinds;
    },
  };
}

/** Stores a workflow (a fresh name unless given) and returns its definition id. */
export async function defineWorkflow(fabric: TestFabric, spec: { name?: string; nodes: unknown[]; run_timeout_ms?: number }): Promise<string> {
  const res = await fabric.rest("/v1/workflows", { method: "POST", json: { name: `wf-${randomUUID().slice(0, 8)}`, ...spec } });
  const body: any = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(201);
  return body.data.id;
}

export async function runEvents(fabric: TestFabric, runId: string): Promise<EventRow[]> {
  const rows = await query<any>(fabric.database.db, sql`SELECT id::float8 AS id, kind, node_key, payload, created_at FROM events WHERE run_id = ${runId} ORDER BY id`);
  return rows.map((r) => ({ id: Number(r.id), kind: r.kind, node_key: r.node_key, payload: r.payload, created_at: new Date(r.created_at) }));
}

/**
 * The kinds of the state transitions of a node (or with `null`, of the run), in order.
 * `workflow.node.progress` is left out: it is not a transition, and whether a streaming step
 * writes any depends on how fast its tokens arrive (executor/provider-runtime.ts reports at
 * most once per interval, none when every token lands within one) — `progressOf` reads it.
 */
export const kindsOf = (events: EventRow[], nodeKey?: string | null) =>
  events.filter((e) => (nodeKey === undefined || e.node_key === nodeKey) && e.kind !== "workflow.node.progress").map((e) => e.kind);
/** A node's progress events, if it wrote any: each after its start and before its completion, the deltas concatenating to exactly its text. */
export function expectProgressWithinStep(events: EventRow[], nodeKey: string, finalText: string) {
  const progress = ofKind(events, "workflow.node.progress", nodeKey);
  const started = ofKind(events, "workflow.node.started", nodeKey).at(-1)!;
  const completed = ofKind(events, "workflow.node.completed", nodeKey)[0]!;
  for (const p of progress) expect(p.id > started.id && p.id < completed.id, `${nodeKey}: progress ${p.id} within ${started.id}..${completed.id}`).toBe(true);
  if (progress.length) expect(progress.map((p) => p.payload.delta).join(""), `${nodeKey}: progress deltas`).toBe(finalText);
}
export const ofKind = (events: EventRow[], kind: string, nodeKey?: string) => events.filter((e) => e.kind === kind && (nodeKey === undefined || e.node_key === nodeKey));

export const terminal = ["completed", "failed", "cancelled"];

/** Polls the run (over REST) until `done` holds for it. */
export function waitForRun(fabric: TestFabric, id: string, done: (run: RunJson) => boolean = (r) => terminal.includes(r.status), timeoutMs = 15_000, what = "the run to finish"): Promise<RunJson> {
  const ctl = restControl(fabric);
  return eventually(async () => {
    const run = await ctl.get(id);
    return done(run) ? run : undefined;
  }, timeoutMs, what);
}

export const nodeOf = (run: RunJson, key: string): NodeJson => {
  const n = run.nodes.find((x) => x.key === key);
  expect(n, `node ${key}`).toBeDefined();
  return n!;
};

export const statuses = (run: RunJson): Record<string, string> => Object.fromEntries(run.nodes.map((n) => [n.key, n.status]));

export async function nodeRow(fabric: TestFabric, runId: string, key: string) {
  const [r] = await query<any>(fabric.database.db, sql`SELECT id::float8 AS id, status, attempt, lease_owner, lease_expires_at, available_at FROM workflow_run_nodes WHERE run_id = ${runId} AND node_key = ${key}`);
  return r as { id: number; status: string; attempt: number; lease_owner: string | null; lease_expires_at: Date | null; available_at: Date };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The fake provider's `n`-th request (1-based), once it has arrived. */
export const providerRequest = (fake: FakeServer, n = 1): Promise<RecordedRequest> =>
  eventually(async () => (fake.requests.length >= n ? fake.requests[n - 1] : undefined), 10_000, `${n} provider request(s)`);

/** Resolves once the fake saw the request end, or fails the test after `ms`. */
export async function closedWithin(req: RecordedRequest, ms = 5000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([req.closed, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("the provider request did not end")), ms)))]);
  clearTimeout(timer);
}

/** A REST answer other than the expected success; `problem` is the RFC 9457 body. */
export class RestError extends Error {
  constructor(
    readonly status: number,
    readonly problem: any,
  ) {
    super(`HTTP ${status}: ${JSON.stringify(problem)}`);
  }
}

/** Asserts a control call failed the same way on either transport: HTTP status or Connect code, and the stable error code. */
export async function expectRejected(p: Promise<unknown>, want: { http: number; grpc: Code; code: string }): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err instanceof RestError) {
    expect(err.status).toBe(want.http);
    expect(err.problem.code).toBe(want.code);
  } else {
    expect(err, "the call should have failed").toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(want.grpc);
    expect((err as ConnectError).metadata.get("fabric-error-code")).toBe(want.code);
  }
}
