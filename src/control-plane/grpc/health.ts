/**
 * `grpc.health.v1.Health` on the gRPC port, the probe load balancers and Kubernetes speak.
 * Serving means the process can reach its database (the same check as REST `/readyz`).
 * The server as a whole is `""`; each Fabric service has its own name with the same
 * status. Anonymous, like `/healthz`: it reveals nothing but up or down.
 */
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../../gen/proto/grpc/health/v1/health_pb.js";

export interface HealthOptions {
  /** Resolves when the process can serve; throws otherwise. */
  ready: () => Promise<void>;
  /** Names `Check` and `Watch` know besides `""`. */
  services: readonly string[];
  /** How long a check may take before it counts as not serving. Default 2 s. */
  timeoutMs?: number;
  /** How often `Watch` re-checks. Default 2 s. */
  watchIntervalMs?: number;
}

export function addHealth(router: ConnectRouter, opts: HealthOptions): void {
  const known = new Set(["", ...opts.services]);
  const timeoutMs = opts.timeoutMs ?? 2000;
  const status = async (): Promise<Status> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([opts.ready(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("timeout")), timeoutMs)))]);
      return Status.SERVING;
    } catch {
      return Status.NOT_SERVING;
    } finally {
      clearTimeout(timer);
    }
  };
  router.service(Health, {
    async check(req) {
      if (!known.has(req.service)) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
      return { status: await status() };
    },
    async *watch(req, ctx: HandlerContext) {
      if (!known.has(req.service)) {
        yield { status: Status.SERVICE_UNKNOWN };
        await sleep(Infinity, ctx.signal);
        return;
      }
      let last: Status | undefined;
      while (!ctx.signal.aborted) {
        const now = await status();
        if (now !== last) yield { status: now };
        last = now;
        await sleep(opts.watchIntervalMs ?? 2000, ctx.signal);
      }
    },
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
