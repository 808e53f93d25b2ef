/**
 * Reads retry a transient database failure once before answering 503: a connection cut
 * by a restart or `pg_terminate_backend` (postgres.js opens a new one for the retry), or
 * `57P03` while the server finishes starting up, is often gone a moment later. Only calls
 * that write nothing are retried — the call step (authentication and the guard) and the
 * unary `Get…`/`List…`/`Check…` methods; a write is never repeated behind the client's
 * back (clients retry those with an idempotency key).
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { isTransientDbError } from "../db/transient-errors.js";

/** How long the one retry waits (a little jitter spreads a crowd of retries). */
const retryDelayMs = () => 150 + Math.random() * 150;

export async function retryReadOnce<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!isTransientDbError(err)) throw err;
    await new Promise((r) => setTimeout(r, retryDelayMs()));
    return fn();
  }
}

export function isReadMethod(method: DescMethod): boolean {
  return method.methodKind === "unary" && /^(Get|List|Check|BatchCheck|Estimate)/.test(method.name);
}
