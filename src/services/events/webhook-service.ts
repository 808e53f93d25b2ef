/**
 * WebhookService: an organization's webhooks and their deliveries (the dispatcher in
 * delivery/webhook-dispatcher.ts sends them). The signing secret `whsec_…` is returned once, at
 * creation, and stored encrypted (delivery/webhook-security.ts); nothing answers it again, and
 * neither audit entries nor events carry it. URLs must resolve to public addresses
 * (invalid_argument `url_not_allowed`), unless private targets are allowed in
 * development. Every change emits `webhook.created|updated|deleted` and writes one audit
 * entry in the same transaction; a redelivery is audited too.
 */
import { randomUUID } from "node:crypto";
import { and, desc, eq, sql } from "drizzle-orm";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  CreateWebhookResponseSchema,
  DeleteWebhookResponseSchema,
  ListWebhookDeliveriesResponseSchema,
  ListWebhooksResponseSchema,
  RedeliverWebhookDeliveryResponseSchema,
  UpdateWebhookResponseSchema,
  WebhookDeliverySchema,
  WebhookSchema,
  type CreateWebhookRequest,
  type DeleteWebhookRequest,
  type ListWebhookDeliveriesRequest,
  type ListWebhooksRequest,
  type RedeliverWebhookDeliveryRequest,
  type UpdateWebhookRequest,
  type Webhook,
  type WebhookDelivery,
} from "../../../gen/proto/fabric/v1/webhooks_pb.js";
import type { Db, Executor } from "../../db/database.js";
import { emitEvents } from "../../db/events.js";
import { webhookDeliveries, webhooks } from "../../db/schema.js";
import { DomainError, invalidArgument, notFound, type Issue } from "../../domain/errors.js";
import { eventKindFilterEntries, invalidEventKindEntry } from "../../domain/event-kind-filter.js";
import { etagOf, expectedVersion, preconditionFailed } from "../../domain/etags.js";
import { recordAudit } from "../access/record-audit.js";
import { isUuid, type CallContext } from "../call-context.js";
import { checkWebhookUrl, encryptSecret, newWebhookSecret, UrlNotAllowed, type WebhookSettings } from "../../delivery/webhook-security.js";

type WebhookRow = typeof webhooks.$inferSelect;
type DeliveryRow = typeof webhookDeliveries.$inferSelect;

export const webhookDefaults = { maxRetries: 8, maxRetriesLimit: 20, urlMaxLength: 2048, descriptionMaxLength: 500, filterMaxEntries: 50 } as const;

/** The audit entries WebhookService writes: one action per use case. */
export const webhookAuditActions = { create: "webhook.create", update: "webhook.update", delete: "webhook.delete", redeliver: "webhook.redeliver" } as const;

const ts = (d: Date | null) => (d ? timestampFromDate(d) : undefined);

export function webhookMessage(row: WebhookRow): Webhook {
  return create(WebhookSchema, {
    id: row.id,
    organizationId: row.organizationId,
    url: row.url,
    eventFilter: row.eventFilter,
    maxRetries: row.maxRetries,
    description: row.description,
    enabled: row.enabled,
    disabledReason: row.disabledReason,
    createTime: ts(row.createdAt),
    updateTime: ts(row.updatedAt),
    etag: etagOf("webhook", row.version),
  });
}

export function deliveryMessage(row: DeliveryRow): WebhookDelivery {
  return create(WebhookDeliverySchema, {
    id: row.id,
    webhookId: row.webhookId,
    eventId: BigInt(row.eventId),
    eventKind: row.eventKind,
    status: row.status,
    attempts: row.attempts,
    responseStatus: row.responseStatus,
    responseBody: row.responseBody,
    error: row.error,
    nextAttemptTime: row.status === "pending" ? ts(row.nextAttemptAt) : undefined,
    lastAttemptTime: ts(row.lastAttemptAt),
    createTime: ts(row.createdAt),
  });
}

/** What audit entries and events say about a webhook: never its secret. */
/** What an event says of a webhook: its id and settings, never its URL (which may carry a token). */
const withoutUrl = <T extends { url: string }>(d: T): Omit<T, "url"> => {
  const { url: _url, ...rest } = d;
  return rest;
};

const describe = (row: WebhookRow) => ({
  webhook_id: row.id,
  url: row.url,
  event_filter: row.eventFilter,
  max_retries: row.maxRetries,
  enabled: row.enabled,
});

/** `a.b, c.*` → normalised `a.b,c.*`; empty → `*`. */
export function parseEventFilter(raw: string, issues: Issue[]): string {
  const parts = eventKindFilterEntries(raw);
  if (parts.length === 0) return "*";
  const bad = invalidEventKindEntry(parts);
  if (bad !== undefined) issues.push({ path: "/event_filter", code: "invalid_value", message: `event_filter: ${JSON.stringify(bad)} is not an event kind or a prefix pattern like workflow.run.*` });
  else if (parts.length > webhookDefaults.filterMaxEntries) issues.push({ path: "/event_filter", code: "invalid_value", message: `event_filter has more than ${webhookDefaults.filterMaxEntries} entries` });
  return [...new Set(parts)].join(",");
}

function checkRetries(n: number | undefined, issues: Issue[]) {
  if (n !== undefined && (!Number.isInteger(n) || n < 0 || n > webhookDefaults.maxRetriesLimit)) issues.push({ path: "/max_retries", code: "invalid_value", message: `max_retries must be 0..${webhookDefaults.maxRetriesLimit}` });
}

function checkDescription(d: string | undefined, issues: Issue[]) {
  if (d !== undefined && d.length > webhookDefaults.descriptionMaxLength) issues.push({ path: "/description", code: "invalid_value", message: `description must be at most ${webhookDefaults.descriptionMaxLength} characters` });
}

async function checkUrl(raw: string, allowPrivate: boolean): Promise<string> {
  if (raw.length > webhookDefaults.urlMaxLength) throw invalidArgument(`url must be at most ${webhookDefaults.urlMaxLength} characters`, [{ path: "/url", code: "invalid_value", message: "too long" }]);
  try {
    return (await checkWebhookUrl(raw, allowPrivate)).toString();
  } catch (err) {
    if (err instanceof UrlNotAllowed) throw new DomainError("invalid_argument", err.message, { code: "url_not_allowed", issues: [{ path: "/url", code: "url_not_allowed", message: err.message }] });
    throw err;
  }
}

export function createWebhookService(deps: { db: Db; settings: WebhookSettings; /** Wakes the local dispatcher (a redelivery is due now). */ kick?: () => void }) {
  const { db, settings } = deps;

  async function loadWebhook(ex: Executor, ctx: CallContext, id: string, lock: boolean): Promise<WebhookRow> {
    const q = isUuid(id) ? ex.select().from(webhooks).where(and(eq(webhooks.id, id), eq(webhooks.organizationId, ctx.caller.organizationId))) : null;
    const [row] = q ? await (lock ? q.for("update") : q) : [];
    if (!row) throw notFound("webhook", id);
    return row;
  }

  return {
    async createWebhook(ctx: CallContext, req: CreateWebhookRequest) {
      const org = ctx.caller.organizationId;
      const issues: Issue[] = [];
      if (req.url === "") issues.push({ path: "/url", code: "required", message: "url is required" });
      const eventFilter = parseEventFilter(req.eventFilter, issues);
      checkRetries(req.maxRetries, issues);
      checkDescription(req.description, issues);
      if (issues.length) throw invalidArgument(issues.map((i) => i.message).join("; "), issues);
      const url = await checkUrl(req.url, settings.allowPrivate);
      const secret = newWebhookSecret();
      return db.transaction(async (tx) => {
        const [row] = await tx
          .insert(webhooks)
          .values({ id: randomUUID(), organizationId: org, url, eventFilter, maxRetries: req.maxRetries ?? webhookDefaults.maxRetries, description: req.description, secretCiphertext: encryptSecret(settings.secretsKey, secret) })
          .returning();
        await emitEvents(tx, [{ organizationId: org, kind: "webhook.created", payload: { ...withoutUrl(describe(row!)), request_id: ctx.requestId } }]);
        await recordAudit(tx, ctx, { action: webhookAuditActions.create, resource: `webhook:${row!.id}`, summary: describe(row!) });
        return create(CreateWebhookResponseSchema, { webhook: webhookMessage(row!), secret });
      });
    },

    async listWebhooks(ctx: CallContext, _req: ListWebhooksRequest) {
      const rows = await db.select().from(webhooks).where(eq(webhooks.organizationId, ctx.caller.organizationId)).orderBy(desc(webhooks.createdAt), desc(webhooks.id));
      return create(ListWebhooksResponseSchema, { webhooks: rows.map(webhookMessage) });
    },

    async updateWebhook(ctx: CallContext, req: UpdateWebhookRequest) {
      const issues: Issue[] = [];
      const eventFilter = req.eventFilter === undefined ? undefined : parseEventFilter(req.eventFilter, issues);
      checkRetries(req.maxRetries, issues);
      checkDescription(req.description, issues);
      if (req.url === "") issues.push({ path: "/url", code: "required", message: "url must not be empty" });
      if (issues.length) throw invalidArgument(issues.map((i) => i.message).join("; "), issues);
      const url = req.url === undefined ? undefined : await checkUrl(req.url, settings.allowPrivate);
      const expected = expectedVersion("webhook", req.etag);
      return db.transaction(async (tx) => {
        const row = await loadWebhook(tx, ctx, req.id, true);
        const reenabled = req.enabled === true && !row.enabled;
        const [updated] = await tx
          .update(webhooks)
          .set({
            url,
            eventFilter,
            maxRetries: req.maxRetries,
            description: req.description,
            enabled: req.enabled,
            ...(reenabled ? { consecutiveFailures: 0, disabledReason: "" } : {}),
            updatedAt: sql`now()`,
            version: sql`${webhooks.version} + 1`,
          })
          // The etag is checked in the statement that changes the row.
          .where(and(eq(webhooks.id, row.id), typeof expected === "number" ? eq(webhooks.version, expected) : undefined))
          .returning();
        if (!updated) throw preconditionFailed(`webhook ${row.id}`, req.etag!);
        const summary = { ...describe(updated!), changed: Object.keys(req).filter((k) => !["organizationId", "id", "$typeName"].includes(k) && (req as any)[k] !== undefined) };
        await emitEvents(tx, [{ organizationId: row.organizationId, kind: "webhook.updated", payload: { ...withoutUrl(summary), request_id: ctx.requestId } }]);
        await recordAudit(tx, ctx, { action: webhookAuditActions.update, resource: `webhook:${row.id}`, summary });
        return create(UpdateWebhookResponseSchema, { webhook: webhookMessage(updated!) });
      });
    },

    async deleteWebhook(ctx: CallContext, req: DeleteWebhookRequest) {
      const expected = expectedVersion("webhook", req.etag);
      return db.transaction(async (tx) => {
        const row = await loadWebhook(tx, ctx, req.id, true);
        // Deliveries cascade. The etag is checked in the statement that deletes the row.
        const deleted = await tx
          .delete(webhooks)
          .where(and(eq(webhooks.id, row.id), typeof expected === "number" ? eq(webhooks.version, expected) : undefined))
          .returning({ id: webhooks.id });
        if (deleted.length === 0) throw preconditionFailed(`webhook ${row.id}`, req.etag!);
        await emitEvents(tx, [{ organizationId: row.organizationId, kind: "webhook.deleted", payload: { ...withoutUrl(describe(row)), request_id: ctx.requestId } }]);
        await recordAudit(tx, ctx, { action: webhookAuditActions.delete, resource: `webhook:${row.id}`, summary: describe(row) });
        return create(DeleteWebhookResponseSchema, { webhook: webhookMessage(row) });
      });
    },

    async listWebhookDeliveries(ctx: CallContext, req: ListWebhookDeliveriesRequest) {
      const hook = await loadWebhook(db, ctx, req.webhookId, false);
      if (req.status && !["pending", "succeeded", "failed"].includes(req.status)) throw invalidArgument("status must be pending, succeeded or failed", [{ path: "/status", code: "invalid_value", message: "unknown status" }]);
      const rows = await db
        .select()
        .from(webhookDeliveries)
        .where(and(eq(webhookDeliveries.webhookId, hook.id), req.status ? eq(webhookDeliveries.status, req.status as DeliveryRow["status"]) : undefined))
        .orderBy(desc(webhookDeliveries.eventId), desc(webhookDeliveries.id))
        .limit(100);
      return create(ListWebhookDeliveriesResponseSchema, { deliveries: rows.map(deliveryMessage) });
    },

    async redeliverWebhookDelivery(ctx: CallContext, req: RedeliverWebhookDeliveryRequest) {
      const res = await db.transaction(async (tx) => {
        const hook = await loadWebhook(tx, ctx, req.webhookId, false);
        const [row] = isUuid(req.id)
          ? await tx
              .update(webhookDeliveries)
              .set({ status: "pending", attempts: 0, nextAttemptAt: sql`now()`, leaseUntil: null, error: "" })
              .where(and(eq(webhookDeliveries.id, req.id), eq(webhookDeliveries.webhookId, hook.id)))
              .returning()
          : [];
        if (!row) throw notFound("webhook delivery", req.id);
        await recordAudit(tx, ctx, { action: webhookAuditActions.redeliver, resource: `webhook:${hook.id}`, summary: { webhook_id: hook.id, delivery_id: row.id, event_id: row.eventId } });
        return create(RedeliverWebhookDeliveryResponseSchema, { delivery: deliveryMessage(row) });
      });
      deps.kick?.();
      return res;
    },
  };
}
