/**
 * Keeps a long-lived stream (StreamEvents, WatchRun, WatchJob) true to its caller's
 * access: the caller is re-checked (`CallContext.recheck`: credentials authenticated
 * again, the guard run again) at once when an access change of the caller's principal
 * or organization is notified (delivery/access-watch.ts), and at least every `recheckMs`
 * (expiry). A failed re-check ends the stream with its error — unauthenticated after a
 * logout or a revoked key, permission denied after a removal or a role change that took
 * the stream's permission away; a narrower role just narrows what it shows
 * (`ctx.permissions` is replaced).
 */
import type { AccessWatch } from "../../delivery/access-watch.js";
import type { CallContext } from "../call-context.js";
import { isTransientDbError } from "../../db/transient-errors.js";

export interface StreamAccess {
  /** Aborted by the caller's own signal, an access change, or the re-check period: a stream waits on it. */
  waitSignal(): { signal: AbortSignal; done(): void };
  /** Re-checks the caller when a change was notified or the period passed; throws when access is gone. */
  verify(): Promise<void>;
  close(): void;
}

export function watchStreamAccess(ctx: CallContext, watch: AccessWatch | undefined, recheckMs: number): StreamAccess {
  let dirty = false;
  let checkedAt = Date.now();
  let wake: (() => void) | null = null;
  const off = watch?.subscribe(ctx.caller.principalId, ctx.caller.organizationId, () => {
    dirty = true;
    wake?.();
  });
  return {
    waitSignal() {
      const tick = new AbortController();
      const abort = () => tick.abort();
      const timer = setTimeout(abort, Math.max(0, recheckMs - (Date.now() - checkedAt)));
      ctx.signal.addEventListener("abort", abort, { once: true });
      wake = abort;
      if (dirty) abort();
      return {
        signal: tick.signal,
        done() {
          clearTimeout(timer);
          ctx.signal.removeEventListener("abort", abort);
          if (wake === abort) wake = null;
        },
      };
    },
    async verify() {
      if (!dirty && Date.now() - checkedAt < recheckMs) return;
      dirty = false;
      checkedAt = Date.now();
      try {
        await ctx.recheck?.();
      } catch (err) {
        // The database is down: not a verdict on the caller — check again next period.
        if (!isTransientDbError(err)) throw err;
      }
    },
    close() {
      off?.();
      wake = null;
    },
  };
}
