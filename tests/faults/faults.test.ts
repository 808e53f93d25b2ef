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
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engine } from "../helpers/database.js";
import { privatePostgresAvailable, startPrivatePostgres, type PrivatePostgres } from "../helpers/private-postgres.js";
import { spawnServe } from "../helpers/serve-process.js";
import { alive, untilWatchersCaughtUp, checkRuns, checkWatcher, grpcWatcher, maxEventId, registerWorkflow, setUpScene, sleep, sseWatcher, statusSummary, submitRuns, untilRunsFinished, type Scene } from "./harness.js";

// Its own step (`npm run test:faults`, FABRIC_FAULTS=1; .ci/run runs it after the suites),
// not part of `npm test`: it takes a few minutes and a private cluster of its own. Every
// scenario keeps its full checks.
const faultsRequested = process.env.FABRIC_FAULTS === "1";

describe.skipIf(engine !== "postgres" || !privatePostgresAvailable || !faultsRequested)("faults (private Postgres cluster, real processes)", () => {
  let pg: PrivatePostgres;
  const scenes: Scene[] = [];
  /** One row per finished scenario, printed as a table at the end (and kept in test-results/faults/summary.md). */
  const table: string[] = [];

  beforeAll(async () => {
    pg = await startPrivatePostgres();
  }, 60_000);
  afterAll(async () => {
    for (const s of scenes) {
      for (const p of [...s.planes, ...s.executors]) if (!alive(p) || process.env.FAULTS_VERBOSE) console.log(`[fault] process ${"id" in p ? p.id : "serve"} ${alive(p) ? "up" : `exited ${p.child.exitCode ?? p.child.signalCode}`}; stderr tail:\n${p.stderr().slice(-2500)}`);
      await s.close().catch(() => {});
    }
    await pg?.destroy();
    if (table.length) {
      const text = ["| scenario | runs completed | duplicate completions | client statuses | watchers: received / lost / repeated (reconnects) | recovery | watchers caught up |", "|---|---|---|---|---|---|---|", ...table].join("\n");
      console.log(`[fault] summary\n${text}`);
      const out = join(dirname(fileURLToPath(import.meta.url)), "../../test-results/faults/summary.md");
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, text + "\n");
    }
  }, 60_000);

  async function finish(name: string, scene: Scene, runs: number, watchers: Awaited<ReturnType<typeof sseWatcher>>[], afterId: number, recoveryMs: number, extra = "") {
    await untilRunsFinished(scene, runs);
    // The last events reach the watchers: wait until each has the table's last event (a
    // ceiling, not an expectation — a stalled stream fails the checks below), and say how long that took.
    const caughtUp = await untilWatchersCaughtUp(scene, watchers, afterId);
    for (const w of watchers) await w.stop();
    const checks = await checkRuns(scene);
    const perWatcher = await Promise.all(watchers.map(async (w) => ({ name: w.name, reconnects: w.reconnects, ...(await checkWatcher(scene, w, afterId)) })));
    console.log(
      `[fault] ${name}: runs ${checks.completed}/${checks.runs} completed, duplicate completions ${checks.duplicateCompletions}, ` +
        `client statuses {${statusSummary(scene)}}, watchers ${perWatcher.map((w) => `${w.name}: ${w.received} received, ${w.lost} lost, ${w.repeated} repeated, ${w.reconnects} reconnects`).join("; ")}, ` +
        `recovery ${recoveryMs} ms, watchers caught up ${caughtUp} ms after the runs finished${extra ? `, ${extra}` : ""}`,
    );
    table.push(
      `| ${name} | ${checks.completed}/${checks.runs} | ${checks.duplicateCompletions} | ${statusSummary(scene) || "—"} | ${perWatcher.map((w) => `${w.name} ${w.received} / ${w.lost} / ${w.repeated} (${w.reconnects})`).join("; ")} | ${recoveryMs} ms | ${caughtUp} ms |`,
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
    const RUNS = 40;
    const submitted = submitRuns(scene, workflowId, RUNS, 100);
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

  /** GET /readyz with a generous ceiling: its status and how long the answer took. */
  async function readyz(scene: Scene): Promise<{ status: number | "none"; ms: number }> {
    const t = Date.now();
    try {
      const r = await fetch(`${scene.planes[0]!.restUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
      await r.body?.cancel();
      return { status: r.status, ms: Date.now() - t };
    } catch {
      return { status: "none", ms: Date.now() - t };
    }
  }

  it("Postgres stopped (immediate) and restarted under load: 503 while down, ready again after its return, runs complete once", async () => {
    const scene = await setUpScene(pg);
    scenes.push(scene);
    const workflowId = await registerWorkflow(scene);
    const afterId = await maxEventId(scene);
    const watchers = [sseWatcher(scene, afterId), grpcWatcher(scene, afterId)];
    const RUNS = 40;
    const submitted = submitRuns(scene, workflowId, RUNS, 150); // spans the outage
    await sleep(1500);
    await pg.stop("immediate");
    const probes: { status: number | "none"; ms: number }[] = [];
    for (let i = 0; i < 4; i++) {
      await sleep(800);
      probes.push(await readyz(scene));
    }
    await pg.start();
    const back = Date.now();
    let readyAfter = -1;
    while (Date.now() - back < 30_000) {
      if ((await readyz(scene)).status === 200) {
        readyAfter = Date.now() - back;
        break;
      }
      await sleep(100);
    }
    await submitted;
    await untilRunsFinished(scene, RUNS);
    const recovery = Date.now() - back;
    for (const p of [...scene.planes, ...scene.executors]) expect(alive(p), p.stderr().slice(-3000)).toBe(true);
    await finish("postgres stopped -m immediate for ~4 s", scene, RUNS, watchers, afterId, recovery, `readyz while down ${probes.map((p) => `${p.status} in ${p.ms} ms`).join(", ")}; readyz 200 ${readyAfter} ms after restart`);
    expect(probes.every((p) => p.status === 503 && p.ms < 3000)).toBe(true);
    // 200 again after the restart (printed above: about 1.3-1.7 s on an idle machine, up to
    // ~3 s at load 13 on 2 cores); the ceiling only catches a readiness that never returns.
    expect(readyAfter).toBeGreaterThanOrEqual(0);
    expect(readyAfter).toBeLessThan(15_000);
  }, 150_000);

  it("an executor frozen (SIGSTOP) past its lease, then resumed: its steps run elsewhere, nothing commits twice", async () => {
    // A short idle-in-transaction timeout: a transaction the freeze caught ends and frees its locks.
    const scene = await setUpScene(pg, { env: { FABRIC_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: "2000" } });
    scenes.push(scene);
    const workflowId = await registerWorkflow(scene);
    const afterId = await maxEventId(scene);
    const watchers = [sseWatcher(scene, afterId), grpcWatcher(scene, afterId)];
    const RUNS = 40;
    const submitted = submitRuns(scene, workflowId, RUNS, 50);
    await sleep(800);
    const frozen = scene.executors[0]!;
    frozen.child.kill("SIGSTOP");
    const t0 = Date.now();
    await submitted;
    await untilRunsFinished(scene, RUNS); // the other executor finishes everything
    const recovery = Date.now() - t0;
    const frozenFor = Date.now() - t0;
    await sleep(Math.max(0, 3 * 3000 - frozenFor)); // well past its 3 s lease
    frozen.child.kill("SIGCONT");
    await sleep(3000); // it wakes up, finds its leases gone, discards its results
    for (const p of [...scene.planes, ...scene.executors]) expect(alive(p), p.stderr().slice(-3000)).toBe(true);
    await finish("executor SIGSTOPped past its lease", scene, RUNS, watchers, afterId, recovery, `frozen ${Date.now() - t0 - 3000} ms`);
  }, 150_000);

  it("a control plane killed (SIGKILL) under SSE and gRPC watchers: they resume on another, no event lost or repeated", async () => {
    const scene = await setUpScene(pg);
    scenes.push(scene);
    scene.planes.push(await spawnServe(scene.env, { timeoutMs: 60_000 }));
    const workflowId = await registerWorkflow(scene);
    const afterId = await maxEventId(scene);
    const watchers = [sseWatcher(scene, afterId), grpcWatcher(scene, afterId)];
    const RUNS = 40;
    const submitted = submitRuns(scene, workflowId, RUNS, 100);
    await sleep(1500);
    scene.planes[0]!.child.kill("SIGKILL");
    const t0 = Date.now();
    await scene.planes[0]!.exited;
    scene.planes.push(await spawnServe(scene.env, { timeoutMs: 60_000 })); // a replacement, as a supervisor would start
    await submitted;
    await untilRunsFinished(scene, RUNS);
    const recovery = Date.now() - t0;
    for (const p of [...scene.planes.slice(1), ...scene.executors]) expect(alive(p), p.stderr().slice(-3000)).toBe(true);
    expect(watchers.every((w) => w.reconnects >= 1)).toBe(true); // they were on the killed one
    await finish("control plane SIGKILLed under watchers", scene, RUNS, watchers, afterId, recovery);
  }, 150_000);
});
