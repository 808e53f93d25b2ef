/**
 * Events are written in the transaction of the transition they record, so an event exists
 * if and only if its transition committed; a NOTIFY on `fabric_events` (delivered at
 * commit) wakes each process's event hub.
 */
import { sql } from "drizzle-orm";
import type { Executor } from "./database.js";
import type { EventKind } from "../domain/event-kinds.js";

export const channels = {
  /** An event was committed; payload empty. */
  events: "fabric_events",
  /** Nodes became claimable now; payload empty. */
  work: "fabric_work",
  /** A run was cancelled or failed: abort its in-flight steps; payload is the run id. */
  cancel: "fabric_cancel",
  /** An organization's or team's policy or budget changed; payload is the organization id. */
  policy: "fabric_policy",
  /**
   * What a principal may access changed (logout, a revoked or rotated key, a membership
   * added, changed or removed): payload is the principal id, or `org:<id>` when a change
   * touches a whole organization (archived, a team deleted). Open streams re-check their
   * caller at once (delivery/access-watch.ts).
   */
  access: "fabric_access",
} as const;

export interface NewEvent {
  organizationId: string;
  runId?: string | null;
  nodeKey?: string | null;
  /** A kind of the catalogue (domain/event-kinds.ts), which says who may read it. */
  kind: EventKind;
  payload?: Record<string, unknown>;
}

/**
 * Inserts the events and queues the NOTIFY in one statement (one round trip per
 * transaction, not two); `alsoNotify` names further channels to notify (empty payload) in
 * the same statement.
 */
export async function emitEvents(tx: Executor, rows: NewEvent[], alsoNotify: readonly string[] = []): Promise<void> {
  if (rows.length === 0) {
    for (const channel of alsoNotify) await notify(tx, channel);
    return;
  }
  const values = rows.map((e) => sql`(${e.organizationId}::uuid, ${e.runId ?? null}::uuid, ${e.nodeKey ?? null}, ${e.kind}, ${JSON.stringify(e.payload ?? {})}::jsonb)`);
  const more = alsoNotify.map((channel) => sql`, pg_notify(${channel}, '')`);
  await tx.execute(sql`
    WITH inserted AS (
      INSERT INTO events (organization_id, run_id, node_key, kind, payload) VALUES ${sql.join(values, sql`, `)} RETURNING id
    )
    SELECT pg_notify(${channels.events}, '')${sql.join(more, sql``)} FROM (SELECT count(*) FROM inserted) AS x`);
}

export async function notify(tx: Executor, channel: string, payload = ""): Promise<void> {
  await tx.execute(sql`SELECT pg_notify(${channel}, ${payload})`);
}

/** Sends `fabric_access` at commit: open streams of that principal (or organization) re-check their caller. */
export async function notifyAccessChanged(tx: Executor, who: { principalId: string } | { organizationId: string }): Promise<void> {
  await notify(tx, channels.access, "principalId" in who ? who.principalId : `org:${who.organizationId}`);
}
