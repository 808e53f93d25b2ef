/**
 * CORS for both ports, from FABRIC_CORS_ORIGINS (none by default: no CORS headers at all,
 * and preflights are answered as before — 405 on REST). One policy, two adapters: a Hono
 * middleware for REST (rest/app.ts) and a wrapper of the Node handler for gRPC / gRPC-Web /
 * Connect (grpc/cors.ts), each with the headers its protocols need.
 *
 * Requests carry credentials in the Authorization header, never cookies, so no
 * `Access-Control-Allow-Credentials`; an allowed origin is echoed (with `Vary: Origin`),
 * `*` allows any.
 */
import { cors as connectCors } from "@connectrpc/connect";

export interface CorsHeaders {
  methods: readonly string[];
  /** Request headers a browser script may send. */
  allowHeaders: readonly string[];
  /** Response headers a browser script may read. */
  exposeHeaders: readonly string[];
}

/** Fabric's own headers, on both ports. */
const fabricRequestHeaders = ["authorization", "x-request-id", "x-organization-id"];

export const restCorsHeaders: CorsHeaders = {
  methods: ["GET", "POST", "PUT", "PATCH", "DELETE"],
  allowHeaders: [...fabricRequestHeaders, "content-type", "idempotency-key", "if-match", "if-none-match", "last-event-id"],
  exposeHeaders: ["x-request-id", "retry-after", "location", "etag", "www-authenticate"],
};

export const grpcCorsHeaders: CorsHeaders = {
  methods: connectCors.allowedMethods,
  allowHeaders: [...fabricRequestHeaders, ...connectCors.allowedHeaders],
  // Connect unary sends trailers as `Trailer-` headers.
  exposeHeaders: [...connectCors.exposedHeaders, "x-request-id", "fabric-error-code", "retry-after", "trailer-fabric-error-code", "trailer-retry-after"],
};

/** How long a browser may cache a preflight answer, in seconds. */
const maxAgeSeconds = 7200;

export interface CorsPolicy {
  /**
   * The headers to add to the answer of a request from `origin`, or undefined when the
   * origin is not allowed (or the request is not cross-origin). `preflight`: an OPTIONS
   * request with `Access-Control-Request-Method`.
   */
  headersFor(origin: string | null | undefined, preflight: boolean): Record<string, string> | undefined;
}

export function createCorsPolicy(origins: readonly string[] | undefined, headers: CorsHeaders): CorsPolicy | undefined {
  if (!origins?.length) return undefined;
  const any = origins.includes("*");
  const allowed = new Set(origins.map((o) => o.toLowerCase()));
  return {
    headersFor(origin, preflight) {
      if (!origin || !(any || allowed.has(origin.toLowerCase()))) return undefined;
      const h: Record<string, string> = { "Access-Control-Allow-Origin": any ? "*" : origin };
      if (!any) h["Vary"] = "Origin";
      if (preflight) {
        h["Access-Control-Allow-Methods"] = headers.methods.join(", ");
        h["Access-Control-Allow-Headers"] = headers.allowHeaders.join(", ");
        h["Access-Control-Max-Age"] = String(maxAgeSeconds);
      } else {
        h["Access-Control-Expose-Headers"] = headers.exposeHeaders.join(", ");
      }
      return h;
    },
  };
}
