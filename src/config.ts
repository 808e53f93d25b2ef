/**
 * The one configuration loader: defaults < environment < CLI flags (flags are applied
 * by the CLI as environment overrides). Validated with zod; an invalid value fails at
 * start-up naming the variable.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { DEFAULT_ROUTING_STRATEGY, ROUTING_STRATEGIES } from "./domain/routing.js";
import { defaultSizeLimits, type SizeLimits } from "./domain/size-limits.js";

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** `500`, `500ms`, `2s` → milliseconds. */
const duration = z
  .string()
  .trim()
  .regex(/^\d+(\.\d+)?(ms|s)?$/, "expected milliseconds like 500, 500ms or 2s")
  .transform((v) => (v.endsWith("ms") ? Number(v.slice(0, -2)) : v.endsWith("s") ? Number(v.slice(0, -1)) * 1000 : Number(v)))
  .pipe(z.number().min(1).max(3_600_000));

/** A secret such as an API key: surrounding blanks dropped, a blank one is unset. */
const secret = z
  .string()
  .transform((v) => v.trim() || undefined)
  .optional();

/**
 * Browser origins allowed to call both ports (CORS): comma-separated `scheme://host[:port]`,
 * or `*` for any. Unset: none (no CORS headers; preflights are refused as before).
 */
const corsOrigins = z
  .string()
  .transform((v) => v.split(",").map((o) => o.trim()).filter(Boolean))
  .pipe(z.array(z.string().regex(/^(\*|https?:\/\/[A-Za-z0-9.\-[\]:]+)$/, "expected * or origins like https://app.example.com or http://localhost:5173, comma-separated")).max(100))
  .optional();

/** A provider's base URL: http or https. */
const baseUrl = z
  .string()
  .trim()
  .pipe(z.url({ protocol: /^https?$/, error: "expected an http(s) URL" }))
  .optional();

const schema = z.object({
  /** Production unless set: only `fabric dev` defaults to development (cli/main.ts). */
  FABRIC_ENV: z.enum(["development", "production"]).default("production"),
  HOST: z.string().default("127.0.0.1"),
  PORT: int(0, 65535).default(3001),
  GRPC_PORT: int(0, 65535).default(3002),
  DATABASE_URL: z.string().url().optional(),
  /** `fabric migrate` only: connect as this (the schema owner) instead of DATABASE_URL, so the runtime role needs no DDL rights (docs/deploy.md). */
  MIGRATION_DATABASE_URL: z.string().url().optional(),
  /** `fabric migrate` only: the runtime role to grant DML on the schema to (never UPDATE/DELETE/TRUNCATE on audit_log). */
  FABRIC_RUNTIME_ROLE: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "a lowercase Postgres role name").optional(),
  DATABASE_POOL_MAX: int(1, 1000).default(10),
  FABRIC_DATA_DIR: z.string().default(".fabric"),
  FABRIC_MAX_BODY_BYTES: int(1024, 64 << 20).default(1 << 20),
  FABRIC_DEV_API_KEY: z
    .string()
    .regex(/^fab_[a-z0-9]{8}_[A-Za-z0-9]{20,}$/, "expected fab_<8 lowercase letters/digits>_<20+ letters/digits>")
    .optional(),
  JWT_SECRET: z
    .string()
    .refine((v) => v.trim().length >= 32 && new Set(v).size >= 8, "must be at least 32 characters, not blank, with at least 8 distinct characters")
    .optional(),
  /** Key material for secrets stored encrypted (webhook signing secrets); falls back to JWT_SECRET. */
  FABRIC_SECRETS_KEY: z.string().min(32, "must be at least 32 characters").optional(),
  /** Development only: webhooks may target loopback/private addresses (tests, local receivers). */
  FABRIC_WEBHOOKS_ALLOW_PRIVATE: z.enum(["true", "false"]).transform((v) => v === "true").optional(),
  FABRIC_CORS_ORIGINS: corsOrigins,
  /** Failed logins of one (client address, email) pair before each further attempt waits 1 s, 2 s, 4 s … up to 15 min (the name is historical). */
  FABRIC_AUTH_ATTEMPTS_PER_MINUTE: int(1, 1_000_000).default(10),
  /** Sign-up and login attempts per client address per minute. */
  FABRIC_AUTH_ATTEMPTS_PER_MINUTE_PER_ADDRESS: int(1, 1_000_000).default(60),
  /** How long a missing event id holds live delivery back before it counts as rolled back (delivery/event-hub.ts). */
  FABRIC_EVENT_GAP_TIMEOUT_MS: int(1, 600_000).default(5000),
  // Size limits (domain/size-limits.ts): a node exceeding one fails with `output_too_large`.
  FABRIC_MAX_NODE_OUTPUT_BYTES: int(1024, 256 << 20).default(defaultSizeLimits.nodeOutputBytes),
  FABRIC_MAX_RUN_CONTEXT_BYTES: int(1024, 1 << 30).default(defaultSizeLimits.runContextBytes),
  FABRIC_MAX_EVENT_PAYLOAD_BYTES: int(1024, 256 << 20).default(defaultSizeLimits.eventPayloadBytes),
  FABRIC_MAX_RUN_INPUT_BYTES: int(1024, 256 << 20).default(defaultSizeLimits.runInputBytes),
  FABRIC_MAX_TEXT_OUTPUT_BYTES: int(1024, 256 << 20).default(defaultSizeLimits.textOutputBytes),
  /** A step that leaves the executor's heap above this many MiB is failed (`memory_exceeded`); default: 3/4 of the heap limit. */
  WORKER_MAX_HEAP_MB: int(16, 1 << 20).optional(),
  /** A node whose lease expired this many times (its executors died) is failed as `quarantined`, not retried. */
  WORKER_QUARANTINE_AFTER: int(1, 100).default(3),
  /** Postgres sessions: statement_timeout (0 = none). */
  FABRIC_DB_STATEMENT_TIMEOUT_MS: int(0, 86_400_000).default(60_000),
  /** Postgres sessions: idle_in_transaction_session_timeout — a frozen process's transaction is ended and its locks released (0 = none). */
  FABRIC_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: int(0, 86_400_000).default(15_000),
  /** Postgres: how long opening a connection may take. */
  FABRIC_DB_CONNECT_TIMEOUT_MS: int(1000, 600_000).default(5000),
  /** Finished runs (with their nodes, events, usage records) are deleted this long after they finished; 0 = kept forever. An organization's own setting wins. */
  FABRIC_RETENTION_SECONDS: int(0, 100 * 365 * 86_400).default(0),
  /** How often the retention pruner looks for expired runs. */
  FABRIC_RETENTION_INTERVAL_MS: int(100, 86_400_000).default(60_000),
  /** The longest a control plane's scheduler sleeps between looks for due schedules (it wakes at the next fire time when sooner). */
  FABRIC_SCHEDULER_INTERVAL_MS: int(50, 60_000).default(1000),
  // Connection limits of both ports together (control-plane/connection-guard.ts).
  FABRIC_MAX_CONNECTIONS: int(1, 1_000_000).default(8192),
  FABRIC_MAX_CONNECTIONS_PER_ADDRESS: int(1, 1_000_000).default(1024),
  /** A connection that has not sent its request headers within this is closed. */
  FABRIC_HEADERS_TIMEOUT: duration.default(10_000),
  /** An HTTP/2 session (or kept-alive HTTP/1.1 connection) with no request in flight for this long is closed. */
  FABRIC_IDLE_TIMEOUT: duration.default(60_000),
  FABRIC_MAX_STREAMS_PER_CONNECTION: int(1, 10_000).default(100),
  WORKER_ID: z.string().min(1).max(200).default(() => randomUUID()),
  WORKER_CONCURRENCY: int(1, 1000).default(4),
  WORKER_POLL_INTERVAL: duration.default(500),
  WORKER_LEASE_SECONDS: int(1, 3600).default(30),
  WORKER_MAX_RETRIES: int(1, 20).default(3),
  WORKER_SHUTDOWN_GRACE: duration.default(10_000),
  RUN_ID: z.string().uuid().optional(),
  FABRIC_ROUTING_STRATEGY: z.enum(ROUTING_STRATEGIES).default(DEFAULT_ROUTING_STRATEGY),
  // Providers (providers/registry.ts): a key enables OpenAI / Anthropic, OLLAMA_ENABLED
  // Ollama; the base URLs point the SDKs elsewhere (a proxy, a test's fake server). Echo is
  // always on.
  OPENAI_API_KEY: secret,
  OPENAI_BASE_URL: baseUrl,
  ANTHROPIC_API_KEY: secret,
  ANTHROPIC_BASE_URL: baseUrl,
  OLLAMA_ENABLED: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(["true", "false", "1", "0"], { error: "expected true, false, 1 or 0" }))
    .transform((v) => v === "true" || v === "1")
    .default(false),
  OLLAMA_URL: baseUrl,
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
  /** The metrics port (/metrics, /healthz, /readyz) of this process; unset = none (telemetry/metrics-server.ts). */
  METRICS_PORT: int(0, 65535).optional(),
  // Tracing (telemetry/tracing.ts), the OpenTelemetry SDK's standard variables: off unless an
  // OTLP endpoint is given or OTEL_TRACES_EXPORTER=otlp (then the default localhost:4318).
  OTEL_TRACES_EXPORTER: z.enum(["otlp", "none"]).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.string().url().optional(),
  OTEL_SERVICE_NAME: z.string().min(1).max(200).optional(),
  /** The URLs clients reach this control plane at (behind a proxy or load balancer), named by /openapi.json and /docs. */
  FABRIC_PUBLIC_URL: baseUrl,
  FABRIC_PUBLIC_GRPC_URL: baseUrl,
});

export type Config = z.infer<typeof schema>;

/** The size limits of a configuration. */
export function sizeLimitsFrom(config: Partial<Pick<Config, "FABRIC_MAX_NODE_OUTPUT_BYTES" | "FABRIC_MAX_RUN_CONTEXT_BYTES" | "FABRIC_MAX_EVENT_PAYLOAD_BYTES" | "FABRIC_MAX_RUN_INPUT_BYTES" | "FABRIC_MAX_TEXT_OUTPUT_BYTES">>): SizeLimits {
  return {
    nodeOutputBytes: config.FABRIC_MAX_NODE_OUTPUT_BYTES ?? defaultSizeLimits.nodeOutputBytes,
    runContextBytes: config.FABRIC_MAX_RUN_CONTEXT_BYTES ?? defaultSizeLimits.runContextBytes,
    eventPayloadBytes: config.FABRIC_MAX_EVENT_PAYLOAD_BYTES ?? defaultSizeLimits.eventPayloadBytes,
    runInputBytes: config.FABRIC_MAX_RUN_INPUT_BYTES ?? defaultSizeLimits.runInputBytes,
    textOutputBytes: config.FABRIC_MAX_TEXT_OUTPUT_BYTES ?? defaultSizeLimits.textOutputBytes,
  };
}

/** Every setting this loader reads (deploy recipes are checked against it). */
export const settingNames: readonly string[] = Object.keys(schema.shape);

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings mean "unset" (a common shell idiom: VAR= command).
  const clean = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = schema.safeParse(clean);
  if (!parsed.success) {
    // Name the variable, never echo its value: it may be a secret or a URL with a password.
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  return parsed.data;
}
