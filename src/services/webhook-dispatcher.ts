/**
 * The webhook dispatcher: one per control-plane process, any number of processes.
 *
 * 1. It follows committed events through the process's event hub and, for every enabled
 *    webhook of the event's organization whose filter matches, inserts a delivery row —
 *    `INSERT … ON CONFLICT DO NOTHING` on (webhook, event), so however many control
 *    planes see the event, one delivery exists.
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
 * Known gap: events committed while no control plane runs are not turned into
 * deliveries (the hub starts at the current end of the events table).
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { and, asc, eq, inArray, isNull, lt, lte, or, sql } from "drizzle-orm";
import type { Db } from "../db/database.js";
import { emitEvents } from "../db/events.js";
import { events, webhookDeliveries, webhooks } from "../db/schema.js";
import type { Logger } from "../logger.js";
import { SubscriberOverflow, type EventHub, type EventRow } from "./event-hub.js";
import { decryptSecret, guardedLookup, hostOf, isPublicAddress, signatureHeader, type WebhookSettings } from "./webhook-security.js";
import { filterMatches } from "./webhooks.js";

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
}

export const defaultDispatcherOptions: WebhookDispatcherOptions = { baseDelayMs: 1000, maxDelayMs: 3_600_000, timeoutMs: 10_000, leaseMs: 30_000, pollMs: 1000, disableAfterFailures: 20, concurrency: 16 };

export interface WebhookDispatcher {
  /** Look for due deliveries now. */
  kick(): void;
  close(): Promise<void>;
}

const excerptLength = 1024;

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
  let closed = false;

  // ── 1. events → delivery rows ──────────────────────────────────────────────────────────
  async function enqueue(batch: EventRow[]) {
    const orgs = [...new Set(batch.map((e) => e.organizationId))];
    const hooks = await db
      .select({ id: webhooks.id, organizationId: webhooks.organizationId, eventFilter: webhooks.eventFilter })
      .from(webhooks)
      .where(and(inArray(webhooks.organizationId, orgs), eq(webhooks.enabled, true)));
    if (hooks.length === 0) return;
    const rows = batch.flatMap((e) =>
      hooks
        .filter((h) => h.organizationId === e.organizationId && filterMatches(h.eventFilter, e.kind))
        .map((h) => ({ id: randomUUID(), webhookId: h.id, organizationId: e.organizationId, eventId: Number(e.id), eventKind: e.kind, nextAttemptAt: sql`now()` as any })),
    );
    if (rows.length === 0) return;
    await db.insert(webhookDeliveries).values(rows).onConflictDoNothing({ target: [webhookDeliveries.webhookId, webhookDeliveries.eventId] });
    kick();
  }

  const following = (async () => {
    while (!closed) {
      const sub = hub.subscribe(() => true, { maxBuffer: 100_000 });
      try {
        for (;;) {
          const batch = await sub.next(abort.signal);
          if (batch.length === 0) break; // closed
          for (let attempt = 0; ; attempt++) {
            try {
              await enqueue(batch);
              break;
            } catch (err) {
              if (closed || attempt >= 5) {
                if (!closed) log.error("webhook deliveries could not be recorded", { error: String(err), first_event_id: batch[0]!.id });
                break;
              }
              await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
            }
          }
        }
      } catch (err) {
        if (err instanceof SubscriberOverflow) log.warn("webhook dispatcher fell behind the event stream; events skipped", { last_id: err.lastDeliveredId });
        else throw err;
      } finally {
        sub.close();
      }
    }
  })().catch((err) => log.error("webhook dispatcher stopped following events", { error: String(err) }));

  // ── 2. + 3. claim due deliveries and attempt them ──────────────────────────────────────
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
        const headers = { "fabric-webhook-id": d.id, "fabric-webhook-timestamp": String(timestamp), "fabric-webhook-signature": signatureHeader(secret, timestamp, body), "fabric-event-kind": event.kind };
        outcome = await post(new URL(hook.url), body, headers, settings.allowPrivate, o.timeoutMs, abort.signal);
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
          await tx.update(webhooks).set({ enabled: false, disabledReason: reason, updatedAt: sql`now()` }).where(eq(webhooks.id, w.id));
          await emitEvents(tx, [{ organizationId: w.organizationId, kind: "webhook.disabled", payload: { webhook_id: w.id, url: w.url, reason, consecutive_failures: w.consecutiveFailures } }]);
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
        await Promise.all(claimed.map((d) => attempt(d).catch((err) => log.warn("webhook delivery attempt failed to record", { delivery_id: d.id, error: String(err) }))));
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
      .catch((err) => {
        if (!closed) log.warn("webhook dispatcher pump failed", { error: String(err) });
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
