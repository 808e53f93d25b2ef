/**
 * Fans `NOTIFY fabric_access` (db/events.ts) out to the open streams of this process:
 * a stream subscribes with its caller's principal and organization and is told when
 * either changes, so it re-checks its caller at once instead of at its next periodic
 * check. One listener per process, whatever the number of streams.
 */
import type { Database } from "../db/database.js";
import { channels } from "../db/events.js";
import type { Logger } from "../logger.js";
import { warnDbFailure } from "../db/transient-errors.js";

export interface AccessWatch {
  /** Calls `onChange` whenever access of `principalId`, or in `organizationId`, changed; returns the unsubscribe. */
  subscribe(principalId: string, organizationId: string, onChange: () => void): () => void;
  close(): Promise<void>;
}

export async function startAccessWatch(database: Pick<Database, "listen">, log?: Logger): Promise<AccessWatch> {
  const byKey = new Map<string, Set<() => void>>();
  const unlisten = await database.listen(channels.access, (payload) => {
    for (const fn of byKey.get(payload) ?? []) {
      try {
        fn();
      } catch (err) {
        if (log) warnDbFailure(log, "access change subscriber failed", err);
      }
    }
  });
  const add = (key: string, fn: () => void) => {
    let set = byKey.get(key);
    if (!set) byKey.set(key, (set = new Set()));
    set.add(fn);
    return () => {
      set!.delete(fn);
      if (set!.size === 0 && byKey.get(key) === set) byKey.delete(key);
    };
  };
  return {
    subscribe(principalId, organizationId, onChange) {
      const offs = [add(principalId, onChange), ...(organizationId ? [add(`org:${organizationId}`, onChange)] : [])];
      return () => offs.forEach((off) => off());
    },
    async close() {
      byKey.clear();
      await unlisten().catch(() => {});
    },
  };
}
