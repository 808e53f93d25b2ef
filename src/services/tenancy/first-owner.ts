/**
 * `fabric admin bootstrap`: the first owner of a production installation — an
 * organization, a user with the given email as its owner, and an API key for that user
 * (returned raw once; only its hash is stored). There is no caller yet, so this runs
 * from the CLI against the database, not through the API.
 *
 * Idempotent: with the same email and organization a second run changes nothing and
 * returns no key. When any owner exists already it refuses (`failed_precondition`,
 * code `owner_exists`) unless `force`, which adds this owner (or issues a new key to an
 * existing one). Concurrent runs are serialized by a transaction-scoped advisory lock.
 */
import { randomUUID } from "node:crypto";
import { and, eq, isNull } from "drizzle-orm";
import { lockBootstrap } from "../../db/bootstrap-lock.js";
import type { Db } from "../../db/database.js";
import { apiKeys, auditLog, memberships, organizations, principals } from "../../db/schema.js";
import { requireEmail } from "../../domain/email.js";
import { failedPrecondition } from "../../domain/errors.js";
import { newApiKey } from "../identity/authenticator.js";
import { requireName, requireSlug } from "./tenancy-validation.js";

export const bootstrapAuditActions = { bootstrap: "organization.bootstrap" } as const;

export interface FirstOwnerRequest {
  email: string;
  organizationName: string;
  /** Default: derived from the name. */
  slug?: string;
  force?: boolean;
}

export type FirstOwnerResult =
  | { outcome: "created"; organizationId: string; slug: string; principalId: string; apiKeyId: string; apiKey: string }
  /** This email already owns this organization: nothing changed, no key issued. */
  | { outcome: "unchanged"; organizationId: string; slug: string; principalId: string };

/** `Acme Corp.` → `acme-corp`. */
export const slugFromName = (name: string) =>
  name
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63);

export async function bootstrapFirstOwner(db: Db, req: FirstOwnerRequest): Promise<FirstOwnerResult> {
  const email = requireEmail(req.email);
  const name = requireName(req.organizationName, "organization");
  const slug = requireSlug(req.slug ?? slugFromName(name));
  return db.transaction(async (tx) => {
    await lockBootstrap(tx);
    let [org] = await tx.select().from(organizations).where(eq(organizations.slug, slug));
    let [user] = await tx.select().from(principals).where(eq(principals.email, email));
    const owns = async () =>
      org && user
        ? (await tx.select({ id: memberships.id }).from(memberships).where(and(eq(memberships.organizationId, org.id), eq(memberships.principalId, user.id), isNull(memberships.teamId), eq(memberships.role, "owner")))).length > 0
        : false;
    if (!req.force) {
      if (await owns()) return { outcome: "unchanged", organizationId: org!.id, slug, principalId: user!.id };
      const [other] = await tx
        .select({ email: principals.email, slug: organizations.slug })
        .from(memberships)
        .innerJoin(principals, eq(principals.id, memberships.principalId))
        .innerJoin(organizations, eq(organizations.id, memberships.organizationId))
        .where(eq(memberships.role, "owner"))
        .limit(1);
      if (other) throw failedPrecondition(`an owner exists already (${other.email ?? "a service account"} owns ${other.slug}); pass --force to add this one`, "owner_exists");
    }
    if (!org) [org] = await tx.insert(organizations).values({ id: randomUUID(), slug, name }).returning();
    if (!user) [user] = await tx.insert(principals).values({ id: randomUUID(), kind: "user", email, displayName: email.split("@")[0]! }).returning();
    if (!(await owns())) await tx.insert(memberships).values({ id: randomUUID(), organizationId: org!.id, principalId: user!.id, role: "owner" });
    const key = newApiKey();
    const apiKeyId = randomUUID();
    await tx.insert(apiKeys).values({ id: apiKeyId, organizationId: org!.id, principalId: user!.id, name: "bootstrap", prefix: key.prefix, secretHash: key.secretHash });
    await tx.insert(auditLog).values({
      organizationId: org!.id,
      actorPrincipalId: null,
      apiKeyId: null,
      action: bootstrapAuditActions.bootstrap,
      resource: `organization:${org!.id}`,
      requestId: `cli-${randomUUID()}`,
      clientAddress: "cli",
      summary: { owner: email, principal_id: user!.id, api_key_id: apiKeyId, force: Boolean(req.force) },
    });
    return { outcome: "created", organizationId: org!.id, slug, principalId: user!.id, apiKeyId, apiKey: key.raw };
  });
}
