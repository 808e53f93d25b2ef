/**
 * The `google.rpc` error details every gRPC error of Fabric carries, in the
 * `grpc-status-details-bin` trailer (gRPC) or the error's `details` (Connect, gRPC-Web) —
 * where gRPC's status helpers in every language read them:
 *
 * - `ErrorInfo`: `reason` = the stable code (the same string as REST's problem `code`),
 *   `domain` = `fabric.dev`, `metadata` = the error class (`kind`) and, for refusals with a
 *   wait, `retry_after_seconds`.
 * - `RequestInfo`: `request_id` = the call's request id (also the `x-request-id` header).
 * - `BadRequest` (invalid arguments with issues): one field violation per issue, `field`
 *   the proto field path (`nodes[0].depends_on[0]`, as error_details.proto describes it),
 *   `reason` the issue's code, `description` its message.
 * - `RetryInfo` (refusals that name a wait: rate limits, budgets): `retry_delay`.
 *
 * Fabric's own `fabric.v1.ValidationIssue` details (JSON-pointer paths, as REST's
 * `issues`) and the `fabric-error-code` header are still sent, after these, for clients
 * written before them.
 */
import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, BadRequest_FieldViolationSchema, ErrorInfoSchema, RequestInfoSchema, RetryInfoSchema } from "../../../gen/proto/google/rpc/error_details_pb.js";
import type { DomainError } from "../../domain/errors.js";

/** `google.rpc.ErrorInfo.domain` of every Fabric error: the service that defines the codes. */
export const errorDomain = "fabric.dev";

/** What ConnectError sends as a detail (its own type of it is not exported). */
type Detail = Extract<ConnectError["details"][number], { desc: unknown }>;

/** The standard details of `err`, first in the list (clients take the first of each type). */
export function statusDetails(err: DomainError, requestId: string): Detail[] {
  const metadata: Record<string, string> = { kind: err.kind };
  const wait = err.options.retryAfterSeconds;
  if (wait !== undefined) metadata["retry_after_seconds"] = String(wait);
  const details: Detail[] = [
    { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason: err.code, domain: errorDomain, metadata }) },
    { desc: RequestInfoSchema, value: create(RequestInfoSchema, { requestId }) },
  ];
  const issues = err.options.issues ?? [];
  if (issues.length) {
    const fieldViolations = issues.map((i) => create(BadRequest_FieldViolationSchema, { field: fieldPath(i.path), reason: i.code, description: i.message }));
    details.push({ desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations }) });
  }
  if (wait !== undefined) {
    const whole = Math.max(0, Math.floor(wait));
    const nanos = Math.max(0, Math.round((wait - whole) * 1e9));
    details.push({ desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: create(DurationSchema, { seconds: BigInt(whole), nanos }) }) });
  }
  return details;
}

/** Puts the standard details of `err` before the ones `connectError` already carries. */
export function withStatusDetails(connectError: ConnectError, err: DomainError, requestId: string): ConnectError {
  connectError.details.unshift(...statusDetails(err, requestId));
  return connectError;
}

/**
 * A JSON pointer into the request (`/nodes/0/depends_on/0`) as a protobuf field path
 * (`nodes[0].depends_on[0]`): numeric segments become indexes, others `.name`, map keys
 * that are not identifiers `["key"]`. The empty pointer (the whole request) stays empty.
 */
export function fieldPath(pointer: string): string {
  if (pointer === "" || pointer === "/") return "";
  const segments = pointer.replace(/^\//, "").split("/").map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
  let out = "";
  for (const s of segments) {
    if (/^\d+$/.test(s)) out += `[${s}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) out += out === "" ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}
