/**
 * The REST + SSE edge (Hono). It only translates: routes are built from the OpenAPI
 * document's operations, each bound to its RPC; the request becomes the RPC's proto
 * request message, the service answers with the proto response, and proto3 JSON of it
 * is wrapped as `{"data": …}`. Errors become problem+json in one place (`onError`).
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { routePath } from "hono/route";
import { streamSSE } from "hono/streaming";
import { fromJson, toJson, type DescMethod, type JsonValue, type Message } from "@bufbuild/protobuf";
import { EventSchema, type Event } from "../../../gen/proto/fabric/v1/run_pb.js";
import { DomainError, invalidArgument } from "../../domain/errors.js";
import type { CallContext } from "../../services/call-context.js";
import type { Logger } from "../../logger.js";
import { recordCall } from "../access-log.js";
import { requestIdOf, type CallStep, type IncomingCall } from "../call-step.js";
import { jsonOptions, openApiDocument, openApiPath, restOperations, type RestOperation } from "../contract.js";
import { logFailure, problem, toDomainError } from "../error-mapping.js";
import { checkRequiredFields } from "../required-fields.js";
import { useCaseOf, wrapsEvent, type ServiceImpls } from "../service-impls.js";
import type { CorsPolicy } from "../cors.js";
import { metrics } from "../../telemetry/metrics.js";
import { createConsoleAssets, isApiPath } from "./console-assets.js";
import { corsMiddleware } from "./cors.js";
import { locationOf, locationTemplate } from "./location.js";
import { jsonDepthExceeds, maxJsonDepth } from "../../domain/json-depth.js";
import { ajvIssues, createOpenApiValidator } from "./openapi-validator.js";
import { bearerFromSubprotocols, type WebSocketStreams } from "./websocket-streams.js";
import { createServedContract, type PublicAddresses } from "./served-contract.js";

export interface RestAppOptions {
  services: ServiceImpls;
  callStep: CallStep;
  log: Logger;
  maxBodyBytes: number;
  /** Answers /readyz; throws when not ready. */
  ready: () => Promise<void>;
  /** SSE heartbeat period. Default 15 s. */
  heartbeatMs?: number;
  /** The console's build directory, served at `/`. Default: `dist/console` of this checkout. */
  consoleDir?: string;
  /** Cross-origin browser access (FABRIC_CORS_ORIGINS). Default: none. */
  cors?: CorsPolicy;
  /** Runs a request inside a server span continuing its `traceparent` (telemetry/tracing.ts); absent without tracing. */
  traced?: <T>(name: string, header: (name: string) => string | undefined, fn: (span?: { updateName(name: string): unknown; setAttribute(key: string, value: number): unknown }) => Promise<T>) => Promise<T>;
  /** The current trace id, for the access log (absent without tracing). */
  traceIdOf?: () => string | undefined;
  /** Serves the `x-fabric-stream: websocket` operations; without it they answer 426. */
  webSockets?: WebSocketStreams;
  /** The addresses `/openapi.json` names (served-contract.ts). Default: the request's own. */
  publicAddresses?: PublicAddresses;
}

type Env = { Variables: { requestId: string; operation?: string; caller?: CallContext["caller"] } };

/** The document in OpenAPI 3.0, derived at codegen (scripts/openapi-30.ts). */
const openApi30Text = readFileSync(join(dirname(openApiPath), "openapi-3.0.json"), "utf8");

const swaggerDir = join(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"), "..");

export function createRestApp(opts: RestAppOptions) {
  const app = new Hono<Env>();
  const validator = createOpenApiValidator(openApiDocument);
  const heartbeatMs = opts.heartbeatMs ?? 15_000;

  app.use(corsMiddleware(opts.cors));
  app.use(async (c, next) => {
    const id = requestIdOf(c.req.header("x-request-id"));
    c.set("requestId", id);
    c.header("X-Request-Id", id);
    const started = performance.now();
    const call = async (span?: { updateName(name: string): unknown; setAttribute(key: string, value: number): unknown }) => {
      await next();
      const operation = c.get("operation") ?? `${c.req.method} ${routePath(c, -1)}`;
      span?.updateName(operation);
      span?.setAttribute("http.response.status_code", c.res.status);
      // SSE responses are logged when the stream starts.
      recordCall(opts.log, { transport: "rest", operation, status: c.res.status, durationSeconds: (performance.now() - started) / 1000, requestId: id, caller: c.get("caller"), traceId: opts.traceIdOf?.() });
    };
    await (opts.traced ? opts.traced(`${c.req.method} ${c.req.path.startsWith("/v1/") ? "api" : "page"}`, (name) => c.req.header(name), call) : call());
  });

  app.onError((err, c) => {
    const requestId = c.get("requestId") ?? requestIdOf(undefined);
    const domain = toDomainError(err);
    logFailure(opts.log, domain, err, { request_id: requestId, path: c.req.path });
    const status = (err as any).httpStatus ?? undefined;
    const body = problem(domain, requestId, status);
    if (domain.options.retryAfterSeconds !== undefined) c.header("Retry-After", String(domain.options.retryAfterSeconds));
    if (body.status === 401) c.header("WWW-Authenticate", 'Bearer realm="fabric"');
    // The unread rest of an oversized body would poison a kept-alive connection.
    if (body.status === 413) c.header("Connection", "close");
    if ((err as any).allow) c.header("Allow", (err as any).allow);
    if (body.status === 426) c.header("Upgrade", "websocket");
    return c.body(JSON.stringify(body), body.status as any, { "Content-Type": "application/problem+json" });
  });

  const routeMethods = routeTable();
  const consoleAssets = createConsoleAssets(opts.consoleDir);
  app.notFound((c) => {
    const allowed = routeMethods.find((r) => r.pattern.test(c.req.path))?.methods;
    // Any other GET outside the API is a console route (the console routes in the browser).
    if (!allowed && (c.req.method === "GET" || c.req.method === "HEAD") && !isApiPath(c.req.path)) {
      const page = consoleAssets.page();
      return c.req.method === "HEAD" ? c.body(null, page.status, page.headers) : c.body(page.body, page.status, page.headers);
    }
    if (allowed) {
      const err = httpError(405, new DomainError("invalid_argument", `${c.req.method} is not allowed on ${c.req.path}; allowed: ${allowed.join(", ")}`, { code: "method_not_allowed" }));
      throw Object.assign(err, { allow: allowed.join(", ") });
    }
    throw httpError(404, new DomainError("not_found", `no route for ${c.req.method} ${c.req.path}`, { code: "route_not_found" }));
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    try {
      await opts.ready();
      return c.json({ status: "ready" });
    } catch {
      throw new DomainError("unavailable", "the database is not reachable");
    }
  });
  const servedContract = createServedContract(openApiDocument, opts.publicAddresses);
  app.get("/openapi.json", (c) => c.json(servedContract(c.req.url), 200, { Vary: "Host" }));
  app.get("/openapi-3.0.json", (c) => c.body(openApi30Text, 200, { "Content-Type": "application/json" }));
  app.get("/docs", (c) => c.html(docsPage));
  app.get("/docs/assets/:file", (c) => {
    const file = c.req.param("file");
    if (!["swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"].includes(file)) throw httpError(404, new DomainError("not_found", "no such asset", { code: "route_not_found" }));
    const type = file.endsWith(".css") ? "text/css" : file.endsWith(".png") ? "image/png" : "text/javascript";
    return c.body(readFileSync(join(swaggerDir, file)), 200, { "Content-Type": type, "Cache-Control": "public, max-age=86400" });
  });

  app.get("/assets/:file", (c) => {
    const asset = consoleAssets.asset(c.req.param("file"));
    if (!asset) throw httpError(404, new DomainError("not_found", "no such console asset", { code: "route_not_found" }));
    return c.body(asset.body, asset.status, asset.headers);
  });

  const limit = bodyLimit({
    maxSize: opts.maxBodyBytes,
    onError: () => {
      throw httpError(413, new DomainError("invalid_argument", `the request body is larger than ${opts.maxBodyBytes} bytes`, { code: "payload_too_large" }));
    },
  });

  for (const op of restOperations) {
    if (!op.rpc || !op.protoMethod) continue;
    const honoPath = op.path.replace(/\{(\w+)\}/g, ":$1");
    const validators = validator.forOperation(op.path, op.method);
    const useCase = useCaseOf(opts.services, op.protoMethod);
    const location = locationTemplate(op, restOperations);
    const takesIdempotencyKey = op.method === "POST" && op.protoMethod.input.fields.some((f) => f.name === "idempotency_key");
    const takesEtag = op.protoMethod.input.fields.some((f) => f.name === "etag");

    if (op.stream === "websocket") {
      if (!wrapsEvent(op.protoMethod)) throw new Error(`${op.rpc}: a WebSocket stream must stream Events`);
      app.on(op.method, honoPath, (c) => webSocket(c, op, useCase, validators));
      continue;
    }

    const handler = async (c: Context<Env>) => {
      // Authorize on what the URL says (the organization is always in the path or the
      // query) before reading the body: a caller without the permission learns nothing
      // about what a valid body would be.
      c.set("operation", op.rpc!);
      const ctx = await opts.callStep.begin(op.rpc!, incomingCall(c), urlFields(c, op));
      c.set("caller", ctx.caller);
      const request = await buildRequest(c, op, op.protoMethod!, validators);
      if (takesIdempotencyKey) applyIdempotencyKeyHeader(c.req.header("idempotency-key"), request as Message & { idempotencyKey?: string });
      if (takesEtag) applyIfMatchHeader(c.req.header("if-match"), request as Message & { etag?: string });
      checkRequiredFields(op.protoMethod!.input, request);
      if (op.stream === "sse") return sse(c, ctx, useCase, request, op.protoMethod!);
      const response = (await useCase(ctx, request)) as Message;
      const json = toJson(op.protoMethod!.output, response, jsonOptions) as Record<string, unknown>;
      const other = op.successStatuses.find((s) => s !== 200);
      const status = json["created"] === false || !other ? 200 : other;
      const body: Record<string, unknown> = { data: op.data === "*" ? json : json[op.data!] };
      const created = (body["data"] as { id?: unknown } | undefined)?.id;
      if (status !== 200 && location && typeof created === "string") c.header("Location", locationOf(location, c.req.param(), created));
      // What an update may name in If-Match (domain/etags.ts): the resource's `etag` field, as an HTTP entity tag.
      const etag = (body["data"] as { etag?: unknown } | undefined)?.etag;
      if (op.method !== "DELETE" && typeof etag === "string" && etag !== "") c.header("ETag", `"${etag}"`);
      if ("next_page_token" in json && op.data !== "*") body["next_page_token"] = json["next_page_token"];
      return c.json(body, status as 200);
    };
    app.on(op.method, honoPath, limit, handler);
  }

  function incomingCall(c: Context<Env>): IncomingCall {
    const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
    return { requestId: c.get("requestId"), header: (name) => c.req.header(name), signal: c.req.raw.signal, clientAddress: incoming?.socket?.remoteAddress ?? "" };
  }

  /**
   * An event stream over a WebSocket: the same call step and use case as its SSE twin
   * (same path without `/ws`), only the framing differs — each item is the proto3 JSON of
   * the RPC's response message (`{"event": …}`). See websocket-streams.ts.
   */
  async function webSocket(c: Context<Env>, op: RestOperation, useCase: (ctx: CallContext, req: unknown) => Promise<unknown>, validators: ReturnType<ReturnType<typeof createOpenApiValidator>["forOperation"]>) {
    const call = incomingCall(c);
    const fromSubprotocol = bearerFromSubprotocols(c.req.header("sec-websocket-protocol"));
    // Authenticate first, as every operation does: no credentials is a 401 whatever else is wrong.
    const ctx = await opts.callStep.begin(op.rpc!, { ...call, header: (name) => call.header(name) ?? (name.toLowerCase() === "authorization" ? fromSubprotocol : undefined) }, urlFields(c, op));
    const ws = opts.webSockets;
    if (!ws?.isUpgrade(c.env)) throw httpError(426, new DomainError("failed_precondition", `${op.path} is a WebSocket: send Upgrade: websocket`, { code: "upgrade_required" }));
    ws.checkHandshake((name) => c.req.header(name));
    const request = await buildRequest(c, op, op.protoMethod!, validators);
    const release = ws.reserve(ctx.caller.principalId);
    const abort = new AbortController();
    try {
      // The service checks the run before resolving: a missing run is a 404 before the upgrade.
      const items = ((await useCase({ ...ctx, signal: abort.signal }, request)) as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      return ws.accept(c.env, { items, abort, release, requestId: ctx.requestId, format: (item) => `{"event":${eventText(item as Event)}}` });
    } catch (err) {
      abort.abort();
      release();
      throw err;
    }
  }

  function sse(c: Context<Env>, ctx: CallContext, useCase: (ctx: CallContext, req: unknown) => Promise<unknown>, request: Message & { afterId?: bigint }, method: DescMethod) {
    const message = sseMessage(method);
    const lastEventId = c.req.header("last-event-id");
    if (lastEventId !== undefined && method.input.fields.some((f) => f.localName === "afterId")) {
      if (!/^\d{1,18}$/.test(lastEventId)) throw invalidArgument("Last-Event-ID must be an event id", [{ path: "/Last-Event-ID", code: "invalid_value", message: "not an event id" }]);
      request.afterId = BigInt(lastEventId);
    }
    const abort = new AbortController();
    const onClientGone = () => abort.abort();
    c.req.raw.signal.addEventListener("abort", onClientGone, { once: true });
    return (async () => {
      // The service checks the run before resolving: a missing run is a 404, not an empty stream.
      const events = ((await useCase({ ...ctx, signal: abort.signal }, request)) as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      c.header("Cache-Control", "no-cache");
      c.header("X-Accel-Buffering", "no");
      return streamSSE(c, async (stream) => {
        stream.onAbort(() => abort.abort());
        metrics.streamSubscribers.inc({ transport: "rest" });
        const ping = setInterval(() => void stream.write(": ping\n\n").catch(() => abort.abort()), heartbeatMs);
        try {
          let r = await events.next();
          while (!r.done && !abort.signal.aborted) {
            await stream.writeSSE(message(r.value));
            r = await events.next();
          }
        } catch (err) {
          opts.log.warn("event stream ended with an error", { request_id: ctx.requestId, error: String(err) });
          await stream.writeSSE({ event: "error", data: JSON.stringify(problem(toDomainError(err), ctx.requestId)) }).catch(() => {});
        } finally {
          metrics.streamSubscribers.dec({ transport: "rest" });
          clearInterval(ping);
          abort.abort();
          c.req.raw.signal.removeEventListener("abort", onClientGone);
          await events.return?.(undefined);
        }
      });
    })();
  }

  return app;
}

/**
 * How a stream's items become SSE messages. Event streams (the response wraps a
 * `fabric.v1.Event`): `id:` the event id, `event:` its kind, `data:` the Event. Other
 * streams (a response with a oneof, e.g. ExecuteStreamResponse): `event:` the oneof case,
 * `data:` the case's message as proto3 JSON.
 */
function sseMessage(method: DescMethod): (item: unknown) => { id?: string; event: string; data: string } {
  if (wrapsEvent(method)) {
    return (item) => {
      const e = item as Event;
      return { id: String(e.id), event: e.kind, data: eventText(e) };
    };
  }
  const oneof = method.output.oneofs[0];
  if (!oneof) throw new Error(`${method.parent.typeName}/${method.name}: a stream needs an Event or a oneof to become SSE`);
  return (item) => {
    const chunk = (item as Record<string, unknown>)[oneof.localName] as { case: string; value: Message };
    const field = oneof.fields.find((f) => f.localName === chunk.case)!;
    if (field.fieldKind !== "message") throw new Error(`${oneof.name}.${field.name}: an SSE case must be a message`);
    return { event: field.name, data: JSON.stringify(toJson(field.message, chunk.value, jsonOptions)) };
  };
}

/**
 * The hub hands the same row to every subscriber and the row becomes one Event message, so
 * its SSE `data:` text is built once per event, not once per subscriber.
 */
const eventTexts = new WeakMap<Event, string>();

function eventText(e: Event): string {
  let t = eventTexts.get(e);
  if (t === undefined) {
    t = JSON.stringify(toJson(EventSchema, e, jsonOptions));
    eventTexts.set(e, t);
  }
  return t;
}

/** Path and query values keyed by the proto field's local (camelCase) name, as the guard reads requests. */
function urlFields(c: Context<Env>, op: RestOperation): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const raw: Record<string, string> = { ...(op.body ? {} : c.req.query()), ...c.req.param() };
  for (const [k, v] of Object.entries(raw)) out[k.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase())] = v;
  return out;
}

async function buildRequest(c: Context<Env>, op: RestOperation, method: DescMethod, v: ReturnType<ReturnType<typeof createOpenApiValidator>["forOperation"]>) {
  const params: Record<string, unknown> = { ...c.req.param() };
  if (!op.body) Object.assign(params, c.req.query());
  if (v.params && !v.params(params)) {
    const issues = structuralIssues(v.params.errors);
    if (issues.length) throw invalidArgument("invalid parameters", issues);
  }
  let json: Record<string, unknown> = {};
  if (op.body) {
    const text = await c.req.text();
    let body: unknown = {};
    if (text.trim() !== "") {
      const type = c.req.header("content-type") ?? "";
      if (!/^application\/(.+\+)?json\b/i.test(type)) throw httpError(415, new DomainError("invalid_argument", "the request body must be application/json", { code: "unsupported_media_type" }));
      if (jsonDepthExceeds(text)) throw invalidArgument(`the request body nests deeper than ${maxJsonDepth} levels`, [{ path: "", code: "too_deep", message: `at most ${maxJsonDepth} levels of nesting` }]);
      try {
        body = JSON.parse(text);
      } catch (err) {
        throw new DomainError("invalid_argument", `the request body is not valid JSON: ${(err as Error).message}`, { code: "malformed_json" });
      }
    } else if (op.body !== "*") {
      // The body is the request's `op.body` field: named as gRPC's required-field check names it.
      throw invalidArgument(`a JSON request body (${op.body}) is required`, [{ path: `/${op.body}`, code: "required", message: `${op.body} is required` }]);
    }
    if (v.body && !v.body(body)) {
      const issues = structuralIssues(v.body.errors);
      if (issues.length) throw invalidArgument(`invalid request body: ${issues.map((i) => i.message).join("; ")}`, issues);
    }
    json = op.body === "*" ? (body as Record<string, unknown>) : { [op.body]: body };
  }
  for (const [k, val] of Object.entries(params)) json[k] = val;
  const bad = findUnstorableString(json, "");
  if (bad !== undefined) throw invalidArgument(`${bad || "the request"} holds a NUL character or an unpaired surrogate, which cannot be stored`, [{ path: bad, code: "invalid_value", message: "NUL characters and unpaired surrogates are not allowed" }]);
  try {
    return fromJson(method.input, json as JsonValue);
  } catch (err) {
    throw invalidArgument(`invalid request: ${(err as Error).message}`);
  }
}

const unstorableChars = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** JSON pointer of the first string (value or key) Postgres cannot store, if any. */
function findUnstorableString(v: unknown, at: string): string | undefined {
  if (typeof v === "string") return unstorableChars.test(v) ? at : undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const r = findUnstorableString(v[i], `${at}/${i}`);
      if (r !== undefined) return r;
    }
  } else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      const path = `${at}/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`;
      if (unstorableChars.test(k)) return path;
      const r = findUnstorableString(x, path);
      if (r !== undefined) return r;
    }
  }
  return undefined;
}

/**
 * The document's schemas decide the shape of a request (types, unknown fields, formats);
 * what a valid value is (required, ranges, enums, lengths) is the services' to say, so
 * REST and gRPC — which has no JSON schema in its path — report the same issues.
 */
const semanticKeywords = new Set(["required", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "enum", "minItems", "maxItems"]);

function structuralIssues(errors: Parameters<typeof ajvIssues>[0]) {
  return ajvIssues((errors ?? []).filter((e) => !semanticKeywords.has(e.keyword)));
}

/** Path patterns of every route with the methods it answers, for 405 + Allow. */
function routeTable(): { pattern: RegExp; methods: string[] }[] {
  const byPath = new Map<string, Set<string>>();
  for (const op of restOperations) {
    const set = byPath.get(op.path) ?? new Set<string>();
    set.add(op.method);
    byPath.set(op.path, set);
  }
  return [...byPath.entries()].map(([path, methods]) => ({
    pattern: new RegExp(`^${path.replace(/\{\w+\}/g, "[^/]+")}/?$`),
    methods: [...methods],
  }));
}

/**
 * The `Idempotency-Key` header (run and job creation): the same as the body's
 * `idempotency_key`. Both given and different is 422 — which key is meant is unclear.
 */
function applyIdempotencyKeyHeader(header: string | undefined, request: { idempotencyKey?: string }) {
  if (header === undefined) return;
  if (request.idempotencyKey !== undefined && request.idempotencyKey !== header) {
    throw httpError(422, new DomainError("invalid_argument", "the Idempotency-Key header and the body's idempotency_key differ", { code: "idempotency_key_mismatch", issues: [{ path: "/idempotency_key", code: "invalid_value", message: "differs from the Idempotency-Key header" }] }));
  }
  request.idempotencyKey = header;
}

/**
 * `If-Match` (RFC 9110 §13.1.1) on updates and deletes of resources with an etag: the same
 * as the request's `etag` field. One entity tag or `*`; a weak tag (`W/"…"`) never matches,
 * as If-Match compares strongly. A list of tags is refused (400): Fabric's resources have
 * one current tag, and a client holds the one it read. Header and field both given and
 * different is 422, as for Idempotency-Key.
 */
function applyIfMatchHeader(header: string | undefined, request: { etag?: string }) {
  if (header === undefined) return;
  const h = header.trim();
  const m = /^(\*|W\/"[^"]*"|"([^"]*)")$/.exec(h);
  if (!m) throw invalidArgument("If-Match must be one entity tag (\"…\") or *", [{ path: "/If-Match", code: "invalid_value", message: "one entity tag or *" }]);
  const etag = m[1] === "*" ? "*" : (m[2] ?? m[1]!);
  if (request.etag !== undefined && request.etag !== etag) {
    throw httpError(422, new DomainError("invalid_argument", "the If-Match header and the request's etag differ", { code: "etag_mismatch", issues: [{ path: "/etag", code: "invalid_value", message: "differs from the If-Match header" }] }));
  }
  request.etag = etag;
}

/** A domain error answered with an HTTP-specific status (405, 413, 415, 422, route 404). */
function httpError(status: number, err: DomainError): DomainError {
  return Object.assign(err, { httpStatus: status });
}

const docsPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fabric API</title>
<link rel="icon" href="/docs/assets/favicon-32x32.png"><link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#ui", deepLinking: true });</script></body></html>`;
