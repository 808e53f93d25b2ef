/**
 * `/metrics` of a control plane and of an executor after the smoke workflow: the metric
 * names exist and the counters moved. On Postgres the executor is a separate process
 * (`fabric executor` with METRICS_PORT), so each scrape shows only its own plane's work;
 * on PGlite it runs in this process beside the control plane, on its own metrics port.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engine } from "../helpers/database.js";
import { eventually, smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { spawnExecutor, type ExecutorProcess } from "../helpers/processes.js";
import { metricFamilies, parseMetrics, scrape, valueOf } from "./prometheus.js";

let fabric: TestFabric;
let executorMetricsUrl: string;
let exec: ExecutorProcess | undefined;

beforeAll(async () => {
  fabric = await startTestFabric({ worker: false, metricsPort: 0 });
  if (engine === "postgres") {
    exec = spawnExecutor({ DATABASE_URL: fabric.database.url!, METRICS_PORT: "0", LOG_LEVEL: "info", WORKER_POLL_INTERVAL: "100ms" }, "metrics-executor");
    const startedLine = (text: string) => text.split("\n").map((l) => (l.startsWith("{") ? (JSON.parse(l) as { msg?: string; metrics?: string }) : {})).find((j) => j.msg === "executor started");
    executorMetricsUrl = await eventually(async () => startedLine(exec!.stderr())?.metrics, 60_000, "the executor's metrics URL");
  } else {
    executorMetricsUrl = (await fabric.startWorker({ METRICS_PORT: 0, HOST: "127.0.0.1" })).metricsUrl!;
  }
});

afterAll(async () => {
  if (exec) {
    exec.child.kill("SIGTERM");
    await exec.exited;
  }
  await fabric?.close();
});

describe("metrics", () => {
  it("both planes export their metrics and the counters moved after the smoke workflow", async () => {
    const before = parseMetrics(await scrape(fabric.controlPlane.metricsUrl!));
    expect(valueOf(before, "fabric_runs_created_total", { workflow: "smoke" })).toBe(0);

    await fabric.rest("/v1/workflows", { method: "POST", json: smokeWorkflow });
    const run = ((await (await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_name: "smoke", input: { topic: "hello world" } } })).json()) as any).data;
    await eventually(async () => {
      const r = ((await (await fabric.rest(`/v1/workflow-runs/${run.id}`)).json()) as any).data;
      return r.status === "completed" ? true : undefined;
    }, 30_000, "the smoke run to complete");

    // The control plane: runs, requests, sampled gauges.
    const cpText = await eventually(async () => {
      const text = await scrape(fabric.controlPlane.metricsUrl!);
      return valueOf(parseMetrics(text), "fabric_runs_finished_total", { workflow: "smoke", outcome: "completed" }) >= 1 ? text : undefined;
    }, 15_000, "the finished run to be counted");
    const cp = parseMetrics(cpText);
    expect(valueOf(cp, "fabric_runs_created_total", { workflow: "smoke" })).toBe(1);
    expect(valueOf(cp, "fabric_run_duration_seconds_count", { workflow: "smoke", outcome: "completed" })).toBe(1);
    expect(valueOf(cp, "fabric_requests_total", { transport: "rest", operation: "fabric.v1.RunService/StartRun", code: "202" })).toBe(1);
    expect(valueOf(cp, "fabric_request_duration_seconds_count", { transport: "rest", operation: "fabric.v1.WorkflowService/UpsertWorkflow" })).toBeGreaterThanOrEqual(1);
    for (const name of ["fabric_ready_queue_depth", "fabric_ready_queue_oldest_age_seconds", "fabric_webhook_backlog", "fabric_event_hub_lag_seconds", "fabric_process_cpu_user_seconds_total"]) {
      expect(metricFamilies(cpText), name).toContain(name);
    }
    expect(valueOf(cp, "fabric_ready_queue_depth")).toBe(0);

    // The executor: steps, claims, the provider call.
    const exText = await scrape(executorMetricsUrl);
    const ex = parseMetrics(exText);
    expect(valueOf(ex, "fabric_steps_claimed_total", { operation: "text.transform_basic" })).toBe(1);
    expect(valueOf(ex, "fabric_steps_completed_total", { operation: "ai.generate" })).toBe(1);
    expect(valueOf(ex, "fabric_step_duration_seconds_count", { operation: "ai.generate", outcome: "succeeded" })).toBe(1);
    expect(valueOf(ex, "fabric_step_queue_wait_seconds_count")).toBe(2);
    expect(valueOf(ex, "fabric_claim_duration_seconds_count")).toBeGreaterThanOrEqual(2);
    expect(valueOf(ex, "fabric_completion_batch_size_count")).toBeGreaterThanOrEqual(1);
    expect(valueOf(ex, "fabric_provider_calls_total", { provider: "echo", outcome: "ok" })).toBe(1);
    expect(valueOf(ex, "fabric_provider_tokens_total", { provider: "echo", direction: "output" })).toBeGreaterThan(0);
    expect(valueOf(ex, "fabric_provider_breaker_state", { provider: "echo" })).toBe(0);
    if (engine === "postgres") {
      // Each process reports its own database pool (PGlite has none).
      expect(valueOf(cp, "fabric_db_pool_max_connections")).toBeGreaterThan(0);
      expect(valueOf(ex, "fabric_db_pool_max_connections")).toBeGreaterThan(0);
      expect(valueOf(cp, "fabric_db_pool_waiting_queries")).toBe(0);
      expect(metricFamilies(exText)).toContain("fabric_db_pool_connections");
      // A separate process: the executor did not see the API calls, the control plane ran no step.
      expect(valueOf(ex, "fabric_requests_total")).toBe(0);
      expect(valueOf(cp, "fabric_steps_claimed_total")).toBe(0);
    }
    console.log(`control plane /metrics (excerpt):\n${excerpt(cpText, ["fabric_runs_", "fabric_requests_total{transport=\"rest\",operation=\"fabric.v1.RunService", "fabric_ready_queue", "fabric_webhook_backlog"])}`);
    console.log(`executor /metrics (excerpt):\n${excerpt(exText, ["fabric_steps_", "fabric_claim_duration_seconds_count", "fabric_provider_calls_total", "fabric_provider_tokens_total", "fabric_step_queue_wait_seconds_count"])}`);
  });

  it("the executor's metrics port answers /healthz and /readyz", async () => {
    expect(await (await fetch(`${executorMetricsUrl}/healthz`)).json()).toEqual({ status: "ok" });
    expect(await (await fetch(`${executorMetricsUrl}/readyz`)).json()).toEqual({ status: "ready" });
    expect((await fetch(`${executorMetricsUrl}/nope`)).status).toBe(404);
  });
});

function excerpt(text: string, prefixes: string[]): string {
  return text
    .split("\n")
    .filter((l) => !l.startsWith("#") && !l.includes("_bucket{") && prefixes.some((p) => l.startsWith(p)))
    .join("\n");
}
