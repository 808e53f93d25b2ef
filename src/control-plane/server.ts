/**
 * Control-plane wiring: services over the database, the REST + SSE server on PORT and
 * the Connect server (gRPC, gRPC-Web, Connect; HTTP/1.1 and HTTP/2) on GRPC_PORT.
 * close() stops accepting, lets requests finish within the grace period, then ends
 * streams and releases the database listeners.
 */
import type { Server as HttpServer } from "node:http";
import { serve, type ServerType } from "@hono/node-server";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { sizeLimitsFrom, type Config } from "../config.js";
import type { Database } from "../db/database.js";
import { createWorkflowCache } from "../db/workflow-specs.js";
import { pingDatabase } from "../db/ping.js";
import { startRetentionPruner, type RetentionPruner } from "./retention-pruner.js";
import { startScheduler, type Scheduler, type SchedulerOptions } from "./scheduler.js";
import { createScheduleService } from "../services/schedules/schedule-service.js";
import { createRetentionService } from "../services/retention/retention-service.js";
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
import { startAccessWatch } from "../delivery/access-watch.js";
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
import type { Socket } from "node:net";
import { createConnectionGuard, defaultConnectionLimits } from "./connection-guard.js";
import { clientAddressKey, createGrpcRoutes } from "./grpc/routes.js";
import { createRestApp } from "./rest/app.js";
import { createWebSocketStreams, type WebSocketStreamOptions } from "./rest/websocket-streams.js";
import { createCallStep } from "./call-step.js";
import { jsonOptions } from "./contract.js";
import { createGuard } from "./guard.js";
import type { ServiceImpls } from "./service-impls.js";
import { budgetUtilization, readyQueueStats, webhookBacklog } from "../db/sampled-gauges.js";
import { startRunOutcomeMetrics } from "../delivery/run-outcomes.js";
import { cachedSample, metrics, onScrape, trackPool } from "../telemetry/metrics.js";
import { startMetricsServer } from "../telemetry/metrics-server.js";
import { currentTraceId, startTracing, withServerSpan } from "../telemetry/tracing.js";

export interface ControlPlane {
  readonly restUrl: string;
  readonly grpcUrl: string;
  /** The metrics port's base URL (`/metrics`, `/healthz`, `/readyz`) when METRICS_PORT is set. */
  readonly metricsUrl: string | undefined;
  /** The retention pruner (retention-pruner.ts); `pruneNow()` runs a tick at once. */
  readonly retention: RetentionPruner;
  /** The scheduler (scheduler.ts); `tickNow()` looks for due schedules at once. */
  readonly scheduler: Scheduler;
  close(): Promise<void>;
}

export async function startControlPlane(deps: {
  config: Pick<Config, "HOST" | "PORT" | "GRPC_PORT" | "FABRIC_ENV" | "FABRIC_MAX_BODY_BYTES" | "JWT_SECRET" | "FABRIC_SECRETS_KEY" | "FABRIC_WEBHOOKS_ALLOW_PRIVATE"> &
    Partial<Pick<Config, "FABRIC_ROUTING_STRATEGY" | "FABRIC_AUTH_ATTEMPTS_PER_MINUTE" | "FABRIC_AUTH_ATTEMPTS_PER_MINUTE_PER_ADDRESS">> &
    Partial<Pick<Config, "FABRIC_EVENT_GAP_TIMEOUT_MS">> &
    Partial<Pick<Config, "FABRIC_RETENTION_SECONDS" | "FABRIC_RETENTION_INTERVAL_MS">> &
    Partial<Pick<Config, "FABRIC_SCHEDULER_INTERVAL_MS">> &
    Partial<Pick<Config, "FABRIC_MAX_NODE_OUTPUT_BYTES" | "FABRIC_MAX_RUN_CONTEXT_BYTES" | "FABRIC_MAX_EVENT_PAYLOAD_BYTES" | "FABRIC_MAX_RUN_INPUT_BYTES" | "FABRIC_MAX_TEXT_OUTPUT_BYTES">> &
    Partial<Pick<Config, "FABRIC_CORS_ORIGINS">> &
    Partial<Pick<Config, "METRICS_PORT" | "OTEL_TRACES_EXPORTER" | "OTEL_EXPORTER_OTLP_ENDPOINT" | "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" | "OTEL_SERVICE_NAME">> &
    Partial<Pick<Config, "FABRIC_MAX_CONNECTIONS" | "FABRIC_MAX_CONNECTIONS_PER_ADDRESS" | "FABRIC_HEADERS_TIMEOUT" | "FABRIC_IDLE_TIMEOUT" | "FABRIC_MAX_STREAMS_PER_CONNECTION">> &
    Partial<Pick<Config, "FABRIC_PUBLIC_URL" | "FABRIC_PUBLIC_GRPC_URL">>;
  database: Database;
  log: Logger;
  /** How often a live event stream re-checks its caller when no access change was notified (expiry). Default 15 s. */
  streamRecheckMs?: number;
  /** Webhook dispatcher tuning (tests: a fast retry schedule). */
  webhooks?: Partial<WebhookDispatcherOptions>;
  /** The providers direct calls (`/v1/providers/execute`) may use. Default: echo only. */
  providers?: readonly Provider[];
  /** The console build served at `/`. Default: `dist/console` of this checkout. */
  consoleDir?: string;
  /** WebSocket stream tuning (tests: a short heartbeat, a small per-principal limit). */
  webSockets?: Omit<WebSocketStreamOptions, "log">;
  /** Scheduler tuning (tests: a short grace window). */
  scheduler?: Omit<SchedulerOptions, "intervalMs">;
  /** Honour `X-Principal-Id` from loopback clients: `fabric dev` on loopback (and tests) only. Default false. */
  principalHeader?: boolean;
}): Promise<ControlPlane> {
  const { config, database, log } = deps;
  const stopTracing = startTracing(config, "fabric-control-plane");
  const db = database.db;
  const hub = await startEventHub(database, log, { gapTimeoutMs: config.FABRIC_EVENT_GAP_TIMEOUT_MS });
  const access = await startAccessWatch(database, log);
  const workflows = createWorkflowCache();
  const jwtSecret = jwtSecretFrom(config.JWT_SECRET);
  const serviceDeps = { db, jwtSecret, log };
  const webhookSettings = webhookSettingsFrom(config);
  const dispatcher = startWebhookDispatcher({ db, hub, log, settings: webhookSettings, options: deps.webhooks });
  const pruner = startRetentionPruner({ db, log }, { defaultRetentionSeconds: config.FABRIC_RETENTION_SECONDS ?? 0, intervalMs: config.FABRIC_RETENTION_INTERVAL_MS });
  const scheduler = startScheduler({ db, log, workflows }, { intervalMs: config.FABRIC_SCHEDULER_INTERVAL_MS, ...deps.scheduler });
  const gateway = createProviderGateway({ db, providers: deps.providers ?? [createEchoProvider()], listen: (channel, fn) => database.listen(channel, fn) }, { strategy: config.FABRIC_ROUTING_STRATEGY, log });
  const services: ServiceImpls = {
    "fabric.v1.WorkflowService": createWorkflowService(db),
    "fabric.v1.RunService": createRunService({ db, workflows, hub, limits: sizeLimitsFrom(config), access, recheckMs: deps.streamRecheckMs }),
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
    "fabric.v1.EventService": createEventService({ db, hub, recheckMs: deps.streamRecheckMs, access }),
    "fabric.v1.WebhookService": createWebhookService({ db, settings: webhookSettings, kick: dispatcher.kick }),
    "fabric.v1.ProviderService": createProviderService({ db, gateway }),
    "fabric.v1.JobService": createJobService({ db, workflows, hub, gateway, access, recheckMs: deps.streamRecheckMs }),
    "fabric.v1.UsageService": createUsageService({ db }),
    "fabric.v1.PolicyService": createPolicyService({ db, onChange: gateway.invalidate }),
    "fabric.v1.ScheduleService": createScheduleService({ db, limits: sizeLimitsFrom(config), kick: scheduler.kick }),
    "fabric.v1.RetentionService": createRetentionService({ db, defaultRetentionSeconds: config.FABRIC_RETENTION_SECONDS ?? 0 }),
  };
  const callStep = createCallStep({ authenticator: createAuthenticator(db, { principalHeader: deps.principalHeader === true, jwtSecret }), guard: createGuard(db) });

  let grpcPort: number | undefined;
  const publicAddresses = { restUrl: config.FABRIC_PUBLIC_URL, grpcUrl: config.FABRIC_PUBLIC_GRPC_URL, grpcPort: () => grpcPort };
  const ready = () => readiness(database);
  const webSockets = createWebSocketStreams({ log, ...deps.webSockets });
  const app = createRestApp({ services, callStep, log, maxBodyBytes: config.FABRIC_MAX_BODY_BYTES, consoleDir: deps.consoleDir, cors: createCorsPolicy(config.FABRIC_CORS_ORIGINS, restCorsHeaders), webSockets, publicAddresses, ready, traced: withServerSpan, traceIdOf: currentTraceId });
  const connections = createConnectionGuard({
    maxConnections: config.FABRIC_MAX_CONNECTIONS ?? defaultConnectionLimits.maxConnections,
    maxPerAddress: config.FABRIC_MAX_CONNECTIONS_PER_ADDRESS ?? defaultConnectionLimits.maxPerAddress,
    firstBytesTimeoutMs: config.FABRIC_HEADERS_TIMEOUT ?? defaultConnectionLimits.firstBytesTimeoutMs,
    idleTimeoutMs: config.FABRIC_IDLE_TIMEOUT ?? defaultConnectionLimits.idleTimeoutMs,
    maxStreamsPerConnection: config.FABRIC_MAX_STREAMS_PER_CONNECTION ?? defaultConnectionLimits.maxStreamsPerConnection,
  });
  const { limits } = connections;
  // A port that cannot be bound (in use…) ends the start: stop the loops started above
  // first, so they do not run on against a database the caller is about to close.
  const stopLoops = async () => {
    await scheduler.close();
    await pruner.close();
    await dispatcher.close();
    await gateway.close();
    await webSockets.close();
    await hub.close();
    await access.close();
    await stopTracing();
  };
  const rest = await new Promise<ServerType>((resolve, reject) => {
    const s = serve(
      {
        fetch: app.fetch,
        port: config.PORT,
        hostname: config.HOST,
        // Node checks the headers timeout every connectionsCheckingInterval: silent connections go within about a second of it.
        serverOptions: { headersTimeout: limits.firstBytesTimeoutMs, requestTimeout: Math.max(limits.firstBytesTimeoutMs, 30_000), keepAliveTimeout: Math.min(limits.idleTimeoutMs, 5000), connectionsCheckingInterval: 1000 },
      },
      () => resolve(s),
    );
    s.once("error", reject);
  }).catch(async (err) => {
    await stopLoops();
    throw err;
  });
  rest.on("connection", (socket: Socket) => void connections.admit(socket));
  const restPort = (rest.address() as { port: number }).port;
  webSockets.attach(rest as HttpServer, app.fetch); // serve() without options makes an HTTP/1.1 server

  const handler = connectNodeAdapter({
    routes: createGrpcRoutes({ services, callStep, log, traced: (rpc, headers, fn) => withServerSpan(rpc, (name) => headers.get(name), fn), traceIdOf: currentTraceId, ready }),
    contextValues: (req) => createContextValues().set(clientAddressKey, req.socket?.remoteAddress ?? ""),
    readMaxBytes: config.FABRIC_MAX_BODY_BYTES,
    jsonOptions: { ...jsonOptions, ignoreUnknownFields: false },
  });
  const grpc = await listenHttp1And2(withCors(handler, createCorsPolicy(config.FABRIC_CORS_ORIGINS, grpcCorsHeaders)), config.GRPC_PORT, config.HOST, connections).catch(async (err) => {
    await new Promise<void>((resolve) => rest.close(() => resolve()));
    await stopLoops();
    throw err;
  });
  grpcPort = grpc.port;

  // Metrics: finished runs from the event stream, and the gauges sampled on scrape.
  const runOutcomes = startRunOutcomeMetrics({ db, hub, log });
  const stopSampling = onScrape(
    cachedSample(async () => {
      const [queue, backlog, budgets] = await Promise.all([readyQueueStats(db), webhookBacklog(db), budgetUtilization(db)]);
      metrics.readyQueueDepth.set(queue.depth);
      metrics.readyQueueOldestAge.set(queue.oldestAgeSeconds);
      metrics.webhookBacklog.set(backlog);
      metrics.budgetMaxUtilization.set(budgets.maxRatio);
      metrics.budgetsNearCap.set(budgets.nearCap);
    }),
  );
  const stopPoolSampling = trackPool(database);
  const metricsServer = config.METRICS_PORT !== undefined ? await startMetricsServer({ port: config.METRICS_PORT, host: config.HOST, ready }) : undefined;

  const display = config.HOST === "0.0.0.0" || config.HOST === "::" ? "127.0.0.1" : config.HOST;
  return {
    restUrl: `http://${display}:${restPort}`,
    grpcUrl: `http://${display}:${grpc.port}`,
    metricsUrl: metricsServer?.url,
    retention: pruner,
    scheduler,
    async close() {
      await scheduler.close();
      await pruner.close();
      stopSampling();
      stopPoolSampling();
      await metricsServer?.close();
      await runOutcomes.close();
      await dispatcher.close();
      await gateway.close();
      await webSockets.close(); // 1001 to WebSocket clients, before the hub ends their streams
      await hub.close(); // ends live streams so their connections can drain
      await access.close();
      await Promise.all([
        new Promise<void>((resolve) => {
          rest.close(() => resolve());
          (rest as any).closeIdleConnections?.();
          setTimeout(() => (rest as any).closeAllConnections?.(), 5000).unref();
        }),
        grpc.close(),
      ]);
      await stopTracing();
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
