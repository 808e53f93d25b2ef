/**
 * Issue 14, item 1, with real `fabric executor` processes on real Postgres:
 * - the amplifying `text.transform_basic` replace (30 KB input, 10 KB replacement: 300 MB
 *   if built) fails its node with `output_too_large`; the executor — started with a
 *   192 MiB heap, which the built text would overflow — survives and runs the next run;
 * - a poison step, one whose executors die under it, is quarantined after
 *   WORKER_QUARANTINE_AFTER lease expirations instead of being handed to the next one.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import { query } from "../../src/db/database.js";
import { startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";
import { engine } from "../helpers/database.js";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { spawnExecutor, type ExecutorProcess } from "../helpers/processes.js";

const rssMiB = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
};
const alive = (e: ExecutorProcess) => e.child.exitCode === null && e.child.signalCode === null;

describe.skipIf(engine !== "postgres")("executors protect themselves (real processes, real Postgres)", () => {
  let fabric: TestFabric;
  let fake: FakeServer;
  const executors: ExecutorProcess[] = [];
  let env: Record<string, string>;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    fabric = await startTestFabric({ worker: false });
    env = {
      DATABASE_URL: fabric.database.url!,
      DATABASE_POOL_MAX: "3",
      OPENAI_API_KEY: "test-key",
      OPENAI_BASE_URL: fake.url,
      WORKER_POLL_INTERVAL: "100ms",
      NODE_OPTIONS: "--max-old-space-size=192",
    };
  });

  afterAll(async () => {
    for (const e of executors) e.child.kill("SIGKILL");
    await Promise.all(executors.map((e) => e.exited));
    await fabric?.close();
    await fake?.close();
  });

  const register = async (spec: unknown) => ((await (await fabric.rest("/v1/workflows", { method: "POST", json: spec })).json()) as any).data.id as string;
  const startRun = async (workflowId: string, input: unknown) => ((await (await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: workflowId, input } })).json()) as any).data.id as string;
  const finished = (runId: string) =>
    eventually(
      async () => {
        const [r] = await query<{ status: string }>(fabric.database.db, sql`SELECT status FROM workflow_runs WHERE id = ${runId}`);
        return r && ["completed", "failed", "cancelled"].includes(r.status) ? r.status : undefined;
      },
      60_000,
      `run ${runId} to finish`,
    );
  const node = async (runId: string, key: string) =>
    (await query<{ status: string; attempt: number; error: any; lease_owner: string | null }>(fabric.database.db, sql`SELECT status, attempt, error, lease_owner FROM workflow_run_nodes WHERE run_id = ${runId} AND node_key = ${key}`))[0]!;

  it(
    "fails the amplifying replace with output_too_large and the executor survives",
    async () => {
      const amplify = await register({
        name: "amplify",
        nodes: [{ key: "r", operation: "text.transform_basic", config: { op: "replace", find: "a", replace: "b".repeat(10_000) }, inputs: { text: "$context.text" }, outputs: { text: "$context.out" }, policy: { max_attempts: 3 } }],
      });
      const upper = await register({ name: "upper", nodes: [{ key: "u", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.text" }, outputs: { text: "$context.out" } }] });
      const e = spawnExecutor({ ...env, WORKER_CONCURRENCY: "2" }, "amplify-executor");
      executors.push(e);
      const warm = await startRun(upper, { text: "warm" });
      expect(await finished(warm)).toBe("completed");
      const rssBefore = rssMiB(e.child.pid!);

      const runs = await Promise.all([1, 2, 3].map(() => startRun(amplify, { text: "a".repeat(30_000) })));
      for (const r of runs) expect(await finished(r)).toBe("failed");
      for (const r of runs) {
        const n = await node(r, "r");
        expect(n.error.code).toBe("output_too_large");
        expect(n.attempt).toBe(1);
      }
      expect(alive(e)).toBe(true);
      const after = await startRun(upper, { text: "after" });
      expect(await finished(after)).toBe("completed");
      const rssAfter = rssMiB(e.child.pid!);
      expect(alive(e)).toBe(true);
      console.log(`amplification: 3 runs × (30 KB input, 10 KB replacement → 300 MB if built) failed with output_too_large; executor RSS ${rssBefore} MiB before, ${rssAfter} MiB after (heap limit 192 MiB)`);
      e.child.kill("SIGTERM");
      await e.exited;
    },
    90_000,
  );

  it(
    "quarantines a step whose executors keep dying instead of retrying it into the next one",
    async () => {
      fake.script(Array.from({ length: 20 }, () => ({ delayMs: 120_000 })));
      const poison = await register({
        name: "poison",
        nodes: [{ key: "p", operation: "ai.generate", config: { provider: "openai" }, inputs: { prompt: "$context.prompt" }, outputs: { text: "$context.out" }, policy: { max_attempts: 10 } }],
      });
      const runId = await startRun(poison, { prompt: "x" });
      const victimEnv = { ...env, WORKER_LEASE_SECONDS: "1", WORKER_QUARANTINE_AFTER: "2", RUN_ID: runId };
      for (let i = 1; i <= 2; i++) {
        const victim = spawnExecutor(victimEnv, `victim-${i}`);
        executors.push(victim);
        await eventually(async () => ((await node(runId, "p")).lease_owner === victim.id ? true : undefined), 30_000, `victim-${i} to hold the node`);
        victim.child.kill("SIGKILL");
        await victim.exited;
      }
      // The next executor reaps the second expiry: quarantined, not claimed again.
      const survivor = spawnExecutor(victimEnv, "survivor");
      executors.push(survivor);
      expect(await finished(runId)).toBe("failed");
      const n = await node(runId, "p");
      expect(n.status).toBe("failed");
      expect(n.error.code).toBe("quarantined");
      expect(n.attempt).toBe(2);
      const [started] = await query<{ n: number }>(fabric.database.db, sql`SELECT count(*)::int AS n FROM events WHERE run_id = ${runId} AND kind = 'workflow.node.started'`);
      expect(started!.n).toBe(2);
      await survivor.exited; // RUN_ID: it exits once the run has ended
    },
    120_000,
  );
});
