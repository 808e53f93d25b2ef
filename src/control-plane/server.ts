/**
 * Control-plane wiring: services over the database, the REST + SSE server on PORT and
 * the Connect server (gRPC, gRPC-Web, Connect; HTTP/1.1 and HTTP/2) on GRPC_PORT.
 * close() stops accepting, lets requests finish within the grace period, then ends
 * streams and releases the database listeners.
 */
import { serve, type ServerType } from "@hono/node-server";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { sql } from "drizzle-orm";
import { jsonOptions } from "../services/messages.js";
import type { Config } from "../config.js";
import type { Database } from "../db/database.js";
import { createWorkflowCache } from "../db/workflow-specs.js";
import type { Logger } from "../logger.js";
import { createAuthenticator } from "../services/auth.js";
import { startEventHub } from "../services/event-hub.js";
import { createRunService } from "../services/runs.js";
import { createWorkflowService } from "../services/workflows.js";
import { listenHttp1And2 } from "./grpc/listener.js";
import { createGrpcRoutes } from "./grpc/routes.js";
import { createRestApp, type ServiceImpls } from "./rest/app.js";

export interface ControlPlane {
  readonly restUrl: string;
  readonly grpcUrl: string;
  close(): Promise<void>;
}

export async function startControlPlane(deps: { config: Pick<Config, "HOST" | "PORT" | "GRPC_PORT" | "FABRIC_ENV" | "FABRIC_MAX_BODY_BYTES">; database: Database; log: Logger }): Promise<ControlPlane> {
  const { config, database, log } = deps;
  const db = database.db;
  const hub = await startEventHub(database, log);
  const workflows = createWorkflowCache();
  const services: ServiceImpls = {
    "fabric.v1.WorkflowService": createWorkflowService(db),
    "fabric.v1.RunService": createRunService({ db, workflows, hub }),
  };
  const authenticator = createAuthenticator(db, { development: config.FABRIC_ENV === "development" });

  const app = createRestApp({ services, authenticator, log, maxBodyBytes: config.FABRIC_MAX_BODY_BYTES, ready: async () => void (await db.execute(sql`SELECT 1`)) });
  const rest = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, () => resolve(s));
    s.once("error", reject);
  });
  const restPort = (rest.address() as { port: number }).port;

  const handler = connectNodeAdapter({
    routes: createGrpcRoutes({ services, authenticator, log }),
    readMaxBytes: config.FABRIC_MAX_BODY_BYTES,
    jsonOptions: { ...jsonOptions, ignoreUnknownFields: false },
  });
  const grpc = await listenHttp1And2(handler, config.GRPC_PORT, config.HOST);

  const display = config.HOST === "0.0.0.0" || config.HOST === "::" ? "127.0.0.1" : config.HOST;
  return {
    restUrl: `http://${display}:${restPort}`,
    grpcUrl: `http://${display}:${grpc.port}`,
    async close() {
      await hub.close(); // ends live streams so their connections can drain
      await Promise.all([
        new Promise<void>((resolve) => {
          rest.close(() => resolve());
          (rest as any).closeIdleConnections?.();
          setTimeout(() => (rest as any).closeAllConnections?.(), 5000).unref();
        }),
        grpc.close(),
      ]);
    },
  };
}
