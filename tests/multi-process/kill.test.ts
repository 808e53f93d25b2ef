/**
 * The execution plane's promise, tested with real processes on real Postgres: several
 * `fabric executor` processes work through a few hundred multi-node runs while, again and
 * again, one that holds leases is SIGKILLed and replaced. Afterwards every run completed,
 * every node committed exactly one successful completion, and the lease recoveries show in
 * the events. Steps call a fake OpenAI server with a small delay, so kills land mid-step.
 *
 * Nothing here depends on how fast the machine is: a victim is chosen among executors that
 * hold a lease at that moment (up, and mid-step), and the next kill waits until the
 * replacement has claimed work itself — on a loaded machine, where a process takes seconds
 * to start, kills slow down with it instead of outpacing start-up.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import { query } from "../../src/db/database.js";
import { startFakeOpenAI } from "../../src/providers/fakes/index.js";
import type { FakeServer } from "../../src/providers/fakes/index.js";
import { engine } from "../helpers/database.js";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { spawnExecutor, type ExecutorProcess } from "../helpers/processes.js";

const RUNS = Number(process.env.KILL_TEST_RUNS ?? 200);
const EXECUTORS = 3;

describe.skipIf(engine !== "postgres")("executors killed mid-step (real processes, real Postgres)", () => {
  let fabric: TestFabric;
  let fake: FakeServer;
  const executors: ExecutorProcess[] = [];
  let env: Record<string, string>;
  let seq = 0;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    fake.script(Array.from({ length: RUNS * 3 + 500 }, () => ({ delayMs: 40 })));
    fabric = await startTestFabric({ worker: false });
    env = {
      DATABASE_URL: fabric.database.url!,
      DATABASE_POOL_MAX: "4",
      OPENAI_API_KEY: "test-key",
      OPENAI_BASE_URL: fake.url,
      WORKER_CONCURRENCY: "8",
      WORKER_LEASE_SECONDS: "2",
      WORKER_POLL_INTERVAL: "100ms",
      // Random kills may land on one node several times: that is chaos, not a poison step.
      WORKER_QUARANTINE_AFTER: "20",
    };
  });

  afterAll(async () => {
    for (const e of executors) e.child.kill("SIGKILL");
    await Promise.all(executors.map((e) => e.exited));
    await fabric?.close();
    await fake?.close();
  });

  const spawnOne = () => {
    const e = spawnExecutor(env, `killable-${++seq}`);
    executors.push(e);
    return e;
  };

  it(
    "finishes every run, commits each node once, and shows the recoveries",
    async () => {
      const workflow = {
        name: "kill-test",
        nodes: [
          { key: "a", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.word" }, outputs: { text: "$context.upper" } },
          { key: "b", operation: "ai.generate", config: { provider: "openai" }, depends_on: ["a"], inputs: { prompt: "$context.upper" }, outputs: { text: "$context.b" }, policy: { max_attempts: 10, backoff: { initial_ms: 10, max_ms: 100 } } },
          { key: "c", operation: "ai.generate", config: { provider: "openai" }, depends_on: ["a"], inputs: { prompt: "$context.word" }, outputs: { text: "$context.c" }, policy: { max_attempts: 10, backoff: { initial_ms: 10, max_ms: 100 } } },
          { key: "d", operation: "workflow.fan_in", depends_on: ["b", "c"], outputs: { by_key: "$context.joined" }, policy: { max_attempts: 10 } },
        ],
      };
      const res = await fabric.rest("/v1/workflows", { method: "POST", json: workflow });
      const wf = ((await res.json()) as any).data;
      // A few executors first, so the runs start landing on them as they are created.
      for (let i = 0; i < EXECUTORS; i++) spawnOne();
      const runIds: string[] = [];
      for (let i = 0; i < RUNS; i += 20) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(20, RUNS - i) }, (_, j) =>
            fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: wf.id, input: { word: `w${i + j}` } } }).then(async (r) => ((await r.json()) as any).data.id as string),
          ),
        );
        runIds.push(...batch);
      }

      const db = fabric.database.db;
      const isLive = (e: ExecutorProcess) => e.child.exitCode === null && e.child.signalCode === null;
      /** Worker ids holding a lease on a running node right now. */
      const leaseHolders = async () =>
        new Set((await query<{ owner: string }>(db, sql`SELECT DISTINCT lease_owner AS owner FROM workflow_run_nodes WHERE status = 'running' AND lease_owner IS NOT NULL`)).map((r) => r.owner));
      const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

      // Chaos: SIGKILL an executor that is mid-step, start a replacement, and strike again
      // only once the replacement has claimed work (and at most about once a second).
      let kills = 0;
      let stop = false;
      const chaos = (async () => {
        let replacement: ExecutorProcess | undefined;
        while (!stop) {
          const holders = await leaseHolders();
          if (replacement && isLive(replacement) && !holders.has(replacement.id)) {
            await pause(100);
            continue;
          }
          replacement = undefined;
          const candidates = executors.filter((e) => isLive(e) && holders.has(e.id));
          const victim = candidates[Math.floor(Math.random() * candidates.length)];
          if (!victim) {
            await pause(100);
            continue;
          }
          victim.child.kill("SIGKILL");
          kills++;
          replacement = spawnOne();
          await pause(1000); // pacing only: how often chaos strikes, not a bound anything waits on
        }
      })();

      await eventually(
        async () => {
          const [r] = await query<{ active: number }>(db, sql`SELECT count(*)::int AS active FROM workflow_runs WHERE status IN ('pending', 'running', 'paused', 'waiting')`);
          return r!.active === 0 ? true : undefined;
        },
        // A generous ceiling: a loaded machine slows the runs down, it does not fail them.
        480_000,
        "all runs to finish",
      );
      stop = true;
      await chaos;

      expect(kills).toBeGreaterThan(0);
      const statuses = await query<{ status: string; n: number }>(db, sql`SELECT status, count(*)::int AS n FROM workflow_runs GROUP BY status`);
      expect(statuses).toEqual([{ status: "completed", n: RUNS }]);

      // Every node succeeded, and exactly one completion event exists per node.
      const nodes = await query<{ status: string; n: number }>(db, sql`SELECT status, count(*)::int AS n FROM workflow_run_nodes GROUP BY status`);
      expect(nodes).toEqual([{ status: "succeeded", n: RUNS * 4 }]);
      const dupes = await query(db, sql`SELECT run_id, node_key, count(*) FROM events WHERE kind = 'workflow.node.completed' GROUP BY run_id, node_key HAVING count(*) <> 1`);
      expect(dupes).toEqual([]);
      const [completions] = await query<{ n: number }>(db, sql`SELECT count(*)::int AS n FROM events WHERE kind = 'workflow.node.completed'`);
      expect(completions!.n).toBe(RUNS * 4);
      const [terminal] = await query<{ n: number }>(db, sql`SELECT count(*)::int AS n FROM events WHERE kind = 'workflow.run.completed'`);
      expect(terminal!.n).toBe(RUNS);

      // No (node, attempt) was ever started twice: claims are exclusive.
      const doubleClaims = await query(
        db,
        sql`SELECT run_id, node_key, payload->>'attempt' AS attempt, count(*) FROM events WHERE kind = 'workflow.node.started'
            GROUP BY 1, 2, 3 HAVING count(*) > 1`,
      );
      expect(doubleClaims).toEqual([]);

      // Kills mid-step show up as expired leases, recovered by another worker.
      const [recovered] = await query<{ n: number }>(
        db,
        sql`SELECT count(*)::int AS n FROM events WHERE kind = 'workflow.node.retrying' AND payload->'error'->>'code' = 'lease_expired'`,
      );
      expect(recovered!.n).toBeGreaterThan(0);
      const [retried] = await query<{ n: number }>(db, sql`SELECT count(*)::int AS n FROM workflow_run_nodes WHERE attempt > 1`);
      expect(retried!.n).toBeGreaterThan(0);

      // And the results are right: every run's context holds its own word, transformed.
      const wrong = await query(
        db,
        sql`SELECT id FROM workflow_runs WHERE context->>'upper' <> upper(context->>'word') OR context->>'b' <> context->>'upper' OR context->>'c' <> context->>'word'
            OR context->'joined'->'b'->>'text' <> context->>'upper'`,
      );
      expect(wrong).toEqual([]);
      console.log(`kill test: ${RUNS} runs × 4 nodes, ${kills} executors SIGKILLed, ${recovered!.n} lease recoveries, ${retried!.n} nodes needed more than one attempt`);
    },
    600_000,
  );
});
