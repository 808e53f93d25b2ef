/**
 * Fixed one-minute request windows per subject, counted in the database so every control
 * plane shares them (`db/rate-limits.ts`). Subjects: `api_key:<id>` (provider requests under
 * a policy's `requests_per_minute_per_key`), `login:<email>` and `auth_address:<ip>`
 * (sign-up and login attempts, which each cost a deliberately slow password hash).
 *
 * A fixed window admits up to twice the limit across a window boundary; it is one
 * statement per request and needs no clean-up, which is the trade.
 */
import type { Executor } from "../db/database.js";
import { countRequest } from "../db/rate-limits.js";
import { DomainError } from "../domain/errors.js";
import { retryAfterSeconds } from "../domain/policy.js";

/** Counts one request of `subject`, or refuses with 429 `rate_limited` and the seconds until the next window. */
export async function enforceRateLimit(ex: Executor, subject: string, limit: number, refusal: string): Promise<void> {
  if (await countRequest(ex, subject, limit)) return;
  const now = new Date();
  const nextMinute = new Date(Math.floor(now.getTime() / 60_000) * 60_000 + 60_000);
  throw new DomainError("resource_exhausted", refusal, { code: "rate_limited", retryAfterSeconds: retryAfterSeconds(nextMinute, now) });
}
