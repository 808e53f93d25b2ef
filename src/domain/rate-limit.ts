/**
 * Request rate limits: fixed one-minute windows per subject, counted in the database so
 * every control plane shares them (`db/rate-limits.ts` `countRequest`). Subjects:
 * `api_key:<id>` (provider requests under a policy's `requests_per_minute_per_key`),
 * and `auth_address:<ip>` (sign-up and login attempts, which each cost a deliberately slow
 * password hash). Failed logins per (address, email) pair are counted apart, for an
 * exponential delay (`db/rate-limits.ts` `loginFailures`).
 *
 * A fixed window admits up to twice the limit across a window boundary; it is one
 * statement per request and needs no clean-up, which is the trade.
 */
import { DomainError } from "./errors.js";
import { retryAfterSeconds } from "./policy.js";

/** The refusal of a request beyond its limit: 429 `rate_limited`, retry after `afterSeconds` or when the next window starts. */
export function rateLimitRefusal(message: string, afterSeconds?: number, now = new Date()): DomainError {
  if (afterSeconds !== undefined) return new DomainError("resource_exhausted", message, { code: "rate_limited", retryAfterSeconds: Math.max(1, Math.ceil(afterSeconds)) });
  const nextMinute = new Date(Math.floor(now.getTime() / 60_000) * 60_000 + 60_000);
  return new DomainError("resource_exhausted", message, { code: "rate_limited", retryAfterSeconds: retryAfterSeconds(nextMinute, now) });
}
