/**
 * Authentication: `Authorization: Bearer fab_<prefix>_<secret>` API keys (prefix lookup,
 * constant-time hash comparison, expiry, revocation), access tokens (HS256 JWT: signature,
 * expiry, and that their session is still alive), then — only under `fabric dev`, from
 * a loopback client — the `X-Principal-Id` header. One function for both transports.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { and, eq, gt, isNull, sql } from "drizzle-orm";
import type { Db } from "../../db/database.js";
import { apiKeys, memberships, principals, refreshTokens } from "../../db/schema.js";
import { SignJWT, jwtVerify } from "jose";
import { unauthenticated } from "../../domain/errors.js";
import { isUuid, type Caller } from "../call-context.js";

const keyPattern = /^fab_([a-z0-9]{8})_([A-Za-z0-9]{20,128})$/;

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** A new raw API key (shown once) with what is stored of it. */
export function newApiKey(): { raw: string; prefix: string; secretHash: string } {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const prefix = Array.from(randomBytes(8), (b) => alphabet[b % 36]).join("");
  const secret = randomBytes(24).toString("base64url").replace(/[-_]/g, "x");
  return { raw: `fab_${prefix}_${secret}`, prefix, secretHash: hashSecret(secret) };
}

export function parseApiKey(raw: string): { prefix: string; secret: string } | null {
  const m = keyPattern.exec(raw);
  return m ? { prefix: m[1]!, secret: m[2]! } : null;
}

export interface Credentials {
  authorization?: string | null;
  principalId?: string | null;
  organizationId?: string | null;
  /** The client's network address: `X-Principal-Id` is honoured only from loopback. */
  clientAddress?: string;
}

export interface Authenticator {
  authenticate(c: Credentials): Promise<Caller>;
}

export interface AuthenticatorOptions {
  /**
   * Honour `X-Principal-Id` (impersonation by id, no secret): only `fabric dev` bound to
   * loopback sets it, and even then only loopback clients may use it.
   */
  principalHeader: boolean;
  /** HS256 secret for access tokens (JWT_SECRET). */
  jwtSecret: Uint8Array;
}

/**
 * Resolution order: `Bearer fab_…` API key → `Bearer <JWT>` → `X-Principal-Id` (`fabric dev`
 * on loopback only). A JWT or dev-header caller acts in the organization `X-Organization-Id` names,
 * or else in their only organization (the guard checks membership).
 */
export function createAuthenticator(db: Db, opts: AuthenticatorOptions): Authenticator {
  // last_used_at is written at most once a minute per key, off the request path.
  const lastTouched = new Map<string, number>();

  async function organizationFor(principalId: string, requested: string | null | undefined): Promise<string> {
    if (requested) return requested; // validated (membership, UUID) by the guard
    const rows = await db.selectDistinct({ organizationId: memberships.organizationId }).from(memberships).where(eq(memberships.principalId, principalId)).limit(2);
    return rows.length === 1 ? rows[0]!.organizationId : "";
  }

  return {
    async authenticate(c) {
      const auth = c.authorization?.trim();
      if (auth) {
        const m = /^Bearer\s+(\S+)$/i.exec(auth);
        if (!m) throw unauthenticated("the Authorization header must be `Bearer <API key or access token>`");
        const token = m[1]!;
        if (token.startsWith("fab_")) return apiKeyCaller(token);
        const { principalId, sessionId } = await verifyAccessToken(token, opts.jwtSecret);
        const [, organizationId] = await Promise.all([sessionId ? requireLiveSession(principalId, sessionId) : null, organizationFor(principalId, c.organizationId)]);
        return { principalId, organizationId, via: "jwt", scopes: [] };
      }
      if (c.principalId) {
        if (!opts.principalHeader || !isLoopbackAddress(c.clientAddress)) throw unauthenticated("X-Principal-Id is accepted only by `fabric dev`, from loopback");
        if (!isUuid(c.principalId)) throw unauthenticated("X-Principal-Id must be a principal id (UUID)");
        const [p] = await db.select({ id: principals.id }).from(principals).where(eq(principals.id, c.principalId));
        if (!p) throw unauthenticated("no such principal");
        return { principalId: p.id, organizationId: await organizationFor(p.id, c.organizationId), via: "dev_header", scopes: [] };
      }
      throw unauthenticated();
    },
  };

  /**
   * A session lives while one of its refresh tokens does (not revoked, not expired): Logout
   * and theft detection revoke them, so the session's access tokens stop at once. One
   * indexed lookup (`refresh_tokens_live_session`). Rotation spends the old token and
   * inserts the new one in one transaction, so this one-snapshot query never sees a
   * rotating session without a live token. A dead session answers like an expired token.
   */
  async function requireLiveSession(principalId: string, sessionId: string): Promise<void> {
    const t = refreshTokens;
    const live = await db
      .select({ id: t.id })
      .from(t)
      .where(and(eq(t.sessionId, sessionId), isNull(t.revokedAt), eq(t.principalId, principalId), gt(t.expiresAt, sql`now()`)))
      .limit(1);
    if (live.length === 0) throw invalidAccessToken();
  }

  async function apiKeyCaller(raw: string): Promise<Caller> {
    const parsed = parseApiKey(raw);
    if (!parsed) throw unauthenticated("invalid API key");
    const [key] = await db.select().from(apiKeys).where(eq(apiKeys.prefix, parsed.prefix));
    const given = Buffer.from(hashSecret(parsed.secret), "hex");
    const stored = Buffer.from(key?.secretHash ?? "0".repeat(64), "hex");
    // Compare even when the prefix is unknown, so timing says nothing about which part was wrong.
    const match = timingSafeEqual(given, stored) && !!key;
    if (!match || !key) throw unauthenticated("invalid API key");
    if (key.revokedAt) throw unauthenticated("this API key was revoked");
    if (key.expiresAt && key.expiresAt.getTime() <= Date.now()) throw unauthenticated("this API key has expired");
    const now = Date.now();
    if ((lastTouched.get(key.id) ?? 0) < now - 60_000) {
      lastTouched.set(key.id, now);
      void db.update(apiKeys).set({ lastUsedAt: sql`now()` }).where(eq(apiKeys.id, key.id)).catch(() => {});
    }
    return { principalId: key.principalId, organizationId: key.organizationId, via: "api_key", apiKeyId: key.id, scopes: key.scopes };
  }
}

/**
 * Access tokens: HS256, `sub` = principal id, `sid` = the login session (the refresh
 * tokens' `session_id`), `typ` = "access", short-lived. Tokens issued before sessions
 * existed have no `sid`: they are checked by signature and expiry only, until they expire.
 */
export const accessTokenSeconds = 15 * 60;

export async function issueAccessToken(principalId: string, sessionId: string, secret: Uint8Array): Promise<string> {
  return new SignJWT({ typ: "access", sid: sessionId })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(principalId)
    .setIssuedAt()
    .setIssuer("fabric")
    .setExpirationTime(`${accessTokenSeconds}s`)
    .sign(secret);
}

/** Bad signature, expired, or (checked by the authenticator) a dead session: one answer for all. */
const invalidAccessToken = () => unauthenticated("invalid or expired access token");

/** The principal and session (null for a token from before sessions) of a well-signed, unexpired access token. */
export async function verifyAccessToken(token: string, secret: Uint8Array): Promise<{ principalId: string; sessionId: string | null }> {
  try {
    // Every access token expires and belongs to a session: one without `exp` or `sid` is refused.
    const { payload } = await jwtVerify(token, secret, { algorithms: ["HS256"], issuer: "fabric", requiredClaims: ["exp", "sub", "sid"] });
    if (payload["typ"] !== "access" || typeof payload.sub !== "string" || !isUuid(payload.sub)) throw new Error("not an access token");
    const sid = payload["sid"];
    if (typeof sid !== "string" || !isUuid(sid)) throw new Error("not a session id");
    return { principalId: payload.sub, sessionId: sid };
  } catch {
    throw invalidAccessToken();
  }
}

/** 127.0.0.0/8 and ::1, also IPv4-mapped (`::ffff:127.0.0.1`). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return address === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** JWT_SECRET as key bytes; in development without one, a random per-process secret. */
export function jwtSecretFrom(configured: string | undefined): Uint8Array {
  return configured ? new TextEncoder().encode(configured) : new Uint8Array(randomBytes(32));
}
