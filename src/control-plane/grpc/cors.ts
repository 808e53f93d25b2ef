/**
 * CORS on the gRPC port (policy: ../cors.ts): a preflight from an allowed origin is
 * answered 204 here; any other request from one gets the CORS headers and goes on to the
 * Connect handler. Requests from other origins pass through untouched.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { CorsPolicy } from "../cors.js";

type Handler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;

export function withCors(handler: Handler, policy: CorsPolicy | undefined): Handler {
  if (!policy) return handler;
  return (req, res) => {
    const origin = req.headers["origin"];
    const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    const headers = policy.headersFor(typeof origin === "string" ? origin : undefined, preflight);
    if (headers && preflight) {
      (res as ServerResponse).writeHead(204, headers);
      res.end();
      return;
    }
    if (headers) for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    handler(req, res);
  };
}
