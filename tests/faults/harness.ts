/**
 * What the fault scenarios share: a database on the private cluster with a dev
 * organization, `fabric serve` and `fabric executor` processes on it, a client that
 * submits runs like a careful user (an idempotency key per run, retried on 503 and on
 * network errors, every answer's status counted), organization-wide event watchers over
 * SSE and gRPC that resume after the last id they got, and the checks every scenario
 * makes: each run completed once, each node committed once, each watcher saw exactly the
 * table's events.
 */
import { randomUUID } from "node:crypto";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { EventService } from "../../gen/proto/fabric/v1/events_pb.js";
import { openDatabase } from "../../src/db/database.js";
import { bootstrapDevOrganization } from "../../src/services/tenancy/dev-organization.js";
import { spawnExecutor, type ExecutorProcess } from "../helpers/processes.js";
import { spawnServe, type ServeProcess } from "../helpers/serve-process.js";
import { openSse } from "../rest/sse.js";
import type { PrivatePostgres } from "../helpers/private-postgres.js";
import postgres from "postgres";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A two-step workflow: a native step, then a provider step on the echo provider. */
export const faultWorkflow = {
  name: "faults",
  nodes: [
    { key: "shout", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.topic" }, outputs: { text: "$context.shouted" }, policy: { max_attempts: 20 } },
    { key: "gen", operation: "ai.generate", config: { provider: "echo" }, depends_on: ["shout"], inputs: { prompt: "$context.shouted" }, outputs: { text: "$context.answer" }, policy: { max_attempts: 20 } },
  ],
};

export interface Scene {
  dbName: string;
  url: string;
  apiKey: string;
  organizationId: string;
  planes: ServeProcess[];
  executors: ExecutorProcess[];
  /** Client-side statuses: HTTP status or `network`, counted. */
  statuses: Map<string, number>;
  env: Record<string, string>;
  sql: postgres.Sql;
  close(): Promise<void>;
}

export async function setUpScene(pg: PrivatePostgres, opts: { executors?: number; env?: Record<string, string> } = {}): Promise<Scene> {
  const dbName = `faults_${randomUUID().slice(0, 8)}`;
  const url = await pg.createDatabase(dbName);
  const database = await openDatabase({ url, poolMax: 2 });
  const boot = await bootstrapDevOrganization(database.db);
  await database.close();
  const env = {
    DATABASE_URL: url,
    DATABASE_POOL_MAX: "6",
    WORKER_CONCURRENCY: "8",
    WORKER_LEASE_SECONDS: "3",
    WORKER_POLL_INTERVAL: "200ms",
    FABRIC_DB_STATEMENT_TIMEOUT_MS: "10000",
    ...opts.env,
  };
  const planes = [await spawnServe(env, { timeoutMs: 60_000 })];
  const executors = Array.from({ length: opts.executors ?? 2 }, (_, i) => spawnExecutor(env, `fault-${dbName}-${i}`));
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  // Faults start only once every process is up (each holds its LISTEN connection).
  const want = planes.length + executors.length;
  for (const deadline = Date.now() + 60_000; ; ) {
    const [r] = await sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${dbName} AND application_name = 'fabric-listen'`;
    if (r!.n >= want) break;
    if (Date.now() > deadline) throw new Error(`only ${r!.n} of ${want} processes came up:\n${executors.map((e) => e.stderr()).join("\n")}`);
    await sleep(100);
  }
  const scene: Scene = {
    dbName,
    url,
    apiKey: boot.apiKey,
    organizationId: boot.organizationId,
    planes,
    executors,
    statuses: new Map(),
    env,
    sql,
    async close() {
      for (const e of executors) if (e.child.exitCode === null && e.child.signalCode === null) e.child.kill("SIGKILL");
      await Promise.all(planes.map((p) => p.stop(2000)));
      await Promise.all(executors.map((e) => e.exited));
      await sql.end({ timeout: 1 }).catch(() => {});
    },
  };
  return scene;
}

const count = (scene: Scene, key: string) => scene.statuses.set(key, (scene.statuses.get(key) ?? 0) + 1);

/** One REST call as a careful client makes it: retried on 503/network errors (with the same body) until `deadline`. */
export async function call(scene: Scene, path: string, init: { method?: string; json?: unknown } = {}, deadlineMs = 90_000): Promise<{ status: number; body: any }> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const base = scene.planes.find((p) => p.child.exitCode === null && p.child.signalCode === null)?.restUrl ?? scene.planes[0]!.restUrl;
    try {
      const res = await fetch(base + path, {
        method: init.method ?? "GET",
        headers: { authorization: `Bearer ${scene.apiKey}`, ...(init.json !== undefined ? { "content-type": "application/json" } : {}) },
        body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
        signal: AbortSignal.timeout(15_000),
      });
      const body = (await res.json().catch(() => null)) as any;
      count(scene, String(res.status));
      // 500s are counted (a scenario fails on any) and retried like 503s, so the scenario still completes.
      if ((res.status !== 503 && res.status !== 500) || Date.now() > deadline) return { status: res.status, body };
      const retryAfter = Number(res.headers.get("retry-after") ?? "1");
      await sleep(Math.min(2000, Math.max(100, retryAfter * 1000 * Math.random())));
    } catch (err) {
      count(scene, (err as Error)?.name === "TimeoutError" ? "timeout" : "network");
      if (Date.now() > deadline) throw new Error(`${path}: no answer before the deadline`);
      await sleep(200);
    }
  }
}

export async function registerWorkflow(scene: Scene): Promise<string> {
  const r = await call(scene, "/v1/workflows", { method: "POST", json: faultWorkflow });
  if (r.status >= 300) throw new Error(`workflow upsert: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.data.id;
}

/** Submits `n` runs, one every `everyMs`, each with its own idempotency key (retried until accepted). */
export function submitRuns(scene: Scene, workflowId: string, n: number, everyMs: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      await sleep(i * everyMs);
      const key = `fault-run-${i}`;
      const r = await call(scene, "/v1/workflow-runs", { method: "POST", json: { workflow_id: workflowId, input: { topic: `t${i}` }, idempotency_key: key } });
      if (r.status !== 200 && r.status !== 202) throw new Error(`run ${i}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.data.id as string;
    }),
  );
}

/** Waits until no run is active (read straight from the database, retried through outages). */
export async function untilRunsFinished(scene: Scene, expected: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const [r] = await scene.sql`SELECT count(*) FILTER (WHERE status IN ('pending','running','paused','waiting'))::int AS active, count(*)::int AS total FROM workflow_runs`;
      if (r!.active === 0 && r!.total >= expected) return;
    } catch {
      /* the database is down: try again */
    }
    if (Date.now() > deadline) throw new Error("runs did not finish in time");
    await sleep(250);
  }
}

export interface RunChecks {
  runs: number;
  completed: number;
  duplicateCompletions: number;
  nodesNotSucceeded: number;
}

/** Every run completed, every node completed exactly once (by its events). */
export async function checkRuns(scene: Scene): Promise<RunChecks> {
  const [runs] = await scene.sql`SELECT count(*)::int AS n, count(*) FILTER (WHERE status = 'completed')::int AS completed FROM workflow_runs`;
  const dup = await scene.sql`SELECT run_id, node_key FROM events WHERE kind = 'workflow.node.completed' GROUP BY run_id, node_key HAVING count(*) <> 1`;
  const [nodes] = await scene.sql`SELECT count(*) FILTER (WHERE status <> 'succeeded')::int AS n FROM workflow_run_nodes`;
  return { runs: runs!.n, completed: runs!.completed, duplicateCompletions: dup.length, nodesNotSucceeded: nodes!.n };
}

export interface Watcher {
  name: string;
  ids: number[];
  /** Times the watcher had to reconnect (stream ended or failed). */
  reconnects: number;
  stop(): Promise<void>;
}

/** An organization-wide SSE watcher from event id `afterId`, resuming with Last-Event-ID whenever the stream ends. */
export function sseWatcher(scene: Scene, afterId: number): Watcher {
  const w: Watcher = { name: "sse", ids: [], reconnects: 0, stop: async () => {} };
  let stopped = false;
  let current: { close(): void } | undefined;
  const done = (async () => {
    let first = true;
    while (!stopped) {
      if (!first) {
        w.reconnects++;
        await sleep(200);
      }
      first = false;
      const base = scene.planes.find((p) => p.child.exitCode === null && p.child.signalCode === null)?.restUrl;
      if (!base) continue;
      try {
        const last = w.ids.at(-1) ?? afterId;
        const s = await openSse(`${base}/v1/events/stream`, { authorization: `Bearer ${scene.apiKey}`, "last-event-id": String(last) });
        current = s;
        if (s.response.status !== 200) {
          count(scene, `sse ${s.response.status}`);
          s.close();
          continue;
        }
        for await (const m of s.messages) {
          if (m.event === "error" || !m.id) continue;
          w.ids.push(Number(m.id));
        }
      } catch {
        /* connection refused or reset: resume */
      }
    }
  })();
  w.stop = async () => {
    stopped = true;
    current?.close();
    await done;
  };
  return w;
}

/** The same over gRPC (EventService/StreamEvents with after_id). */
export function grpcWatcher(scene: Scene, afterId: number): Watcher {
  const w: Watcher = { name: "grpc", ids: [], reconnects: 0, stop: async () => {} };
  let stopped = false;
  let abort = new AbortController();
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${scene.apiKey}`);
    return next(req);
  };
  const done = (async () => {
    let first = true;
    while (!stopped) {
      if (!first) {
        w.reconnects++;
        await sleep(200);
      }
      first = false;
      const base = scene.planes.find((p) => p.child.exitCode === null && p.child.signalCode === null)?.grpcUrl;
      if (!base) continue;
      const sm = new Http2SessionManager(base);
      abort = new AbortController();
      try {
        const client = createClient(EventService, createGrpcTransport({ baseUrl: base, sessionManager: sm, interceptors: [auth] }));
        const last = w.ids.at(-1) ?? afterId;
        for await (const r of client.streamEvents({ afterId: BigInt(last) }, { signal: abort.signal })) if (r.event) w.ids.push(Number(r.event.id));
      } catch {
        /* ended or failed: resume */
      } finally {
        sm.abort();
      }
    }
  })();
  w.stop = async () => {
    stopped = true;
    abort.abort();
    await done;
  };
  return w;
}

/** Lost and repeated ids of a watcher against the table's events after `afterId`. */
export async function checkWatcher(scene: Scene, w: Watcher, afterId: number): Promise<{ lost: number; repeated: number; received: number }> {
  const rows = await scene.sql`SELECT id FROM events WHERE id > ${afterId} AND organization_id = ${scene.organizationId} ORDER BY id`;
  const want = rows.map((r) => Number(r.id));
  const got = new Set(w.ids);
  const lost = want.filter((id) => !got.has(id));
  if (lost.length) {
    const ranges: string[] = [];
    for (let i = 0; i < lost.length; i++) {
      let j = i;
      while (j + 1 < lost.length && want.indexOf(lost[j + 1]!) === want.indexOf(lost[j]!) + 1) j++;
      ranges.push(lost[i] === lost[j] ? `${lost[i]}` : `${lost[i]}-${lost[j]}`);
      i = j;
    }
    console.log(`[fault] ${w.name} lost ids ${ranges.slice(0, 20).join(", ")}; received ${w.ids.slice(0, 5).join(",")} … ${w.ids.slice(-5).join(",")}`);
  }
  return { lost: lost.length, repeated: w.ids.length - got.size, received: w.ids.length };
}

/**
 * Waits until every watcher has received the organization's last event after `afterId`
 * (or `ceilingMs` passed); returns how long it waited. The checks after it say whether
 * anything was lost.
 */
export async function untilWatchersCaughtUp(scene: Scene, watchers: Watcher[], afterId: number, ceilingMs = 60_000): Promise<number> {
  const t0 = Date.now();
  const [r] = await scene.sql`SELECT coalesce(max(id), 0)::int AS id FROM events WHERE id > ${afterId} AND organization_id = ${scene.organizationId}`;
  const last = r!.id as number;
  while (Date.now() - t0 < ceilingMs && !watchers.every((w) => w.ids.includes(last))) await sleep(100);
  return Date.now() - t0;
}

export async function maxEventId(scene: Scene): Promise<number> {
  const [r] = await scene.sql`SELECT coalesce(max(id), 0)::int AS id FROM events`;
  return r!.id;
}

export const alive = (p: { child: { exitCode: number | null; signalCode: string | null } }) => p.child.exitCode === null && p.child.signalCode === null;

export function statusSummary(scene: Scene): string {
  return [...scene.statuses.entries()]
    .sort()
    .map(([k, v]) => `${k}×${v}`)
    .join(" ");
}
