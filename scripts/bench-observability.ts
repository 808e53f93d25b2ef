/**
 * What observability costs the execution plane: the same workload in four modes — off (no
 * METRICS_PORT, no tracing), metrics (METRICS_PORT scraped every second, like Prometheus),
 * traces (OTLP tracing exported to a local receiver) and both — in rounds of one
 * invocation whose mode order rotates, so machine load hits every mode alike. Prints each
 * round, the medians and the ratios to off:
 *   - no-op step throughput (steps/s, database clock), executors as separate processes
 *     on Postgres (PGlite: one in-process executor);
 *   - executor CPU per step (user + system, from /proc; Postgres only): the cost itself,
 *     which a loaded machine disturbs far less than it disturbs throughput;
 *   - dispatch latency p50 (run created → first node started), one run at a time into an
 *     idle executor; the runs are started in this process, traced too when traces are on.
 * First, in this process, the two costs in isolation (CPU time, which load disturbs least):
 * rendering /metrics once, and one node-attempt span from start to OTLP export.
 *
 * Metric recording itself cannot be switched off (it is a few counter increments on each
 * path); "off" leaves nothing to scrape and no spans.
 *
 *   npm run bench:observability                      # Postgres
 *   npm run bench:observability -- --engine pglite   # --runs N --chain N --rounds N --samples N
 */
import { randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { query, type Database } from "../src/db/database.js";
import { startWorker } from "../src/executor/worker.js";
import { createLogger } from "../src/logger.js";
import { createProviders } from "../src/providers/registry.js";
import { metrics as fabricMetrics, registry } from "../src/telemetry/metrics.js";
import { flushTraces, markSpan, recordOutcome, startTracing, withSpanFrom } from "../src/telemetry/tracing.js";
import type { Engine } from "../tests/helpers/database.js";
import { spawnExecutor } from "../tests/helpers/processes.js";
import { setup, type Setup } from "./lib/chain-bench.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string", default: "postgres" },
    runs: { type: "string", default: "300" },
    chain: { type: "string", default: "10" },
    rounds: { type: "string", default: "4" },
    samples: { type: "string", default: "100" },
    concurrency: { type: "string", default: "64" },
  },
});
const engine = values.engine as Engine;
const RUNS = Number(values.runs);
const CHAIN = Number(values.chain);
const ROUNDS = Number(values.rounds);
const SAMPLES = Number(values.samples);
const CONCURRENCY = Number(values.concurrency);
const log = createLogger("warn");

/** A local OTLP/HTTP receiver that parses what it gets and counts the spans. */
async function startReceiver() {
  let spans = 0;
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      try {
        for (const rs of JSON.parse(body).resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans += (ss.spans ?? []).length;
      } catch {
        /* not JSON */
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, spans: () => spans, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}


const modes = ["off", "metrics", "traces", "both"] as const;
type Mode = (typeof modes)[number];
const scraped = (m: Mode) => m === "metrics" || m === "both";
const traced = (m: Mode) => m === "traces" || m === "both";

/** CPU seconds (user + system) a process has used so far: /proc/<pid>/stat fields 14 and 15, in clock ticks (100/s on Linux). */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Executors (a process on Postgres, in-process on PGlite) with telemetry per `mode`, and a scraper when on. */
async function startExecutor(s: Setup, mode: Mode, receiverUrl: string, concurrency: number, poll: number) {
  const port = scraped(mode) ? await freePort() : undefined;
  let stop: () => Promise<void>;
  let cpu: () => number;
  if (engine === "postgres") {
    const env: Record<string, string> = { DATABASE_URL: s.database.url!, WORKER_CONCURRENCY: String(concurrency), WORKER_POLL_INTERVAL: `${poll}ms`, DATABASE_POOL_MAX: String(Math.min(concurrency, 20)) };
    if (scraped(mode)) env.METRICS_PORT = String(port);
    if (traced(mode)) env.OTEL_EXPORTER_OTLP_ENDPOINT = receiverUrl;
    const p = spawnExecutor(env, `bench-obs-${mode}-${randomUUID().slice(0, 4)}`);
    cpu = () => cpuSecondsOf(p.child.pid!);
    stop = async () => {
      p.child.kill("SIGTERM");
      await p.exited;
    };
    await new Promise((r) => setTimeout(r, 3000)); // start-up (tsx)
  } else {
    const w = await startWorker({
      database: s.database,
      config: { WORKER_ID: randomUUID(), WORKER_CONCURRENCY: concurrency, WORKER_POLL_INTERVAL: poll, WORKER_LEASE_SECONDS: 30, WORKER_MAX_RETRIES: 3, WORKER_SHUTDOWN_GRACE: 5000, RUN_ID: undefined, ...(scraped(mode) ? { METRICS_PORT: port, HOST: "127.0.0.1" } : {}) },
      providers: createProviders({}),
      log,
    });
    stop = () => w.stop();
    // In-process: this whole process (the database engine too), so only comparable between modes.
    cpu = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    };
  }
  let scrapes = 0;
  const scraper =
    scraped(mode)
      ? setInterval(() => {
          fetch(`http://127.0.0.1:${port}/metrics`).then(
            async (r) => {
              await r.text();
              if (r.ok) scrapes++;
            },
            () => {},
          );
        }, 1000)
      : undefined;
  return {
    scrapes: () => scrapes,
    cpu,
    async stop() {
      clearInterval(scraper);
      await stop();
    },
  };
}

async function waitIdle(db: Database["db"]) {
  for (;;) {
    const [r] = await query<{ n: number }>(db, sql`SELECT count(*)::int AS n FROM workflow_runs WHERE status IN ('pending', 'running')`);
    if (r!.n === 0) return;
    await new Promise((res) => setTimeout(res, 50));
  }
}

async function throughput(mode: Mode, receiverUrl: string): Promise<{ rate: number; cpuMsPerStep: number; scrapes: number }> {
  const s = await setup(engine, CHAIN);
  try {
    // The executor is up and idle first, so its start-up is not in the CPU figure.
    const ex = await startExecutor(s, mode, receiverUrl, CONCURRENCY, 100);
    const cpu0 = ex.cpu();
    for (let i = 0; i < RUNS; i += 50) await Promise.all(Array.from({ length: Math.min(50, RUNS - i) }, () => s.runs.startRun(s.ctx, { workflowId: s.workflowId, input: {} } as any)));
    await waitIdle(s.database.db);
    const cpu1 = ex.cpu();
    const scrapes = ex.scrapes();
    await ex.stop();
    const [r] = await query<{ steps: number; seconds: number }>(
      s.database.db,
      sql`SELECT count(*) FILTER (WHERE kind = 'workflow.node.completed')::int AS steps,
                 extract(epoch FROM max(created_at) FILTER (WHERE kind = 'workflow.node.completed') - min(created_at) FILTER (WHERE kind = 'workflow.node.started'))::float8 AS seconds
          FROM events`,
    );
    return { rate: r!.steps / r!.seconds, cpuMsPerStep: ((cpu1 - cpu0) * 1000) / r!.steps, scrapes };
  } finally {
    await s.close();
  }
}

async function dispatchP50(mode: Mode, receiverUrl: string): Promise<number> {
  const s = await setup(engine, 1);
  const ex = await startExecutor(s, mode, receiverUrl, 4, 500);
  try {
    // A warm-up run: the executor is up and idle before the first sample.
    const warm = (await s.runs.startRun(s.ctx, { workflowId: s.workflowId, input: {} } as any)).run!.id;
    await waitIdle(s.database.db);
    for (let i = 0; i < SAMPLES; i++) {
      await s.runs.startRun(s.ctx, { workflowId: s.workflowId, input: {} } as any);
      await new Promise((r) => setTimeout(r, 25));
    }
    await waitIdle(s.database.db);
    const rows = await query<{ ms: number }>(
      s.database.db,
      sql`SELECT extract(epoch FROM (min(e.created_at) - r.created_at)) * 1000 AS ms
          FROM workflow_runs r JOIN events e ON e.run_id = r.id AND e.kind = 'workflow.node.started'
          WHERE r.id <> ${warm} GROUP BY r.id, r.created_at`,
    );
    return median(rows.map((r) => Number(r.ms)));
  } finally {
    await ex.stop();
    await s.close();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** CPU microseconds used by `fn` run `n` times (then `after`), per run. */
async function cpuPer(n: number, fn: () => Promise<unknown>, after: () => Promise<unknown> = async () => {}): Promise<number> {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  await after();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

/** The two costs in isolation: one /metrics render (with an executor's metric families populated), one node-attempt span exported. */
async function micro(receiverUrl: string) {
  for (let i = 0; i < 5000; i++) {
    fabricMetrics.stepsClaimed.inc({ operation: "workflow.noop" });
    fabricMetrics.stepDuration.observe({ operation: "workflow.noop", outcome: "succeeded" }, 0.001);
    fabricMetrics.stepQueueWait.observe({ operation: "workflow.noop" }, 0.01);
    fabricMetrics.claimDuration.observe(0.002);
  }
  await cpuPer(20, () => registry.metrics());
  const scrapeUs = await cpuPer(200, () => registry.metrics());
  const work = async () => {
    for (let i = 0; i < 20; i++) await Promise.resolve(i);
  };
  const N = 20_000;
  const bareUs = await cpuPer(N, work);
  const stop = startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl }, "fabric-bench-micro");
  const parent = markSpan("fabric.run", {})!;
  const attrs = { "fabric.run_id": randomUUID(), "fabric.node_key": "n1", "fabric.operation": "workflow.noop", "fabric.attempt": 1, "fabric.worker_id": "bench" };
  const tracedUs = await cpuPer(N, () => withSpanFrom(parent, "fabric.node", attrs, async (span) => {
    await work();
    recordOutcome(span, "succeeded");
  }), flushTraces);
  await stop();
  return { scrapeUs, spanUs: tracedUs - bareUs };
}

async function main() {
  const receiver = await startReceiver();
  const m = await micro(receiver.url);
  console.log(`In isolation (CPU time in this process): one /metrics render ${(m.scrapeUs / 1000).toFixed(2)} ms (at one scrape per second: ${(m.scrapeUs / 1e4).toFixed(3)} % of a core);`);
  console.log(`  one node-attempt span, created, ended and exported over OTLP/HTTP: ${m.spanUs.toFixed(1)} µs\n`);
  console.log(`Observability overhead (${engine}) — ${RUNS} runs × ${CHAIN}-node no-op chain per round and mode, ${ROUNDS} rounds, mode order rotating; dispatch: ${SAMPLES} runs one at a time`);
  console.log(`  off: no METRICS_PORT, no tracing.  metrics: METRICS_PORT scraped every 1 s.  traces: OTLP/HTTP to a local receiver (${receiver.url}).  both.`);
  console.log(`  load average at start: ${loadavg().map((l) => l.toFixed(1)).join(" ")}\n`);
  const rates = Object.fromEntries(modes.map((m) => [m, [] as number[]])) as Record<Mode, number[]>;
  const cpus = Object.fromEntries(modes.map((m) => [m, [] as number[]])) as Record<Mode, number[]>;
  const p50s = Object.fromEntries(modes.map((m) => [m, [] as number[]])) as Record<Mode, number[]>;
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < modes.length; i++) {
      const mode = modes[(i + round) % modes.length]!;
      // This process starts the runs: traced when traces are on, like a control plane would.
      const stopTracing = traced(mode) ? startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }, "fabric-bench") : async () => {};
      const before = receiver.spans();
      const t = await throughput(mode, receiver.url);
      const d = await dispatchP50(mode, receiver.url);
      await stopTracing();
      await new Promise((r) => setTimeout(r, 1500)); // the executors' last span batches
      rates[mode].push(t.rate);
      cpus[mode].push(t.cpuMsPerStep);
      p50s[mode].push(d);
      const extra = [scraped(mode) ? `${t.scrapes} scrapes` : "", traced(mode) ? `${receiver.spans() - before} spans received` : ""].filter(Boolean).join(", ");
      console.log(`  round ${round + 1} ${mode.padEnd(7)}: throughput ${t.rate.toFixed(0)} steps/s, executor CPU ${t.cpuMsPerStep.toFixed(3)} ms/step, dispatch p50 ${d.toFixed(2)} ms${extra ? ` (${extra})` : ""}  [load ${loadavg()[0]!.toFixed(1)}]`);
    }
  }
  const off = { rate: median(rates.off), cpu: median(cpus.off), p50: median(p50s.off) };
  console.log(`\n  medians            throughput        executor CPU/step      dispatch p50`);
  for (const m of modes) {
    const [r, c, d] = [median(rates[m]), median(cpus[m]), median(p50s[m])];
    const vs = m === "off" ? "" : ` → ×${(r / off.rate).toFixed(3)} (${((1 - r / off.rate) * 100).toFixed(1)} % loss)`;
    console.log(`  ${m.padEnd(8)} ${r.toFixed(0).padStart(8)} steps/s${vs.padEnd(26)} ${c.toFixed(3)} ms${m === "off" ? "" : ` (×${(c / off.cpu).toFixed(3)})`}   ${d.toFixed(2)} ms${m === "off" ? "" : ` (×${(d / off.p50).toFixed(3)})`}`);
  }
  console.log(`\n  a node-attempt span (${m.spanUs.toFixed(1)} µs, above) is ${((m.spanUs / 1000 / off.cpu) * 100).toFixed(1)} % of the executor's CPU per no-op step with telemetry off (${off.cpu.toFixed(3)} ms)`);
  await receiver.close();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
