/** An organization's append-only audit log. */
import { listAll, type Page } from "../core/paging.js";
import type { RequestOptions, RestTransport } from "../core/rest-transport.js";
import type { AuditEntry, ListAuditParams } from "../types.js";

export class AuditResource {
  constructor(private readonly transport: RestTransport) {}

  /** One page of the organization's audit log, newest first, filtered by actor, action, resource and time. */
  async list(organizationId: string, params: ListAuditParams = {}, options?: RequestOptions): Promise<Page<AuditEntry>> {
    return this.transport.call("get", "/v1/organizations/{organization_id}/audit-log", { path: { organization_id: organizationId }, query: params, options });
  }

  /** Every entry matching `params`, page by page. */
  listAll(organizationId: string, params: ListAuditParams = {}, options?: RequestOptions): AsyncGenerator<AuditEntry, void, undefined> {
    return listAll((page_token) => this.list(organizationId, { ...params, page_token }, options), params.page_token);
  }
}
