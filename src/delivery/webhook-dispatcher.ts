/**
 * The webhook dispatcher: one per control-plane process, any number of processes.
 *
 * 1. It follows committed events through the process's event hub (resuming from a shared
 *    cursor, see below) and, for every enabled webhook of the event's organization whose
 *    filter matches, inserts a delivery row — `INSERT … ON CONFLICT DO NOTHING` on
 *    (webhook, event), so however many control planes see the event, one delivery exists.
 * 2. It claims due deliveries (`FOR UPDATE SKIP LOCKED`, then a short lease, counting the
 *    attempt at claim time), so each attempt is made by one process; a process that dies
 *    mid-attempt leaves a lease that expires and the delivery is tried again.
 * 3. It POSTs the event as JSON, signed (see webhook-security.ts and the SDK's
 *    `verifyWebhookSignature`), with a 10 s timeout, through a DNS lookup that refuses
 *    non-public addresses (DNS rebinding), and records status, body excerpt and error.
 *    A failure is retried after base·2^(attempt−1) (capped, plus up to 25 % jitter)
 *    until `max_retries` retries are spent; then the delivery is `failed`. A webhook
 *    whose last `disableAfterFailures` deliveries all failed is disabled
 *    (`webhook.disabled`).
 *
 * Events committed while no control plane runs (executors keep writing run and node
 * events), and events a dispatcher could not keep up with, are not lost: progress is a
 * durable cursor shared by every control plane (`dispatch_cursors`, row `webhooks`),
 * meaning "every event with id ≤ last_event_id has its delivery rows".
 *
 * - Subscribe to the hub first. The subscription's `startCursor` W is a watermark: every
 *   event ≤ W is committed (or will never exist), and every event > W comes through the
 *   subscription. Then read the cursor C (a missing row is created at W: a new deployment
 *   starts at the end of the table, as before).
 * - Catch up: enqueue the events in (C, W] from the table, by id in pages, then the live
 *   batches. So every event > C is enqueued by this process.
 * - After each page or batch is recorded, advance the cursor to its last id with
 *   `GREATEST`. Each process advances only over ids it has enqueued itself (or left out
 *   as too old, below), on top of a cursor that already covered everything below them,
 *   so the invariant holds whichever process writes last; `GREATEST` keeps a slow
 *   process from moving it back.
 * - A process that stops (crash included) has advanced the cursor at most over what it
 *   recorded; the next to start resumes after it. Enqueueing twice is harmless: rows are
 *   unique on (webhook, event), inserted with ON CONFLICT DO NOTHING.
 * - On `SubscriberOverflow`, or when a batch cannot be recorded, the subscription is
 *   dropped and the loop starts over: resubscribe, re-read the cursor, catch up.
 * - Catch-up leaves out events older than `catchUpMaxAgeMs` (default 24 h; the number is
 *   logged), so a deployment that was down for a week does not flood its receivers.
 *
 * What it relies on is the hub's watermark: the hub treats an id gap older than its
 * `gapTimeoutMs` as a rolled-back transaction, and starts at max(id), so an event whose
 * transaction stays open across that may not be seen (as for live streams). Which webhooks
 * match is decided when the event is enqueued, so a webhook created during a catch-up may
 * receive events from before it existed.
 */
import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { and, asc, count, eq, gt, gte, inArray, isNull, lt, lte, or, sql } from "drizzle-orm";
import type { Db } from "../db/database.js";
import { emitEvents } from "../db/events.js";
import { backoffMs, createOutageLog, errorSummary, isTransientDbError, warnDbFailure } from "../db/transient-errors.js";
import { eventKindFilterEntries, matchesEventKinds } from "../domain/event-kind-filter.js";
import { dispatchCursors, events, webhookDeliveries, webhooks, workflowRuns } from "../db/schema.js";
import type { Logger } from "../logger.js";
import { metrics } from "../telemetry/metrics.js";
import { traceparentOf, tracingEnabled, withSpanFrom } from "../telemetry/tracing.js";
import { SubscriberOverflow, type EventHub, type EventRow } from "./event-hub.js";
import { decryptSecret, guardedLookup, hostOf, isPublicAddress, signatureHeader, standardSignature, type WebhookSettings } from "./webhook-security.js";

export interface WebhookDispatcherOptions {
  /** First retry delay; each further retry doubles it. Default 1 s. */
  baseDelayMs: number;
  /** Cap of the retry delay. Default 1 h. */
  maxDelayMs: number;
  /** Per-attempt timeout. Default 10 s. */
  timeoutMs: number;
  /** How long a claimed delivery is reserved for this process. Default 30 s. */
  leaseMs: number;
  /** How often due deliveries are looked for (besides being woken). Default 1 s. */
  pollMs: number;
  /** Consecutive failed deliveries that disable a webhook. Default 20. */
  disableAfterFailures: number;
  /** Deliveries attempted at once per process. Default 16. */
  concurrency: number;
  /** Events older than this are not delivered by a catch-up (after downtime or a fall-behind). Default 24 h. */
  catchUpMaxAgeMs: number;
  /** Events read per catch-up query. Default 500. */
  catchUpPageSize: number;
  /** Live events buffered before the dispatcher counts as fallen behind and catches up from its cursor instead. Default 100,000. */
  maxBuffer: number;
}

export const defaultDispatcherOptions: WebhookDispatcherOptions = { baseDelayMs: 1000, maxDelayMs: 3_600_000, timeoutMs: 10_000, leaseMs: 30_000, pollMs: 1000, disableAfterFailures: 20, concurrency: 16, catchUpMaxAgeMs: 86_400_000, catchUpPageSize: 500, maxBuffer: 100_000 };

export interface WebhookDispatcher {
  /** Look for due deliveries now. */
  kick(): void;
  close(): Promise<void>;
}

const excerptLength = 1024;
/** The `dispatch_cursors` row of the webhook dispatcher. */
export const webhookCursorName = "webhooks";

export function retryDelayMs(attempt: number, o: Pick<WebhookDispatcherOptions, "baseDelayMs" | "maxDelayMs">, random = Math.random): number {
  const d = Math.min(o.baseDelayMs * 2 ** Math.max(0, attempt - 1), o.maxDelayMs);
  return Math.round(d * (1 + 0.25 * random()));
}

/** The JSON body a receiver gets. */
export function webhookBody(e: EventRow): string {
  return JSON.stringify({ id: Number(e.id), kind: e.kind, organization_id: e.organizationId, run_id: e.runId, node_key: e.nodeKey, payload: e.payload, create_time: e.createdAt.toISOString() });
}

interface Outcome {
  status: number;
  body: string;
  error: string;
}

function post(url: URL, body: string, headers: Record<string, string>, allowPrivate: boolean, timeoutMs: number, signal: AbortSignal): Promise<Outcome> {
  return new Promise((resolve) => {
    const host = hostOf(url);
    if (!allowPrivate && isIP(host) && !isPublicAddress(host)) return resolve({ status: 0, body: "", error: `url_not_allowed: ${host} is not a public address` });
    const mod = url.protocol === "https:" ? https : http;
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    const req = mod.request(
      url,
      { method: "POST", headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(body).toString(), "user-agent": "Fabric-Webhooks/1" }, lookup: guardedLookup(allowPrivate) as any, signal, agent: false },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (text.length < excerptLength) text += chunk;
        });
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          finish({ status, body: text.slice(0, excerptLength), error: status >= 200 && status < 300 ? "" : `http_status: ${status}` });
        });
        res.on("error", (err) => finish({ status: res.statusCode ?? 0, body: text.slice(0, excerptLength), error: `network: ${err.message}` }));
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error("timeout"));
      finish({ status: 0, body: "", error: `timeout: no response within ${timeoutMs} ms` });
    }, timeoutMs);
    req.on("error", (err: any) => finish({ status: 0, body: "", error: err?.code === "url_not_allowed" ? `url_not_allowed: ${err.message}` : `network: ${err?.message ?? err}` }));
    req.end(body);
  });
}

export function startWebhookDispatcher(deps: { db: Db; hub: EventHub; log: Logger; settings: WebhookSettings; options?: Partial<WebhookDispatcherOptions> }): WebhookDispatcher {
  const { db, hub, log, settings } = deps;
  const o: WebhookDispatcherOptions = { ...defaultDispatcherOptions, ...deps.options };
  const abort = new AbortController();
  // Every attempt in flight (up to `concurrency`) and the event follower listen on it: not a leak.
  setMaxListeners(o.concurrency + 8, abort.signal);
  let closed = false;

  // ── 1. events → delivery rows ──────────────────────────────────────────────────────────
  async function enqueue(batch: EventRow[]) {
    const orgs = [...new Set(batch.map((e) => e.organizationId))];
    const hooks = await db
      .select({ id: webhooks.id, organizationId: webhooks.organizationId, eventFilter: webhooks.eventFilter })
      .from(webhooks)
      .where(and(inArray(webhooks.organizationId, orgs), eq(webhooks.enabled, true)));
    if (hooks.length === 0) return;
    const kinds = new Map(hooks.map((h) => [h.id, eventKindFilterEntries(h.eventFilter)]));
    const rows = batch.flatMap((e) =>
      hooks
        .filter((h) => h.organizationId === e.organizationId && matchesEventKinds(kinds.get(h.id)!, e.kind))
        .map((h) => ({ id: randomUUID(), webhookId: h.id, organizationId: e.organizationId, eventId: Number(e.id), eventKind: e.kind, nextAttemptAt: sql`now()` as any })),
    );
    if (rows.length === 0) return;
    await db.insert(webhookDeliveries).values(rows).onConflictDoNothing({ target: [webhookDeliveries.webhookId, webhookDeliveries.eventId] });
    kick();
  }

  /** Waits `ms`, or less when closing. */
  function sleep(ms: number) {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        abort.signal.removeEventListener("abort", done);
        resolve();
      };
      const t = setTimeout(done, ms);
      abort.signal.addEventListener("abort", done);
    });
  }

  /** Enqueues with a few retries (a transient database error), then moves the shared cursor past the batch. */
  async function record(batch: EventRow[]) {
    for (let attempt = 0; ; attempt++) {
      try {
        await enqueue(batch);
        break;
      } catch (err) {
        if (closed || attempt >= 5) throw err;
        await sleep(200 * 2 ** attempt);
      }
    }
    await advance(Number(batch.at(-1)!.id));
  }

  async function advance(id: number) {
    await db
      .update(dispatchCursors)
      .set({ lastEventId: sql`GREATEST(${dispatchCursors.lastEventId}, ${id})`, updatedAt: sql`now()` })
      .where(eq(dispatchCursors.name, webhookCursorName));
  }

  /** The shared cursor; created at `watermark` when there is none yet. */
  async function readCursor(watermark: number): Promise<number> {
    await db.insert(dispatchCursors).values({ name: webhookCursorName, lastEventId: watermark }).onConflictDoNothing();
    const [row] = await db.select({ id: dispatchCursors.lastEventId }).from(dispatchCursors).where(eq(dispatchCursors.name, webhookCursorName));
    return Number(row!.id);
  }

  /** Enqueues the events in (from, to], in id order, leaving out those older than catchUpMaxAgeMs. */
  async function catchUp(from: number, to: number) {
    if (from >= to) return;
    const cutoff = new Date(Date.now() - o.catchUpMaxAgeMs);
    const inRange = (after: number) => and(gt(events.id, after), lte(events.id, to));
    const [old] = await db.select({ n: count() }).from(events).where(and(inRange(from), lt(events.createdAt, cutoff)));
    if (old && old.n > 0) log.warn("webhook catch-up: events older than catchUpMaxAgeMs are not delivered", { skipped: Number(old.n), after_id: from, up_to_id: to, max_age_ms: o.catchUpMaxAgeMs });
    let after = from;
    while (!closed) {
      const page = await db.select().from(events).where(and(inRange(after), gte(events.createdAt, cutoff))).orderBy(asc(events.id)).limit(o.catchUpPageSize);
      if (page.length === 0) break;
      await record(page);
      after = Number(page.at(-1)!.id);
      if (page.length < o.catchUpPageSize) break;
    }
    if (closed) return;
    await advance(to);
    log.info("webhook dispatcher caught up", { after_id: from, up_to_id: to });
  }

  const followLog = createOutageLog(log, "webhook event follower");
  let followFailures = 0;
  const following = (async () => {
    while (!closed) {
      const sub = hub.subscribe(() => true, { maxBuffer: o.maxBuffer });
      try {
        await catchUp(await readCursor(sub.startCursor), sub.startCursor);
        followLog.ok();
        followFailures = 0;
        for (;;) {
          const batch = await sub.next(abort.signal);
          if (batch.length === 0) return; // closed (the dispatcher or the hub)
          await record(batch);
        }
      } catch (err) {
        if (closed) break;
        if (err instanceof SubscriberOverflow) log.warn("webhook dispatcher fell behind the event stream; catching up from its cursor", { last_id: err.lastDeliveredId });
        else {
          // The database away (expected) or a bug: either way start over from the durable
          // cursor, with backoff and jitter while it keeps failing.
          if (isTransientDbError(err)) followLog.failed(err);
          else log.error("webhook deliveries could not be recorded; catching up from the cursor", { error: errorSummary(err) });
          await sleep(backoffMs(followFailures++, 250, 5000));
          continue;
        }
      } finally {
        sub.close();
      }
    }
  })().catch((err) => log.error("webhook dispatcher stopped following events", { error: String(err) }));

  // ── 2. + 3. claim due deliveries and attempt them ──────────────────────────────────────
  const pumpLog = createOutageLog(log, "webhook dispatcher pump");
  let pumping: Promise<void> | null = null;
  let again = false;

  async function claim() {
    const due = db
      .select({ id: webhookDeliveries.id })
      .from(webhookDeliveries)
      .where(and(eq(webhookDeliveries.status, "pending"), lte(webhookDeliveries.nextAttemptAt, sql`now()`), or(isNull(webhookDeliveries.leaseUntil), lt(webhookDeliveries.leaseUntil, sql`now()`))))
      .orderBy(asc(webhookDeliveries.nextAttemptAt))
      .limit(o.concurrency)
      .for("update", { skipLocked: true });
    return db
      .update(webhookDeliveries)
      .set({ leaseUntil: sql`now() + ${o.leaseMs} * interval '1 millisecond'`, attempts: sql`${webhookDeliveries.attempts} + 1`, lastAttemptAt: sql`now()` })
      .where(inArray(webhookDeliveries.id, due))
      .returning();
  }

  async function attempt(d: typeof webhookDeliveries.$inferSelect) {
    const [hook] = await db.select().from(webhooks).where(eq(webhooks.id, d.webhookId));
    if (!hook) return; // deleted: its deliveries are gone too
    const [event] = await db.select().from(events).where(eq(events.id, d.eventId));
    let outcome: Outcome;
    let final = false;
    if (!hook.enabled) {
      outcome = { status: 0, body: "", error: "webhook_disabled" };
      final = true;
    } else if (!event) {
      outcome = { status: 0, body: "", error: "event_missing" };
      final = true;
    } else {
      let secret: string | null = null;
      try {
        secret = decryptSecret(settings.secretsKey, hook.secretCiphertext);
      } catch {
        outcome = { status: 0, body: "", error: "secret_unreadable: the secrets key changed; re-create the webhook" };
        final = true;
      }
      if (secret !== null) {
        const body = webhookBody(event);
        const timestamp = Math.floor(Date.now() / 1000);
        const headers: Record<string, string> = {
          // Standard Webhooks (docs/webhooks.md); the delivery id is the message id, the same on every retry.
          "webhook-id": d.id,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": standardSignature(secret, d.id, timestamp, body),
          "fabric-event-kind": event.kind,
          // Deprecated, sent for one more release: Fabric's own headers of before.
          "fabric-webhook-id": d.id,
          "fabric-webhook-timestamp": String(timestamp),
          "fabric-webhook-signature": signatureHeader(secret, timestamp, body),
        };
        // With tracing on, a delivery of a run's event is a span of the run's trace, and the receiver gets its traceparent.
        const runTrace = tracingEnabled() && event.runId ? (await db.select({ tc: workflowRuns.traceContext }).from(workflowRuns).where(eq(workflowRuns.id, event.runId)))[0]?.tc : null;
        outcome = await withSpanFrom(runTrace, "webhook.deliver", { "fabric.webhook_id": hook.id, "fabric.event_kind": event.kind, "fabric.delivery_attempt": d.attempts }, async (span) => {
          const traceparent = span && traceparentOf(span);
          if (traceparent) headers.traceparent = traceparent;
          const result = await post(new URL(hook.url), body, headers, settings.allowPrivate, o.timeoutMs, abort.signal);
          span?.setAttribute("http.response.status_code", result.status);
          return result;
        });
      } else outcome = outcome!;
    }
    if (closed && outcome.error.startsWith("network")) return; // aborted by shutdown: the lease expires and another process retries
    const ok = !outcome.error;
    const exhausted = d.attempts > hook.maxRetries;
    const status = ok ? "succeeded" : final || exhausted ? "failed" : "pending";
    const [updated] = await db
      .update(webhookDeliveries)
      .set({
        status,
        responseStatus: outcome.status,
        responseBody: outcome.body,
        error: outcome.error,
        leaseUntil: null,
        nextAttemptAt: status === "pending" ? sql`now() + ${retryDelayMs(d.attempts, o)} * interval '1 millisecond'` : null,
      })
      .where(and(eq(webhookDeliveries.id, d.id), eq(webhookDeliveries.attempts, d.attempts)))
      .returning({ id: webhookDeliveries.id });
    if (!updated) return; // redelivered meanwhile
    metrics.webhookDeliveries.inc({ outcome: status === "pending" ? "retrying" : status });
    if (status === "succeeded") {
      if (hook.consecutiveFailures !== 0) await db.update(webhooks).set({ consecutiveFailures: 0 }).where(eq(webhooks.id, hook.id));
    } else if (status === "failed" && outcome.error !== "webhook_disabled") {
      await db.transaction(async (tx) => {
        const [w] = await tx
          .update(webhooks)
          .set({ consecutiveFailures: sql`${webhooks.consecutiveFailures} + 1` })
          .where(eq(webhooks.id, hook.id))
          .returning();
        if (w && w.enabled && w.consecutiveFailures >= o.disableAfterFailures) {
          const reason = `the last ${w.consecutiveFailures} deliveries failed`;
          // A change of what the webhook reads as, so its etag changes too (domain/etags.ts).
          await tx.update(webhooks).set({ enabled: false, disabledReason: reason, updatedAt: sql`now()`, version: sql`${webhooks.version} + 1` }).where(eq(webhooks.id, w.id));
          await emitEvents(tx, [{ organizationId: w.organizationId, kind: "webhook.disabled", payload: { webhook_id: w.id, reason, consecutive_failures: w.consecutiveFailures } }]);
        }
      });
    }
  }

  async function pump() {
    do {
      again = false;
      for (;;) {
        if (closed) return;
        const claimed = await claim();
        if (claimed.length === 0) break;
        await Promise.all(claimed.map((d) => attempt(d).catch((err) => warnDbFailure(log, "webhook delivery attempt failed to record", err, { delivery_id: d.id }))));
      }
    } while (again && !closed);
  }

  function kick() {
    if (closed) return;
    if (pumping) {
      again = true;
      return;
    }
    pumping = pump()
      .then(() => pumpLog.ok())
      .catch((err) => {
        if (!closed) pumpLog.failed(err);
      })
      .finally(() => {
        pumping = null;
      });
  }

  const timer = setInterval(kick, o.pollMs);
  timer.unref();
  kick();

  return {
    kick,
    async close() {
      closed = true;
      clearInterval(timer);
      abort.abort();
      await pumping;
      await following;
    },
  };
}
