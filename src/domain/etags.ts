/**
 * Entity tags for optimistic updates of the resources that have an update operation:
 * workflows (per name: the latest version), webhooks, policies and budgets. A tag is
 * `<resource>-<version>`, the version being a counter that every change raises (webhooks,
 * policies, budgets) or the workflow version itself, so it changes on every update and
 * never repeats for one resource; the resource prefix keeps a policy's tag from passing as
 * its budget's.
 *
 * A request's `etag` (REST: `If-Match`) is what the caller read; the service compares it
 * with the current tag inside the statement or the lock that makes the change, so no
 * other writer can slip in between. A mismatch is `aborted` / `precondition_failed`
 * (gRPC ABORTED, REST 412): the read-modify-write must start again from a fresh read.
 */
import { DomainError, invalidArgument } from "./errors.js";

export const etagMaxLength = 128;

export type EtagResource = "workflow" | "webhook" | "policy" | "budget";

export const etagOf = (resource: EtagResource, version: number): string => `${resource}-${version}`;

/** The version a request's etag names for `resource`; `"any"` for `*`; `undefined` for no etag. */
export function expectedVersion(resource: EtagResource, etag: string | undefined): number | "any" | undefined {
  if (etag === undefined) return undefined;
  if (etag.length > etagMaxLength) throw invalidArgument(`etag must be at most ${etagMaxLength} characters`, [{ path: "/etag", code: "invalid_value", message: "too long" }]);
  if (etag === "*") return "any";
  const m = /^([a-z]+)-(\d{1,9})$/.exec(etag);
  // A tag of another resource or of no form Fabric makes matches nothing: -1 is no version.
  return m && m[1] === resource ? Number(m[2]) : -1;
}

export function preconditionFailed(what: string, etag: string): DomainError {
  return new DomainError("aborted", `${what} has changed since it was read: etag ${JSON.stringify(etag)} is not current; read it again and retry`, { code: "precondition_failed" });
}
