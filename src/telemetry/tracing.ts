/**
 * Traces with OpenTelemetry: off unless configured by the SDK's standard variables
 * (`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
 * `OTEL_TRACES_EXPORTER=otlp`), exported over OTLP/HTTP (JSON) in batches.
 *
 * One trace per run, across processes:
 * - the edges continue the caller's W3C `traceparent` (a server span per call);
 * - starting a run opens a `fabric.run` span under it, and the run row keeps that span's
 *   `traceparent` (`workflow_runs.trace_context`);
 * - the executor that claims a node continues the run's trace: a `fabric.node` span per
 *   attempt (retries are siblings), and under it a span per provider call with the GenAI
 *   semantic-convention attributes;
 * - webhook deliveries carry the `traceparent` of the delivery's span.
 *
 * When tracing is off every helper here runs its function directly: no spans, no context
 * switches, nothing stored on runs.
 */
import { context, propagation, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";

export interface TracingConfig {
  OTEL_TRACES_EXPORTER?: "otlp" | "none" | undefined;
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string | undefined;
  OTEL_SERVICE_NAME?: string | undefined;
}

let provider: BasicTracerProvider | null = null;
const propagator = new W3CTraceContextPropagator();
const tracer = () => trace.getTracer("fabric");

/** Whether the config turns tracing on. */
export function tracingWanted(config: TracingConfig): boolean {
  if (config.OTEL_TRACES_EXPORTER === "none") return false;
  return config.OTEL_TRACES_EXPORTER === "otlp" || !!config.OTEL_EXPORTER_OTLP_ENDPOINT || !!config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
}

export function tracingEnabled(): boolean {
  return provider !== null;
}

/**
 * Starts tracing for this process when the config asks for it (once per process: later
 * calls keep the first setup). Returns the function that flushes and stops it.
 */
export function startTracing(config: TracingConfig, serviceName: string): () => Promise<void> {
  if (provider || !tracingWanted(config)) return async () => {};
  const url = config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (config.OTEL_EXPORTER_OTLP_ENDPOINT ? `${config.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, "")}/v1/traces` : undefined);
  const p = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": config.OTEL_SERVICE_NAME ?? serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter(url ? { url } : {}), { scheduledDelayMillis: 1000 })],
  });
  trace.setGlobalTracerProvider(p);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(propagator);
  provider = p;
  return async () => {
    if (provider !== p) return;
    await p.forceFlush().catch(() => {});
    await p.shutdown().catch(() => {});
    trace.disable();
    context.disable();
    propagation.disable();
    provider = null;
  };
}

/** Sends what is buffered now (tests, and before a process exits). */
export async function flushTraces(): Promise<void> {
  await provider?.forceFlush();
}

async function inSpan<T>(span: Span, fn: (span: Span) => Promise<T>, parent = context.active()): Promise<T> {
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : "error" });
    throw err;
  } finally {
    span.end();
  }
}

/**
 * A server span for one call, continuing the `traceparent` in `headers` (any case of the
 * name); `fn` runs inside it and may rename it once it knows the operation.
 */
export function withServerSpan<T>(name: string, header: (name: string) => string | null | undefined, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!provider) return fn(undefined);
  const parent = propagation.extract(context.active(), undefined, { get: (_c, key) => header(key) ?? undefined, keys: () => [] });
  const span = tracer().startSpan(name, { kind: SpanKind.SERVER }, parent);
  return inSpan(span, (s) => fn(s), parent);
}

/** A child span of the current one (internal or client), `fn` inside it. */
export function withSpan<T>(name: string, attributes: Attributes, fn: (span: Span | undefined) => Promise<T>, kind: SpanKind = SpanKind.INTERNAL): Promise<T> {
  if (!provider) return fn(undefined);
  return inSpan(tracer().startSpan(name, { kind, attributes }), (s) => fn(s));
}

/** A span continuing a stored `traceparent` (the run's), `fn` inside it; a root span when there is none. */
export function withSpanFrom<T>(traceparent: string | null | undefined, name: string, attributes: Attributes, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!provider) return fn(undefined);
  const parent = traceparent ? propagation.extract(context.active(), { traceparent }) : context.active();
  return inSpan(tracer().startSpan(name, { kind: SpanKind.INTERNAL, attributes }, parent), (s) => fn(s), parent);
}

/**
 * Opens and ends a span now, under the current one, and returns its `traceparent` for
 * work that continues elsewhere (a run's nodes, in another process). Null when tracing is off.
 */
export function markSpan(name: string, attributes: Attributes): string | null {
  if (!provider) return null;
  const span = tracer().startSpan(name, { kind: SpanKind.INTERNAL, attributes });
  span.end();
  return traceparentOf(span);
}

/** The `traceparent` of `span`, or of the current span. */
export function traceparentOf(span?: Span): string | null {
  if (!provider) return null;
  const carrier: Record<string, string> = {};
  const ctx = span ? trace.setSpan(context.active(), span) : context.active();
  propagation.inject(ctx, carrier);
  return carrier.traceparent ?? null;
}

/**
 * The outcome of a unit of work on its span (`fabric.outcome`); a failure also sets the
 * span's error status and `error.type` (OpenTelemetry's convention) to its stable code, so
 * a failed attempt that is retried shows as an error beside the attempt that succeeded.
 */
export function recordOutcome(span: Span | undefined, outcome: string, error?: { code: string; class: string }): void {
  if (!span) return;
  span.setAttribute("fabric.outcome", outcome);
  if (!error) return;
  span.setAttributes({ "error.type": error.code, "fabric.error_class": error.class });
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.code });
}

/** The current trace id, for log lines. */
export function currentTraceId(): string | undefined {
  if (!provider) return undefined;
  const id = trace.getActiveSpan()?.spanContext().traceId;
  return id && id !== "00000000000000000000000000000000" ? id : undefined;
}
