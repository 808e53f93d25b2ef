/**
 * Boots a real Fabric on loopback for wire tests: a test database, the control plane
 * (REST and gRPC on free ports), optionally an in-process executor, and a dev
 * organization with an API key. Also a second organization for isolation tests.
 */
import { randomUUID } from "node:crypto";
import { loadConfig } from "../../src/config.js";
import { startControlPlane, type ControlPlane } from "../../src/control-plane/server.js";
import { startWorker, type Worker, type WorkerConfig } from "../../src/executor/worker.js";
import { createLogger, type Logger } from "../../src/logger.js";
import { createProviders } from "../../src/providers/registry.js";
import { bootstrapDevOrganization } from "../../src/services/tenancy/dev-organization.js";
import type { WebhookDispatcherOptions } from "../../src/delivery/webhook-dispatcher.js";
import { createTestDatabase, type Engine, type TestDatabase } from "./database.js";
import { insertOrganization, member } from "./fixtures.js";

export interface TestFabric {
  database: TestDatabase;
  controlPlane: ControlPlane;
  restUrl: string;
  grpcUrl: string;
  apiKey: string;
  organizationId: string;
  principalId: string;
  worker?: Worker;
  /** A key of another organization (same look-alike setup), for isolation tests. */
  otherOrg(): Promise<{ apiKey: string; organizationId: string }>;
  /** Starts (another) in-process worker. */
  startWorker(overrides?: Partial<WorkerConfig>): Promise<Worker>;
  /** `fetch` against the REST server with this org's key. */
  rest(path: string, init?: RequestInit & { json?: unknown; key?: string | null }): Promise<Response>;
  close(): Promise<void>;
}

export const testLog = createLogger((process.env.TEST_LOG_LEVEL as any) ?? "silent");

export const testWorkerConfig = (overrides: Partial<WorkerConfig> = {}): WorkerConfig => ({
  WORKER_ID: `test-${randomUUID().slice(0, 8)}`,
  WORKER_CONCURRENCY: 4,
  WORKER_POLL_INTERVAL: 50,
  WORKER_LEASE_SECONDS: 30,
  WORKER_MAX_RETRIES: 3,
  WORKER_SHUTDOWN_GRACE: 2000,
  RUN_ID: undefined,
  ...overrides,
});

export async function startTestFabric(
  opts: {
    worker?: boolean | Partial<WorkerConfig>;
    engine?: Engine;
    /** Provider variables (OPENAI_API_KEY, OPENAI_BASE_URL, …), read by the one configuration loader. */
    env?: Record<string, string>;
    /** Webhooks may target loopback (a local receiver); development only. */
    webhooksAllowPrivate?: boolean;
    webhooks?: Partial<WebhookDispatcherOptions>;
    /** Sign-up/login throttling (default: effectively off). */
    authAttempts?: { perEmail: number; perAddress: number };
    /** The console build served at `/` (default: the checkout's `dist/console`). */
    consoleDir?: string;
    /** FABRIC_EVENT_GAP_TIMEOUT_MS of the control plane (default: the server's). */
    eventGapTimeoutMs?: number;
    /** FABRIC_CORS_ORIGINS: browser origins allowed on both ports (default: none). */
    corsOrigins?: string[];
    /** The logger of the control plane and the workers (default: `testLog`). */
    log?: Logger;
    /** The control plane's METRICS_PORT (0: a free port); none by default. */
    metricsPort?: number;
    /** WebSocket stream tuning (heartbeat, per-principal limit). */
    webSockets?: Parameters<typeof startControlPlane>[0]["webSockets"];
    /** How often open streams re-check their caller without a notification (default 300 ms). */
    streamRecheckMs?: number;
  } = {},
): Promise<TestFabric> {
  const providerSettings = loadConfig(opts.env ?? {});
  const database = await createTestDatabase({ engine: opts.engine });
  const boot = await bootstrapDevOrganization(database.db);
  const controlPlane = await startControlPlane({
    config: {
      HOST: "127.0.0.1",
      PORT: 0,
      GRPC_PORT: 0,
      FABRIC_ENV: "development",
      FABRIC_MAX_BODY_BYTES: 1 << 20,
      FABRIC_WEBHOOKS_ALLOW_PRIVATE: opts.webhooksAllowPrivate,
      // Every test signs up and logs in from 127.0.0.1: only the throttling tests want the real limits.
      FABRIC_AUTH_ATTEMPTS_PER_MINUTE: opts.authAttempts?.perEmail ?? 100_000,
      FABRIC_AUTH_ATTEMPTS_PER_MINUTE_PER_ADDRESS: opts.authAttempts?.perAddress ?? 100_000,
      FABRIC_EVENT_GAP_TIMEOUT_MS: opts.eventGapTimeoutMs,
      FABRIC_CORS_ORIGINS: opts.corsOrigins,
      METRICS_PORT: opts.metricsPort,
    },
    database,
    log: opts.log ?? testLog,
    streamRecheckMs: opts.streamRecheckMs ?? 300,
    principalHeader: true,
    webhooks: opts.webhooks,
    providers: createProviders(providerSettings),
    consoleDir: opts.consoleDir,
    webSockets: opts.webSockets,
  });
  const workers: Worker[] = [];
  const start = async (overrides: Partial<WorkerConfig> = {}) => {
    const w = await startWorker({ database, config: testWorkerConfig(overrides), providers: createProviders(providerSettings), log: opts.log ?? testLog });
    workers.push(w);
    return w;
  };
  const worker = opts.worker === false ? undefined : await start(typeof opts.worker === "object" ? opts.worker : {});
  const fabric: TestFabric = {
    database,
    controlPlane,
    restUrl: controlPlane.restUrl,
    grpcUrl: controlPlane.grpcUrl,
    apiKey: boot.apiKey,
    organizationId: boot.organizationId,
    principalId: boot.principalId,
    worker,
    startWorker: start,
    async otherOrg() {
      const organizationId = await insertOrganization({ database }, { slugPrefix: "other", name: "Other" });
      const owner = await member({ database }, organizationId, "owner");
      return { apiKey: owner.key, organizationId };
    },
    rest(path, init = {}) {
      const headers = new Headers(init.headers);
      const key = init.key === undefined ? boot.apiKey : init.key;
      if (key) headers.set("authorization", `Bearer ${key}`);
      let body = init.body;
      if (init.json !== undefined) {
        headers.set("content-type", "application/json");
        body = JSON.stringify(init.json);
      }
      return fetch(controlPlane.restUrl + path, { ...init, headers, body });
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      await controlPlane.close();
      await database.close();
    },
  };
  return fabric;
}

/**
 * Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. The
 * default ceiling is generous on purpose: it only matters when the condition never comes,
 * and on a loaded machine a condition that comes late must not fail the test.
 */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 60_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The smoke workflow (tests/smoke.test.ts): upper-case the topic, then echo it through a provider node. */
export const smokeWorkflow = {
  name: "smoke",
  nodes: [
    { key: "shout", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.topic" }, outputs: { text: "$context.shouted" } },
    { key: "gen", operation: "ai.generate", config: { provider: "echo" }, depends_on: ["shout"], inputs: { prompt: "$context.shouted" }, outputs: { text: "$context.answer" } },
  ],
};
