/**
 * Every Prometheus metric Fabric exports, in one process-wide registry (prom-client).
 * Instrumented code imports `metrics` and records; `/metrics` (metrics-server.ts) renders
 * the registry. Both planes share the definitions, so in `fabric dev` one scrape shows
 * both, and the dashboards in deploy/ can name each metric once.
 *
 * Label values are bounded: operations, outcomes, codes and providers are closed sets;
 * workflow and model names come from tenants, so `boundedLabel` lets the first
 * `maxLabelValues` distinct values through and folds the rest into `other`. No run ids,
 * user ids or organization ids are ever labels.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "fabric_" });

/** Seconds: from a fast statement (1 ms) to a slow provider call (2 min). */
const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Seconds: a run or a queue wait may last hours. */
const longBuckets = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400];

const maxLabelValues = 100;
const seen = new Map<string, Set<string>>();

/** `value` as a label of `family`, or `other` once the family has `maxLabelValues` distinct values. */
export function boundedLabel(family: string, value: string | undefined | null): string {
  const v = value || "unknown";
  let set = seen.get(family);
  if (!set) seen.set(family, (set = new Set()));
  if (set.has(v)) return v;
  if (set.size >= maxLabelValues) return "other";
  set.add(v);
  return v;
}

const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => new Counter<L>({ name, help, labelNames, registers: [registry] });
const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => new Gauge<L>({ name, help, labelNames, registers: [registry] });
const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets = latencyBuckets) => new Histogram<L>({ name, help, labelNames, buckets, registers: [registry] });

export const metrics = {
  // Runs (runs created: the services; finished: the control plane's event hub, see delivery/run-outcomes.ts).
  runsCreated: counter("fabric_runs_created_total", "Runs created, by workflow name.", ["workflow"]),
  runsFinished: counter("fabric_runs_finished_total", "Runs that reached a terminal state, by workflow name and outcome (completed, failed, cancelled).", ["workflow", "outcome"]),
  runDuration: histogram("fabric_run_duration_seconds", "Run duration from creation to its terminal state.", ["workflow", "outcome"], longBuckets),

  // Steps (the executor).
  stepsClaimed: counter("fabric_steps_claimed_total", "Node attempts claimed by this executor, by operation.", ["operation"]),
  stepsCompleted: counter("fabric_steps_completed_total", "Node attempts that succeeded, by operation.", ["operation"]),
  stepsFailed: counter("fabric_steps_failed_total", "Node attempts that failed, by operation and error class.", ["operation", "class"]),
  stepsRetried: counter("fabric_steps_retried_total", "Failed node attempts scheduled for another attempt, by operation.", ["operation"]),
  stepDuration: histogram("fabric_step_duration_seconds", "Time a node attempt ran in the executor, by operation and outcome.", ["operation", "outcome"]),
  stepQueueWait: histogram("fabric_step_queue_wait_seconds", "Time from a node being ready (and due) to being claimed, by operation.", ["operation"], longBuckets),
  readyQueueDepth: gauge("fabric_ready_queue_depth", "Ready, due nodes waiting to be claimed (sampled from the database on scrape)."),
  readyQueueOldestAge: gauge("fabric_ready_queue_oldest_age_seconds", "Age of the oldest ready, due node (sampled from the database on scrape; 0 when empty)."),
  leaseExpirations: counter("fabric_lease_expirations_total", "Expired leases this executor's reaper took over."),
  reaperRecoveries: counter("fabric_reaper_recoveries_total", "Expired leases the reaper resolved, by outcome (retrying, failed).", ["outcome"]),
  claimDuration: histogram("fabric_claim_duration_seconds", "Latency of the claim statement.", []),
  completionBatchSize: histogram("fabric_completion_batch_size", "Completions committed per batch.", [], [1, 2, 4, 8, 16, 32, 64, 128]),

  // Provider calls (the gateway, in both planes).
  providerCalls: counter("fabric_provider_calls_total", "Provider call attempts, by provider, model and outcome (ok, or the error class).", ["provider", "model", "outcome"]),
  providerCallDuration: histogram("fabric_provider_call_duration_seconds", "Provider call latency, by provider and model.", ["provider", "model"]),
  providerTimeToFirstToken: histogram("fabric_provider_time_to_first_token_seconds", "Time to the first streamed token, by provider and model.", ["provider", "model"]),
  providerTokens: counter("fabric_provider_tokens_total", "Tokens, by provider, model and direction (input, output).", ["provider", "model", "direction"]),
  providerCostUsd: counter("fabric_provider_cost_usd_total", "Actual cost in USD, by provider and model.", ["provider", "model"]),
  providerFallbacks: counter("fabric_provider_fallbacks_total", "Calls answered by another candidate after a failure, by the provider that failed.", ["provider"]),
  providerBreakerState: gauge("fabric_provider_breaker_state", "Circuit breaker of a provider+model in this process: 0 closed, 1 half-open, 2 open.", ["provider", "model"]),
  budgetMaxUtilization: gauge("fabric_budget_max_utilization_ratio", "Highest committed / limit ratio among the day and month budgets of the current period (sampled from the database on scrape)."),
  budgetsNearCap: gauge("fabric_budgets_near_cap", "Day and month budgets of the current period at 80 % of their limit or more (sampled from the database on scrape)."),
  providerRefusals: counter("fabric_provider_refusals_total", "Calls refused before reaching a provider, by reason (budget_exceeded, rate_limited, model_not_allowed, …).", ["reason"]),

  // The API edges.
  requests: counter("fabric_requests_total", "REST and gRPC calls, by transport, operation and status code.", ["transport", "operation", "code"]),
  requestDuration: histogram("fabric_request_duration_seconds", "REST and gRPC call latency (streams: until they end), by transport and operation.", ["transport", "operation"], latencyBuckets),
  streamSubscribers: gauge("fabric_stream_subscribers", "Open event streams (SSE and gRPC), by transport.", ["transport"]),
  eventHubLag: gauge("fabric_event_hub_lag_seconds", "Age of the newest event the event hub delivered, at delivery (commit → fan-out)."),
  eventHubSubscribers: gauge("fabric_event_hub_subscribers", "In-process subscribers of the event hub."),
  webhookDeliveries: counter("fabric_webhook_deliveries_total", "Webhook delivery attempts, by outcome (succeeded, retrying, failed).", ["outcome"]),
  webhookBacklog: gauge("fabric_webhook_backlog", "Webhook deliveries pending (sampled from the database on scrape)."),

  // The database pool of this process (Postgres; PGlite has no pool). Read from the driver on scrape.
  dbPoolMax: gauge("fabric_db_pool_max_connections", "Size limit of this process's database pool (DATABASE_POOL_MAX)."),
  dbPoolConnections: gauge("fabric_db_pool_connections", "Connections of this process's database pool, by state (idle, busy, reserved: held by a transaction, connecting).", ["state"]),
  dbPoolWaiting: gauge("fabric_db_pool_waiting_queries", "Queries waiting for a pool connection because every connection is full or held by a transaction."),
};

export type Metrics = typeof metrics;

/** A stopwatch in seconds. */
export function startTimer(): () => number {
  const t0 = process.hrtime.bigint();
  return () => Number(process.hrtime.bigint() - t0) / 1e9;
}

type ScrapeHook = () => void | Promise<void>;
const scrapeHooks = new Set<ScrapeHook>();

/**
 * Runs `hook` before each scrape (gauges sampled from live state: breakers, the ready
 * queue). Returns the function that removes it.
 */
export function onScrape(hook: ScrapeHook): () => void {
  scrapeHooks.add(hook);
  return () => void scrapeHooks.delete(hook);
}

interface PoolSource {
  poolStats(): { max: number; idle: number; busy: number; reserved: number; connecting: number; waiting: number } | undefined;
}
const trackedPools = new WeakSet<PoolSource>();

/**
 * Samples `database`'s pool into the `fabric_db_pool_*` gauges on each scrape. Once per
 * database, however many planes share it (`fabric dev`). Returns the function that stops it.
 */
export function trackPool(database: PoolSource): () => void {
  if (trackedPools.has(database) || !database.poolStats()) return () => {};
  trackedPools.add(database);
  const stop = onScrape(() => {
    const s = database.poolStats();
    if (!s) return;
    metrics.dbPoolMax.set(s.max);
    for (const state of ["idle", "busy", "reserved", "connecting"] as const) metrics.dbPoolConnections.set({ state }, s[state]);
    metrics.dbPoolWaiting.set(s.waiting);
  });
  return () => {
    trackedPools.delete(database);
    stop();
  };
}

/** The registry in the Prometheus text format, after the scrape hooks ran (a failing hook leaves its gauges as they were). */
export async function renderMetrics(): Promise<string> {
  await Promise.all([...scrapeHooks].map(async (h) => {
    try {
      await h();
    } catch {
      // A sample that could not be taken (the database is down) must not fail the scrape.
    }
  }));
  return registry.metrics();
}

/**
 * `sample` at most once per `ttlMs`; concurrent scrapes share one sample. Keeps database
 * sampling cheap however often Prometheus (or several) scrape.
 */
export function cachedSample(sample: () => Promise<void>, ttlMs = 2000): () => Promise<void> {
  let last = 0;
  let pending: Promise<void> | null = null;
  return () => {
    if (pending) return pending;
    if (Date.now() - last < ttlMs) return Promise.resolve();
    pending = sample().finally(() => {
      last = Date.now();
      pending = null;
    });
    return pending;
  };
}
