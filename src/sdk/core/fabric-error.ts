/**
 * `FabricError`: the one error type the SDK throws, whichever transport failed.
 *
 * - REST non-2xx: built from the RFC 9457 problem (`code`, `detail`, `issues`,
 *   `request_id`); `status` is the HTTP status.
 * - A problem sent as an `event: error` message inside an event stream: the same.
 * - gRPC (`client.grpc`): built from the ConnectError — `code` from the
 *   `fabric-error-code` metadata, `issues` from the `ValidationIssue` details,
 *   `status` the HTTP status the REST face answers for the same error.
 * - Failures of the SDK itself, `status` 0: `network_error` (the request or the
 *   response body failed on the way: DNS, refused, reset, dropped), `invalid_response`
 *   (a 2xx that is not what the contract promises), `timeout` (a call's `timeoutMs`
 *   elapsed, or `runs.wait` / `jobs.wait` gave up).
 *
 * Refusals of provider calls and jobs carry their stable code: `budget_exceeded` (429),
 * `rate_limited` (429), `model_not_allowed` (403), `model_unpriced`; when waiting helps,
 * the server's `Retry-After` is `retryAfterSeconds` (seconds from now, whichever of its
 * two forms — delay-seconds or an HTTP date — the server used).
 *
 * Cancelling through an `AbortSignal` is not an error of Fabric: the signal's reason
 * (normally an `AbortError`) is rethrown as is.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { ValidationIssueSchema } from "../../../gen/proto/fabric/v1/workflow_pb.js";
import type { Problem, ValidationIssue } from "../types.js";

/** Codes the SDK itself produces (status 0). Server codes are open-ended (`not_found`, `invalid_argument`, `payload_too_large`, …). */
export type ClientErrorCode = "network_error" | "invalid_response" | "timeout";

export interface FabricErrorInit {
  status: number;
  code: string;
  detail: string;
  requestId?: string;
  issues?: ValidationIssue[];
  title?: string;
  type?: string;
  retryAfterSeconds?: number;
  problem?: Problem;
  cause?: unknown;
}

export class FabricError extends Error {
  override readonly name = "FabricError";
  /** HTTP status (for gRPC errors: the status REST answers for the same error); 0 for SDK-side failures. */
  readonly status: number;
  /** The problem's stable, machine-readable code, e.g. `not_found`, `invalid_argument`, `unstorable_value`. */
  readonly code: string;
  /** The server's `x-request-id` for the failed call, when it got that far. */
  readonly requestId: string | undefined;
  /** For invalid workflows and request bodies: every problem found (JSON pointers into the request). */
  readonly issues: ValidationIssue[];
  readonly detail: string;
  readonly title: string | undefined;
  readonly type: string | undefined;
  /**
   * From `Retry-After` (REST) or the `retry-after` metadata (gRPC), when the server sent
   * one: how many seconds to wait before the same call may succeed (`rate_limited`: the
   * next minute; `budget_exceeded`: the budget period's end). Undefined when waiting
   * does not help (e.g. a per-run cost cap).
   */
  readonly retryAfterSeconds: number | undefined;
  /** The problem document as received, for REST errors. */
  readonly problem: Problem | undefined;

  constructor(init: FabricErrorInit) {
    super(`${init.code}: ${init.detail}${init.issues?.length ? ` (${init.issues.map((i) => `${i.path || "/"}: ${i.message}`).join("; ")})` : ""}`, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.detail = init.detail;
    this.requestId = init.requestId;
    this.issues = init.issues ?? [];
    this.title = init.title;
    this.type = init.type;
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.problem = init.problem;
  }

  /**
   * True for failures worth retrying as is (after `retryAfterSeconds`, when given): the
   * network, 429, 5xx — except a `budget_exceeded` that names no time to wait, which
   * no retry cures.
   */
  get retryable(): boolean {
    if (this.status === 0) return this.code === "network_error";
    if (this.status === 429) return !(this.code === "budget_exceeded" && this.retryAfterSeconds === undefined);
    return this.status >= 500;
  }

  /** A problem document (from a response body or an SSE `error` message). */
  static fromProblem(p: Partial<Problem>, fallback: { status: number; requestId?: string | null; retryAfter?: string | null }): FabricError {
    return new FabricError({
      status: typeof p.status === "number" ? p.status : fallback.status,
      code: typeof p.code === "string" && p.code ? p.code : `http_${fallback.status}`,
      detail: typeof p.detail === "string" ? p.detail : (p.title ?? `HTTP ${fallback.status}`),
      requestId: p.request_id ?? fallback.requestId ?? undefined,
      issues: Array.isArray(p.issues) ? p.issues : [],
      title: p.title,
      type: p.type,
      retryAfterSeconds: parseRetryAfter(fallback.retryAfter),
      problem: isProblem(p) ? p : undefined,
    });
  }

  /** Reads a non-2xx response. A body that is not a problem (a proxy's HTML page, say) yields code `http_<status>`. */
  static async fromResponse(res: Response): Promise<FabricError> {
    const text = await res.text().catch(() => "");
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const fallback = { status: res.status, requestId: res.headers.get("x-request-id"), retryAfter: res.headers.get("retry-after") };
    if (body && typeof body === "object" && !Array.isArray(body)) return FabricError.fromProblem(body as Partial<Problem>, fallback);
    return FabricError.fromProblem({ detail: text.slice(0, 200) || res.statusText || `HTTP ${res.status}` }, fallback);
  }

  static network(cause: unknown, what: string): FabricError {
    const reason = cause instanceof Error ? ((cause.cause as Error | undefined)?.message ?? cause.message) : String(cause);
    return new FabricError({ status: 0, code: "network_error", detail: `${what}: ${reason}`, cause });
  }

  /**
   * Any error → FabricError: a FabricError as is, a ConnectError (from `client.grpc`)
   * with its Fabric code and issues, anything else as `network_error`.
   */
  static from(err: unknown): FabricError {
    if (err instanceof FabricError) return err;
    if (err instanceof ConnectError) {
      const code = err.metadata.get("fabric-error-code") ?? connectCodeNames[err.code] ?? "unknown";
      const issues = err.findDetails(ValidationIssueSchema).map((i) => ({ path: i.path, code: i.code as ValidationIssue["code"], message: i.message }));
      return new FabricError({
        status: httpStatusOfConnectCode[err.code] ?? 500,
        code,
        detail: err.rawMessage,
        requestId: err.metadata.get("x-request-id") ?? undefined,
        issues,
        retryAfterSeconds: parseRetryAfter(err.metadata.get("retry-after")),
        cause: err,
      });
    }
    return FabricError.network(err, "request failed");
  }
}

function isProblem(p: Partial<Problem>): p is Problem {
  return typeof p.code === "string" && typeof p.status === "number" && typeof p.type === "string";
}

/** `Retry-After` (RFC 9110 §10.2.3): delay-seconds, or an HTTP date (→ seconds from now, rounded up, never negative). */
export function parseRetryAfter(v: string | null | undefined, now: number = Date.now()): number | undefined {
  const s = v?.trim();
  if (!s) return undefined;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  if (!/^[a-z]{3}/i.test(s)) return undefined; // every HTTP-date form starts with a day name; "-1", "1e3": neither form
  const at = Date.parse(s);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** The Connect code the control plane answers for each kind of error, read backwards (kind names are the REST codes of the generic errors). */
const connectCodeNames: Partial<Record<Code, string>> = {
  [Code.InvalidArgument]: "invalid_argument",
  [Code.Unauthenticated]: "unauthenticated",
  [Code.PermissionDenied]: "permission_denied",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "already_exists",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Aborted]: "aborted",
  [Code.ResourceExhausted]: "resource_exhausted",
  [Code.Unavailable]: "unavailable",
  [Code.Internal]: "internal",
  [Code.Canceled]: "canceled",
  [Code.DeadlineExceeded]: "deadline_exceeded",
};

const httpStatusOfConnectCode: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: 400,
  [Code.Unauthenticated]: 401,
  [Code.PermissionDenied]: 403,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.FailedPrecondition]: 409,
  [Code.Aborted]: 412,
  [Code.ResourceExhausted]: 429,
  [Code.Unavailable]: 503,
  [Code.Internal]: 500,
  [Code.Canceled]: 499,
  [Code.DeadlineExceeded]: 504,
  [Code.Unimplemented]: 501,
};
