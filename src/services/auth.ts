/**
 * Authentication: `Authorization: Bearer fab_<prefix>_<secret>` API keys (prefix lookup,
 * constant-time hash comparison, expiry, revocation), then — in development only — the
 * `X-Principal-Id` header. One function for both transports.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../db/database.js";
import { apiKeys, memberships } from "../db/schema.js";
import { DomainError, unauthenticated } from "../domain/errors.js";
import { isUuid, type Caller } from "./call-context.js";

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
}

export interface Authenticator {
  authenticate(c: Credentials): Promise<Caller>;
}

export function createAuthenticator(db: Db, opts: { development: boolean }): Authenticator {
  // last_used_at is written at most once a minute per key, off the request path.
  const lastTouched = new Map<string, number>();
  return {
    async authenticate(c) {
      const auth = c.authorization?.trim();
      if (auth) {
        const m = /^Bearer\s+(\S+)$/i.exec(auth);
        const parsed = m ? parseApiKey(m[1]!) : null;
        if (!parsed) throw unauthenticated("the Authorization header must be `Bearer fab_…`");
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
        return { principalId: key.principalId, organizationId: key.organizationId, apiKeyId: key.id, scopes: key.scopes };
      }
      if (c.principalId) {
        if (!opts.development) throw unauthenticated("X-Principal-Id is accepted only when FABRIC_ENV=development");
        if (!isUuid(c.principalId)) throw unauthenticated("X-Principal-Id must be a principal id (UUID)");
        const orgFilter = c.organizationId && isUuid(c.organizationId) ? eq(memberships.organizationId, c.organizationId) : undefined;
        const [m] = await db
          .select({ organizationId: memberships.organizationId })
          .from(memberships)
          .where(and(eq(memberships.principalId, c.principalId), orgFilter))
          .orderBy(memberships.createdAt)
          .limit(1);
        if (!m) throw unauthenticated("that principal is not a member of any (matching) organization");
        return { principalId: c.principalId, organizationId: m.organizationId, scopes: [] };
      }
      throw unauthenticated();
    },
  };
}

/** The single permission decision both transports call before any operation runs. */
export function authorize(caller: Caller, action: string | undefined): void {
  if (!action) throw new DomainError("permission_denied", "this operation declares no permission and is refused");
  // Until RBAC lands (roles × actions), any member of the organization may act in it;
  // a key's scopes can only narrow that.
  if (caller.scopes.length && !caller.scopes.some((s) => scopeCovers(s, action))) {
    throw new DomainError("permission_denied", `this API key's scopes do not allow ${action}`);
  }
}

/** `workflows:write` covers `workflow.write` and `workflow.read`; `runs:read` covers `run.read`. */
function scopeCovers(scope: string, action: string): boolean {
  const [res, level] = scope.split(":");
  const [aRes, verb] = action.split(".");
  if (!res || !aRes || res.replace(/s$/, "") !== aRes) return false;
  return level === "write" || verb === "read";
}

export { randomUUID };
