/**
 * The organization's event stream (EventService / GET /v1/events/stream): replay after
 * an id, then live from the process's event hub, each event shown only if the caller may
 * see it — run and node events by the run's team (`run.read`), everything else with
 * organization-wide `event.read`. The caller's access is re-checked at once when it
 * changes (logout, a revoked key, a removal or role change: access/stream-access.ts) and
 * at least every `recheckMs`; a stream whose access is gone ends with the error.
 * Streaming methods yield the Event itself; each transport wraps it (gRPC: the
 * StreamEventsResponse message, REST: one SSE message).
 */
import { and, asc, eq, gt, lte } from "drizzle-orm";
import type { StreamEventsRequest } from "../../../gen/proto/fabric/v1/events_pb.js";
import type { Event } from "../../../gen/proto/fabric/v1/run_pb.js";
import type { Db } from "../../db/database.js";
import { retryWhileTransient, withDeadline } from "../../db/transient-errors.js";
import { events, workflowRuns } from "../../db/schema.js";
import { DomainError, invalidArgument } from "../../domain/errors.js";
import type { AccessWatch } from "../../delivery/access-watch.js";
import { watchStreamAccess } from "../access/stream-access.js";
import { eventKindFilterEntries, invalidEventKindEntry, matchesEventKinds } from "../../domain/event-kind-filter.js";
import { mayRead } from "../access/permission-checks.js";
import { isUuid, type CallContext } from "../call-context.js";
import { SubscriberOverflow, type EventHub, type EventRow } from "../../delivery/event-hub.js";
import { eventMessage } from "../runs/run-messages.js";
import { eventReadRule } from "../../domain/event-kinds.js";

export function createEventService(deps: { db: Db; hub: EventHub; recheckMs?: number; access?: AccessWatch }) {
  const { db, hub } = deps;
  const recheckMs = deps.recheckMs ?? 15_000;

  return {
    async streamEvents(ctx: CallContext, req: StreamEventsRequest): Promise<AsyncGenerator<Event>> {
      const org = ctx.caller.organizationId;
      const kinds = eventKindFilterEntries(req.kinds);
      const bad = invalidEventKindEntry(kinds);
      if (bad) throw invalidArgument(`kinds: ${JSON.stringify(bad)} is not an event kind or a prefix pattern like workflow.run.*`, [{ path: "/kinds", code: "invalid_value", message: "not a kind" }]);
      if (req.runId && !isUuid(req.runId)) throw invalidArgument("run_id must be a run id", [{ path: "/run_id", code: "invalid_value", message: "not a UUID" }]);
      if (req.teamId && !isUuid(req.teamId)) throw invalidArgument("team_id must be a team id", [{ path: "/team_id", code: "invalid_value", message: "not a UUID" }]);

      // Re-read after every re-check: a role change narrows or widens what the stream shows.
      const orgWide = () => mayRead(ctx, "event.read", null);
      const teams = new Map<string, string | null>(); // run id → team (runs never change team)
      const teamOf = async (runId: string): Promise<string | null | undefined> => {
        if (!teams.has(runId)) {
          // An outage holds the stream (its events wait in the subscription) rather than ending it.
          // Each try is bounded: a query lost with its connection must not stall the stream for good.
          const [r] = await retryWhileTransient(
            () => withDeadline(db.select({ teamId: workflowRuns.teamId }).from(workflowRuns).where(and(eq(workflowRuns.id, runId), eq(workflowRuns.organizationId, org))), 5000, "the run's team"),
            { signal: ctx.signal },
          );
          if (!r) return undefined;
          teams.set(runId, r.teamId);
        }
        return teams.get(runId);
      };
      // Each kind is shown only to who may read it as its GET would (domain/event-kinds.ts).
      const visible = async (e: EventRow): Promise<boolean> => {
        if (!matchesEventKinds(kinds, e.kind)) return false;
        if (req.runId && e.runId !== req.runId) return false;
        const rule = eventReadRule(e.kind);
        if (!rule) return false;
        if (e.runId) {
          const team = await teamOf(e.runId);
          if (team === undefined) return false;
          if (req.teamId && team !== req.teamId) return false;
          return mayRead(ctx, rule.action, team);
        }
        if (req.teamId || !orgWide() || rule.on === "run") return false;
        const payload = (e.payload ?? {}) as Record<string, unknown>;
        switch (rule.on) {
          case "organization":
            return mayRead(ctx, rule.action, null);
          case "payload_team":
            return mayRead(ctx, rule.action, typeof payload["team_id"] === "string" ? payload["team_id"] : null);
          case "owner_or_organization":
            return mayRead(ctx, rule.action, null) || (payload["principal_id"] === ctx.caller.principalId && !!ctx.permissions?.own.has(rule.action));
        }
      };

      const access = watchStreamAccess(ctx, deps.access, recheckMs);
      const sub = hub.subscribe((e) => e.organizationId === org && (!req.runId || e.runId === req.runId));
      return (async function* () {
        try {
          let last = Number(req.afterId);
          if (last > 0) {
            // Replay in pages up to the hub's watermark; live events follow it exactly.
            for (;;) {
              const page = await db
                .select()
                .from(events)
                .where(and(eq(events.organizationId, org), gt(events.id, last), lte(events.id, sub.startCursor), req.runId ? eq(events.runId, req.runId) : undefined))
                .orderBy(asc(events.id))
                .limit(1000);
              await access.verify();
              for (const e of page) {
                last = Number(e.id);
                if (await visible(e)) yield eventMessage(e);
              }
              if (page.length < 1000) break;
            }
          }
          last = Math.max(last, sub.startCursor);
          // Wake on an access change and at least every recheck period, so an idle stream ends too.
          while (!ctx.signal.aborted) {
            const tick = access.waitSignal();
            let batch: EventRow[];
            try {
              batch = await sub.next(tick.signal);
            } catch (err) {
              if (err instanceof SubscriberOverflow) throw new DomainError("unavailable", `${err.message} (last delivered event ${last})`, { code: "subscriber_overflow" });
              throw err;
            } finally {
              tick.done();
            }
            await access.verify();
            if (batch.length === 0 && !tick.signal.aborted) return; // the hub is shutting down
            for (const e of batch) {
              if (Number(e.id) <= last) continue;
              last = Number(e.id);
              // A change notified while the batch was in flight is checked before anything more is shown.
              await access.verify();
              if (await visible(e)) yield eventMessage(e);
            }
          }
        } finally {
          access.close();
          sub.close();
        }
      })();
    },
  };
}
