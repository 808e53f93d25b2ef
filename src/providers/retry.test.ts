import { describe, expect, it, vi } from "vitest";
import { ProviderError, type ProviderErrorClass } from "./errors.js";
import { retryDelayMs, withRetries } from "./retry.js";

const err = (errorClass: ProviderErrorClass, extra: { retryAfterMs?: number } = {}) =>
  new ProviderError({ provider: "p", errorClass, message: errorClass, ...extra });

function failingThen<T>(errors: unknown[], value: T) {
  return vi.fn(async () => {
    const e = errors.shift();
    if (e) throw e;
    return value;
  });
}

describe("withRetries", () => {
  it.each(["transient", "rate_limited", "overloaded", "timeout"] as const)("retries %s", async (cls) => {
    const fn = failingThen([err(cls), err(cls)], "ok");
    await expect(withRetries(fn, { baseDelayMs: 1 })).resolves.toBe("ok");
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it.each(["aborted", "invalid_request", "auth"] as const)("never retries %s", async (cls) => {
    const fn = failingThen([err(cls)], "ok");
    await expect(withRetries(fn, { baseDelayMs: 1 })).rejects.toMatchObject({ errorClass: cls });
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it("stops after maxAttempts and passes the attempt number", async () => {
    const attempts: number[] = [];
    const fn = vi.fn(async (attempt: number) => {
      attempts.push(attempt);
      throw err("transient");
    });
    await expect(withRetries(fn, { maxAttempts: 4, baseDelayMs: 1 })).rejects.toMatchObject({ errorClass: "transient" });
    expect(attempts).toEqual([1, 2, 3, 4]);
  });

  it("rethrows non-ProviderErrors untouched (they are bugs)", async () => {
    const bug = new RangeError("bug");
    const fn = failingThen([bug], "ok");
    await expect(withRetries(fn, { baseDelayMs: 1 })).rejects.toBe(bug);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it("waits exactly retryAfterMs when the server gave one", async () => {
    const delays: number[] = [];
    const started = Date.now();
    await withRetries(failingThen([err("rate_limited", { retryAfterMs: 120 })], "ok"), {
      baseDelayMs: 1,
      onRetry: ({ delayMs }) => delays.push(delayMs),
    });
    expect(delays).toEqual([120]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(119);
  });

  it("does not sleep through a retry-after beyond maxDelayMs", async () => {
    const fn = failingThen([err("rate_limited", { retryAfterMs: 60_000 })], "ok");
    await expect(withRetries(fn, { maxDelayMs: 1000 })).rejects.toMatchObject({ retryAfterMs: 60_000 });
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it("an abort during the wait ends the loop with an aborted error", async () => {
    const ac = new AbortController();
    const fn = failingThen([err("overloaded", { retryAfterMs: 5000 })], "ok");
    setTimeout(() => ac.abort(), 20);
    const started = Date.now();
    await expect(withRetries(fn, { signal: ac.signal })).rejects.toMatchObject({ errorClass: "aborted", provider: "p" });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(fn).toHaveBeenCalledTimes(1);
  });
});

describe("retryDelayMs", () => {
  it("grows exponentially with equal jitter, capped by maxDelayMs", () => {
    const e = err("transient");
    const opts = { baseDelayMs: 100, maxDelayMs: 1000 };
    expect([1, 2, 3, 4, 5].map((a) => retryDelayMs(e, a, { ...opts, random: () => 0 }))).toEqual([50, 100, 200, 400, 500]);
    expect([1, 2, 3, 4, 5].map((a) => retryDelayMs(e, a, { ...opts, random: () => 0.999999 }))).toEqual([100, 200, 400, 800, 1000]);
  });

  it("uses the server's retry-after as is", () => {
    expect(retryDelayMs(err("rate_limited", { retryAfterMs: 700 }), 1, { baseDelayMs: 10 })).toBe(700);
  });
});
