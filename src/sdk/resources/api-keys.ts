/** An organization's API keys: create (the raw key shown once), list, rotate, revoke. */
import { unwrap, type RequestOptions, type RestTransport } from "../core/rest-transport.js";
import type { ApiKey, CreateApiKeyRequest, CreateApiKeyResponse, RotateApiKeyResponse } from "../types.js";

export class ApiKeysResource {
  constructor(private readonly transport: RestTransport) {}

  /** Creates a key; resolves with it and its raw value `key` (shown once). */
  async create(organizationId: string, request: CreateApiKeyRequest, options?: RequestOptions): Promise<CreateApiKeyResponse> {
    return unwrap(await this.transport.call("post", "/v1/organizations/{organization_id}/api-keys", { path: { organization_id: organizationId }, body: request, options }), "createApiKey");
  }

  /** The organization's keys (never their secrets). */
  async list(organizationId: string, options?: RequestOptions): Promise<ApiKey[]> {
    return unwrap(await this.transport.call("get", "/v1/organizations/{organization_id}/api-keys", { path: { organization_id: organizationId }, options }), "listApiKeys");
  }

  /** A new secret for the key (the old one stops working); resolves with the new raw value `key`. */
  async rotate(organizationId: string, id: string, options?: RequestOptions): Promise<RotateApiKeyResponse> {
    return unwrap(await this.transport.call("post", "/v1/organizations/{organization_id}/api-keys/{id}/rotate", { path: { organization_id: organizationId, id }, body: {}, options }), "rotateApiKey");
  }

  async revoke(organizationId: string, id: string, options?: RequestOptions): Promise<ApiKey> {
    return unwrap(await this.transport.call("post", "/v1/organizations/{organization_id}/api-keys/{id}/revoke", { path: { organization_id: organizationId, id }, body: {}, options }), "revokeApiKey");
  }
}
