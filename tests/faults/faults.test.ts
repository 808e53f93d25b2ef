/**
 * Fault injection with Fabric's own processes (`fabric serve`, `fabric executor`) on a
 * PRIVATE Postgres cluster this file starts (tests/helpers/private-postgres.ts), so the
 * shared server is never stopped. Postgres only: skipped on PGlite.
 *
 * Each scenario submits runs steadily while the fault happens, with organization-wide
 * watchers (SSE and gRPC) open across it, then checks: every run completed exactly once,
 * no watcher lost or repeated an event, no client saw a 500, every process still up
 * (unless the scenario kills it), and prints what happened and how long recovery took.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engine } from "../helpers/database.js";
import { privatePostgresAvailable, startPrivatePostgres, type PrivatePostgres } from "../helpers/private-postgres.js";
import { alive, checkRuns, checkWatcher, grpcWatcher, maxEventId, registerWorkflow, setUpScene, sleep, sseWatcher, statusSummary, submitRuns, untilRunsFinished, type Scene } from "./harness.js";

describe.skipIf(engine !== "postgres" || !privatePostgresAvailable)("faults (private Postgres cluster, real processes)", () => {
  let pg: PrivatePostgres;
  const scenes: Scene[] = [];

  beforeAll(async () => {
    pg = await startPrivatePostgres();
  }, 60_000);
  afterAll(async () => {
    for (const s of scenes) {
      for (const p of [...s.planes, ...s.executors]) if (!alive(p) || process.env.FAULTS_VERBOSE) console.log(`[fault] process ${"id" in p ? p.id : "serve"} ${alive(p) ? "up" : `exited ${p.child.exitCode ?? p.child.signalCode}`}; stderr tail:\n${p.stderr().slice(-2500)}`);
      await s.close().catch(() => {});
    }
    await pg?.destroy();
  }, 60_000);

  async function finish(name: string, scene: Scene, runs: number, watchers: Awaited<ReturnType<typeof sseWatcher>>[], afterId: number, recoveryMs: number, extra = "") {
    await untilRunsFinished(scene, runs);
    await sleep(1500); // the last events reach the watchers
    for (const w of watchers) await w.stop();
    const checks = await checkRuns(scene);
    const perWatcher = await Promise.all(watchers.map(async (w) => ({ name: w.name, reconnects: w.reconnects, ...(await checkWatcher(scene, w, afterId)) })));
    console.log(
      `[fault] ${name}: runs ${checks.completed}/${checks.runs} completed, duplicate completions ${checks.duplicateCompletions}, ` +
        `client statuses {${statusSummary(scene)}}, watchers ${perWatcher.map((w) => `${w.name}: ${w.received} received, ${w.lost} lost, ${w.repeated} repeated, ${w.reconnects} reconnects`).join("; ")}, ` +
        `recovery ${recoveryMs} ms${extra ? `, ${extra}` : ""}`,
    );
    expect(checks).toEqual({ runs, completed: runs, duplicateCompletions: 0, nodesNotSucceeded: 0 });
    expect(scene.statuses.get("500") ?? 0).toBe(0);
    for (const w of perWatcher) expect({ name: w.name, lost: w.lost, repeated: w.repeated }).toEqual({ name: w.name, lost: 0, repeated: 0 });
  }

  it("backends terminated in a loop: processes stay up, runs complete once", async () => {
    const scene = await setUpScene(pg);
    scenes.push(scene);
    const workflowId = await registerWorkflow(scene);
    const afterId = await maxEventId(scene);
    const watchers = [sseWatcher(scene, afterId), grpcWatcher(scene, afterId)];
    const RUNS = 60;
    const submitted = submitRuns(scene, workflowId, RUNS, 60);
    let killed = 0;
    const until = Date.now() + 6000;
    while (Date.now() < until) {
      killed += await pg.terminateBackends(scene.dbName);
      await sleep(300);
    }
    const t0 = Date.now();
    await submitted;
    await untilRunsFinished(scene, RUNS);
    const recovery = Date.now() - t0;
    expect(killed).toBeGreaterThan(10);
    for (const p of [...scene.planes, ...scene.executors]) expect(alive(p), p.stderr().slice(-3000)).toBe(true);
    await finish("backends terminated", scene, RUNS, watchers, afterId, recovery, `${killed} backends terminated`);
  }, 150_000);
});
