/**
 * CORS on the REST port (policy: ../cors.ts): a preflight from an allowed origin is
 * answered 204 here; any other answer to one (errors and event streams too) gets the CORS
 * headers. Without a policy, or from other origins, nothing changes (OPTIONS stays 405).
 */
import type { MiddlewareHandler } from "hono";
import type { CorsPolicy } from "../cors.js";

export function corsMiddleware(policy: CorsPolicy | undefined): MiddlewareHandler {
  return async (c, next) => {
    if (!policy) return next();
    const preflight = c.req.method === "OPTIONS" && c.req.header("access-control-request-method") !== undefined;
    const headers = policy.headersFor(c.req.header("origin"), preflight);
    if (headers && preflight) return c.body(null, 204, headers);
    await next();
    if (headers) for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
  };
}
