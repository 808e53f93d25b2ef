/**
 * Step cost against context size: a 200-node chain of `text.transform_basic` nodes, each
 * reading the previous node's text from the context and writing its own (upper-cased) copy
 * to its own context path — with 10 KB texts and with 10-byte texts, alternating, in one
 * invocation. Prints per chain the mean step time of nodes 1–20 and 181–200 (a step's time:
 * its `workflow.node.completed` event minus the previous node's, by the database clock; the
 * first node's counts from the run's creation), their ratio, and the run's total time.
 *
 * One executor (in this process, `startWorker`, WORKER_CONCURRENCY=8) and the run service
 * on one database; runs one at a time.
 *
 *   npm run bench:context                              # Postgres, 2 rounds
 *   npm run bench:context -- --engine pglite --rounds 1 --nodes 200 --big 10000
 */
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import { WorkflowSpecSchema } from "../gen/proto/fabric/v1/workflow_pb.js";
import { query } from "../src/db/database.js";
import { startWorker } from "../src/executor/worker.js";
import { createProviders } from "../src/providers/registry.js";
import { createWorkflowService } from "../src/services/runs/workflow-service.js";
import type { Engine } from "../tests/helpers/database.js";
import { log, setup, waitIdle, workerConfig } from "./lib/chain-bench.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string", default: "postgres" },
    rounds: { type: "string", default: "2" },
    nodes: { type: "string", default: "200" },
    big: { type: "string", default: "10000" },
    small: { type: "string", default: "10" },
  },
});
const NODES = Number(values.nodes);
const WINDOW = Math.min(20, Math.floor(NODES / 2));

async function chainRun(engine: Engine, textBytes: number) {
  const s = await setup(engine, 1);
  try {
    const spec = create(WorkflowSpecSchema, {
      name: `context-chain-${textBytes}`,
      nodes: Array.from({ length: NODES }, (_, i) => ({
        key: `n${i}`,
        operation: "text.transform_basic",
        dependsOn: i ? [`n${i - 1}`] : [],
        config: { op: "upper" },
        inputs: { text: i ? `$context.o${i - 1}` : "$context.seed" },
        outputs: { text: `$context.o${i}` },
      })),
    });
    const wf = await createWorkflowService(s.database.db).upsertWorkflow(s.ctx, { spec } as any);
    const w = await startWorker({ database: s.database, config: workerConfig(8), providers: createProviders({}), log });
    try {
      const started = await s.runs.startRun(s.ctx, { workflowId: wf.workflow!.id, input: { seed: "a".repeat(textBytes) } } as any);
      await waitIdle(s.database.db);
      const runId = started.run!.id;
      const [run] = await query<{ status: string; ms: number; keys: number }>(
        s.database.db,
        sql`SELECT status, extract(epoch FROM finished_at - created_at)::float8 * 1000 AS ms FROM workflow_runs WHERE id = ${runId}`,
      );
      if (run!.status !== "completed") throw new Error(`the run ended ${run!.status}`);
      const rows = await query<{ node_key: string; ms: number }>(
        s.database.db,
        sql`SELECT node_key, extract(epoch FROM created_at - (SELECT created_at FROM workflow_runs WHERE id = ${runId}))::float8 * 1000 AS ms
            FROM events WHERE run_id = ${runId} AND kind = 'workflow.node.completed'`,
      );
      const at = new Map(rows.map((r) => [r.node_key, Number(r.ms)]));
      const step = (i: number) => at.get(`n${i}`)! - (i ? at.get(`n${i - 1}`)! : 0);
      const mean = (from: number, to: number) => {
        let sum = 0;
        for (let i = from; i < to; i++) sum += step(i);
        return sum / (to - from);
      };
      return { first: mean(0, WINDOW), last: mean(NODES - WINDOW, NODES), total: Number(run!.ms) };
    } finally {
      await w.stop();
    }
  } finally {
    await s.close();
  }
}

async function main() {
  const engine = values.engine as Engine;
  const big = Number(values.big);
  const small = Number(values.small);
  console.log(`Context-size benchmark — ${engine}, ${NODES}-node text.transform_basic chain, ${big}-byte vs ${small}-byte texts, ${values.rounds} rounds; load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}\n`);
  for (let round = 1; round <= Number(values.rounds); round++) {
    const sizes = round % 2 ? [big, small] : [small, big];
    const r = new Map<number, Awaited<ReturnType<typeof chainRun>>>();
    for (const size of sizes) {
      const load = loadavg()[0]!.toFixed(1);
      const x = await chainRun(engine, size);
      r.set(size, x);
      console.log(
        `  round ${round}  ${String(size).padStart(6)}-byte outputs: mean step nodes 1–${WINDOW} ${x.first.toFixed(1)} ms, nodes ${NODES - WINDOW + 1}–${NODES} ${x.last.toFixed(1)} ms (${(x.last / x.first).toFixed(2)}×), run ${(x.total / 1000).toFixed(2)} s   (load ${load})`,
      );
    }
    const b = r.get(big)!;
    const sm = r.get(small)!;
    console.log(`  round ${round}  run time ${big}-byte / ${small}-byte: ${(b.total / sm.total).toFixed(2)}× (raw bytes written ${(big / small).toFixed(0)}×)\n`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
