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
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import { WorkflowSpecSchema } from "../gen/proto/fabric/v1/workflow_pb.js";
import { claimNodes } from "../src/db/claim-nodes.js";
import { query, type Database } from "../src/db/database.js";
import { createWorkflowCache } from "../src/db/workflow-specs.js";
import { startWorker } from "../src/executor/worker.js";
import { createLogger } from "../src/logger.js";
import { createProviders } from "../src/providers/registry.js";
import { bootstrapDevOrganization } from "../src/services/tenancy/dev-organization.js";
import { loadPermissions } from "../src/services/access/permission-checks.js";
import type { CallContext } from "../src/services/call-context.js";
import { startEventHub } from "../src/delivery/event-hub.js";
import { createRunService } from "../src/services/runs/run-service.js";
import { createWorkflowService } from "../src/services/runs/workflow-service.js";
import { createTestDatabase, type Engine } from "../tests/helpers/database.js";
import { spawnExecutor } from "../tests/helpers/processes.js";

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
const log = createLogger("warn");

interface Setup {
  database: Database & { url?: string };
  ctx: CallContext;
  runs: ReturnType<typeof createRunService>;
  workflowId: string;
  close(): Promise<void>;
}

async function setup(engine: Engine, chain = CHAIN): Promise<Setup> {
  const database = await createTestDatabase({ engine, poolMax: 8 });
  const boot = await bootstrapDevOrganization(database.db);
  const ctx: CallContext = {
    caller: { principalId: boot.principalId, organizationId: boot.organizationId, via: "api_key", scopes: [] },
    requestId: "bench",
    signal: new AbortController().signal,
    clientAddress: "bench",
    permissions: (await loadPermissions(database.db, boot.principalId, boot.organizationId, [])) ?? undefined,
  };
  const hub = await startEventHub(database, log);
  const runs = createRunService({ db: database.db, workflows: createWorkflowCache(), hub });
  const spec = create(WorkflowSpecSchema, {
    name: "bench-chain",
    nodes: Array.from({ length: chain }, (_, i) => ({ key: `n${i}`, operation: "workflow.noop", dependsOn: i ? [`n${i - 1}`] : [], inputs: { i } })),
  });
  const wf = await createWorkflowService(database.db).upsertWorkflow(ctx, { spec } as any);
  return {
    database,
    ctx,
    runs,
    workflowId: wf.workflow!.id,
    async close() {
      await hub.close();
      await database.close();
    },
  };
}

async function enqueue(s: Setup, n: number) {
  for (let i = 0; i < n; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => s.runs.startRun(s.ctx, { workflowId: s.workflowId, input: {} } as any)));
  }
}

async function activeRuns(db: Database["db"]): Promise<number> {
  const [r] = await query<{ n: number }>(db, sql`SELECT count(*)::int AS n FROM workflow_runs WHERE status IN ('pending', 'running')`);
  return r!.n;
}

async function waitIdle(db: Database["db"]) {
  while ((await activeRuns(db)) > 0) await new Promise((r) => setTimeout(r, 50));
}

/** Steps/s from the first node start to the last node completion, by the database clock. */
async function stepRate(db: Database["db"]): Promise<{ steps: number; seconds: number; rate: number }> {
  const [r] = await query<{ steps: number; seconds: number }>(
    db,
    sql`SELECT count(*) FILTER (WHERE kind = 'workflow.node.completed')::int AS steps,
               extract(epoch FROM max(created_at) FILTER (WHERE kind = 'workflow.node.completed') - min(created_at) FILTER (WHERE kind = 'workflow.node.started'))::float8 AS seconds
        FROM events`,
  );
  return { steps: r!.steps, seconds: r!.seconds, rate: r!.steps / r!.seconds };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));

async function throughput(engine: Engine, processes: number): Promise<string> {
  const s = await setup(engine);
  try {
    await enqueue(s, RUNS);
    const t0 = Date.now();
    if (engine === "pglite") {
      const w = await startWorker({ database: s.database, config: workerConfig(), providers: createProviders({}), log });
      await waitIdle(s.database.db);
      await w.stop();
    } else {
      const env = { DATABASE_URL: s.database.url!, WORKER_CONCURRENCY: String(CONCURRENCY), WORKER_POLL_INTERVAL: "100ms", DATABASE_POOL_MAX: String(Math.min(CONCURRENCY, 20)) };
      const procs = Array.from({ length: processes }, (_, i) => spawnExecutor(env, `bench-${i}`));
      await waitIdle(s.database.db);
      for (const p of procs) p.child.kill("SIGTERM");
      await Promise.all(procs.map((p) => p.exited));
    }
    const wall = (Date.now() - t0) / 1000;
    const r = await stepRate(s.database.db);
    return `${fmt(r.rate)} steps/s (${r.steps} no-op steps in ${r.seconds.toFixed(2)} s of work; ${wall.toFixed(1)} s wall incl. start-up)`;
  } finally {
    await s.close();
  }
}

function workerConfig() {
  return { WORKER_ID: randomUUID(), WORKER_CONCURRENCY: CONCURRENCY, WORKER_POLL_INTERVAL: 100, WORKER_LEASE_SECONDS: 30, WORKER_MAX_RETRIES: 3, WORKER_SHUTDOWN_GRACE: 5000, RUN_ID: undefined };
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
