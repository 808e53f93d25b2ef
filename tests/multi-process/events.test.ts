/**
 * Cross-process event delivery, with real processes on real Postgres: one `fabric
 * executor` and TWO `fabric serve` control planes share one database. Subscribers on both
 * control planes (SSE and gRPC WatchRun) watch a multi-node fan-out/fan-in run; every
 * event of the run arrives exactly once, in increasing id order, at every subscriber, and
 * equals the events table. A subscriber dropped mid-run resumes on the OTHER control plane
 * with Last-Event-ID with no gap and no duplicate. Another organization sees nothing of
 * the run — and its own stream, open all along, proves it was alive by delivering the other
 * organization's own event, emitted after the run's last one.
 */
import { randomUUID } from "node:crypto";
import { asc, eq } from "drizzle-orm";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunService } from "../../gen/proto/fabric/v1/run_pb.js";
import { events } from "../../src/db/schema.js";
import { bootstrapDevOrganization } from "../../src/services/tenancy/dev-organization.js";
import { createTestDatabase, engine, type TestDatabase } from "../helpers/database.js";
import { eventually } from "../helpers/fabric.js";
import { insertOrganization, member } from "../helpers/fixtures.js";
import { spawnExecutor, type ExecutorProcess } from "../helpers/processes.js";
import { spawnServe, type ServeProcess } from "../helpers/serve-process.js";
import { openSse, type SseStream } from "../rest/sse.js";

/** One event as every transport and the table can express it. */
interface Ev {
  id: string;
  kind: string;
  node_key: string;
  payload: unknown;
}

const terminal = new Set(["workflow.run.completed", "workflow.run.failed", "workflow.run.cancelled"]);

/** gate → fan-out (4) → fan_in → gate2 → tail: 8 nodes, two places where the run waits for us. */
const workflow = (name: string) => ({
  name,
  nodes: [
    { key: "gate", operation: "workflow.wait_signal", config: { timeout_ms: 600_000 }, outputs: { "*": "$context.signal" } },
    { key: "up", operation: "text.transform_basic", config: { op: "upper" }, depends_on: ["gate"], inputs: { text: "$context.signal.word" }, outputs: { text: "$context.up" } },
    { key: "low", operation: "text.transform_basic", config: { op: "lower" }, depends_on: ["gate"], inputs: { text: "$context.signal.word" }, outputs: { text: "$context.low" } },
    { key: "trim", operation: "text.transform_basic", config: { op: "trim" }, depends_on: ["gate"], inputs: { text: "$context.signal.word" }, outputs: { text: "$context.trimmed" } },
    { key: "copy", operation: "workflow.noop", depends_on: ["gate"], inputs: { v: "$context.signal.word" }, outputs: { v: "$context.copy" } },
    { key: "join", operation: "workflow.fan_in", depends_on: ["up", "low", "trim", "copy"], outputs: { by_key: "$context.joined" } },
    { key: "gate2", operation: "workflow.wait_signal", config: { timeout_ms: 600_000 }, depends_on: ["join"], outputs: { "*": "$context.signal2" } },
    { key: "tail", operation: "workflow.noop", depends_on: ["gate2"], inputs: { v: "$context.up" }, outputs: { v: "$context.tail" } },
  ],
});

describe.skipIf(engine !== "postgres")("events across processes: two control planes, one executor (real Postgres)", () => {
  let database: TestDatabase;
  let apiKey: string;
  let otherKey: string;
  let otherOrgId: string;
  const planes: ServeProcess[] = [];
  let executor: ExecutorProcess | undefined;
  const sessions: Http2SessionManager[] = [];
  const streams: SseStream[] = [];

  beforeAll(async () => {
    database = await createTestDatabase({ engine: "postgres" });
    apiKey = (await bootstrapDevOrganization(database.db)).apiKey;
    // Another organization with its own owner key.
    otherOrgId = await insertOrganization({ database }, { slugPrefix: "other", name: "Other" });
    otherKey = (await member({ database }, otherOrgId, "owner")).key;

    const env = { DATABASE_URL: database.url!, DATABASE_POOL_MAX: "4" };
    planes.push(...(await Promise.all([spawnServe(env), spawnServe(env)])));
    executor = spawnExecutor({ ...env, WORKER_CONCURRENCY: "4", WORKER_POLL_INTERVAL: "100ms" }, `events-exec-${randomUUID().slice(0, 6)}`);
  }, 300_000);

  afterAll(async () => {
    for (const s of streams) s.close();
    for (const s of sessions) s.abort();
    executor?.child.kill("SIGKILL");
    await executor?.exited;
    await Promise.all(planes.map((p) => p.stop()));
    await database?.close();
  }, 30_000);

  const rest = async (base: string, path: string, init: { method?: string; json?: unknown; key?: string } = {}) => {
    const res = await fetch(base + path, {
      method: init.method ?? "GET",
      headers: { authorization: `Bearer ${init.key ?? apiKey}`, ...(init.json !== undefined ? { "content-type": "application/json" } : {}) },
      body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
    });
    return { status: res.status, body: (await res.json().catch(() => null)) as any };
  };

  const eventsPath = (runId: string) => `/v1/workflow-runs/${runId}/events`;

  /** The run's events as the table holds them. */
  const tableEvents = async (runId: string): Promise<Ev[]> => {
    const rows = await database.db.select().from(events).where(eq(events.runId, runId)).orderBy(asc(events.id));
    return rows.map((r) => ({ id: String(r.id), kind: r.kind, node_key: r.nodeKey ?? "", payload: r.payload }));
  };

  const fromSse = (data: string): Ev => {
    const j = JSON.parse(data);
    return { id: String(j.id), kind: j.kind, node_key: j.node_key ?? "", payload: j.payload ?? {} };
  };

  /** Opens an SSE stream and collects its events until the server ends it (or `stopAfter` says so). */
  async function sseSubscriber(base: string, runId: string, headers: Record<string, string> = {}, stopAfter?: (e: Ev, all: Ev[]) => boolean) {
    const stream = await openSse(base + eventsPath(runId), { authorization: `Bearer ${apiKey}`, ...headers });
    streams.push(stream);
    expect(stream.response.status).toBe(200);
    const got: Ev[] = [];
    const errors: string[] = [];
    const done = (async () => {
      for await (const m of stream.messages) {
        if (m.event === "error") {
          errors.push(m.data);
          continue;
        }
        const e = fromSse(m.data);
        expect(m.id).toBe(e.id);
        expect(m.event).toBe(e.kind);
        got.push(e);
        if (stopAfter?.(e, got)) {
          stream.close();
          return "dropped" as const;
        }
      }
      return "ended" as const;
    })();
    return { got, errors, done, stream };
  }

  function grpcSubscriber(base: string, runId: string) {
    const sm = new Http2SessionManager(base);
    sessions.push(sm);
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${apiKey}`);
      return next(req);
    };
    const client = createClient(RunService, createGrpcTransport({ baseUrl: base, sessionManager: sm, interceptors: [auth] }));
    const got: Ev[] = [];
    const done = (async () => {
      for await (const res of client.watchRun({ id: runId }, { timeoutMs: 500_000 })) {
        const e = res.event!;
        got.push({ id: String(e.id), kind: e.kind, node_key: e.nodeKey ?? "", payload: e.payload ?? {} });
      }
    })();
    return { got, done, client };
  }

  const expectExactlyOnceInOrder = (label: string, got: Ev[], table: Ev[]) => {
    const ids = got.map((e) => BigInt(e.id));
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!, `${label}: ids not strictly increasing at ${i}: ${ids.join(",")}`).toBe(true);
    expect(got.map((e) => e.id), `${label}: ids vs table`).toEqual(table.map((e) => e.id));
    expect(got, `${label}: events vs table`).toEqual(table);
  };

  it(
    "every event of a multi-node run reaches every subscriber on both control planes once, in order; a dropped subscriber resumes on the other plane",
    async () => {
      const [A, B] = planes as [ServeProcess, ServeProcess];
      const wf = await rest(A.restUrl, "/v1/workflows", { method: "POST", json: workflow(`events-mp-${randomUUID().slice(0, 6)}`) });
      expect(wf.status, JSON.stringify(wf.body)).toBeLessThan(300);
      const started = await rest(B.restUrl, "/v1/workflow-runs", { method: "POST", json: { workflow_id: wf.body.data.id, input: {} } });
      expect(started.status, JSON.stringify(started.body)).toBeLessThan(300);
      const runId: string = started.body.data.id;

      // The executor claims the gate and the run waits for our signal.
      await eventually(async () => ((await tableEvents(runId)).some((e) => e.kind === "workflow.node.waiting" && e.node_key === "gate") ? true : undefined), 120_000, "the run to wait at gate");

      // Subscribers on both planes: SSE on A and B, gRPC on A and B, and one SSE on A that drops at gate2.
      const sseA = await sseSubscriber(A.restUrl, runId);
      const sseB = await sseSubscriber(B.restUrl, runId);
      const grpcA = grpcSubscriber(A.grpcUrl, runId);
      const grpcB = grpcSubscriber(B.grpcUrl, runId);
      const dropper = await sseSubscriber(A.restUrl, runId, {}, (e) => e.kind === "workflow.node.waiting" && e.node_key === "gate2");
      // Another organization: the run's stream is a 404 on both planes and both transports.
      for (const base of [A.restUrl, B.restUrl]) {
        const res = await fetch(base + eventsPath(runId), { headers: { authorization: `Bearer ${otherKey}`, accept: "text/event-stream" } });
        expect(res.status).toBe(404);
        await res.body?.cancel();
      }
      for (const base of [A.grpcUrl, B.grpcUrl]) {
        const sm = new Http2SessionManager(base);
        sessions.push(sm);
        const other = createClient(RunService, createGrpcTransport({ baseUrl: base, sessionManager: sm, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${otherKey}`), next(req))] }));
        const err = await (async () => {
          for await (const _ of other.watchRun({ id: runId }, { timeoutMs: 120_000 })) void _;
        })().then(
          () => null,
          (e) => e,
        );
        expect(err).toBeInstanceOf(ConnectError);
        expect((err as ConnectError).code).toBe(Code.NotFound);
      }
      // The other organization's firehose, on B, for the whole run: none of this run's events.
      // Everything it delivers is kept, errors included, so that a broken or silent stream fails
      // the positive control below instead of passing as "saw nothing".
      const otherFirehose = await openSse(B.restUrl + "/v1/events/stream", { authorization: `Bearer ${otherKey}` });
      streams.push(otherFirehose);
      expect(otherFirehose.response.status).toBe(200);
      const otherSeen: Ev[] = [];
      const otherErrors: string[] = [];
      const otherDone = (async () => {
        for await (const m of otherFirehose.messages) {
          if (m.event === "error") otherErrors.push(m.data);
          else if (m.data) otherSeen.push(fromSse(m.data));
        }
      })();

      // Every subscriber has the replayed history before the run moves on.
      await eventually(async () => ([sseA.got, sseB.got, grpcA.got, grpcB.got, dropper.got].every((g) => g.some((e) => e.kind === "workflow.node.waiting")) ? true : undefined), 120_000, "subscribers to replay the history");

      // Signal gate on plane B: the fan-out/fan-in runs on the executor; the run waits again at gate2.
      const s1 = await rest(B.restUrl, `/v1/workflow-runs/${runId}/signal`, { method: "POST", json: { node_key: "gate", payload: { word: "  Fabric  " } } });
      expect(s1.status, JSON.stringify(s1.body)).toBe(200);
      expect(await dropper.done).toBe("dropped");
      const dropped = dropper.got.slice();
      const lastSeen = dropped.at(-1)!.id;
      expect(dropped.some((e) => e.kind === "workflow.node.completed" && e.node_key === "join")).toBe(true);

      // Resume on the OTHER plane (B) with Last-Event-ID, while the run is still live.
      const resumed = await sseSubscriber(B.restUrl, runId, { "last-event-id": lastSeen });
      const s2 = await rest(A.restUrl, `/v1/workflow-runs/${runId}/signal`, { method: "POST", json: { node_key: "gate2", payload: { ok: true } } });
      expect(s2.status, JSON.stringify(s2.body)).toBe(200);

      const timeout = <T>(p: Promise<T>, what: string) =>
        Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`timed out: ${what}`)), 180_000))]);
      await timeout(Promise.all([sseA.done, sseB.done, grpcA.done, grpcB.done, resumed.done]), "all streams to end after the terminal event");

      const table = await tableEvents(runId);
      expect(table.at(-1)!.kind).toBe("workflow.run.completed");
      expect(table.filter((e) => e.kind === "workflow.node.completed").map((e) => e.node_key).sort()).toEqual(["copy", "gate", "gate2", "join", "low", "tail", "trim", "up"]);
      expect(table.filter((e) => terminal.has(e.kind))).toHaveLength(1);

      expect(sseA.errors).toEqual([]);
      expect(sseB.errors).toEqual([]);
      expect(resumed.errors).toEqual([]);
      expectExactlyOnceInOrder("SSE on A", sseA.got, table);
      expectExactlyOnceInOrder("SSE on B", sseB.got, table);
      expectExactlyOnceInOrder("gRPC on A", grpcA.got, table);
      expectExactlyOnceInOrder("gRPC on B", grpcB.got, table);
      // Dropped on A + resumed on B = the table: no gap, no duplicate.
      expect(resumed.got.length).toBeGreaterThan(0);
      expect(BigInt(resumed.got[0]!.id) > BigInt(lastSeen)).toBe(true);
      expectExactlyOnceInOrder("dropped on A + resumed on B", [...dropped, ...resumed.got], table);

      // Positive control: the other organization creates a team (on plane A) after the run's
      // last event; its firehose on B must deliver that event. Events arrive in id order, so
      // receiving it proves the stream was live across every id the run used.
      const team = await rest(A.restUrl, `/v1/organizations/${otherOrgId}/teams`, { method: "POST", json: { slug: `other-${randomUUID().slice(0, 6)}`, name: "Other team" }, key: otherKey });
      expect(team.status, JSON.stringify(team.body)).toBe(201);
      const teamId: string = team.body.data.id;
      const own = await eventually(async () => otherSeen.find((e) => e.kind === "team.created" && (e.payload as { team_id?: string }).team_id === teamId), 120_000, "the other organization's own event on its stream");
      expect(BigInt(own.id) > BigInt(table.at(-1)!.id)).toBe(true);
      otherFirehose.close();
      await otherDone;
      expect(otherErrors).toEqual([]);
      expect(otherSeen.filter((e) => table.some((t) => t.id === e.id))).toEqual([]);

      // And the run's result is right (the executor did the work).
      const run = await rest(A.restUrl, `/v1/workflow-runs/${runId}`);
      expect(run.body.data.status).toBe("completed");
      console.log(`events test: ${table.length} events, delivered to 4 live subscribers on 2 control planes + 1 resumed across planes after event ${lastSeen}`);
    },
    // Ceilings, all of them: on a loaded machine three processes and six streams are slow.
    600_000,
  );
});
