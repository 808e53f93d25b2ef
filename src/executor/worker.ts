/**
 * The executor's worker loop: claim → execute → commit, under leases.
 *
 * - Claims up to `concurrency - in flight` nodes per cycle (one statement, SKIP LOCKED).
 * - Sleeps until a NOTIFY on `fabric_work`, a finished step, a due retry, or the poll
 *   interval — polling is the fallback when a notification is missed.
 * - Heartbeats extend held leases every lease/3; a node whose lease is gone is aborted
 *   and its result discarded (the commit is conditional on lease owner and attempt).
 * - Reaps expired leases and overdue runs of any worker, a bounded batch per tick.
 * - `fabric_cancel` aborts in-flight steps of a cancelled/failed run at once.
 * - stop(): no new claims, in-flight steps get the grace period, the rest are released.
 */
import { getHeapStatistics } from "node:v8";
import { sizeLimitsFrom, type Config } from "../config.js";
import { jsonBytes, outputTooLargeCode } from "../domain/size-limits.js";
import type { Database } from "../db/database.js";
import { claimNodes, type ClaimedNode } from "../db/claim-nodes.js";
import { channels } from "../db/events.js";
import { failNodeAttempt, type NodeFailure } from "../db/fail-node.js";
import { countLeaseExpirations, extendLeases, findExpiredNodes, releaseLeases } from "../db/leases.js";
import { failOverdueRun, findOverdueRuns } from "../db/overdue-runs.js";
import { activeRunStatuses } from "../db/run-state.js";
import { readRunStatus } from "../db/run-status.js";
import { emitProgress } from "../db/progress.js";
import { parkWaitingNode } from "../db/wait-node.js";
import { skipNodeByCondition } from "../db/skip-node.js";
import { createWorkflowCache, type WorkflowCache } from "../db/workflow-specs.js";
import { createOutageLog, errorSummary, isTransientDbError, retryWhileTransient, warnDbFailure, withDeadline } from "../db/transient-errors.js";
import { resolveInputs, type JsonObject } from "../domain/context.js";
import { readStepContext } from "../db/run-context.js";
import { ConditionError } from "../domain/node-condition.js";
import { backoffDelayMs, isRetryable, type ErrorClass } from "../domain/retry-policy.js";
import { nodeOperations } from "../domain/node-operations.js";
import type { Provider } from "../providers/provider.js";
import type { Logger } from "../logger.js";
import { createCompletionBatcher } from "./completion-batcher.js";
import { createNativeRuntime } from "./native-runtime.js";
import { createProviderRuntime } from "./provider-runtime.js";
import { createProviderGateway } from "../gateway/index.js";
import { StepError, type Runtime, type StepResult } from "./step.js";
import { cachedSample, boundedLabel, metrics, onScrape, startTimer, trackPool } from "../telemetry/metrics.js";
import type { Span } from "@opentelemetry/api";
import { currentTraceId, recordOutcome, startTracing, withSpanFrom } from "../telemetry/tracing.js";
import { readyQueueStats } from "../db/sampled-gauges.js";
import { pingDatabase } from "../db/ping.js";
import { startMetricsServer } from "../telemetry/metrics-server.js";

export type WorkerConfig = Pick<Config, "WORKER_ID" | "WORKER_CONCURRENCY" | "WORKER_POLL_INTERVAL" | "WORKER_LEASE_SECONDS" | "WORKER_MAX_RETRIES" | "WORKER_SHUTDOWN_GRACE" | "RUN_ID"> &
  Partial<
    Pick<
      Config,
      | "FABRIC_ROUTING_STRATEGY"
      | "FABRIC_MAX_NODE_OUTPUT_BYTES"
      | "FABRIC_MAX_RUN_CONTEXT_BYTES"
      | "FABRIC_MAX_EVENT_PAYLOAD_BYTES"
      | "FABRIC_MAX_RUN_INPUT_BYTES"
      | "FABRIC_MAX_TEXT_OUTPUT_BYTES"
      | "WORKER_MAX_HEAP_MB"
      | "WORKER_QUARANTINE_AFTER"
      | "METRICS_PORT"
      | "HOST"
      | "OTEL_TRACES_EXPORTER"
      | "OTEL_EXPORTER_OTLP_ENDPOINT"
      | "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
      | "OTEL_SERVICE_NAME"
    >
  >;

export interface Worker {
  readonly id: string;
  /** Resolves when the worker has stopped (after stop(), or when RUN_ID's run ended). */
  readonly done: Promise<void>;
  /** The metrics port's base URL (`/metrics`, `/healthz`, `/readyz`) when METRICS_PORT is set. */
  readonly metricsUrl: string | undefined;
  stop(): Promise<void>;
}

interface InFlight {
  claim: ClaimedNode;
  controller: AbortController;
}

/** Why a step was aborted; decides what (if anything) is written. */
type AbortReason = "timeout" | "cancelled" | "lease_lost" | "shutdown";

export async function startWorker(deps: { database: Database; config: WorkerConfig; providers: readonly Provider[]; log: Logger; workflows?: WorkflowCache }): Promise<Worker> {
  const { database, config, log } = deps;
  const stopTracing = startTracing(config, "fabric-executor");
  const db = database.db;
  const workflows = deps.workflows ?? createWorkflowCache();
  const gateway = createProviderGateway({ db, providers: deps.providers, listen: (channel, fn) => database.listen(channel, fn) }, { strategy: config.FABRIC_ROUTING_STRATEGY, log });
  const limits = sizeLimitsFrom(config);
  // The heap a step may leave behind: above it the step's result is dropped and the node
  // failed, before committing (and serializing) it could take the process down.
  const heapBudget = config.WORKER_MAX_HEAP_MB ? config.WORKER_MAX_HEAP_MB * 1024 * 1024 : Math.floor(getHeapStatistics().heap_size_limit * 0.75);
  const quarantineAfter = config.WORKER_QUARANTINE_AFTER ?? 3;
  const runtimes: Record<string, Runtime> = { native: createNativeRuntime(limits), provider: createProviderRuntime(gateway) };
  const inFlight = new Map<number, InFlight>();
  const leaseMs = config.WORKER_LEASE_SECONDS * 1000;
  // A step's outcome is worth keeping through a short outage: its commit is retried (on
  // transient errors, with backoff) for about a lease before the step is given up.
  const commitRetryMs = leaseMs;
  const completions = createCompletionBatcher(db, limits, 128, { retryMs: commitRetryMs });
  const claimLog = createOutageLog(log, "claim");
  const heartbeatLog = createOutageLog(log, "heartbeat");
  const reaperLog = createOutageLog(log, "reaper");
  let stopping = false;
  // A nudge (NOTIFY, finished step, due retry) either ends the current sleep or, if it
  // arrives while a claim is in flight, makes the loop claim again instead of sleeping:
  // that claim's snapshot may predate the work the nudge announced.
  let wake: (() => void) | null = null;
  let nudged = false;
  const nudge = () => {
    nudged = true;
    wake?.();
    wake = null;
  };

  const unlistenWork = await database.listen(
    channels.work,
    () => {
      log.debug("work notification");
      nudge();
    },
    nudge, // notifications were missed while the connection was down: claim now
  );
  const unlistenCancel = await database.listen(channels.cancel, (runId) => {
    for (const f of inFlight.values()) if (f.claim.runId === runId) f.controller.abort("cancelled" satisfies AbortReason);
  });

  const stopQueueSample = onScrape(cachedSample(() => sampleReadyQueue(db)));
  const stopPoolSample = trackPool(database);
  const metricsServer =
    config.METRICS_PORT !== undefined
      ? await startMetricsServer({ port: config.METRICS_PORT, host: config.HOST ?? "127.0.0.1", ready: () => pingDatabase(db) })
      : undefined;

  const heartbeat = setInterval(() => void beat(), Math.max(200, Math.floor(leaseMs / 3)));
  const reaper = setInterval(() => void reap(), Math.max(250, Math.min(1000, Math.floor(leaseMs / 2))));
  heartbeat.unref();
  reaper.unref();

  async function beat() {
    const ids = [...inFlight.keys()];
    if (ids.length === 0) return;
    try {
      const held = await withDeadline(extendLeases(db, config.WORKER_ID, ids, config.WORKER_LEASE_SECONDS), leaseMs, "heartbeat");
      for (const id of ids) if (!held.has(id)) inFlight.get(id)?.controller.abort("lease_lost" satisfies AbortReason);
      heartbeatLog.ok();
    } catch (err) {
      heartbeatLog.failed(err);
    }
  }

  let reaping = false;
  async function reap() {
    if (reaping || stopping) return;
    reaping = true;
    try {
      // Bounded: a query lost with its connection must not leave `reaping` set for good.
      await withDeadline(
        (async () => {
        for (const n of await findExpiredNodes(db, 50)) {
          const wf = await workflows.get(db, n.workflowId);
          const node = wf.nodes.get(n.nodeKey);
          if (!node) continue;
          const waiting = n.status === "waiting";
          // A poison step (one whose executors keep dying under it) is not handed to the next one.
          const expirations = waiting ? 0 : 1 + (await countLeaseExpirations(db, n.runId, n.nodeKey));
          const quarantined = expirations >= quarantineAfter;
          const failure: NodeFailure = waiting
            ? { code: "signal_timeout", message: "no signal arrived before the wait timed out", class: "timeout" }
            : quarantined
              ? { code: "quarantined", message: `the lease expired ${expirations} times (last held by worker ${n.leaseOwner}): the step is quarantined, not retried`, class: "lease_expired" }
              : { code: "lease_expired", message: `the lease of worker ${n.leaseOwner} expired (attempt ${n.attempt})`, class: "lease_expired" };
          const maxAttempts = n.maxAttempts || config.WORKER_MAX_RETRIES;
          const retry = !waiting && !quarantined && n.attempt < maxAttempts && isRetryable(node.spec.policy, "lease_expired");
          const outcome = await failNodeAttempt(db, { runId: n.runId, workflow: wf, node, guard: { expired: true }, attempt: n.attempt, failure, retryDelayMs: retry ? 0 : null });
          if (outcome !== "lost") {
            if (!waiting) metrics.leaseExpirations.inc();
            metrics.reaperRecoveries.inc({ outcome });
            log.info("reaped expired lease", { run_id: n.runId, node_key: n.nodeKey, attempt: n.attempt, outcome });
          }
        }
        for (const runId of await findOverdueRuns(db, 20)) await failOverdueRun(db, runId);
        })(),
        Math.max(10_000, 4 * leaseMs),
        "reaper",
      );
      reaperLog.ok();
    } catch (err) {
      reaperLog.failed(err);
    } finally {
      reaping = false;
    }
  }

  async function execute(claim: ClaimedNode) {
    // The attempt continues the run's trace (the span its start opened, in the control plane).
    return withSpanFrom(claim.traceContext, "fabric.node", { "fabric.run_id": claim.runId, "fabric.node_key": claim.nodeKey, "fabric.operation": claim.operation, "fabric.attempt": claim.attempt, "fabric.worker_id": config.WORKER_ID }, (span) =>
      executeAttempt(claim, span && log.child({ trace_id: currentTraceId() }), span),
    );
  }

  async function executeAttempt(claim: ClaimedNode, traceLog: Logger | undefined, span: Span | undefined) {
    const operation = boundedLabel("operation", claim.operation);
    const elapsed = startTimer();
    const log = (traceLog ?? deps.log).child({ run_id: claim.runId, node_key: claim.nodeKey, attempt: claim.attempt });
    const controller = new AbortController();
    inFlight.set(claim.id, { claim, controller });
    let timer: NodeJS.Timeout | undefined;
    try {
      const wf = await workflows.get(db, claim.workflowId);
      const node = wf.nodes.get(claim.nodeKey);
      if (!node) throw new StepError("unknown_node", `node ${claim.nodeKey} is not in workflow ${claim.workflowId}`, "invalid_input");
      const guard = { owner: config.WORKER_ID, attempt: claim.attempt };
      const maxAttempts = claim.maxAttempts || config.WORKER_MAX_RETRIES;
      const timeoutMs = node.spec.policy?.timeoutMs;
      if (timeoutMs) timer = setTimeout(() => controller.abort("timeout" satisfies AbortReason), timeoutMs);

      // What the node's bindings and condition read of the context: every dependency's
      // outputs are in it (they were bound before this node became ready). A database error
      // here is not the step's: the lease expires and the node runs again.
      const context = await retryWhileTransient(() => readStepContext(db, claim.runId, wf, node), { maxMs: commitRetryMs });

      let result: StepResult | undefined;
      let failure: NodeFailure | undefined;
      let skip = false;
      try {
        const runtime = runtimes[nodeOperations[node.spec.operation]?.runtime ?? "native"]!;
        skip = !!node.when && !evaluateCondition(node.when, context);
        if (!skip) {
          const progress = (payload: JsonObject) =>
            emitProgress(db, { organizationId: claim.organizationId, runId: claim.runId, nodeKey: claim.nodeKey, owner: config.WORKER_ID, attempt: claim.attempt, payload }).catch((err) =>
              warnDbFailure(log, "could not write progress", err),
            );
          const step = { runId: claim.runId, organizationId: claim.organizationId, teamId: claim.teamId, principalId: claim.createdBy, apiKeyId: claim.apiKeyId, node, attempt: claim.attempt, inputs: resolveInputs(node.spec.inputs, context), context, config: (node.spec.config ?? {}) as JsonObject, signal: controller.signal, db, progress };
          result = await raceAbort(runtime.execute(step), controller.signal);
          const heap = getHeapStatistics().used_heap_size;
          if (heap > heapBudget) {
            result = undefined;
            throw new StepError("memory_exceeded", `the step left the executor's heap at ${Math.round(heap / 1048576)} MiB, over its budget of ${Math.round(heapBudget / 1048576)} MiB`, "invalid_input");
          }
          if (result && "output" in result) {
            const bytes = jsonBytes(result.output);
            if (bytes > limits.nodeOutputBytes) {
              result = undefined;
              throw new StepError(outputTooLargeCode, `the node's output is ${bytes} bytes, over the limit of ${limits.nodeOutputBytes} bytes (FABRIC_MAX_NODE_OUTPUT_BYTES)`, "invalid_input");
            }
          }
        }
      } catch (err) {
        const reason = controller.signal.aborted ? (controller.signal.reason as AbortReason) : undefined;
        if (reason === "cancelled" || reason === "lease_lost" || reason === "shutdown") return; // nothing to write: someone else owns the outcome
        failure = reason === "timeout" ? { code: "timeout", message: `the step exceeded its timeout of ${timeoutMs} ms`, class: "timeout" } : toFailure(err);
        if (failure.class === "error") log.warn("step failed", { error: String(err) });
      }

      if (skip) {
        await skipNodeByCondition(db, { runId: claim.runId, workflow: wf, nodeKey: claim.nodeKey, guard, attempt: claim.attempt });
      } else if (failure) {
        const retry = claim.attempt < maxAttempts && isRetryable(node.spec.policy, failure.class as ErrorClass);
        const delay = retry ? backoffDelayMs(node.spec.policy, claim.attempt) : null;
        const outcome = await retryWhileTransient(() => failNodeAttempt(db, { runId: claim.runId, workflow: wf, node, guard, attempt: claim.attempt, failure, retryDelayMs: delay }), { maxMs: commitRetryMs });
        metrics.stepsFailed.inc({ operation, class: failure.class });
        metrics.stepDuration.observe({ operation, outcome: "failed" }, elapsed());
        recordOutcome(span, outcome, failure);
        if (outcome === "retrying") metrics.stepsRetried.inc({ operation });
        if (outcome === "retrying" && delay) setTimeout(nudge, delay).unref();
      } else if (result && "wait" in result) {
        await retryWhileTransient(() => parkWaitingNode(db, { runId: claim.runId, nodeKey: claim.nodeKey, guard, timeoutMs: result.wait.timeoutMs }), { maxMs: commitRetryMs });
        metrics.stepDuration.observe({ operation, outcome: "waiting" }, elapsed());
      } else if (result) {
        const outcome = await completions.submit({ runId: claim.runId, node, guard, output: result.output, eventPayload: { attempt: claim.attempt } });
        if (typeof outcome === "object") {
          // Refused where it is stored (the run's context would grow past its limit): fail the node, not the process.
          await failNodeAttempt(db, { runId: claim.runId, workflow: wf, node, guard, attempt: claim.attempt, failure: { code: outcome.tooLarge.code, message: outcome.tooLarge.message, class: "invalid_input" }, retryDelayMs: null });
          metrics.stepsFailed.inc({ operation, class: "invalid_input" });
          metrics.stepDuration.observe({ operation, outcome: "failed" }, elapsed());
        } else {
          metrics.stepsCompleted.inc({ operation });
          metrics.stepDuration.observe({ operation, outcome: "succeeded" }, elapsed());
          recordOutcome(span, "succeeded");
        }
      }
    } catch (err) {
      // A database error while committing (retried above while transient, for about a
      // lease): the lease expires and the reaper gives the node to another attempt.
      if (isTransientDbError(err)) log.warn("could not commit step; its lease will expire and it runs again", { cause: errorSummary(err) });
      else log.error("could not commit step", { error: errorSummary(err) });
    } finally {
      log.debug("step attempt ended", { operation: claim.operation, duration_ms: Math.round(elapsed() * 1000) });
      clearTimeout(timer);
      inFlight.delete(claim.id);
      nudge();
    }
  }

  async function runFinished(runId: string): Promise<boolean> {
    const status = await readRunStatus(db, runId);
    return !status || !activeRunStatuses.includes(status);
  }

  async function loop() {
    let idle = 0;
    while (!stopping) {
      const capacity = config.WORKER_CONCURRENCY - inFlight.size;
      let claimed: ClaimedNode[] = [];
      nudged = false;
      if (capacity > 0) {
        try {
          const claimTime = startTimer();
          // Bounded: a claim lost with its connection must not stop the loop (rows it
          // may have claimed anyway are leased to us and come back through the reaper).
          claimed = await withDeadline(claimNodes(db, { workerId: config.WORKER_ID, limit: capacity, leaseSeconds: config.WORKER_LEASE_SECONDS, runId: config.RUN_ID }), leaseMs, "claim");
          claimLog.ok();
          metrics.claimDuration.observe(claimTime());
          for (const c of claimed) {
            metrics.stepsClaimed.inc({ operation: boundedLabel("operation", c.operation) });
            metrics.stepQueueWait.observe({ operation: boundedLabel("operation", c.operation) }, c.queueWaitSeconds);
          }
        } catch (err) {
          if (stopping) break;
          claimLog.failed(err);
        }
        if (claimed.length) log.debug("claimed", { n: claimed.length });
        for (const c of claimed) void execute(c);
        if (claimed.length === capacity) continue;
      }
      if (config.RUN_ID && inFlight.size === 0 && claimed.length === 0 && idle++ % 4 === 0 && (await runFinished(config.RUN_ID).catch(() => false))) break;
      if (nudged && inFlight.size < config.WORKER_CONCURRENCY) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, config.WORKER_POLL_INTERVAL);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  const done = (async () => {
    await loop();
    stopping = true;
    clearInterval(reaper);
    // Heartbeats go on through the grace period: a step allowed to finish must keep its
    // lease, or another worker's reaper takes the node over and runs it a second time.
    const deadline = Date.now() + config.WORKER_SHUTDOWN_GRACE;
    while (inFlight.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    clearInterval(heartbeat);
    const left = [...inFlight.keys()];
    for (const f of inFlight.values()) f.controller.abort("shutdown" satisfies AbortReason);
    if (left.length) {
      const released = await releaseLeases(db, config.WORKER_ID, left).catch(() => 0);
      log.info("released leases on shutdown", { released });
    }
    await unlistenWork().catch(() => {});
    await unlistenCancel().catch(() => {});
    await gateway.close().catch(() => {});
    stopQueueSample();
    stopPoolSample();
    await metricsServer?.close();
    await stopTracing();
  })();

  return {
    id: config.WORKER_ID,
    done,
    metricsUrl: metricsServer?.url,
    async stop() {
      stopping = true;
      nudge();
      await done;
    },
  };
}

function evaluateCondition(when: { evaluate(context: JsonObject): boolean }, context: JsonObject): boolean {
  try {
    return when.evaluate(context);
  } catch (err) {
    // A condition that cannot be evaluated fails the node; retrying would not change it.
    if (err instanceof ConditionError) throw new StepError("condition_error", err.message, "invalid_input");
    throw err;
  }
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function toFailure(err: unknown): NodeFailure {
  if (err instanceof StepError) return { code: err.code, message: err.message, class: err.errorClass };
  // Unexpected errors: retryable class `error`, with a message but no stack.
  return { code: "step_error", message: err instanceof Error ? err.message : String(err), class: "error" };
}

/** The ready-queue gauges, from the database (db/sampled-gauges.ts); the control plane samples them too. */
export async function sampleReadyQueue(db: Database["db"]): Promise<void> {
  const stats = await readyQueueStats(db);
  metrics.readyQueueDepth.set(stats.depth);
  metrics.readyQueueOldestAge.set(stats.oldestAgeSeconds);
}
