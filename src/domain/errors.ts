/**
 * The closed set of domain errors. Services throw `DomainError`; each transport maps
 * `kind` in exactly one place (REST: problem+json status, gRPC: Connect code). Anything
 * else thrown is a bug and reaches clients as `internal` with no detail.
 */
export const errorKinds = [
  "invalid_argument",
  "unauthenticated",
  "permission_denied",
  "not_found",
  "already_exists",
  "failed_precondition",
  /** A test-and-set lost: the `etag` (If-Match) is not current (domain/etags.ts). */
  "aborted",
  "resource_exhausted",
  "unavailable",
  "internal",
] as const;
export type ErrorKind = (typeof errorKinds)[number];

export interface Issue {
  /** JSON pointer into the request, e.g. `/nodes/1/depends_on/0`. */
  path: string;
  code: string;
  message: string;
}

export class DomainError extends Error {
  override readonly name = "DomainError";
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly options: {
      /** Stable machine-readable code; defaults to the kind (e.g. `budget_exceeded`). */
      code?: string;
      issues?: Issue[];
      /** Seconds a client should wait before retrying (rate limits, budgets). */
      retryAfterSeconds?: number;
    } = {},
  ) {
    super(message);
  }

  get code(): string {
    return this.options.code ?? this.kind;
  }
}

export const invalidArgument = (message: string, issues?: Issue[]) => new DomainError("invalid_argument", message, { issues });
export const notFound = (what: string, id: string) => new DomainError("not_found", `${what} ${JSON.stringify(id)} not found`);
export const failedPrecondition = (message: string, code?: string) => new DomainError("failed_precondition", message, { code });
export const unauthenticated = (message = "missing or invalid credentials") => new DomainError("unauthenticated", message);
export const permissionDenied = (message = "permission denied") => new DomainError("permission_denied", message);
