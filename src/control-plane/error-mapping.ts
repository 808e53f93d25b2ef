/**
 * The one mapping per transport from domain errors to the wire. Anything that is not a
 * DomainError is a bug: logged with its detail, answered as `internal` without it.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { ValidationIssueSchema } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { DomainError, type ErrorKind, type Issue } from "../domain/errors.js";
import { errorSummary, transientCode } from "../db/transient-errors.js";
import type { Logger } from "../logger.js";

export const httpStatus: Record<ErrorKind, number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  already_exists: 409,
  failed_precondition: 409,
  // The only aborted error is a stale etag: HTTP's own answer to a failed If-Match.
  aborted: 412,
  resource_exhausted: 429,
  unavailable: 503,
  internal: 500,
};

export const connectCode: Record<ErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  aborted: Code.Aborted,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
  internal: Code.Internal,
};

const titles: Record<ErrorKind, string> = {
  invalid_argument: "Invalid argument",
  unauthenticated: "Unauthenticated",
  permission_denied: "Permission denied",
  not_found: "Not found",
  already_exists: "Already exists",
  failed_precondition: "Failed precondition",
  aborted: "Precondition failed",
  resource_exhausted: "Resource exhausted",
  unavailable: "Unavailable",
  internal: "Internal error",
};

/**
 * SQLSTATEs that mean "this value cannot be stored" (NUL in text, a lone surrogate in
 * jsonb, a date out of range): the client's input, never a server fault. The
 * transaction they broke was rolled back, so nothing was written.
 */
const unstorable = new Set(["22P05", "22021", "22P02", "22007", "22008", "22003", "54000"]);

/** Seconds a client is told to wait (Retry-After) when the database is unavailable. */
export const unavailableRetryAfterSeconds = 1;

export function toDomainError(err: unknown): DomainError {
  if (err instanceof DomainError) return err;
  // An expected infrastructure failure (database down, restarting, connection cut): the
  // client may retry, and it is not a bug (db/transient-errors.ts says which).
  if (transientCode(err)) return new DomainError("unavailable", "the database is unavailable; retry later", { code: "database_unavailable", retryAfterSeconds: unavailableRetryAfterSeconds });
  for (let e: any = err, depth = 0; e && depth < 4; e = e.cause, depth++) {
    if (typeof e.code === "string" && unstorable.has(e.code)) {
      return new DomainError("invalid_argument", "the request holds a value that cannot be stored (e.g. a NUL character, an unpaired surrogate or an out-of-range date)", { code: "unstorable_value" });
    }
  }
  return new DomainError("internal", "internal error");
}

const httpTitles: Record<number, string> = { 405: "Method not allowed", 413: "Payload too large", 415: "Unsupported media type" };

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  request_id: string;
  issues?: Issue[];
}

/** RFC 9457 problem details; `status` may be overridden for HTTP-only cases (413, 415, 405). */
export function problem(err: DomainError, requestId: string, status = httpStatus[err.kind]): Problem {
  const p: Problem = { type: `https://fabric.dev/problems/${err.code}`, title: httpTitles[status] ?? titles[err.kind], status, detail: err.message, code: err.code, request_id: requestId };
  if (err.options.issues?.length) p.issues = err.options.issues;
  return p;
}

export const errorCodeHeader = "fabric-error-code";

export function toConnectError(err: DomainError, requestId: string): ConnectError {
  // x-request-id is already a response header of every call; repeating it here would
  // send it again as a trailer.
  void requestId;
  const metadata = new Headers({ [errorCodeHeader]: err.code });
  if (err.options.retryAfterSeconds !== undefined) metadata.set("retry-after", String(err.options.retryAfterSeconds));
  const details = (err.options.issues ?? []).map((i) => ({ desc: ValidationIssueSchema, value: create(ValidationIssueSchema, i) }));
  return new ConnectError(err.message, connectCode[err.kind], metadata, details);
}

/**
 * Logs a failed call the way its class deserves: a bug (`internal`) with its stack; an
 * expected infrastructure failure as one short line with its cause and no stack,
 * rate-limited (the first, then at most one per `unavailableLogIntervalMs` saying how many
 * were left out) so an outage does not flood the log. Other domain errors are the
 * client's and are not logged.
 */
export function logFailure(log: Logger, domain: DomainError, err: unknown, fields: Record<string, unknown>): void {
  if (domain.kind === "internal") log.error("request failed", { ...fields, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  else if (domain.code === "database_unavailable") unavailableLog(log, fields, err);
}

export const unavailableLogIntervalMs = 10_000;
let lastUnavailableLog = 0;
let unavailableSuppressed = 0;

function unavailableLog(log: Logger, fields: Record<string, unknown>, err: unknown) {
  const now = Date.now();
  if (now - lastUnavailableLog < unavailableLogIntervalMs) {
    unavailableSuppressed++;
    return;
  }
  lastUnavailableLog = now;
  const suppressed = unavailableSuppressed;
  unavailableSuppressed = 0;
  log.warn("database unavailable: answered 503", { ...fields, cause: errorSummary(err), ...(suppressed ? { suppressed_since_last: suppressed } : {}) });
}
