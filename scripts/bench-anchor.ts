/**
 * Side-by-side anchor: graphile-worker (the dev dependency, 0.16) and Fabric on the same
 * Postgres, in one invocation, alternating (ABBA) so that load drifting on a shared
 * machine hits both sides alike. Absolute figures on this machine are noise; the ratios of
 * one invocation are what to compare.
 *
 *   - graphile-worker: `--jobs` no-op jobs (20,000) added first, then one worker process
 *     (this one) at concurrency 10 and at 32, default settings otherwise (pool size raised
 *     to the concurrency); jobs/s from the first `job:start` to the last `job:success`.
 *   - Fabric: the same number of no-op steps as `--jobs`/`--chain` chains of `--chain`
 *     `workflow.noop` nodes, enqueued first, then one and two `fabric executor` processes
 *     (WORKER_CONCURRENCY=64); steps/s from the first node start to the last completion,
 *     by the database clock (scripts/lib/chain-bench.ts, as `npm run bench`).
 *
 *   npm run bench:anchor
 *   npm run bench:anchor -- --jobs 20000 --rounds 2 --chain 10
 *
 * Needs the local Postgres (FABRIC_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres);
 * each measurement creates and drops its own database. Runs the built executor (dist/):
 * rebuilt first when stale.
 */
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import { buildServer, isBuildStale } from "./build.js";
import { chainThroughput } from "./lib/chain-bench.js";
import { createTestDatabase } from "../tests/helpers/database.js";

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "20000" },
    rounds: { type: "string", default: "2" },
    chain: { type: "string", default: "10" },
    concurrency: { type: "string", default: "64" },
  },
});
const JOBS = Number(values.jobs);
const ROUNDS = Number(values.rounds);
const CHAIN = Number(values.chain);
const CONCURRENCY = Number(values.concurrency);

const load = () => loadavg()[0]!.toFixed(1);
const quiet = new Logger(() => () => {});

async function graphileWorker(concurrency: number): Promise<number> {
  const database = await createTestDatabase({ engine: "postgres", poolMax: 1 });
  try {
    const utils = await makeWorkerUtils({ connectionString: database.url!, logger: quiet });
    try {
      await utils.migrate();
      // One statement: graphile-worker's own add_job, once per job.
      await utils.withPgClient((client) => client.query(`SELECT graphile_worker.add_job('noop', json_build_object('i', g)) FROM generate_series(1, $1::int) g`, [JOBS]));
    } finally {
      await utils.release();
    }
    let first = 0;
    let last = 0;
    let done = 0;
    let finished!: () => void;
    const allDone = new Promise<void>((r) => (finished = r));
    const runner = await run({
      connectionString: database.url!,
      concurrency,
      maxPoolSize: Math.max(10, concurrency),
      noHandleSignals: true,
      pollInterval: 100,
      logger: quiet,
      taskList: { noop: async () => {} },
    });
    runner.events.on("job:start", () => {
      if (!first) first = performance.now();
    });
    runner.events.on("job:success", () => {
      if (++done === JOBS) {
        last = performance.now();
        finished();
      }
    });
    await allDone;
    await runner.stop();
    return JOBS / ((last - first) / 1000);
  } finally {
    await database.close();
  }
}

async function fabric(processes: number): Promise<number> {
  const r = await chainThroughput("postgres", { runs: Math.ceil(JOBS / CHAIN), chain: CHAIN, processes, concurrency: CONCURRENCY });
  return r.rate;
}

type Case = "gw10" | "gw32" | "fabric1" | "fabric2";
const label: Record<Case, string> = {
  gw10: "graphile-worker, 1 process, concurrency 10",
  gw32: "graphile-worker, 1 process, concurrency 32",
  fabric1: `fabric, 1 executor (${CHAIN}-node no-op chains)`,
  fabric2: `fabric, 2 executors (${CHAIN}-node no-op chains)`,
};
const measure: Record<Case, () => Promise<number>> = { gw10: () => graphileWorker(10), gw32: () => graphileWorker(32), fabric1: () => fabric(1), fabric2: () => fabric(2) };

async function main() {
  if (isBuildStale()) await buildServer();
  console.log(`Side-by-side anchor — ${JOBS.toLocaleString("en")} no-op jobs / steps per case, ${ROUNDS} rounds (ABBA), load average at start ${loadavg().map((l) => l.toFixed(1)).join(" ")}\n`);
  const order: Case[] = ["gw10", "gw32", "fabric1", "fabric2"];
  const results: Record<Case, number>[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const cases = round % 2 ? order : [...order].reverse();
    const r = {} as Record<Case, number>;
    for (const c of cases) {
      const before = load();
      r[c] = await measure[c]();
      console.log(`  round ${round}  ${label[c].padEnd(44)} ${r[c].toFixed(0).padStart(6)} /s   (load ${before} → ${load()})`);
    }
    const best = Math.max(r.gw10, r.gw32);
    console.log(`  round ${round}  ratio vs graphile-worker's best (${best.toFixed(0)}/s): 2 executors ${(r.fabric2 / best).toFixed(2)}×, 1 executor ${(r.fabric1 / best).toFixed(2)}×\n`);
    results.push(r);
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const ratios = (c: Case) => results.map((r) => r[c] / Math.max(r.gw10, r.gw32));
  console.log(`  per-round ratios, 2 executors: ${ratios("fabric2").map((x) => x.toFixed(2)).join(", ")} (median ${median(ratios("fabric2")).toFixed(2)}×; target ≥ 2.0×)`);
  console.log(`  per-round ratios, 1 executor:  ${ratios("fabric1").map((x) => x.toFixed(2)).join(", ")} (median ${median(ratios("fabric1")).toFixed(2)}×; target ≥ 1.2×)`);
  console.log(`  load average at end ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
