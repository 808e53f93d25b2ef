/**
 * One trace per run, across processes: a `fabric serve` and a `fabric executor` (real
 * processes, real Postgres) export to a small OTLP/HTTP receiver in this test (the
 * exporter's JSON encoding). A run started with a client's `traceparent` — once over REST
 * and once over gRPC — yields one tree in the client's trace:
 *   request span (server) → fabric.run → fabric.node (one per attempt) → chat <model> (GenAI)
 * and the webhook delivery of the run's terminal event carries a `traceparent` of the
 * same trace.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";
import { bootstrapDevOrganization } from "../../src/services/tenancy/dev-organization.js";
import { createTestDatabase, engine, type TestDatabase } from "../helpers/database.js";
import { eventually } from "../helpers/fabric.js";
import { spawnExecutor, type ExecutorProcess } from "../helpers/processes.js";
import { spawnServe, type ServeProcess } from "../helpers/serve-process.js";
import { startReceiver } from "../webhooks/receiver.js";

interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  status: number;
  attributes: Record<string, unknown>;
}

/** OTLP/JSON ids are hex (the spec) — or base64 from encoders that follow protobuf's JSON mapping. */
const hexId = (id: string | undefined) => (!id ? "" : /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, "base64").toString("hex"));

function attributeValue(v: any): unknown {
  if (!v) return undefined;
  if ("stringValue" in v) return v.stringValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return v.doubleValue;
  if ("boolValue" in v) return v.boolValue;
  if ("arrayValue" in v) return (v.arrayValue.values ?? []).map(attributeValue);
  return undefined;
}

/** A minimal OTLP/HTTP trace receiver: POST /v1/traces with JSON bodies. */
async function startOtlpReceiver() {
  const spans: ReceivedSpan[] = [];
  const contentTypes = new Set<string>();
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      contentTypes.add(String(req.headers["content-type"]));
      if (req.url === "/v1/traces" && req.method === "POST") {
        const doc = JSON.parse(body) as any;
        for (const rs of doc.resourceSpans ?? []) {
          const service = attributeValue(rs.resource?.attributes?.find((a: any) => a.key === "service.name")?.value) as string;
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              spans.push({
                service,
                traceId: hexId(s.traceId),
                spanId: hexId(s.spanId),
                parentSpanId: hexId(s.parentSpanId),
                name: s.name,
                kind: s.kind,
                status: s.status?.code ?? 0,
                attributes: Object.fromEntries((s.attributes ?? []).map((a: any) => [a.key, attributeValue(a.value)])),
              });
            }
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, spans, contentTypes, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe.skipIf(engine !== "postgres")("one trace per run across processes (OTLP/HTTP)", () => {
  let db: TestDatabase;
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let hooks: Awaited<ReturnType<typeof startReceiver>>;
  let openai: FakeServer;
  let serve: ServeProcess;
  let exec: ExecutorProcess;
  let apiKey: string;
  let organizationId: string;

  beforeAll(async () => {
    db = await createTestDatabase({ engine: "postgres" });
    ({ apiKey, organizationId } = await bootstrapDevOrganization(db.db));
    otlp = await startOtlpReceiver();
    hooks = await startReceiver();
    openai = await startFakeOpenAI({ apiKey: "test" });
    const env = { DATABASE_URL: db.url!, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OPENAI_API_KEY: "test", OPENAI_BASE_URL: openai.url };
    serve = await spawnServe({ ...env, FABRIC_WEBHOOKS_ALLOW_PRIVATE: "true" }, { timeoutMs: 60_000 });
    exec = spawnExecutor({ ...env, WORKER_POLL_INTERVAL: "100ms" }, "traced-executor");
  }, 120_000);

  afterAll(async () => {
    exec?.child.kill("SIGTERM");
    await exec?.exited;
    await serve?.stop();
    await otlp?.close();
    await hooks?.close();
    await openai?.close();
    await db?.close();
  });

  const rest = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(serve.restUrl + path, { method: body === undefined ? "GET" : "POST", headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = (await res.json()) as any;
    expect(res.status, JSON.stringify(json)).toBeLessThan(300);
    return json.data ?? json;
  };

  it("request → run → node attempts → provider call, with one trace id, over REST and gRPC", async () => {
    await rest(`/v1/organizations/${organizationId}/webhooks`, { url: hooks.url("/traced"), event_filter: "workflow.run.completed" });
    await rest("/v1/workflows", {
      name: "traced",
      nodes: [
        { key: "shout", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.topic" }, outputs: { text: "$context.shouted" } },
        { key: "gen", operation: "ai.generate", config: { provider: "echo" }, depends_on: ["shout"], inputs: { prompt: "$context.shouted" }, outputs: { text: "$context.answer" } },
      ],
    });

    const trees: Record<string, string> = {};
    for (const via of ["rest", "grpc"] as const) {
      const traceId = randomBytes(16).toString("hex");
      const clientSpanId = randomBytes(8).toString("hex");
      const traceparent = `00-${traceId}-${clientSpanId}-01`;
      const runId =
        via === "rest"
          ? (await rest("/v1/workflow-runs", { workflow_name: "traced", input: { topic: "hello" } }, { traceparent })).id
          : ((await (await fetch(`${serve.grpcUrl}/fabric.v1.RunService/StartRun`, { method: "POST", headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", traceparent }, body: JSON.stringify({ workflow_name: "traced", input: { topic: "hello" } }) })).json()) as any).run.id;
      await eventually(async () => ((await rest(`/v1/workflow-runs/${runId}`, undefined)).status === "completed" ? true : undefined), 60_000, `the ${via} run to complete`);

      // The whole tree arrives (batches are flushed every second).
      const spans = await eventually(async () => {
        const mine = otlp.spans.filter((s) => s.traceId === traceId);
        return mine.some((s) => s.name.startsWith("chat ")) && mine.filter((s) => s.name === "fabric.node").length === 2 ? mine : undefined;
      }, 30_000, `the ${via} run's spans`);
      const byId = new Map(spans.map((s) => [s.spanId, s]));
      const parentOf = (s: ReceivedSpan) => byId.get(s.parentSpanId);

      const request = spans.find((s) => s.parentSpanId === clientSpanId)!;
      expect(request, "a server span under the client's span").toBeDefined();
      expect(request).toMatchObject({ service: "fabric-control-plane", kind: 2, name: "fabric.v1.RunService/StartRun" });
      const run = spans.find((s) => s.name === "fabric.run")!;
      expect(parentOf(run)).toBe(request);
      expect(run.attributes).toMatchObject({ "fabric.workflow": "traced" });
      const nodes = spans.filter((s) => s.name === "fabric.node");
      expect(nodes.map((n) => parentOf(n))).toEqual([run, run]);
      expect(nodes.map((n) => n.service)).toEqual(["fabric-executor", "fabric-executor"]);
      expect(nodes.map((n) => n.attributes["fabric.node_key"]).sort()).toEqual(["gen", "shout"]);
      expect(nodes.every((n) => n.attributes["fabric.run_id"] === runId && n.attributes["fabric.attempt"] === 1)).toBe(true);
      const call = spans.find((s) => s.name.startsWith("chat "))!;
      expect(parentOf(call)?.attributes["fabric.node_key"]).toBe("gen");
      expect(call).toMatchObject({ kind: 3, service: "fabric-executor" });
      expect(call.attributes).toMatchObject({ "gen_ai.system": "echo", "gen_ai.operation.name": "chat", "gen_ai.request.model": expect.any(String) });
      expect(call.attributes["gen_ai.usage.input_tokens"]).toBeGreaterThan(0);
      expect(call.attributes["gen_ai.usage.output_tokens"]).toBeGreaterThan(0);
      expect(call.attributes["gen_ai.response.finish_reasons"]).toEqual([expect.any(String)]);

      // The run's webhook delivery continues the same trace.
      const delivery = await eventually(async () => hooks.at("/traced").find((r) => r.body.includes(runId)), 30_000, "the webhook delivery");
      expect(String(delivery.headers.traceparent)).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));

      trees[via] = render(spans, request);
    }
    console.log(`trace trees received:\n${Object.entries(trees).map(([via, t]) => `[${via}]\n${t}`).join("\n")}\nOTLP content types: ${[...otlp.contentTypes].join(", ")}`);
  }, 180_000);

  it("a retried node shows one span per attempt: the failed one with an error status, each with its own provider call", async () => {
    await rest("/v1/workflows", {
      name: "traced-retry",
      nodes: [
        {
          key: "gen",
          operation: "ai.generate",
          config: { provider: "openai", model: "gpt-4.1-mini" },
          policy: { max_attempts: 2, backoff: { initial_ms: 50, factor: 2, max_ms: 50, jitter: 0 } },
          inputs: { prompt: "$context.topic" },
          outputs: { text: "$context.answer" },
        },
      ],
    });
    openai.script([{ status: 500 }]); // the first attempt's call fails (transient); the second succeeds
    const traceId = randomBytes(16).toString("hex");
    const traceparent = `00-${traceId}-${randomBytes(8).toString("hex")}-01`;
    const runId = (await rest("/v1/workflow-runs", { workflow_name: "traced-retry", input: { topic: "again" } }, { traceparent })).id;
    await eventually(async () => ((await rest(`/v1/workflow-runs/${runId}`, undefined)).status === "completed" ? true : undefined), 60_000, "the retried run to complete");

    const spans = await eventually(async () => {
      const mine = otlp.spans.filter((s) => s.traceId === traceId);
      return mine.filter((s) => s.name === "fabric.node").length === 2 && mine.filter((s) => s.name.startsWith("chat ")).length === 2 ? mine : undefined;
    }, 30_000, "both attempts' spans");
    const run = spans.find((s) => s.name === "fabric.run")!;
    const attempts = spans.filter((s) => s.name === "fabric.node").sort((a, b) => Number(a.attributes["fabric.attempt"]) - Number(b.attributes["fabric.attempt"]));
    expect(attempts.map((a) => a.attributes["fabric.attempt"])).toEqual([1, 2]);
    expect(attempts.every((a) => a.parentSpanId === run.spanId && a.attributes["fabric.node_key"] === "gen")).toBe(true);
    expect(attempts[0]).toMatchObject({ status: 2, attributes: expect.objectContaining({ "fabric.outcome": "retrying", "error.type": "provider_transient", "fabric.error_class": "transient" }) });
    expect(attempts[1]).toMatchObject({ status: 0, attributes: expect.objectContaining({ "fabric.outcome": "succeeded" }) });
    expect(attempts[1]!.attributes["error.type"]).toBeUndefined();
    // Each attempt's provider call hangs under that attempt.
    const calls = spans.filter((s) => s.name.startsWith("chat "));
    expect(calls.map((c) => c.parentSpanId).sort()).toEqual(attempts.map((a) => a.spanId).sort());
    expect(calls.find((c) => c.parentSpanId === attempts[0]!.spanId)!.status).toBe(2);
    console.log(`retried run's trace:\n${render(spans, run)}`);
  }, 180_000);
});

/** The tree under `root` as indented lines: name [service] attributes. */
function render(spans: ReceivedSpan[], root: ReceivedSpan, depth = 0): string {
  const attrs = Object.entries(root.attributes)
    .filter(([k]) => k.startsWith("gen_ai.") || k.startsWith("fabric.") || k.startsWith("http.") || k === "error.type")
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(" ");
  const line = `${"  ".repeat(depth)}${root.name} [${root.service}]${root.status === 2 ? " ERROR" : ""} span=${root.spanId} parent=${root.parentSpanId} ${attrs}`;
  const children = spans.filter((s) => s.parentSpanId === root.spanId).map((c) => render(spans, c, depth + 1));
  return [line, ...children].join("\n");
}
