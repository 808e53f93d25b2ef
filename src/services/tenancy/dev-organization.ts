/**
 * `fabric dev` bootstrap: a default organization with an owner principal and an API key
 * for it. Idempotent; `FABRIC_DEV_API_KEY` pins the key so scripts can rely on it,
 * otherwise a fresh key replaces the previous dev key on every start.
 */
import { randomUUID } from "node:crypto";
import { and, eq, isNull, sql } from "drizzle-orm";
import type { Db } from "../../db/database.js";
import { apiKeys, memberships, organizations, principals } from "../../db/schema.js";
import { hashSecret, newApiKey, parseApiKey } from "../identity/authenticator.js";

export interface DevBootstrap {
  organizationId: string;
  principalId: string;
  apiKey: string;
}

const devKeyName = "fabric dev";

export async function bootstrapDevOrganization(db: Db, opts: { apiKey?: string } = {}): Promise<DevBootstrap> {
  return db.transaction(async (tx) => {
    await tx.insert(organizations).values({ id: randomUUID(), slug: "default", name: "Default organization" }).onConflictDoNothing();
    const [org] = await tx.select().from(organizations).where(eq(organizations.slug, "default"));
    await tx.insert(principals).values({ id: randomUUID(), kind: "user", email: "dev@fabric.local", displayName: "Developer" }).onConflictDoNothing();
    const [principal] = await tx.select().from(principals).where(eq(principals.email, "dev@fabric.local"));
    await tx.insert(memberships).values({ id: randomUUID(), organizationId: org!.id, principalId: principal!.id, role: "owner" }).onConflictDoNothing();

    let raw: string;
    if (opts.apiKey) {
      const parsed = parseApiKey(opts.apiKey);
      if (!parsed) throw new Error("FABRIC_DEV_API_KEY is not a well-formed fab_ key");
      const [existing] = await tx.select().from(apiKeys).where(eq(apiKeys.prefix, parsed.prefix));
      if (existing && (existing.secretHash !== hashSecret(parsed.secret) || existing.organizationId !== org!.id)) {
        throw new Error("FABRIC_DEV_API_KEY collides with another key's prefix; choose another value");
      }
      if (!existing) await tx.insert(apiKeys).values({ id: randomUUID(), organizationId: org!.id, principalId: principal!.id, name: devKeyName, prefix: parsed.prefix, secretHash: hashSecret(parsed.secret) });
      else if (existing.revokedAt) await tx.update(apiKeys).set({ revokedAt: null }).where(eq(apiKeys.id, existing.id));
      raw = opts.apiKey;
    } else {
      await tx
        .update(apiKeys)
        .set({ revokedAt: sql`now()` })
        .where(and(eq(apiKeys.organizationId, org!.id), eq(apiKeys.name, devKeyName), isNull(apiKeys.revokedAt)));
      const key = newApiKey();
      await tx.insert(apiKeys).values({ id: randomUUID(), organizationId: org!.id, principalId: principal!.id, name: devKeyName, prefix: key.prefix, secretHash: key.secretHash });
      raw = key.raw;
    }
    return { organizationId: org!.id, principalId: principal!.id, apiKey: raw };
  });
}
