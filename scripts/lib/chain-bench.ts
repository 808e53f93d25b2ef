/**
 * Shared by scripts/bench.ts and scripts/bench-anchor.ts: a database with the dev
 * organization and an n-node `workflow.noop` chain, run enqueueing, and the step rate of
 * what the executors did, by the database clock.
 */
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import { WorkflowSpecSchema } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { query, type Database } from "../../src/db/database.js";
import { createWorkflowCache } from "../../src/db/workflow-specs.js";
import { startWorker } from "../../src/executor/worker.js";
import { createLogger } from "../../src/logger.js";
import { createProviders } from "../../src/providers/registry.js";
import { bootstrapDevOrganization } from "../../src/services/tenancy/dev-organization.js";
import { loadPermissions } from "../../src/services/access/permission-checks.js";
import type { CallContext } from "../../src/services/call-context.js";
import { startEventHub } from "../../src/delivery/event-hub.js";
import { createRunService } from "../../src/services/runs/run-service.js";
import { createWorkflowService } from "../../src/services/runs/workflow-service.js";
import { createTestDatabase, type Engine } from "../../tests/helpers/database.js";
import { spawnExecutor } from "../../tests/helpers/processes.js";

export const log = createLogger("warn");

export interface Setup {
  database: Database & { url?: string };
  ctx: CallContext;
  runs: ReturnType<typeof createRunService>;
  workflowId: string;
  close(): Promise<void>;
}

export async function setup(engine: Engine, chain: number): Promise<Setup> {
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

export async function enqueue(s: Setup, n: number) {
  for (let i = 0; i < n; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => s.runs.startRun(s.ctx, { workflowId: s.workflowId, input: {} } as any)));
  }
}

async function activeRuns(db: Database["db"]): Promise<number> {
  const [r] = await query<{ n: number }>(db, sql`SELECT count(*)::int AS n FROM workflow_runs WHERE status IN ('pending', 'running')`);
  return r!.n;
}

export async function waitIdle(db: Database["db"]) {
  while ((await activeRuns(db)) > 0) await new Promise((r) => setTimeout(r, 50));
}

/** Steps/s from the first node start to the last node completion, by the database clock. */
export async function stepRate(db: Database["db"]): Promise<{ steps: number; seconds: number; rate: number }> {
  const [r] = await query<{ steps: number; seconds: number }>(
    db,
    sql`SELECT count(*) FILTER (WHERE kind = 'workflow.node.completed')::int AS steps,
               extract(epoch FROM max(created_at) FILTER (WHERE kind = 'workflow.node.completed') - min(created_at) FILTER (WHERE kind = 'workflow.node.started'))::float8 AS seconds
        FROM events`,
  );
  return { steps: r!.steps, seconds: r!.seconds, rate: r!.steps / r!.seconds };
}

export function workerConfig(concurrency: number) {
  return { WORKER_ID: randomUUID(), WORKER_CONCURRENCY: concurrency, WORKER_POLL_INTERVAL: 100, WORKER_LEASE_SECONDS: 30, WORKER_MAX_RETRIES: 3, WORKER_SHUTDOWN_GRACE: 5000, RUN_ID: undefined };
}

export interface ThroughputResult {
  rate: number;
  steps: number;
  seconds: number;
  wall: number;
}

/**
 * `runs` chains of `chain` no-op nodes enqueued first, then worked off by `processes`
 * executor processes (PGlite: one in-process executor — the embedded database belongs to
 * one process).
 */
export async function chainThroughput(engine: Engine, opts: { runs: number; chain: number; processes: number; concurrency: number }): Promise<ThroughputResult> {
  const s = await setup(engine, opts.chain);
  try {
    await enqueue(s, opts.runs);
    const t0 = Date.now();
    if (engine === "pglite") {
      const w = await startWorker({ database: s.database, config: workerConfig(opts.concurrency), providers: createProviders({}), log });
      await waitIdle(s.database.db);
      await w.stop();
    } else {
      const env = { DATABASE_URL: s.database.url!, WORKER_CONCURRENCY: String(opts.concurrency), WORKER_POLL_INTERVAL: "100ms", DATABASE_POOL_MAX: String(Math.min(opts.concurrency, 20)) };
      const procs = Array.from({ length: opts.processes }, (_, i) => spawnExecutor(env, `bench-${i}`));
      await waitIdle(s.database.db);
      for (const p of procs) p.child.kill("SIGTERM");
      await Promise.all(procs.map((p) => p.exited));
    }
    const wall = (Date.now() - t0) / 1000;
    const r = await stepRate(s.database.db);
    return { ...r, wall };
  } finally {
    await s.close();
  }
}
