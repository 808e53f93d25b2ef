/**
 * Control-plane wiring: services over the database, the REST + SSE server on PORT and
 * the Connect server (gRPC, gRPC-Web, Connect; HTTP/1.1 and HTTP/2) on GRPC_PORT.
 * close() stops accepting, lets requests finish within the grace period, then ends
 * streams and releases the database listeners.
 */
import { serve, type ServerType } from "@hono/node-server";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { sizeLimitsFrom, type Config } from "../config.js";
import type { Database } from "../db/database.js";
import { createWorkflowCache } from "../db/workflow-specs.js";
import { pingDatabase } from "../db/ping.js";
import type { Logger } from "../logger.js";
import { createContextValues } from "@connectrpc/connect";
import { createAuthenticator, jwtSecretFrom } from "../services/identity/authenticator.js";
import { createApiKeyService } from "../services/access/api-key-service.js";
import { createAuditService } from "../services/access/audit-service.js";
import { createAuthzService } from "../services/access/authz-service.js";
import { createEventService } from "../services/events/event-service.js";
import { createIdentityService, defaultAuthAttemptLimits } from "../services/identity/identity-service.js";
import { createTenancyService } from "../services/tenancy/tenancy-service.js";
import { startEventHub } from "../delivery/event-hub.js";
import { createRunService } from "../services/runs/run-service.js";
import { createWorkflowService } from "../services/runs/workflow-service.js";
import { startWebhookDispatcher, type WebhookDispatcherOptions } from "../delivery/webhook-dispatcher.js";
import { webhookSettingsFrom } from "../delivery/webhook-security.js";
import { createWebhookService } from "../services/events/webhook-service.js";
import { createJobService } from "../services/runs/job-service.js";
import { createPolicyService } from "../services/usage/policy-service.js";
import { createProviderGateway } from "../gateway/index.js";
import { createProviderService } from "../services/usage/provider-service.js";
import { createUsageService } from "../services/usage/usage-service.js";
import { createEchoProvider } from "../providers/echo/index.js";
import type { Provider } from "../providers/provider.js";
import { createCorsPolicy, grpcCorsHeaders, restCorsHeaders } from "./cors.js";
import { withCors } from "./grpc/cors.js";
import { listenHttp1And2 } from "./grpc/listener.js";
import { clientAddressKey, createGrpcRoutes } from "./grpc/routes.js";
import { createRestApp } from "./rest/app.js";
import { createCallStep } from "./call-step.js";
import { jsonOptions } from "./contract.js";
import { createGuard } from "./guard.js";
import type { ServiceImpls } from "./service-impls.js";

export interface ControlPlane {
  readonly restUrl: string;
  readonly grpcUrl: string;
  close(): Promise<void>;
}

export async function startControlPlane(deps: {
  config: Pick<Config, "HOST" | "PORT" | "GRPC_PORT" | "FABRIC_ENV" | "FABRIC_MAX_BODY_BYTES" | "JWT_SECRET" | "FABRIC_SECRETS_KEY" | "FABRIC_WEBHOOKS_ALLOW_PRIVATE"> &
    Partial<Pick<Config, "FABRIC_ROUTING_STRATEGY" | "FABRIC_AUTH_ATTEMPTS_PER_MINUTE" | "FABRIC_AUTH_ATTEMPTS_PER_MINUTE_PER_ADDRESS">> &
    Partial<Pick<Config, "FABRIC_EVENT_GAP_TIMEOUT_MS">> &
    Partial<Pick<Config, "FABRIC_MAX_NODE_OUTPUT_BYTES" | "FABRIC_MAX_RUN_CONTEXT_BYTES" | "FABRIC_MAX_EVENT_PAYLOAD_BYTES" | "FABRIC_MAX_RUN_INPUT_BYTES" | "FABRIC_MAX_TEXT_OUTPUT_BYTES">> &
    Partial<Pick<Config, "FABRIC_CORS_ORIGINS">> &
    Partial<Pick<Config, "FABRIC_PUBLIC_URL" | "FABRIC_PUBLIC_GRPC_URL">>;
  database: Database;
  log: Logger;
  /** How often a live event stream re-checks its API key (revocation). Default 15 s. */
  streamRecheckMs?: number;
  /** Webhook dispatcher tuning (tests: a fast retry schedule). */
  webhooks?: Partial<WebhookDispatcherOptions>;
  /** The providers direct calls (`/v1/providers/execute`) may use. Default: echo only. */
  providers?: readonly Provider[];
  /** The console build served at `/`. Default: `dist/console` of this checkout. */
  consoleDir?: string;
}): Promise<ControlPlane> {
  const { config, database, log } = deps;
  const db = database.db;
  const hub = await startEventHub(database, log, { gapTimeoutMs: config.FABRIC_EVENT_GAP_TIMEOUT_MS });
  const workflows = createWorkflowCache();
  const jwtSecret = jwtSecretFrom(config.JWT_SECRET);
  const serviceDeps = { db, jwtSecret, log };
  const webhookSettings = webhookSettingsFrom(config);
  const dispatcher = startWebhookDispatcher({ db, hub, log, settings: webhookSettings, options: deps.webhooks });
  const gateway = createProviderGateway({ db, providers: deps.providers ?? [createEchoProvider()], listen: (channel, fn) => database.listen(channel, fn) }, { strategy: config.FABRIC_ROUTING_STRATEGY, log });
  const services: ServiceImpls = {
    "fabric.v1.WorkflowService": createWorkflowService(db),
    "fabric.v1.RunService": createRunService({ db, workflows, hub, limits: sizeLimitsFrom(config) }),
    "fabric.v1.IdentityService": createIdentityService({
      ...serviceDeps,
      authAttempts: {
        perEmail: config.FABRIC_AUTH_ATTEMPTS_PER_MINUTE ?? defaultAuthAttemptLimits.perEmail,
        perAddress: config.FABRIC_AUTH_ATTEMPTS_PER_MINUTE_PER_ADDRESS ?? defaultAuthAttemptLimits.perAddress,
      },
    }),
    "fabric.v1.TenancyService": createTenancyService(serviceDeps),
    "fabric.v1.ApiKeyService": createApiKeyService(serviceDeps),
    "fabric.v1.AuthzService": createAuthzService(serviceDeps),
    "fabric.v1.AuditService": createAuditService(serviceDeps),
    "fabric.v1.EventService": createEventService({ db, hub, recheckMs: deps.streamRecheckMs }),
    "fabric.v1.WebhookService": createWebhookService({ db, settings: webhookSettings, kick: dispatcher.kick }),
    "fabric.v1.ProviderService": createProviderService({ db, gateway }),
    "fabric.v1.JobService": createJobService({ db, workflows, hub, gateway }),
    "fabric.v1.UsageService": createUsageService({ db }),
    "fabric.v1.PolicyService": createPolicyService({ db, onChange: gateway.invalidate }),
  };
  const callStep = createCallStep({ authenticator: createAuthenticator(db, { development: config.FABRIC_ENV === "development", jwtSecret }), guard: createGuard(db) });

  let grpcPort: number | undefined;
  const publicAddresses = { restUrl: config.FABRIC_PUBLIC_URL, grpcUrl: config.FABRIC_PUBLIC_GRPC_URL, grpcPort: () => grpcPort };
  const app = createRestApp({ services, callStep, log, maxBodyBytes: config.FABRIC_MAX_BODY_BYTES, consoleDir: deps.consoleDir, cors: createCorsPolicy(config.FABRIC_CORS_ORIGINS, restCorsHeaders), publicAddresses, ready: () => readiness(database) });
  // A port that cannot be bound (in use…) ends the start: stop the loops started above
  // first, so they do not run on against a database the caller is about to close.
  const stopLoops = async () => {
    await dispatcher.close();
    await gateway.close();
    await hub.close();
  };
  const rest = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, () => resolve(s));
    s.once("error", reject);
  }).catch(async (err) => {
    await stopLoops();
    throw err;
  });
  const restPort = (rest.address() as { port: number }).port;

  const handler = connectNodeAdapter({
    routes: createGrpcRoutes({ services, callStep, log }),
    contextValues: (req) => createContextValues().set(clientAddressKey, req.socket?.remoteAddress ?? ""),
    readMaxBytes: config.FABRIC_MAX_BODY_BYTES,
    jsonOptions: { ...jsonOptions, ignoreUnknownFields: false },
  });
  const grpc = await listenHttp1And2(withCors(handler, createCorsPolicy(config.FABRIC_CORS_ORIGINS, grpcCorsHeaders)), config.GRPC_PORT, config.HOST).catch(async (err) => {
    await new Promise<void>((resolve) => rest.close(() => resolve()));
    await stopLoops();
    throw err;
  });
  grpcPort = grpc.port;

  const display = config.HOST === "0.0.0.0" || config.HOST === "::" ? "127.0.0.1" : config.HOST;
  return {
    restUrl: `http://${display}:${restPort}`,
    grpcUrl: `http://${display}:${grpc.port}`,
    async close() {
      await dispatcher.close();
      await gateway.close();
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

/**
 * /readyz: ready when the notification connection is listening (the event hub and the
 * webhook dispatcher depend on it) and a query answers — within `timeoutMs`, so a probe
 * during an outage gets its 503 at once instead of waiting for a connection attempt.
 */
export async function readiness(database: Database, timeoutMs = 1500): Promise<void> {
  if (!database.listening()) throw new Error("the notification connection is down");
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      pingDatabase(database.db),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the database did not answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
