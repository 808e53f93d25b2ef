/**
 * An organization's retention of finished runs (reading needs `organization.read`,
 * setting `organization.update`): its own setting wins over the server default; 0 keeps
 * them forever.
 */
import { unwrap, type RequestOptions, type RestTransport } from "../core/rest-transport.js";
import type { RetentionSettings, SetRetentionRequest } from "../types.js";

export class RetentionResource {
  constructor(private readonly transport: RestTransport) {}

  /** The organization's setting (absent: the server default applies), the default, and what the pruner uses. */
  async get(organizationId: string, options?: RequestOptions): Promise<RetentionSettings> {
    return unwrap(await this.transport.call("get", "/v1/organizations/{organization_id}/retention", { path: { organization_id: organizationId }, options }), "getRetention");
  }

  /** Sets `retention_seconds` (0: forever, or 60..2,000,000,000); without it, clears the setting. */
  async set(organizationId: string, request: SetRetentionRequest, options?: RequestOptions): Promise<RetentionSettings> {
    return unwrap(await this.transport.call("put", "/v1/organizations/{organization_id}/retention", { path: { organization_id: organizationId }, body: request, options }), "setRetention");
  }
}
