/**
 * `RestTransport`: how every REST call of the SDK reaches the control plane — the URL
 * built from the contract's path template, the auth and user headers, one JSON body,
 * retries of calls that are safe to repeat (honouring `Retry-After`), a time limit, and
 * cancellation through an `AbortSignal`. Non-2xx answers become `FabricError`s here and
 * nowhere else.
 *
 * Event streams open their connection through `open` (one attempt, no time limit): they
 * reconnect and watch for silence themselves (see ./follow-events.ts).
 */
import type { paths } from "../../../gen/openapi/schema.js";
import type { HttpMethod, JsonBody, Operation, PathParams, QueryParams, SuccessJson } from "../types.js";
import { FabricError } from "./fabric-error.js";

export const sdkVersion = "0.1.0";

/** What the client calls to send requests; `globalThis.fetch` by default. */
export type FetchLike = (input: string | URL, init: RequestInit) => Promise<Response>;

export interface RequestOptions {
  signal?: AbortSignal;
  /** Extra headers for this call (e.g. `x-request-id`). */
  headers?: Record<string, string>;
  /** Overrides the client's `timeoutMs` for this call. */
  timeoutMs?: number;
  /** Overrides the client's `maxRetries` for this call. */
  maxRetries?: number;
}

export interface RestTransportOptions {
  /** Without a trailing slash. */
  baseUrl: string;
  fetch: FetchLike;
  /** Sent with every request (auth, organization, the caller's own). */
  headers: Record<string, string>;
  maxRetries: number;
  timeoutMs: number;
}

/** Untyped call parameters (the typed face is `RestTransport.call`). */
export interface CallInit {
  path?: Record<string, string> | undefined;
  query?: Record<string, string | number | boolean | undefined> | undefined;
  body?: unknown;
  options?: RequestOptions | undefined;
}

/** What `open` adds for event streams. */
export interface OpenInit extends CallInit {
  accept?: string;
  extraHeaders?: Record<string, string>;
}

/** Methods whose repetition has the effect of one call (RFC 9110 §9.2.2), and so may be retried blindly. */
const idempotentMethods: ReadonlySet<HttpMethod> = new Set(["get", "put", "delete"]);
/** A `Retry-After` longer than this is not waited for: the error is thrown with its `retryAfterSeconds` (a `budget_exceeded` may name the end of the day). */
const maxRetryAfterMs = 30_000;
const firstBackoffMs = 500;
const maxBackoffMs = 8_000;

export class RestTransport {
  readonly baseUrl: string;
  readonly #fetch: FetchLike;
  readonly #headers: Record<string, string>;
  readonly #maxRetries: number;
  readonly #timeoutMs: number;

  constructor(opts: RestTransportOptions) {
    this.baseUrl = opts.baseUrl;
    this.#fetch = opts.fetch;
    this.#headers = opts.headers;
    this.#maxRetries = opts.maxRetries;
    this.#timeoutMs = opts.timeoutMs;
  }

  /**
   * One REST call, typed by the OpenAPI `paths`: path and query parameters and the JSON
   * body as the operation declares them; resolves with the 2xx JSON body.
   *
   * A GET, PUT or DELETE that failed on the network, with 429 or with a 5xx is tried
   * again, up to `maxRetries` times, after the server's `Retry-After` (when it sent one,
   * and it is at most 30 s; a longer one is thrown at once) or an exponential backoff
   * (0.5 s, 1 s, 2 s … at most 8 s, ±20 %). A POST is never repeated: it may have taken
   * effect (runs and jobs take an `idempotency_key` for a safe second attempt).
   * `timeoutMs` bounds the whole call, retries and waits included, and fails it with a
   * FabricError `timeout`; aborting `signal` rethrows the signal's reason.
   */
  async call<P extends keyof paths, M extends HttpMethod>(
    method: M,
    path: P,
    init: { path?: PathParams<Operation<P, M>>; query?: QueryParams<Operation<P, M>>; body?: JsonBody<Operation<P, M>>; options?: RequestOptions | undefined } = {},
  ): Promise<SuccessJson<Operation<P, M>>> {
    const untyped = init as CallInit;
    const what = `${method.toUpperCase()} ${path}`;
    const options = untyped.options ?? {};
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const maxRetries = idempotentMethods.has(method) ? (options.maxRetries ?? this.#maxRetries) : 0;
    const deadline = new AbortController();
    const timer = Number.isFinite(timeoutMs) && timeoutMs > 0 ? setTimeout(() => deadline.abort(), timeoutMs) : undefined;
    const signal = options.signal ? AbortSignal.any([options.signal, deadline.signal]) : deadline.signal;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await this.open(method, path, { ...untyped, options: { ...options, signal } });
          const text = await readBody(res, signal, what);
          try {
            return JSON.parse(text) as SuccessJson<Operation<P, M>>;
          } catch {
            throw new FabricError({ status: res.status, code: "invalid_response", detail: `${what}: the response is not JSON`, requestId: res.headers.get("x-request-id") ?? undefined });
          }
        } catch (err) {
          if (!(err instanceof FabricError) || !err.retryable || attempt >= maxRetries) throw err;
          const wait = err.retryAfterSeconds === undefined ? backoffMs(attempt + 1, firstBackoffMs, maxBackoffMs) : err.retryAfterSeconds * 1000;
          if (wait > maxRetryAfterMs) throw err;
          await sleep(wait, signal);
        }
      }
    } catch (err) {
      if (deadline.signal.aborted && !options.signal?.aborted) throw new FabricError({ status: 0, code: "timeout", detail: `${what}: no answer within ${timeoutMs} ms`, cause: err });
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends one request and resolves with its 2xx response, body unread; throws the
   * FabricError of any other answer. No retry, no time limit: for event streams, which
   * handle both themselves.
   */
  async open(method: HttpMethod, pathTemplate: string, init: OpenInit): Promise<Response> {
    const path = pathTemplate.replace(/\{(\w+)\}/g, (_, name: string) => {
      const v = init.path?.[name];
      if (v === undefined || v === "") throw new TypeError(`FabricClient: missing path parameter ${name}`);
      return encodeURIComponent(v);
    });
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(init.query ?? {})) if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {
      "user-agent": `fabric-sdk-ts/${sdkVersion}`,
      accept: init.accept ?? "application/json",
      ...this.#headers,
      ...init.extraHeaders,
      ...init.options?.headers,
    };
    let body: string | undefined;
    if (init.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(init.body);
    }
    const signal = init.options?.signal;
    let res: Response;
    try {
      res = await this.#fetch(url, { method: method.toUpperCase(), headers, body, signal });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw FabricError.network(err, `${method.toUpperCase()} ${path}`);
    }
    if (!res.ok) throw await FabricError.fromResponse(res);
    return res;
  }
}

async function readBody(res: Response, signal: AbortSignal | undefined, what: string): Promise<string> {
  try {
    return await res.text();
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw FabricError.network(err, what);
  }
}

/** The `data` of a `{ data }` envelope, which every single-object REST answer is. */
export function unwrap<T>(body: { data: T }, what: string): T {
  if (!body || typeof body !== "object" || !("data" in body)) throw new FabricError({ status: 0, code: "invalid_response", detail: `${what}: no "data" in the response` });
  return body.data;
}

/** Exponential backoff with ±20 % jitter: `first · 2^(attempt−1)`, at most `max`. */
export function backoffMs(attempt: number, first: number, max: number): number {
  const base = Math.min(max, first * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
