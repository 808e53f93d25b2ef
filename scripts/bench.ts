/**
 * Execution-plane benchmark. Prints, for the local Postgres and for PGlite:
 *   - no-op step throughput (steps/s) with one and with two executor processes
 *     (PGlite: one in-process executor — the embedded database belongs to one process);
 *   - dispatch latency p50/p99: run created → its first node started (database clock);
 *   - claim latency with 1k and with 1M finished nodes in the table.
 *
 * Then the provider-gateway overhead (scripts/bench-gateway.ts, run as a child process
 * with the same --engine): what routing + policy + usage add to each provider call; and the
 * observability overhead (scripts/bench-observability.ts): metrics scraped + traces exported
 * versus both off, in alternating rounds.
 *
 *   npm run bench                       # both engines
 *   npm run bench -- --engine postgres  # one engine; --runs N --chain N --concurrency N --finished N
 *   npm run bench -- --no-gateway       # skip the gateway part (npm run bench:gateway runs it alone)
 *   npm run bench -- --no-observability # skip the observability part (npm run bench:observability runs it alone)
 *
 * Needs the local Postgres (FABRIC_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres)
 * for the Postgres part; creates and drops its own database.
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { claimNodes } from "../src/db/claim-nodes.js";
import { query } from "../src/db/database.js";
import { startWorker } from "../src/executor/worker.js";
import { createProviders } from "../src/providers/registry.js";
import { type Engine } from "../tests/helpers/database.js";
import { spawnExecutor } from "../tests/helpers/processes.js";
import { chainThroughput, log, setup as setupChain, waitIdle, workerConfig as chainWorkerConfig } from "./lib/chain-bench.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string" },
    runs: { type: "string", default: "1000" },
    chain: { type: "string", default: "10" },
    concurrency: { type: "string", default: "64" },
    finished: { type: "string", default: "1000000" },
    "no-gateway": { type: "boolean", default: false },
    "no-observability": { type: "boolean", default: false },
  },
});
const RUNS = Number(values.runs);
const CHAIN = Number(values.chain);
const CONCURRENCY = Number(values.concurrency);
const FINISHED = Number(values.finished);

const setup = (engine: Engine, chain = CHAIN) => setupChain(engine, chain);
const workerConfig = () => chainWorkerConfig(CONCURRENCY);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));

async function throughput(engine: Engine, processes: number): Promise<string> {
  const r = await chainThroughput(engine, { runs: RUNS, chain: CHAIN, processes, concurrency: CONCURRENCY });
  return `${fmt(r.rate)} steps/s (${r.steps} no-op steps in ${r.seconds.toFixed(2)} s of work; ${r.wall.toFixed(1)} s wall incl. start-up)`;
}

async function dispatchLatency(engine: Engine): Promise<string> {
  const s = await setup(engine, 1);
  const samples = 200;
  let stopWorker: () => Promise<unknown>;
  if (engine === "pglite") {
    const w = await startWorker({ database: s.database, config: workerConfig(), providers: createProviders({}), log });
    stopWorker = () => w.stop();
  } else {
    const p = spawnExecutor({ DATABASE_URL: s.database.url!, WORKER_CONCURRENCY: "4", WORKER_POLL_INTERVAL: "500ms" }, "bench-dispatch");
    stopWorker = async () => {
      p.child.kill("SIGTERM");
      await p.exited;
    };
    await new Promise((r) => setTimeout(r, 2500)); // executor start-up (tsx)
  }
  try {
    // One run at a time into an idle executor: the wake-up (NOTIFY) path, not polling.
    for (let i = 0; i < samples; i++) {
      await s.runs.startRun(s.ctx, { workflowId: s.workflowId, input: {} } as any);
      await new Promise((r) => setTimeout(r, 25));
    }
    await waitIdle(s.database.db);
    const rows = await query<{ ms: number }>(
      s.database.db,
      sql`SELECT extract(epoch FROM (min(e.created_at) - r.created_at)) * 1000 AS ms
          FROM workflow_runs r JOIN events e ON e.run_id = r.id AND e.kind = 'workflow.node.started'
          GROUP BY r.id, r.created_at`,
    );
    const ms = rows.map((r) => Number(r.ms));
    return `p50 ${pct(ms, 50).toFixed(2)} ms, p99 ${pct(ms, 99).toFixed(2)} ms (${ms.length} runs, one at a time into an idle executor)`;
  } finally {
    await stopWorker();
    await s.close();
  }
}

async function claimLatency(engine: Engine, finished: number): Promise<string> {
  const s = await setup(engine);
  try {
    const db = s.database.db;
    const [run] = await query<{ id: string }>(db, sql`SELECT id FROM workflow_runs LIMIT 1`);
    let runId = run?.id;
    if (!runId) {
      runId = (await s.runs.startRun(s.ctx, { workflowId: s.workflowId, input: {} } as any)).run!.id;
    }
    // Pile up finished rows with one INSERT … SELECT (chunks keep PGlite's memory in check).
    for (let done = 0; done < finished; done += 200_000) {
      const n = Math.min(200_000, finished - done);
      await db.execute(sql`
        INSERT INTO workflow_run_nodes (run_id, organization_id, node_key, position, operation, status, attempt, max_attempts, priority, available_at, deps_remaining, output, finished_at)
        SELECT ${runId}, ${s.ctx.caller.organizationId}, 'done-' || (g + ${done}), 0, 'workflow.noop', 'succeeded', 1, 3, 50, now(), 0, '{}'::jsonb, now()
        FROM generate_series(1, ${n}) g`);
    }
    await db.execute(sql`ANALYZE workflow_run_nodes`);
    // 200 claims of one ready node each (a fresh ready row before each claim).
    const samples: number[] = [];
    for (let i = 0; i < 200; i++) {
      await db.execute(sql`
        INSERT INTO workflow_run_nodes (run_id, organization_id, node_key, position, operation, status, max_attempts, priority, deps_remaining)
        VALUES (${runId}, ${s.ctx.caller.organizationId}, ${"ready-" + i}, 0, 'workflow.noop', 'ready', 3, 50, 0)`);
      const t = performance.now();
      const claimed = await claimNodes(db, { workerId: "bench", limit: 1, leaseSeconds: 30 });
      samples.push(performance.now() - t);
      if (claimed.length !== 1) throw new Error("claim found nothing");
    }
    return `${finished.toLocaleString("en")} finished: p50 ${pct(samples, 50).toFixed(2)} ms, p99 ${pct(samples, 99).toFixed(2)} ms`;
  } finally {
    await s.close();
  }
}

async function main() {
  const engines: Engine[] = values.engine ? [values.engine as Engine] : ["postgres", "pglite"];
  console.log(`Fabric execution-plane benchmark — ${RUNS} runs × ${CHAIN}-node no-op chain, WORKER_CONCURRENCY=${CONCURRENCY}\n`);
  for (const engine of engines) {
    console.log(`== ${engine}`);
    if (engine === "postgres") {
      console.log(`  throughput, 1 executor process:  ${await throughput(engine, 1)}`);
      console.log(`  throughput, 2 executor processes: ${await throughput(engine, 2)}`);
    } else {
      console.log(`  throughput, 1 in-process executor: ${await throughput(engine, 1)}`);
    }
    console.log(`  dispatch latency: ${await dispatchLatency(engine)}`);
    console.log(`  claim latency, ${await claimLatency(engine, 1000)}`);
    console.log(`  claim latency, ${await claimLatency(engine, FINISHED)}`);
  }
  if (!values["no-gateway"]) {
    console.log("");
    const gateway = spawnSync(process.execPath, ["--import", "tsx", join(dirname(fileURLToPath(import.meta.url)), "bench-gateway.ts"), ...(values.engine ? ["--engine", values.engine] : [])], { stdio: "inherit" });
    if (gateway.status !== 0) throw new Error(`the gateway benchmark failed (exit ${gateway.status})`);
  }
  if (!values["no-observability"]) {
    console.log("");
    const obs = spawnSync(process.execPath, ["--import", "tsx", join(dirname(fileURLToPath(import.meta.url)), "bench-observability.ts"), ...(values.engine ? ["--engine", values.engine] : [])], { stdio: "inherit" });
    if (obs.status !== 0) throw new Error(`the observability benchmark failed (exit ${obs.status})`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
