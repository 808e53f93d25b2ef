/**
 * An organization's webhooks (reading needs `webhook.read`, changing `webhook.write`):
 * matching events are POSTed to the URL, signed with the webhook's secret — check them
 * with `verifyWebhook` (Standard Webhooks) — retried with backoff, and recorded as deliveries.
 */
import { unwrap, type RequestOptions, type RestTransport } from "../core/rest-transport.js";
import type { CreateWebhookRequest, CreateWebhookResponse, ListWebhookDeliveriesParams, UpdateWebhookRequest, Webhook, WebhookDelivery } from "../types.js";

export class WebhooksResource {
  constructor(private readonly transport: RestTransport) {}

  /**
   * Creates a webhook; resolves with it and its signing `secret` (`whsec_…`), which is
   * shown this once and never again. A `url` that is not http(s), carries credentials, or
   * whose host is not public (loopback, private, link-local…; allowed only by a server in
   * development that says so) is refused: 400, code `url_not_allowed`.
   */
  async create(organizationId: string, request: CreateWebhookRequest, options?: RequestOptions): Promise<CreateWebhookResponse> {
    return unwrap(await this.transport.call("post", "/v1/organizations/{organization_id}/webhooks", { path: { organization_id: organizationId }, body: request, options }), "createWebhook");
  }

  /** The organization's webhooks (never their secrets). */
  async list(organizationId: string, options?: RequestOptions): Promise<Webhook[]> {
    return unwrap(await this.transport.call("get", "/v1/organizations/{organization_id}/webhooks", { path: { organization_id: organizationId }, options }), "listWebhooks");
  }

  /** Changes the fields given (`url`, `event_filter`, `enabled`, `max_retries`, `description`); enabling a disabled webhook clears its failure count. */
  async update(organizationId: string, id: string, request: UpdateWebhookRequest, options?: RequestOptions): Promise<Webhook> {
    return unwrap(await this.transport.call("patch", "/v1/organizations/{organization_id}/webhooks/{id}", { path: { organization_id: organizationId, id }, body: request, options }), "updateWebhook");
  }

  /** Deletes a webhook and its deliveries; resolves with the webhook as it was. */
  async delete(organizationId: string, id: string, options?: RequestOptions): Promise<Webhook> {
    return unwrap(await this.transport.call("delete", "/v1/organizations/{organization_id}/webhooks/{id}", { path: { organization_id: organizationId, id }, options }), "deleteWebhook");
  }

  /** The webhook's newest deliveries first (at most 100), each with its last response; `params.status` keeps one status (`pending`, `succeeded`, `failed`). */
  async listDeliveries(organizationId: string, webhookId: string, params: ListWebhookDeliveriesParams = {}, options?: RequestOptions): Promise<WebhookDelivery[]> {
    return unwrap(
      await this.transport.call("get", "/v1/organizations/{organization_id}/webhooks/{webhook_id}/deliveries", { path: { organization_id: organizationId, webhook_id: webhookId }, query: params, options }),
      "listWebhookDeliveries",
    );
  }

  /** Sends a delivery again now, whatever its status: it becomes `pending`, due at once, its attempts starting over. */
  async redeliver(organizationId: string, webhookId: string, deliveryId: string, options?: RequestOptions): Promise<WebhookDelivery> {
    return unwrap(
      await this.transport.call("post", "/v1/organizations/{organization_id}/webhooks/{webhook_id}/deliveries/{id}/redeliver", {
        path: { organization_id: organizationId, webhook_id: webhookId, id: deliveryId },
        body: {},
        options,
      }),
      "redeliverWebhookDelivery",
    );
  }
}
