/**
 * RUN_ID: an executor process that works on one run only and exits when it ends.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import { query } from "../../src/db/database.js";
import { engine } from "../helpers/database.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { spawnExecutor } from "../helpers/processes.js";

describe.skipIf(engine !== "postgres")("RUN_ID (real process, real Postgres)", () => {
  let fabric: TestFabric;
  beforeAll(async () => {
    fabric = await startTestFabric({ worker: false });
  });
  afterAll(() => fabric?.close());

  it("takes only that run's steps and exits 0 when the run ends", async () => {
    const chain = { name: "scoped", nodes: ["a", "b", "c"].map((k, i) => ({ key: k, operation: "workflow.noop", depends_on: i ? [["a", "b", "c"][i - 1]] : [] })) };
    const wf = ((await (await fabric.rest("/v1/workflows", { method: "POST", json: chain })).json()) as any).data;
    const start = async () => ((await (await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: wf.id } })).json()) as any).data.id as string;
    const mine = await start();
    const other = await start();

    const exec = spawnExecutor({ DATABASE_URL: fabric.database.url!, RUN_ID: mine, WORKER_POLL_INTERVAL: "100ms" }, "scoped-worker");
    const code = await Promise.race([exec.exited, new Promise((r) => setTimeout(() => r("timeout"), 20_000))]);
    if (code === "timeout") exec.child.kill("SIGKILL");
    expect(code, exec.stderr()).toBe(0);

    const rows = await query<{ id: string; status: string }>(fabric.database.db, sql`SELECT id, status FROM workflow_runs`);
    expect(Object.fromEntries(rows.map((r) => [r.id, r.status]))).toEqual({ [mine]: "completed", [other]: "pending" });
    const [touched] = await query<{ n: number }>(fabric.database.db, sql`SELECT count(*)::int AS n FROM events WHERE run_id = ${other} AND kind = 'workflow.node.started'`);
    expect(touched!.n).toBe(0);
  });
});
