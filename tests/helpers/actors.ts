/**
 * Who a test call acts as, and how a gRPC status reads as an HTTP one — shared by the
 * service test suites that call both transports.
 */
import { Code } from "@connectrpc/connect";
import { connectCode, httpStatus } from "../../src/control-plane/error-mapping.js";

/** An API key, or (development) a principal id with an optional organization. */
export type Actor = { key: string } | { principalId: string; organizationId?: string };

/** The HTTP status REST answers for the domain error a gRPC code stands for (the servers' own mapping). */
export const grpcStatus: Partial<Record<Code, number>> = Object.fromEntries(
  (Object.keys(connectCode) as (keyof typeof connectCode)[]).map((k) => [connectCode[k], httpStatus[k]]),
);

export function headersOf(actor: Actor, requestId: string): Record<string, string> {
  const h: Record<string, string> = { "x-request-id": requestId };
  if ("key" in actor) h["authorization"] = `Bearer ${actor.key}`;
  else {
    h["x-principal-id"] = actor.principalId;
    if (actor.organizationId) h["x-organization-id"] = actor.organizationId;
  }
  return h;
}
