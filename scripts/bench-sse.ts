/**
 * SSE fan-out benchmark: N concurrent SSE subscribers (default 1,000) on ONE
 * in-process control plane over the local Postgres, all watching ONE run's event stream
 * (GET /v1/workflow-runs/{id}/events) — the worst case for fan-out: every event goes to
 * every subscriber.
 *
 *   npx tsx scripts/bench-sse.ts [--subscribers 1000] [--events 100] [--interval-ms 100]   # 10 events/s × N frames/s offered
 *   node --expose-gc --import tsx scripts/bench-sse.ts   # exact heap figures (global.gc)
 *
 * Layout (loopback only):
 *   - this process: test database (created and dropped), control plane on port 0;
 *   - a forked client process: the N subscribers over `node:http` with
 *     Agent({ maxSockets: Infinity }) (fetch/undici would cap connections per origin), so
 *     the server's memory figure is not mixed with the clients'.
 *
 * Writer (a third, forked process, so its clock readings are not delayed by the control
 * plane's busy event loop): inserts one event per transaction with `emitEvents` (the product's own
 * INSERT … + pg_notify, i.e. exactly what an executor commits), `--interval-ms` apart; the
 * payload carries a sequence number; the commit time is taken when COMMIT returns to the
 * writer. Each subscriber records the receipt time of each event when its SSE frame is
 * parsed. Latency = receipt − commit, both on the wall clock (performance.timeOrigin +
 * performance.now(), same host). Since the NOTIFY is sent at commit, the commit time taken
 * after COMMIT's acknowledgement is slightly late, so figures are, if anything, a hair low
 * (by well under a millisecond on loopback).
 *
 * Memory per subscriber: the control-plane process's RSS and heap after connecting all
 * subscribers minus before, ÷ subscribers (after global.gc when run with --expose-gc).
 */
import { fork } from "node:child_process";
import http from "node:http";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { startControlPlane } from "../src/control-plane/server.js";
import { emitEvents } from "../src/db/events.js";
import { createLogger } from "../src/logger.js";
import { bootstrapDevOrganization } from "../src/services/tenancy/dev-organization.js";
import { createTestDatabase } from "../tests/helpers/database.js";
import type { EventKind } from "../src/domain/event-kinds.js";

const now = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------- client process
if (process.argv.includes("--client")) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  interface Sub {
    receipts: Map<number, number>; // seq → receipt time
    ended: boolean;
  }
  const subs: Sub[] = [];
  let duplicates = 0;
  let outOfOrder = 0;

  function open(url: string, key: string): Promise<Sub> {
    return new Promise((resolve, reject) => {
      const sub: Sub = { receipts: new Map(), ended: false };
      const req = http.get(url, { agent, headers: { authorization: `Bearer ${key}`, accept: "text/event-stream" } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`subscriber got HTTP ${res.statusCode}`));
        res.setEncoding("utf8");
        let buf = "";
        let lastId = 0;
        res.on("data", (chunk: string) => {
          const t = now();
          buf += chunk;
          let i: number;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            for (const line of frame.split("\n")) {
              if (!line.startsWith("data:")) continue;
              const ev = JSON.parse(line.slice(5).trim());
              const id = Number(ev.id);
              if (id <= lastId) outOfOrder++;
              lastId = id;
              const seq = ev.payload?.seq;
              if (typeof seq === "number") {
                if (sub.receipts.has(seq)) duplicates++;
                sub.receipts.set(seq, t);
              }
            }
          }
        });
        res.on("end", () => (sub.ended = true));
        res.on("error", () => (sub.ended = true));
        resolve(sub);
      });
      req.on("error", reject);
    });
  }

  process.on("message", async (msg: any) => {
    if (msg.type === "connect") {
      const t0 = now();
      for (let i = 0; i < msg.n; i += 100) {
        const batch = await Promise.all(Array.from({ length: Math.min(100, msg.n - i) }, () => open(msg.url, msg.key)));
        subs.push(...batch);
      }
      // Wait for every subscriber's replay (the run's history) so that all are live.
      while (!subs.every((s) => s.receipts.has(0))) await new Promise((r) => setTimeout(r, 20));
      global.gc?.();
      process.send!({ type: "connected", ms: now() - t0, rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed });
    } else if (msg.type === "collect") {
      const deadline = Date.now() + 15_000;
      while (!subs.every((s) => s.ended) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      // seq → receipts of all subscribers, flattened as [seq, t, seq, t, …] per subscriber.
      const receipts = subs.map((s) => Array.from(s.receipts.entries()).flat());
      process.send!({ type: "receipts", receipts, ended: subs.filter((s) => s.ended).length, duplicates, outOfOrder }, () => process.exit(0));
    }
  });
  process.send!({ type: "ready" });
} else if (process.argv.includes("--writer")) {
  // The writer runs in its own process so that its commit timestamps are not delayed by
  // the control plane's event loop (which is busy fanning out the previous event).
  const { openDatabase } = await import("../src/db/database.js");
  process.on("message", async (msg: any) => {
    const database = await openDatabase({ url: msg.url, poolMax: 2, migrate: false } as any);
    const commits: [number, number][] = [];
    const write = async (seq: number, kind: string) => {
      await database.db.transaction(async (tx) => emitEvents(tx, [{ organizationId: msg.orgId, runId: msg.runId, kind: kind as EventKind, payload: { seq } }]));
      commits.push([seq, now()]);
    };
    const t0 = now();
    for (let seq = 1; seq <= msg.events; seq++) {
      await write(seq, "bench.tick");
      await new Promise((r) => setTimeout(r, msg.interval));
    }
    await write(msg.events + 1, "workflow.run.completed");
    const writeMs = now() - t0;
    await database.close();
    process.send!({ type: "commits", commits, writeMs }, () => process.exit(0));
  });
  process.send!({ type: "ready" });
} else {
  await main();
}

// ---------------------------------------------------------------- server + writer
async function main() {
  const { values } = parseArgs({
    options: { subscribers: { type: "string", default: "1000" }, events: { type: "string", default: "100" }, "interval-ms": { type: "string", default: "100" } },
  });
  const N = Number(values.subscribers);
  const EVENTS = Number(values.events);
  const INTERVAL = Number(values["interval-ms"]);
  const started = Date.now();
  const hardStop = setTimeout(() => {
    console.error("bench-sse: exceeded 120 s, aborting");
    process.exit(1);
  }, 120_000);
  hardStop.unref();

  const database = await createTestDatabase({ engine: "postgres", poolMax: 16 });
  let child: ReturnType<typeof fork> | undefined;
  let writerChild: ReturnType<typeof fork> | undefined;
  let cp: Awaited<ReturnType<typeof startControlPlane>> | undefined;
  try {
    const boot = await bootstrapDevOrganization(database.db);
    cp = await startControlPlane({
      config: { HOST: "127.0.0.1", PORT: 0, GRPC_PORT: 0, FABRIC_ENV: "development", FABRIC_MAX_BODY_BYTES: 1 << 20 },
      database,
      log: createLogger("silent" as any),
    });
    const api = async (path: string, json?: unknown) => {
      const res = await fetch(cp!.restUrl + path, {
        method: json ? "POST" : "GET",
        headers: { authorization: `Bearer ${boot.apiKey}`, "content-type": "application/json" },
        body: json ? JSON.stringify(json) : undefined,
      });
      const body = (await res.json()) as any;
      if (res.status >= 300) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
      return body.data;
    };
    // A run that stays live: no executor runs here, so it waits queued; the writer adds its events.
    const wf = await api("/v1/workflows", { name: "bench-sse", nodes: [{ key: "gate", operation: "workflow.wait_signal" }] });
    const run = await api("/v1/workflow-runs", { workflow_id: wf.id, input: {} });
    const orgId = boot.organizationId;

    const commits = new Map<number, number>();
    const write = async (seq: number, kind = "bench.tick") => {
      await database.db.transaction(async (tx) => emitEvents(tx, [{ organizationId: orgId, runId: run.id, kind: kind as EventKind, payload: { seq } }]));
      commits.set(seq, now());
    };
    await write(0); // every subscriber's replay includes seq 0: "connected and live"

    const spawnRole = (role: string) => {
      const c = fork(fileURLToPath(import.meta.url), [role], { execArgv: [...process.execArgv, ...(process.execArgv.some((a) => a.includes("tsx")) ? [] : ["--import", "tsx"])], stdio: "inherit" });
      const messages: any[] = [];
      const waiters: ((m: any) => void)[] = [];
      c.on("message", (m) => (waiters.length ? waiters.shift()!(m) : messages.push(m)));
      const next = () => new Promise<any>((resolve) => (messages.length ? resolve(messages.shift()) : waiters.push(resolve)));
      return { c, next };
    };
    const client = spawnRole("--client");
    child = client.c;
    const nextMessage = client.next;
    const writer = spawnRole("--writer");
    writerChild = writer.c;
    if ((await nextMessage()).type !== "ready" || (await writer.next()).type !== "ready") throw new Error("client/writer did not start");

    global.gc?.();
    const before = process.memoryUsage();
    child.send({ type: "connect", n: N, url: `${cp.restUrl}/v1/workflow-runs/${run.id}/events`, key: boot.apiKey });
    const connected = await nextMessage();
    global.gc?.();
    await new Promise((r) => setTimeout(r, 200));
    global.gc?.();
    const after = process.memoryUsage();

    // The writer process: one event per transaction, INTERVAL ms apart; then the terminal event closes every stream.
    writer.c.send({ url: database.url, orgId, runId: run.id, events: EVENTS, interval: INTERVAL });
    const w = await writer.next();
    for (const [seq, t] of w.commits as [number, number][]) commits.set(seq, t);
    const writeMs: number = w.writeMs;
    child.send({ type: "collect" });
    const result = await nextMessage();

    const lat: number[] = [];
    let missing = 0;
    let lastReceipt = 0;
    for (const flat of result.receipts as number[][]) {
      const got = new Map<number, number>();
      for (let i = 0; i < flat.length; i += 2) got.set(flat[i]!, flat[i + 1]!);
      for (let seq = 1; seq <= EVENTS + 1; seq++) {
        const r = got.get(seq);
        if (r === undefined) missing++;
        else {
          lat.push(r - commits.get(seq)!);
          if (r > lastReceipt) lastReceipt = r;
        }
      }
    }
    lat.sort((a, b) => a - b);
    const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))]!;
    const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;
    const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
    console.log(
      [
        ``,
        `SSE fan-out benchmark — one control plane (in-process) on local Postgres, loopback`,
        `  subscribers            ${N} concurrent SSE streams, all on ONE run (GET /v1/workflow-runs/{id}/events)`,
        `  connect + replay       ${connected.ms.toFixed(0)} ms for all ${N}`,
        `  events written         ${EVENTS + 1} (one per transaction, emitEvents = INSERT + pg_notify), ${INTERVAL} ms apart, in ${(writeMs / 1000).toFixed(1)} s`,
        `  deliveries             ${lat.length} of ${N * (EVENTS + 1)} expected (missing ${missing}, duplicates ${result.duplicates}, out of order ${result.outOfOrder}; streams ended by the server after the terminal event: ${result.ended}/${N})`,
        `  latency commit→receipt p50 ${pct(50).toFixed(2)} ms   p90 ${pct(90).toFixed(2)} ms   p99 ${pct(99).toFixed(2)} ms   max ${lat.at(-1)!.toFixed(2)} ms   min ${lat[0]!.toFixed(2)} ms`,
        `  fan-out throughput     ${((lat.length / (lastReceipt - commits.get(1)!)) * 1000).toFixed(0)} SSE frames/s (first commit → last receipt); offered ${((1000 / INTERVAL) * N).toFixed(0)} frames/s`,
        `  server memory          RSS ${mb(before.rss)} → ${mb(after.rss)}  (+${kb((after.rss - before.rss) / N)} per subscriber)`,
        `                         heap ${mb(before.heapUsed)} → ${mb(after.heapUsed)}  (+${kb((after.heapUsed - before.heapUsed) / N)} per subscriber)${global.gc ? " [after global.gc]" : " [no --expose-gc: heap figure is noisy]"}`,
        `  client process         RSS ${mb(connected.rss)}, heap ${mb(connected.heap)} for ${N} subscribers (node:http, Agent maxSockets=Infinity)`,
        `  total wall time        ${((Date.now() - started) / 1000).toFixed(1)} s`,
        ``,
      ].join("\n"),
    );
  } finally {
    child?.kill("SIGKILL");
    writerChild?.kill("SIGKILL");
    await cp?.close().catch(() => {});
    await database.close();
  }
  process.exit(0);
}
