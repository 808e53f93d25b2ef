import { ProviderError } from "./errors.js";

export interface RetryOptions {
  /** Total attempts including the first. Default 3. */
  maxAttempts?: number;
  /** Backoff before retry n is baseDelayMs × 2^(n-1), half of it jittered. Default 250. */
  baseDelayMs?: number;
  /**
   * Upper bound on any single wait, default 10 000. A server's retry-after longer than this
   * is not slept through: the error is rethrown at once so the caller can fail over to
   * another provider instead of blocking.
   */
  maxDelayMs?: number;
  /** Aborting cancels a pending wait; the loop then throws an "aborted" ProviderError. */
  signal?: AbortSignal;
  /** Called before each wait; for logs and metrics. */
  onRetry?: (info: { error: ProviderError; attempt: number; delayMs: number }) => void;
  /** Source of jitter in [0, 1); injectable for tests. */
  random?: () => number;
}

/**
 * Wait before retry `attempt` (1-based count of failures so far): the server's retry-after
 * when it gave one (never less), otherwise exponential backoff with equal jitter.
 */
export function retryDelayMs(error: ProviderError, attempt: number, opts: Pick<RetryOptions, "baseDelayMs" | "maxDelayMs" | "random"> = {}): number {
  const base = opts.baseDelayMs ?? 250;
  const max = opts.maxDelayMs ?? 10_000;
  if (error.retryAfterMs !== undefined) return error.retryAfterMs;
  const exp = Math.min(max, base * 2 ** (attempt - 1));
  return Math.round(exp / 2 + (exp / 2) * (opts.random ?? Math.random)());
}

function abortedError(provider: string, signal: AbortSignal): ProviderError {
  return new ProviderError({ provider, errorClass: "aborted", message: `${provider}: aborted while waiting to retry`, cause: signal.reason });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * THE retry loop for provider calls (the SDKs' own are switched off with maxRetries: 0, so
 * nothing is retried twice over). Retries only ProviderErrors marked retryable — transient,
 * rate_limited, overloaded, timeout — never aborted, invalid_request or auth; anything that
 * is not a ProviderError is a bug and is rethrown untouched.
 *
 * `fn` receives the 1-based attempt number. Wrap a stream only up to its first delta:
 * retrying after output was yielded would duplicate it.
 */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const maxAttempts = Math.max(1, opts.maxAttempts ?? 3);
  const maxDelayMs = opts.maxDelayMs ?? 10_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof ProviderError) || !err.retryable || attempt >= maxAttempts) throw err;
      if (opts.signal?.aborted) throw abortedError(err.provider, opts.signal);
      if (err.retryAfterMs !== undefined && err.retryAfterMs > maxDelayMs) throw err;
      const delayMs = retryDelayMs(err, attempt, opts);
      opts.onRetry?.({ error: err, attempt, delayMs });
      if (!(await sleep(delayMs, opts.signal))) throw abortedError(err.provider, opts.signal!);
    }
  }
}
