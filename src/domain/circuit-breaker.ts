/**
 * Circuit breakers, one per provider+model ("cool down a failing deployment, not the whole
 * provider"). Pure state over an injected clock; the caller reports outcomes.
 *
 *   closed ──(N consecutive retryable failures, or failure rate ≥ R over the window)──▶ open
 *   open ──(cooldown elapsed; the next tryAcquire takes the probe)──▶ half_open
 *   half_open ──(probe succeeds)──▶ closed
 *   half_open ──(probe fails with a retryable error)──▶ open, with the cooldown doubled
 *
 * Only retryable failures (transient, rate_limited, overloaded, timeout) count against a
 * deployment. The caller's own mistakes (invalid_request, auth) and aborts say nothing about
 * the deployment's health: they are neutral, and in half_open they just release the probe.
 *
 * Usage: the router reads `inspect` (no side effects) to rank candidates; the caller, just
 * before each attempt, calls `tryAcquire` — which is what claims the single half-open probe,
 * so two concurrent requests cannot both probe — and afterwards `recordSuccess` or
 * `recordFailure`.
 */

export type BreakerState = "closed" | "open" | "half_open";

export interface CircuitBreakerOptions {
  /** Consecutive retryable failures that open a closed breaker. Default 5. */
  consecutiveFailures?: number;
  /** Failure rate (0–1] over `windowMs` that opens a closed breaker. Default 0.5. */
  failureRate?: number;
  /** The rate applies only once this many calls fall in the window. Default 20. */
  minimumCalls?: number;
  /** Length of the sliding failure-rate window (kept in 10 buckets). Default 60 000. */
  windowMs?: number;
  /** How long an opened breaker refuses calls. Default 30 000. */
  cooldownMs?: number;
  /** Each reopening after a failed probe doubles the cooldown, up to this. Default 300 000. */
  maxCooldownMs?: number;
  /**
   * A probe that has reported nothing after this long is presumed lost (its caller crashed),
   * and another request may probe. Default: `cooldownMs`.
   */
  probeTimeoutMs?: number;
  /** Milliseconds since the epoch. Default `Date.now`. */
  now?: () => number;
}

/** A failure as reported by the caller; a `ProviderError` has this shape. */
export interface BreakerFailure {
  retryable: boolean;
  errorClass?: string;
  /** The provider's retry-after: an opening breaker stays open at least this long (≤ maxCooldownMs). */
  retryAfterMs?: number;
}

/** Everything needed to explain the breaker's decision. */
export interface BreakerStatus {
  provider: string;
  model: string;
  /** The effective state: an open breaker whose cooldown is over reads as `half_open`. */
  state: BreakerState;
  /** Whether a request may be sent now. */
  allowsRequest: boolean;
  /** One line saying why, e.g. "open: 5 consecutive retryable failures (last: overloaded); probe allowed in 12000 ms". */
  reason: string;
  consecutiveFailures: number;
  window: { calls: number; failures: number };
  openedAt?: number;
  /** When an open breaker lets its probe through. */
  retryAt?: number;
  /** `retryAt - now` while that is in the future. */
  retryAfterMs?: number;
  lastFailure?: { errorClass?: string; at: number };
}

/** The read-only view the router needs. */
export interface BreakerView {
  inspect(provider: string, model: string): BreakerStatus;
}

export interface CircuitBreakers extends BreakerView {
  /**
   * Asks to send a request now. Claims the probe when the breaker is due one (moving it to
   * half_open); `allowsRequest` on the result says whether to go ahead.
   */
  tryAcquire(provider: string, model: string): BreakerStatus;
  recordSuccess(provider: string, model: string): void;
  recordFailure(provider: string, model: string, failure: BreakerFailure): void;
  /** The status of every provider+model seen so far, sorted by key. */
  snapshot(): BreakerStatus[];
}

interface Bucket {
  start: number;
  calls: number;
  failures: number;
}

interface Entry {
  provider: string;
  model: string;
  state: BreakerState;
  consecutiveFailures: number;
  buckets: Bucket[];
  openedAt?: number;
  retryAt?: number;
  openReason?: string;
  /** Openings since the breaker was last closed; drives the cooldown doubling. */
  reopenings: number;
  probeStartedAt?: number;
  lastFailure?: { errorClass?: string; at: number };
}

const WINDOW_BUCKETS = 10;

export function createCircuitBreakers(options: CircuitBreakerOptions = {}): CircuitBreakers {
  const threshold = options.consecutiveFailures ?? 5;
  const failureRate = options.failureRate ?? 0.5;
  const minimumCalls = options.minimumCalls ?? 20;
  const windowMs = options.windowMs ?? 60_000;
  const cooldownMs = options.cooldownMs ?? 30_000;
  const maxCooldownMs = Math.max(cooldownMs, options.maxCooldownMs ?? 300_000);
  const probeTimeoutMs = options.probeTimeoutMs ?? cooldownMs;
  const now = options.now ?? Date.now;
  if (!(threshold >= 1)) throw new Error("consecutiveFailures must be at least 1");
  if (!(failureRate > 0 && failureRate <= 1)) throw new Error("failureRate must be in (0, 1]");
  if (!(windowMs > 0) || !(cooldownMs >= 0)) throw new Error("windowMs must be positive and cooldownMs non-negative");
  const bucketMs = windowMs / WINDOW_BUCKETS;

  const entries = new Map<string, Entry>();
  const keyOf = (provider: string, model: string) => JSON.stringify([provider, model]);
  const entryOf = (provider: string, model: string): Entry => {
    const key = keyOf(provider, model);
    let e = entries.get(key);
    if (!e) {
      e = { provider, model, state: "closed", consecutiveFailures: 0, buckets: [], reopenings: 0 };
      entries.set(key, e);
    }
    return e;
  };

  const windowCounts = (e: Entry, t: number) => {
    let calls = 0;
    let failures = 0;
    for (const b of e.buckets) {
      if (b.start > t - windowMs) {
        calls += b.calls;
        failures += b.failures;
      }
    }
    return { calls, failures };
  };

  const count = (e: Entry, t: number, failed: boolean) => {
    const start = Math.floor(t / bucketMs) * bucketMs;
    e.buckets = e.buckets.filter((b) => b.start > t - windowMs);
    let bucket = e.buckets.find((b) => b.start === start);
    if (!bucket) {
      bucket = { start, calls: 0, failures: 0 };
      e.buckets.push(bucket);
    }
    bucket.calls++;
    if (failed) bucket.failures++;
  };

  const open = (e: Entry, t: number, reason: string, retryAfterMs: number | undefined) => {
    const cooldown = Math.min(maxCooldownMs, Math.max(cooldownMs * 2 ** e.reopenings, retryAfterMs ?? 0));
    e.state = "open";
    e.openedAt = t;
    e.retryAt = t + cooldown;
    e.openReason = `${reason}; cooldown ${cooldown} ms`;
    e.reopenings++;
    delete e.probeStartedAt;
  };

  const close = (e: Entry) => {
    e.state = "closed";
    e.consecutiveFailures = 0;
    e.buckets = [];
    e.reopenings = 0;
    delete e.openedAt;
    delete e.retryAt;
    delete e.openReason;
    delete e.probeStartedAt;
  };

  const probeInFlight = (e: Entry, t: number) => e.probeStartedAt !== undefined && t - e.probeStartedAt < probeTimeoutMs;

  const status = (provider: string, model: string, e: Entry | undefined, t: number): BreakerStatus => {
    // Built by assignment rather than spreads: the router inspects every candidate per decision.
    const s: BreakerStatus = {
      provider,
      model,
      state: "closed",
      allowsRequest: true,
      reason: "",
      consecutiveFailures: e?.consecutiveFailures ?? 0,
      window: e ? windowCounts(e, t) : { calls: 0, failures: 0 },
    };
    if (e?.openedAt !== undefined) s.openedAt = e.openedAt;
    if (e?.retryAt !== undefined) s.retryAt = e.retryAt;
    if (e?.lastFailure) s.lastFailure = e.lastFailure;
    if (!e || e.state === "closed") {
      s.reason = `closed: ${s.consecutiveFailures} consecutive retryable failures, ${s.window.failures}/${s.window.calls} failed in the window`;
      return s;
    }
    const opened = e.openReason ?? "opened";
    if (e.state === "open" && t < (e.retryAt ?? 0)) {
      s.state = "open";
      s.allowsRequest = false;
      s.retryAfterMs = (e.retryAt ?? 0) - t;
      s.reason = `open: ${opened}; probe allowed in ${s.retryAfterMs} ms`;
      return s;
    }
    s.state = "half_open";
    if (e.state === "half_open" && probeInFlight(e, t)) {
      s.allowsRequest = false;
      s.reason = `half_open: a probe is in flight since ${e.probeStartedAt}`;
    } else if (e.state === "half_open" && e.probeStartedAt !== undefined) {
      s.reason = `half_open: the probe sent at ${e.probeStartedAt} reported nothing within ${probeTimeoutMs} ms; the next request probes again`;
    } else {
      s.reason = `half_open: cooldown over (${opened}); the next request is the probe`;
    }
    return s;
  };

  return {
    inspect(provider, model) {
      return status(provider, model, entries.get(keyOf(provider, model)), now());
    },

    tryAcquire(provider, model) {
      const t = now();
      const e = entries.get(keyOf(provider, model));
      const s = status(provider, model, e, t);
      if (e && s.allowsRequest && s.state === "half_open") {
        e.state = "half_open";
        e.probeStartedAt = t;
      }
      return s;
    },

    recordSuccess(provider, model) {
      const t = now();
      const e = entryOf(provider, model);
      if (e.state === "half_open") return close(e);
      // A late success of a call sent before the breaker opened does not cut the cooldown short.
      if (e.state === "open") return;
      e.consecutiveFailures = 0;
      count(e, t, false);
    },

    recordFailure(provider, model, failure) {
      const t = now();
      const e = entryOf(provider, model);
      if (!failure.retryable) {
        // Neutral: the deployment answered; the request or the caller was the problem.
        if (e.state === "half_open") delete e.probeStartedAt;
        return;
      }
      e.lastFailure = { ...(failure.errorClass !== undefined ? { errorClass: failure.errorClass } : {}), at: t };
      const last = failure.errorClass ? ` (last: ${failure.errorClass})` : "";
      if (e.state === "half_open") return open(e, t, `probe failed${last}`, failure.retryAfterMs);
      if (e.state === "open") return;
      e.consecutiveFailures++;
      count(e, t, true);
      const w = windowCounts(e, t);
      if (e.consecutiveFailures >= threshold) {
        open(e, t, `${e.consecutiveFailures} consecutive retryable failures${last}`, failure.retryAfterMs);
      } else if (w.calls >= minimumCalls && w.failures >= failureRate * w.calls) {
        open(e, t, `${w.failures}/${w.calls} calls failed within ${windowMs} ms${last}`, failure.retryAfterMs);
      }
    },

    snapshot() {
      const t = now();
      return [...entries.keys()].sort().map((key) => {
        const e = entries.get(key)!;
        return status(e.provider, e.model, e, t);
      });
    },
  };
}
