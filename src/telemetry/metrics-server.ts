/**
 * The metrics port (`METRICS_PORT`) of a process: `/metrics` (Prometheus text format),
 * `/healthz` (the process is up) and `/readyz` (it can reach its database). The control
 * plane and every executor run one; in `fabric dev` the one process runs one.
 *
 * A separate port rather than a route on the API port: it is never published through the
 * API's load balancer, needs no credentials, and a scrape never competes with API traffic
 * for the body limit, authentication or rate limits.
 */
import { createServer, type Server } from "node:http";
import { registry, renderMetrics } from "./metrics.js";

export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  port: number;
  host: string;
  /** Resolves when the process can do its work (the database answers); throws otherwise. */
  ready: () => Promise<void>;
  /** How long `/readyz` waits for `ready`. Default 2 s. */
  readyTimeoutMs?: number;
}

export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const readyTimeoutMs = opts.readyTimeoutMs ?? 2000;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "text/plain", "method not allowed\n");
    if (path === "/metrics") {
      renderMetrics().then(
        (text) => send(200, registry.contentType, text),
        () => send(500, "text/plain", "could not render metrics\n"),
      );
    } else if (path === "/healthz") {
      send(200, "application/json", `{"status":"ok"}\n`);
    } else if (path === "/readyz") {
      withTimeout(opts.ready(), readyTimeoutMs).then(
        () => send(200, "application/json", `{"status":"ready"}\n`),
        () => send(503, "application/json", `{"status":"unavailable","reason":"the database is not reachable"}\n`),
      );
    } else {
      send(404, "text/plain", "not found: try /metrics, /healthz or /readyz\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const display = opts.host === "0.0.0.0" || opts.host === "::" ? "127.0.0.1" : opts.host;
  return {
    url: `http://${display}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("timed out")), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
