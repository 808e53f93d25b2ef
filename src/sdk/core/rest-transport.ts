/**
 * `RestTransport`: how every REST call of the SDK reaches the control plane — the URL
 * built from the contract's path template, the auth and user headers, one JSON body,
 * and cancellation through an `AbortSignal`. Non-2xx answers become `FabricError`s here
 * and nowhere else.
 *
 * Event streams open their connection through `open`: they reconnect and watch for
 * silence themselves (see ./follow-events.ts).
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
}

export interface RestTransportOptions {
  /** Without a trailing slash. */
  baseUrl: string;
  fetch: FetchLike;
  /** Sent with every request (auth, organization, the caller's own). */
  headers: Record<string, string>;
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

export class RestTransport {
  readonly baseUrl: string;
  readonly #fetch: FetchLike;
  readonly #headers: Record<string, string>;

  constructor(opts: RestTransportOptions) {
    this.baseUrl = opts.baseUrl;
    this.#fetch = opts.fetch;
    this.#headers = opts.headers;
  }

  /**
   * One REST call, typed by the OpenAPI `paths`: path and query parameters and the JSON
   * body as the operation declares them; resolves with the 2xx JSON body.
   */
  async call<P extends keyof paths, M extends HttpMethod>(
    method: M,
    path: P,
    init: { path?: PathParams<Operation<P, M>>; query?: QueryParams<Operation<P, M>>; body?: JsonBody<Operation<P, M>>; options?: RequestOptions | undefined } = {},
  ): Promise<SuccessJson<Operation<P, M>>> {
    const untyped = init as CallInit;
    const what = `${method.toUpperCase()} ${path}`;
    const res = await this.open(method, path, untyped);
    const text = await readBody(res, untyped.options?.signal, what);
    try {
      return JSON.parse(text) as SuccessJson<Operation<P, M>>;
    } catch {
      throw new FabricError({ status: res.status, code: "invalid_response", detail: `${what}: the response is not JSON`, requestId: res.headers.get("x-request-id") ?? undefined });
    }
  }

  /**
   * Sends one request and resolves with its 2xx response, body unread; throws the
   * FabricError of any other answer.
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
