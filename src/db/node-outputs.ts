/**
 * Outputs of a run's nodes, read without a lock: a fan-in step reads the outputs of the
 * nodes it depends on, which have all succeeded before it became ready — a succeeded
 * node's output never changes again.
 */
import { sql } from "drizzle-orm";
import type { JsonObject } from "../domain/context.js";
import { query, sqlIn, type Executor } from "./database.js";

/** Output by node key, for those of `nodeKeys` the run has (null for a node without output). */
export async function readNodeOutputs(ex: Executor, runId: string, nodeKeys: readonly string[]): Promise<Map<string, JsonObject | null>> {
  if (nodeKeys.length === 0) return new Map();
  const rows = await query<{ node_key: string; output: JsonObject | null }>(ex, sql`SELECT node_key, output FROM workflow_run_nodes WHERE run_id = ${runId} AND node_key IN ${sqlIn(nodeKeys)}`);
  return new Map(rows.map((r) => [r.node_key, r.output ?? null]));
}
