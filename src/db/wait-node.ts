/**
 * Parks a node that waits for a signal: node → waiting (no lease owner; its
 * `lease_expires_at` becomes the wait deadline the reaper enforces), run → waiting.
 */
import { sql } from "drizzle-orm";
import { query, type Db } from "./database.js";
import { emitEvents } from "./events.js";
import { ensureStarted, guardSql, lockRun, type NodeGuard } from "./run-state.js";
import type { NewEvent } from "./events.js";

export async function parkWaitingNode(db: Db, args: { runId: string; nodeKey: string; guard: NodeGuard; timeoutMs: number | null }): Promise<"applied" | "lost"> {
  return db.transaction(async (tx) => {
    const run = await lockRun(tx, args.runId);
    if (!run) return "lost";
    const deadline = args.timeoutMs === null ? sql`NULL` : sql`now() + make_interval(secs => ${args.timeoutMs / 1000})`;
    const rows = await query(
      tx,
      sql`UPDATE workflow_run_nodes SET status = 'waiting', lease_owner = NULL, lease_expires_at = ${deadline}
          WHERE run_id = ${args.runId} AND node_key = ${args.nodeKey} AND ${guardSql(args.guard)} RETURNING id`,
    );
    if (rows.length === 0) return "lost";
    const events: NewEvent[] = [{ organizationId: run.organizationId, runId: run.id, nodeKey: args.nodeKey, kind: "workflow.node.waiting", payload: { timeout_ms: args.timeoutMs } }];
    await ensureStarted(tx, run, events);
    if (run.status === "running") {
      await tx.execute(sql`UPDATE workflow_runs SET status = 'waiting' WHERE id = ${run.id}`);
      events.push({ organizationId: run.organizationId, runId: run.id, kind: "workflow.run.waiting", payload: { node_key: args.nodeKey } });
    }
    await emitEvents(tx, events);
    return "applied";
  });
}
