/** Permission checks: may the caller do this, on that? */
import { unwrap, type RequestOptions, type RestTransport } from "../core/rest-transport.js";
import type { CheckRequest, CheckResponse } from "../types.js";

export class AuthzResource {
  constructor(private readonly transport: RestTransport) {}

  /** May the caller perform `action` on `resource` (`organization:<id>`, `team:<id>`, …)? A denial is `allowed: false`, not an error. */
  async check(request: CheckRequest, options?: RequestOptions): Promise<CheckResponse> {
    return unwrap(await this.transport.call("post", "/v1/authz/check", { body: request, options }), "checkPermission");
  }

  /** Several checks at once; one verdict per check, in order. */
  async batchCheck(checks: CheckRequest[], options?: RequestOptions): Promise<CheckResponse[]> {
    return unwrap(await this.transport.call("post", "/v1/authz/check-batch", { body: { checks }, options }), "batchCheckPermissions");
  }
}
