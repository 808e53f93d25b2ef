/**
 * `fabric serve` and `fabric executor` started while their database is down wait for it
 * instead of exiting: they retry with backoff, log the cause once (no stack), serve answers
 * /readyz 503 meanwhile, and both come up once the database is back. A private cluster
 * (tests/helpers/private-postgres.ts) is stopped for it; the shared server never is.
 */
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/database.js";
import { engine } from "../helpers/database.js";
import { privatePostgresAvailable, startPrivatePostgres, type PrivatePostgres } from "../helpers/private-postgres.js";
import { spawnFabric, waitForOutput, type FabricProcess } from "../helpers/processes.js";

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function readyz(url: string): Promise<{ status: number | "none"; body: any }> {
  try {
    const r = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) });
    return { status: r.status, body: await r.json().catch(() => null) };
  } catch {
    return { status: "none", body: null };
  }
}

describe.skipIf(engine !== "postgres" || !privatePostgresAvailable)("started while the database is down", () => {
  let pg: PrivatePostgres;
  const procs: FabricProcess[] = [];

  beforeAll(async () => {
    pg = await startPrivatePostgres();
  }, 60_000);
  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    await pg?.destroy();
  }, 60_000);

  it("serve (readyz 503 meanwhile) and an executor wait and come up when it returns", async () => {
    const url = await pg.createDatabase("start_while_down");
    const migrated = await openDatabase({ url, poolMax: 1 });
    await migrated.close();
    await pg.stop("fast");

    const port = await freePort();
    const env = { DATABASE_URL: url, DATABASE_POOL_MAX: "3", JWT_SECRET: "start-while-down-secret-0123456789-abcdefgh", LOG_LEVEL: "info", PORT: String(port), GRPC_PORT: String(await freePort()), WORKER_ID: "start-while-down" };
    const serve = spawnFabric(["serve", "--no-migrate"], env);
    const executor = spawnFabric(["executor"], env);
    procs.push(serve, executor);

    // Both wait, saying why once, without a stack.
    await waitForOutput(serve, /waiting for the database; answering 503 meanwhile/);
    await waitForOutput(serve, /database unreachable at start; retrying failed/);
    await waitForOutput(executor, /database unreachable at start; retrying failed/);
    const down = await readyz(`http://127.0.0.1:${port}`);
    expect(down).toMatchObject({ status: 503, body: { code: "database_unavailable" } });
    for (const p of [serve, executor]) {
      const line = p.out.stderr.split("\n").find((l) => l.includes("database unreachable at start"))!;
      expect(JSON.parse(line).cause).toMatch(/ECONNREFUSED/);
      expect(p.out.stderr).not.toMatch(/\n\s+at /);
      expect(p.child.exitCode).toBeNull();
    }

    await pg.start();
    await waitForOutput(serve, /control plane listening/);
    await waitForOutput(executor, /executor started/);
    let up = await readyz(`http://127.0.0.1:${port}`);
    for (const deadline = Date.now() + 30_000; up.status !== 200 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 200));
      up = await readyz(`http://127.0.0.1:${port}`);
    }
    expect(up.status).toBe(200);
    expect(serve.out.stderr).toMatch(/database unreachable at start; retrying works again/);

    // Stopped cleanly on a signal.
    serve.child.kill("SIGTERM");
    executor.child.kill("SIGTERM");
    expect((await serve.exited).code).toBe(0);
    expect((await executor.exited).code).toBe(0);
  }, 150_000);

  it("a signal while waiting ends the process cleanly", async () => {
    const url = pg.url("start_while_down");
    await pg.stop("fast");
    const executor = spawnFabric(["executor"], { DATABASE_URL: url, LOG_LEVEL: "info", WORKER_ID: "start-while-down-2" });
    procs.push(executor);
    await waitForOutput(executor, /database unreachable at start; retrying failed/);
    executor.child.kill("SIGTERM");
    const { code } = await executor.exited;
    expect(code).toBe(0);
    await pg.start();
  }, 120_000);
});
