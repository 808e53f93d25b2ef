/**
 * `workflow.node.progress` events (e.g. streamed tokens). Not a state transition, but
 * still written only while the writer holds the node's lease: a worker that lost the
 * lease cannot add progress to someone else's attempt.
 */
import { sql } from "drizzle-orm";
import type { Executor } from "./database.js";
import { channels } from "./events.js";

export async function emitProgress(ex: Executor, args: { organizationId: string; runId: string; nodeKey: string; owner: string; attempt: number; payload: Record<string, unknown> }): Promise<void> {
  await ex.execute(sql`
    WITH inserted AS (
      INSERT INTO events (organization_id, run_id, node_key, kind, payload)
      SELECT ${args.organizationId}::uuid, ${args.runId}::uuid, ${args.nodeKey}, 'workflow.node.progress', ${JSON.stringify(args.payload)}::jsonb
      WHERE EXISTS (
        SELECT 1 FROM workflow_run_nodes
        WHERE run_id = ${args.runId} AND node_key = ${args.nodeKey} AND status = 'running' AND lease_owner = ${args.owner} AND attempt = ${args.attempt}
      )
      RETURNING id
    )
    SELECT pg_notify(${channels.events}, '') FROM inserted`);
}
