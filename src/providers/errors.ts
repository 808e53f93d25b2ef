import type AnthropicSdk from "@anthropic-ai/sdk";
import type OpenAISdk from "openai";

/**
 * The provider SDKs, once loaded. Each adapter loads its SDK on first use — loading both
 * costs more than the rest of an executor's start — so this module cannot import them;
 * the adapter registers the SDK here as it loads it. An error of an SDK that was never
 * loaded cannot occur, so the checks below skip it.
 */
const sdks: { openai?: typeof OpenAISdk; anthropic?: typeof AnthropicSdk } = {};

export function registerSdkErrors(loaded: { openai?: typeof OpenAISdk; anthropic?: typeof AnthropicSdk }): void {
  Object.assign(sdks, loaded);
}

/**
 * The closed list of ways a provider call fails. The first four are worth retrying (possibly
 * on another provider); the last three are not: the request itself is wrong, the credentials
 * are, or the caller gave up.
 */
export type ProviderErrorClass =
  | "transient"
  | "rate_limited"
  | "overloaded"
  | "timeout"
  | "invalid_request"
  | "auth"
  | "aborted";

const RETRYABLE: ReadonlySet<ProviderErrorClass> = new Set(["transient", "rate_limited", "overloaded", "timeout"]);

export function isRetryableClass(errorClass: ProviderErrorClass): boolean {
  return RETRYABLE.has(errorClass);
}

export interface ProviderErrorInit {
  provider: string;
  errorClass: ProviderErrorClass;
  message: string;
  status?: number;
  /** Defaults to whether `errorClass` is retryable. */
  retryable?: boolean;
  /** How long the provider asked us to wait (from `retry-after-ms` / `retry-after`). */
  retryAfterMs?: number;
  cause?: unknown;
}

/** The only error type that leaves an adapter. */
export class ProviderError extends Error {
  override readonly name = "ProviderError";
  readonly provider: string;
  readonly status?: number;
  readonly errorClass: ProviderErrorClass;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;

  constructor(init: ProviderErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.provider = init.provider;
    this.errorClass = init.errorClass;
    this.retryable = init.retryable ?? isRetryableClass(init.errorClass);
    if (init.status !== undefined) this.status = init.status;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
  }
}

/** Throws the "aborted" ProviderError when `signal` has fired. */
export function throwIfAborted(provider: string, signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new ProviderError({ provider, errorClass: "aborted", message: `${provider}: request aborted`, cause: signal.reason });
  }
}

/**
 * Maps an HTTP status to an error class. 529 is Anthropic's "overloaded"; 409 is a lock
 * timeout on OpenAI's side, which both SDKs retry, so it is transient here too.
 */
export function classifyStatus(status: number): ProviderErrorClass {
  if (status === 401 || status === 403) return "auth";
  if (status === 408) return "timeout";
  if (status === 409) return "transient";
  if (status === 429) return "rate_limited";
  if (status === 503 || status === 529) return "overloaded";
  if (status === 504) return "timeout";
  if (status >= 500) return "transient";
  return "invalid_request";
}

type HeaderSource = Headers | Record<string, string | string[] | undefined> | null | undefined;

function header(headers: HeaderSource, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const v = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * How long the server asked us to wait, in ms: `retry-after-ms` (OpenAI) wins over
 * `retry-after`, which is either (possibly fractional) seconds or an HTTP date.
 * Returns undefined when absent or unparseable.
 */
export function parseRetryAfter(headers: HeaderSource, now: number = Date.now()): number | undefined {
  const ms = header(headers, "retry-after-ms");
  if (ms !== undefined && ms.trim() !== "") {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return Math.ceil(n);
  }
  const ra = header(headers, "retry-after");
  if (ra === undefined || ra.trim() === "") return undefined;
  const seconds = Number(ra);
  if (Number.isFinite(seconds)) return seconds >= 0 ? Math.ceil(seconds * 1000) : undefined;
  const date = Date.parse(ra);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

function statusError(provider: string, status: number, message: string, headers: HeaderSource, cause: unknown, bodyType?: string | null): ProviderError {
  // Anthropic can report overload with a non-529 status (and inside a 200 stream as an
  // `error` event, where the SDK gives no status at all); trust the body's type.
  let errorClass = classifyStatus(status);
  if (bodyType === "overloaded_error") errorClass = "overloaded";
  else if (bodyType === "rate_limit_error") errorClass = "rate_limited";
  else if (bodyType === "api_error" && errorClass === "invalid_request") errorClass = "transient";
  const retryAfterMs = parseRetryAfter(headers);
  // OpenAI and Anthropic may say explicitly whether a retry can help; both SDKs obey it.
  const shouldRetry = header(headers, "x-should-retry");
  return new ProviderError({
    provider,
    errorClass,
    status,
    ...(shouldRetry === "true" ? { retryable: true } : shouldRetry === "false" ? { retryable: false } : {}),
    message: `${provider}: ${message}`,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    cause,
  });
}

function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e && typeof e === "object"; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

const TIMEOUT_CODES = new Set(["ETIMEDOUT", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);

/**
 * The single coercion point from whatever a platform throws into a ProviderError:
 * openai / Anthropic SDK errors, fetch failures (connection refused/reset, a stream cut
 * mid-body), AbortError/TimeoutError, and anything else (treated as transient).
 *
 * If `signal` is aborted, the result is always "aborted": the caller chose to stop, so the
 * failure must not be retried or failed over, whatever the underlying error looks like.
 */
export function toProviderError(provider: string, err: unknown, signal?: AbortSignal): ProviderError {
  if (err instanceof ProviderError) return err;
  const message = err instanceof Error ? err.message : String(err);

  if (signal?.aborted) {
    return new ProviderError({ provider, errorClass: "aborted", message: `${provider}: request aborted`, cause: err });
  }
  const OpenAI = sdks.openai;
  const Anthropic = sdks.anthropic;
  if ((OpenAI && err instanceof OpenAI.APIUserAbortError) || (Anthropic && err instanceof Anthropic.APIUserAbortError)) {
    return new ProviderError({ provider, errorClass: "aborted", message: `${provider}: request aborted`, cause: err });
  }
  if ((OpenAI && err instanceof OpenAI.APIConnectionTimeoutError) || (Anthropic && err instanceof Anthropic.APIConnectionTimeoutError)) {
    return new ProviderError({ provider, errorClass: "timeout", message: `${provider}: ${message}`, cause: err });
  }
  if ((OpenAI && err instanceof OpenAI.APIConnectionError) || (Anthropic && err instanceof Anthropic.APIConnectionError)) {
    const cls = TIMEOUT_CODES.has(errorCode(err) ?? "") ? "timeout" : "transient";
    return new ProviderError({ provider, errorClass: cls, message: `${provider}: ${message}`, cause: err });
  }
  if (Anthropic && err instanceof Anthropic.APIError) {
    // Errors sent as an SSE `error` event carry no status; fall back on the body's type.
    return statusError(provider, err.status ?? 500, message, err.headers, err, err.type);
  }
  if (OpenAI && err instanceof OpenAI.APIError) {
    return statusError(provider, err.status ?? 500, message, err.headers, err);
  }
  if ((OpenAI && err instanceof OpenAI.OpenAIError) || (Anthropic && err instanceof Anthropic.AnthropicError)) {
    // Raised by the SDK before any request is sent (e.g. Anthropic refusing a non-streaming
    // call whose max_tokens could exceed 10 minutes): the request must change, not be retried.
    return new ProviderError({ provider, errorClass: "invalid_request", message: `${provider}: ${message}`, cause: err });
  }
  if (err instanceof HttpStatusError) {
    return statusError(provider, err.status, err.message, err.headers, err, err.bodyType);
  }
  if (err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError")) {
    // An abort not caused by the caller's signal is an internal deadline firing.
    return new ProviderError({ provider, errorClass: "timeout", message: `${provider}: ${message}`, cause: err });
  }
  const code = errorCode(err);
  if (code && TIMEOUT_CODES.has(code)) {
    return new ProviderError({ provider, errorClass: "timeout", message: `${provider}: ${message}`, cause: err });
  }
  // fetch failed / terminated (socket closed mid-body) / ECONNRESET / unparseable body / unknown.
  return new ProviderError({ provider, errorClass: "transient", message: `${provider}: ${message}`, cause: err });
}

/**
 * A non-2xx HTTP response seen by a plain-fetch adapter (Ollama), carried to
 * `toProviderError` so status and retry-after are classified in one place.
 */
export class HttpStatusError extends Error {
  override readonly name = "HttpStatusError";
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Headers,
    readonly bodyType?: string,
  ) {
    super(message);
  }
}
