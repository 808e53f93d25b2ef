import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { NodePolicySchema, type NodePolicy } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { backoffDefaults, backoffDelayMs, isRetryable, type ErrorClass } from "./retry-policy.js";

const policy = (init: Parameters<typeof create<typeof NodePolicySchema>>[1]): NodePolicy => create(NodePolicySchema, init);
const mid = () => 0.5; // the jitter factor is exactly 1 at random() = 0.5

describe("backoffDelayMs", () => {
  it("grows by the factor per failed attempt, from the initial delay", () => {
    const p = policy({ backoff: { initialMs: 100, factor: 3, maxMs: 1_000_000 } });
    expect([1, 2, 3, 4].map((a) => backoffDelayMs(p, a, mid))).toEqual([100, 300, 900, 2700]);
  });

  it("uses the defaults without a policy, or for unset fields", () => {
    expect([1, 2, 3].map((a) => backoffDelayMs(undefined, a, mid))).toEqual([200, 400, 800]);
    expect(backoffDelayMs(policy({ backoff: { factor: 3 } }), 2, mid)).toBe(backoffDefaults.initialMs * 3);
    expect(backoffDelayMs(policy({ maxAttempts: 5 }), 1, mid)).toBe(backoffDefaults.initialMs);
  });

  it("is capped at max_ms", () => {
    const p = policy({ backoff: { initialMs: 100, factor: 2, maxMs: 500, jitter: 0 } });
    expect([1, 2, 3, 4, 10, 50].map((a) => backoffDelayMs(p, a))).toEqual([100, 200, 400, 500, 500, 500]);
    expect(backoffDelayMs(undefined, 1000, mid)).toBe(backoffDefaults.maxMs);
  });

  it("treats attempt < 1 like the first attempt", () => {
    expect(backoffDelayMs(undefined, 0, mid)).toBe(200);
  });

  it("jitters within ±jitter of the base delay", () => {
    const p = policy({ backoff: { initialMs: 1000, factor: 2, maxMs: 60_000, jitter: 0.25 } });
    expect(backoffDelayMs(p, 1, () => 0)).toBe(750);
    expect(backoffDelayMs(p, 1, () => 0.999999)).toBe(1250);
    expect(backoffDelayMs(p, 3, () => 0)).toBe(3000);
    for (let i = 0; i <= 100; i++) {
      const d = backoffDelayMs(p, 2, () => i / 100);
      expect(d).toBeGreaterThanOrEqual(1500);
      expect(d).toBeLessThanOrEqual(2500);
    }
    // default jitter 0.2
    expect(backoffDelayMs(undefined, 1, () => 0)).toBe(160);
    expect(backoffDelayMs(undefined, 1, () => 1)).toBe(240);
  });

  it("jitter 0 is deterministic and uses the injected random only through jitter", () => {
    const p = policy({ backoff: { jitter: 0 } });
    expect(backoffDelayMs(p, 2, () => 0)).toBe(400);
    expect(backoffDelayMs(p, 2, () => 1)).toBe(400);
  });

  it("initial_ms 0 means retry immediately", () => {
    expect(backoffDelayMs(policy({ backoff: { initialMs: 0 } }), 5, Math.random)).toBe(0);
  });
});

describe("isRetryable", () => {
  const all: ErrorClass[] = ["timeout", "transient", "lease_expired", "error", "invalid_input", "cancelled"];

  it("without retry_on retries everything but invalid_input and cancelled", () => {
    expect(all.filter((c) => isRetryable(undefined, c))).toEqual(["timeout", "transient", "lease_expired", "error"]);
    expect(all.filter((c) => isRetryable(policy({}), c))).toEqual(["timeout", "transient", "lease_expired", "error"]);
  });

  it("with retry_on retries only the listed classes", () => {
    expect(all.filter((c) => isRetryable(policy({ retryOn: ["timeout", "lease_expired"] }), c))).toEqual(["timeout", "lease_expired"]);
  });

  it("never retries invalid_input or cancelled, even when listed", () => {
    const p = policy({ retryOn: ["invalid_input", "cancelled", "error"] });
    expect(isRetryable(p, "invalid_input")).toBe(false);
    expect(isRetryable(p, "cancelled")).toBe(false);
    expect(isRetryable(p, "error")).toBe(true);
  });
});
