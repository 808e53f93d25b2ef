import { describe, expect, it } from "vitest";
import { ProviderError } from "../providers/errors.js";
import { createCircuitBreakers, type CircuitBreakerOptions } from "./circuit-breaker.js";

function setup(opts: Omit<CircuitBreakerOptions, "now"> = {}) {
  const clock = { t: 1_000_000 };
  const breakers = createCircuitBreakers({ cooldownMs: 10_000, ...opts, now: () => clock.t });
  return { clock, breakers };
}

const retryable = { retryable: true, errorClass: "overloaded" } as const;
const P = "openai";
const M = "gpt-4.1-mini";

describe("closed → open", () => {
  it("opens after N consecutive retryable failures and explains why", () => {
    const { clock, breakers } = setup({ consecutiveFailures: 3 });
    breakers.recordFailure(P, M, retryable);
    breakers.recordFailure(P, M, retryable);
    expect(breakers.inspect(P, M)).toMatchObject({ state: "closed", allowsRequest: true, consecutiveFailures: 2 });
    breakers.recordFailure(P, M, retryable);
    const s = breakers.inspect(P, M);
    expect(s).toMatchObject({ state: "open", allowsRequest: false, openedAt: clock.t, retryAt: clock.t + 10_000, retryAfterMs: 10_000 });
    expect(s.lastFailure).toEqual({ errorClass: "overloaded", at: clock.t });
    expect(s.reason).toBe("open: 3 consecutive retryable failures (last: overloaded); cooldown 10000 ms; probe allowed in 10000 ms");
    expect(breakers.tryAcquire(P, M).allowsRequest).toBe(false);
  });

  it("resets the consecutive count on a success", () => {
    // failureRate 1: only the consecutive rule can open it (2 of 3 failing would trip 0.5)
    const { breakers } = setup({ consecutiveFailures: 3, failureRate: 1 });
    for (let i = 0; i < 10; i++) {
      breakers.recordFailure(P, M, retryable);
      breakers.recordFailure(P, M, retryable);
      breakers.recordSuccess(P, M);
    }
    expect(breakers.inspect(P, M).state).toBe("closed");
  });

  it("ignores failures that say nothing about the deployment (invalid request, auth, abort)", () => {
    const { breakers } = setup({ consecutiveFailures: 2 });
    for (const errorClass of ["invalid_request", "auth", "aborted"] as const) {
      const err = new ProviderError({ provider: P, errorClass, message: "x" });
      breakers.recordFailure(P, M, err);
      breakers.recordFailure(P, M, err);
    }
    expect(breakers.inspect(P, M)).toMatchObject({ state: "closed", consecutiveFailures: 0 });
  });

  it("takes a ProviderError as the failure report", () => {
    const { breakers } = setup({ consecutiveFailures: 1 });
    breakers.recordFailure(P, M, new ProviderError({ provider: P, errorClass: "rate_limited", message: "429", status: 429 }));
    expect(breakers.inspect(P, M)).toMatchObject({ state: "open", lastFailure: { errorClass: "rate_limited" } });
  });

  it("opens on the failure rate over the window once enough calls were seen", () => {
    const { breakers } = setup({ consecutiveFailures: 100, failureRate: 0.5, minimumCalls: 10, windowMs: 60_000 });
    for (let i = 0; i < 4; i++) {
      breakers.recordSuccess(P, M);
      breakers.recordFailure(P, M, retryable);
    }
    breakers.recordSuccess(P, M);
    expect(breakers.inspect(P, M)).toMatchObject({ state: "closed", window: { calls: 9, failures: 4 } });
    breakers.recordFailure(P, M, retryable); // 5 of 10
    const s = breakers.inspect(P, M);
    expect(s.state).toBe("open");
    expect(s.reason).toContain("5/10 calls failed within 60000 ms");
  });

  it("forgets failures that have left the window", () => {
    const { clock, breakers } = setup({ consecutiveFailures: 100, failureRate: 0.5, minimumCalls: 4, windowMs: 10_000 });
    breakers.recordFailure(P, M, retryable);
    breakers.recordFailure(P, M, retryable);
    breakers.recordFailure(P, M, retryable);
    clock.t += 11_000;
    expect(breakers.inspect(P, M).window).toEqual({ calls: 0, failures: 0 });
    breakers.recordSuccess(P, M);
    breakers.recordSuccess(P, M);
    breakers.recordSuccess(P, M);
    breakers.recordFailure(P, M, retryable); // 1 of 4 in the window
    expect(breakers.inspect(P, M)).toMatchObject({ state: "closed", window: { calls: 4, failures: 1 } });
  });

  it("keeps one breaker per provider+model", () => {
    const { breakers } = setup({ consecutiveFailures: 1 });
    breakers.recordFailure(P, M, retryable);
    expect(breakers.inspect(P, M).state).toBe("open");
    expect(breakers.inspect(P, "gpt-4.1").state).toBe("closed");
    expect(breakers.inspect("anthropic", M).state).toBe("closed");
  });
});

describe("open → half_open → closed / open", () => {
  const opened = () => {
    const s = setup({ consecutiveFailures: 1, cooldownMs: 10_000, maxCooldownMs: 35_000 });
    s.breakers.recordFailure(P, M, retryable);
    return s;
  };

  it("refuses calls until the cooldown is over, then lets exactly one probe through", () => {
    const { clock, breakers } = opened();
    clock.t += 9_999;
    expect(breakers.tryAcquire(P, M)).toMatchObject({ state: "open", allowsRequest: false, retryAfterMs: 1 });
    clock.t += 1;
    // inspect has no side effect: it only reports that the next request would be the probe
    expect(breakers.inspect(P, M)).toMatchObject({ state: "half_open", allowsRequest: true });
    expect(breakers.inspect(P, M)).toMatchObject({ state: "half_open", allowsRequest: true });
    const probe = breakers.tryAcquire(P, M);
    expect(probe).toMatchObject({ state: "half_open", allowsRequest: true });
    expect(probe.reason).toContain("the next request is the probe");
    const second = breakers.tryAcquire(P, M);
    expect(second).toMatchObject({ state: "half_open", allowsRequest: false });
    expect(second.reason).toContain("probe is in flight");
  });

  it("closes when the probe succeeds", () => {
    const { clock, breakers } = opened();
    clock.t += 10_000;
    breakers.tryAcquire(P, M);
    breakers.recordSuccess(P, M);
    expect(breakers.inspect(P, M)).toMatchObject({ state: "closed", allowsRequest: true, consecutiveFailures: 0 });
    expect(breakers.inspect(P, M).openedAt).toBeUndefined();
  });

  it("reopens when the probe fails, doubling the cooldown up to the maximum", () => {
    const { clock, breakers } = opened();
    const cooldowns: number[] = [];
    for (let i = 0; i < 4; i++) {
      clock.t = breakers.inspect(P, M).retryAt!;
      expect(breakers.tryAcquire(P, M).allowsRequest).toBe(true);
      breakers.recordFailure(P, M, retryable);
      const s = breakers.inspect(P, M);
      expect(s.state).toBe("open");
      expect(s.reason).toContain("probe failed (last: overloaded)");
      cooldowns.push(s.retryAt! - s.openedAt!);
    }
    expect(cooldowns).toEqual([20_000, 35_000, 35_000, 35_000]);
    // a successful probe resets the doubling
    clock.t = breakers.inspect(P, M).retryAt!;
    breakers.tryAcquire(P, M);
    breakers.recordSuccess(P, M);
    breakers.recordFailure(P, M, retryable);
    const s = breakers.inspect(P, M);
    expect(s.retryAt! - s.openedAt!).toBe(10_000);
  });

  it("stays open at least as long as the provider's retry-after asked", () => {
    const { clock, breakers } = setup({ consecutiveFailures: 1, cooldownMs: 10_000 });
    breakers.recordFailure(P, M, { retryable: true, errorClass: "rate_limited", retryAfterMs: 25_000 });
    expect(breakers.inspect(P, M).retryAt).toBe(clock.t + 25_000);
  });

  it("lets another request probe when the probe never reports back", () => {
    const { clock, breakers } = setup({ consecutiveFailures: 1, cooldownMs: 10_000, probeTimeoutMs: 5_000 });
    breakers.recordFailure(P, M, retryable);
    clock.t += 10_000;
    expect(breakers.tryAcquire(P, M).allowsRequest).toBe(true);
    clock.t += 4_999;
    expect(breakers.tryAcquire(P, M).allowsRequest).toBe(false);
    clock.t += 1;
    const again = breakers.tryAcquire(P, M);
    expect(again.allowsRequest).toBe(true);
    expect(again.reason).toContain("reported nothing within 5000 ms");
  });

  it("releases the probe without deciding when the probe fails for a non-retryable reason", () => {
    const { clock, breakers } = opened();
    clock.t += 10_000;
    breakers.tryAcquire(P, M);
    breakers.recordFailure(P, M, { retryable: false, errorClass: "invalid_request" });
    expect(breakers.inspect(P, M)).toMatchObject({ state: "half_open", allowsRequest: true });
    expect(breakers.tryAcquire(P, M).allowsRequest).toBe(true);
  });

  it("ignores late outcomes of calls sent before it opened", () => {
    const { clock, breakers } = opened();
    breakers.recordSuccess(P, M);
    breakers.recordFailure(P, M, retryable);
    expect(breakers.inspect(P, M)).toMatchObject({ state: "open", retryAt: clock.t + 10_000 });
  });
});

describe("snapshot", () => {
  it("lists every provider+model seen, sorted, with its effective state", () => {
    const { clock, breakers } = setup({ consecutiveFailures: 1 });
    breakers.recordSuccess("openai", "gpt-4.1");
    breakers.recordFailure("anthropic", "claude-haiku-4-5", retryable);
    breakers.recordFailure("ollama", "hf.co/x/y:Q4", retryable);
    clock.t += 10_000;
    breakers.recordFailure("ollama", "llama3.2", retryable);
    expect(breakers.snapshot().map((s) => [s.provider, s.model, s.state])).toEqual([
      ["anthropic", "claude-haiku-4-5", "half_open"],
      ["ollama", "hf.co/x/y:Q4", "half_open"],
      ["ollama", "llama3.2", "open"],
      ["openai", "gpt-4.1", "closed"],
    ]);
  });
});

describe("options", () => {
  it("rejects nonsensical settings at construction", () => {
    expect(() => createCircuitBreakers({ consecutiveFailures: 0 })).toThrow(/consecutiveFailures/);
    expect(() => createCircuitBreakers({ failureRate: 0 })).toThrow(/failureRate/);
    expect(() => createCircuitBreakers({ failureRate: 1.5 })).toThrow(/failureRate/);
    expect(() => createCircuitBreakers({ windowMs: 0 })).toThrow(/windowMs/);
  });
});
