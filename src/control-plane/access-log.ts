/**
 * One access-log line and the request metrics of every REST and gRPC call, written the
 * same way by both edges: operation (the RPC, or the route for non-API paths), status
 * (HTTP status or gRPC code), duration, who called (ids only) and the request and trace
 * ids.
 */
import { Code } from "@connectrpc/connect";
import type { Logger } from "../logger.js";
import type { Caller } from "../services/call-context.js";
import { boundedLabel, metrics } from "../telemetry/metrics.js";

export interface CallRecord {
  transport: "rest" | "grpc";
  /** `fabric.v1.RunService/GetRun`, or a route like `GET /healthz`. */
  operation: string;
  /** HTTP status (REST) or the gRPC code's name, `OK` included (gRPC). */
  status: number | string;
  durationSeconds: number;
  requestId: string;
  caller?: Caller | undefined;
  traceId?: string | undefined;
}

export function recordCall(log: Logger, r: CallRecord): void {
  const operation = boundedLabel("operation", r.operation);
  metrics.requests.inc({ transport: r.transport, operation, code: String(r.status) });
  metrics.requestDuration.observe({ transport: r.transport, operation }, r.durationSeconds);
  if (log.enabled && !log.enabled("info")) return;
  const fields: Record<string, unknown> = {
    request_id: r.requestId,
    transport: r.transport,
    operation: r.operation,
    [r.transport === "rest" ? "status" : "code"]: r.status,
    duration_ms: Math.round(r.durationSeconds * 1e5) / 100,
  };
  if (r.caller?.principalId) fields.principal_id = r.caller.principalId;
  if (r.caller?.apiKeyId) fields.api_key_id = r.caller.apiKeyId;
  if (r.caller?.organizationId) fields.organization_id = r.caller.organizationId;
  if (r.traceId) fields.trace_id = r.traceId;
  log.info("call", fields);
}

/** `NOT_FOUND` for Code.NotFound: the names gRPC itself uses. */
export function grpcCodeName(code: Code | undefined): string {
  if (code === undefined) return "OK";
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
