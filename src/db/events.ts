/**
 * Events are written in the transaction of the transition they record (invariant 3),
 * and a NOTIFY on `fabric_events` (delivered at commit) wakes each process's event hub.
 */
import { sql } from "drizzle-orm";
import type { Executor } from "./database.js";
import { events } from "./schema.js";

export const channels = {
  /** An event was committed; payload empty. */
  events: "fabric_events",
  /** Nodes became claimable now; payload empty. */
  work: "fabric_work",
  /** A run was cancelled or failed: abort its in-flight steps; payload is the run id. */
  cancel: "fabric_cancel",
} as const;

export interface NewEvent {
  organizationId: string;
  runId?: string | null;
  nodeKey?: string | null;
  kind: string;
  payload?: Record<string, unknown>;
}

export async function emitEvents(tx: Executor, rows: NewEvent[]): Promise<void> {
  if (rows.length === 0) return;
  await tx.insert(events).values(rows.map((e) => ({ organizationId: e.organizationId, runId: e.runId ?? null, nodeKey: e.nodeKey ?? null, kind: e.kind, payload: e.payload ?? {} })));
  await notify(tx, channels.events);
}

export async function notify(tx: Executor, channel: string, payload = ""): Promise<void> {
  await tx.execute(sql`SELECT pg_notify(${channel}, ${payload})`);
}
