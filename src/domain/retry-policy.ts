/** Backoff and retry decisions for node attempts (pure). */
import type { NodePolicy } from "../../gen/proto/fabric/v1/workflow_pb.js";

export type ErrorClass = "timeout" | "transient" | "lease_expired" | "error" | "invalid_input" | "cancelled";

export const backoffDefaults = { initialMs: 200, factor: 2, maxMs: 30_000, jitter: 0.2 } as const;

/** Delay before attempt `attempt + 1`, after `attempt` attempts have failed (attempt ≥ 1). */
export function backoffDelayMs(policy: NodePolicy | undefined, attempt: number, random: () => number = Math.random): number {
  const b = policy?.backoff;
  const initial = b?.initialMs ?? backoffDefaults.initialMs;
  const factor = b?.factor ?? backoffDefaults.factor;
  const max = b?.maxMs ?? backoffDefaults.maxMs;
  const jitter = b?.jitter ?? backoffDefaults.jitter;
  const base = Math.min(max, initial * factor ** Math.max(0, attempt - 1));
  // max_ms bounds the delay itself, so it also caps the jitter's upward half.
  return Math.max(0, Math.min(max, Math.round(base * (1 - jitter + 2 * jitter * random()))));
}

export function isRetryable(policy: NodePolicy | undefined, errorClass: ErrorClass): boolean {
  if (errorClass === "invalid_input" || errorClass === "cancelled") return false;
  const retryOn = policy?.retryOn ?? [];
  return retryOn.length === 0 || retryOn.includes(errorClass);
}
