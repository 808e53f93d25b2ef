/**
 * One-time sign-in tokens: `fabric dev` issues one for the developer and prints it in a
 * link to the console (`http://…/#sign-in=fabs_…` — in the fragment, so it never reaches
 * a server log or a Referer). IdentityService.ExchangeSignInToken spends it for a session.
 *
 * A token is `fabs_` + 32 random bytes (base64url); only its sha256 is stored. It works
 * once (spent by the same UPDATE that checks it) and for `signInTokenSeconds` only, so a
 * link left in a terminal's scrollback is worthless soon after.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { and, eq, gt, isNull, sql } from "drizzle-orm";
import type { Executor } from "../../db/database.js";
import { signInTokens } from "../../db/schema.js";
import { hashSecret } from "./authenticator.js";

export const signInTokenPrefix = "fabs_";
export const signInTokenSeconds = 10 * 60;
const signInTokenPattern = /^fabs_[A-Za-z0-9_-]{43}$/;

export async function issueSignInToken(ex: Executor, principalId: string, opts: { ttlSeconds?: number } = {}): Promise<{ token: string; expiresAt: Date }> {
  const token = signInTokenPrefix + randomBytes(32).toString("base64url");
  const ttl = opts.ttlSeconds ?? signInTokenSeconds;
  const [row] = await ex
    .insert(signInTokens)
    .values({ id: randomUUID(), principalId, tokenHash: hashSecret(token), expiresAt: sql`now() + make_interval(secs => ${ttl})` })
    .returning({ expiresAt: signInTokens.expiresAt });
  return { token, expiresAt: row!.expiresAt };
}

/** Spends a token: the principal it was issued to, or null when it is malformed, unknown, used or expired. */
export async function spendSignInToken(ex: Executor, token: string): Promise<string | null> {
  if (!signInTokenPattern.test(token)) return null;
  const t = signInTokens;
  const [row] = await ex
    .update(t)
    .set({ usedAt: sql`now()` })
    .where(and(eq(t.tokenHash, hashSecret(token)), isNull(t.usedAt), gt(t.expiresAt, sql`now()`)))
    .returning({ principalId: t.principalId });
  return row?.principalId ?? null;
}
