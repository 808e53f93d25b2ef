/**
 * ApiKeyService: organization-scoped API keys (`fab_<prefix>_<secret>`). Only a hash of
 * the secret is stored; the raw key is returned once, at creation or rotation. Rotation
 * replaces prefix and secret in one UPDATE, so the old key stops authenticating on the
 * very next request; revocation likewise (the authenticator reads the row every time).
 *
 * Who may do what (on top of the guard's "allowed somewhere in the organization"):
 * - own keys: the `own` grants of the caller's role (members manage their own keys);
 * - other principals' keys: the action organization-wide (admins, owners); a member sees
 *   only their own keys, so another's key answers "not found" to them, as in the list;
 * - nobody obtains a raw key more powerful than what they hold: creating or rotating a
 *   key of a principal whose organization role outranks the caller's is refused, and a
 *   caller using a scoped key can only create or rotate keys its scopes cover.
 * Every change emits `api_key.created|rotated|revoked` and writes one audit entry (name,
 * prefix, scopes — never the secret or its hash) in the same transaction.
 */
import { randomUUID } from "node:crypto";
import { and, desc, eq, isNull, sql } from "drizzle-orm";
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ApiKeySchema,
  CreateApiKeyResponseSchema,
  ListApiKeysResponseSchema,
  RevokeApiKeyResponseSchema,
  RotateApiKeyResponseSchema,
  type ApiKey,
  type CreateApiKeyRequest,
  type CreateApiKeyResponse,
  type ListApiKeysRequest,
  type ListApiKeysResponse,
  type RevokeApiKeyRequest,
  type RevokeApiKeyResponse,
  type RotateApiKeyRequest,
  type RotateApiKeyResponse,
} from "../../../gen/proto/fabric/v1/access_pb.js";
import type { Executor } from "../../db/database.js";
import { emitEvents, notifyAccessChanged } from "../../db/events.js";
import { apiKeys, memberships } from "../../db/schema.js";
import { DomainError, failedPrecondition, invalidArgument, notFound, type Issue } from "../../domain/errors.js";
import { actions, effectivePermissions, organizationRoles, requireScopes, scopeAllows, type Action, type OrganizationRole } from "../../domain/permissions.js";
import { recordAudit } from "./record-audit.js";
import { newApiKey } from "../identity/authenticator.js";
import { mayRead, requirePermission } from "./permission-checks.js";
import { isUuid, type CallContext } from "../call-context.js";
import type { ServiceDeps } from "../service-deps.js";

type KeyRow = typeof apiKeys.$inferSelect;

export type ApiKeyService = ReturnType<typeof createApiKeyService>;

/** The audit entries ApiKeyService writes: one action per use case. */
export const apiKeyAuditActions = { create: "api_key.create", rotate: "api_key.rotate", revoke: "api_key.revoke" } as const;

export const apiKeyNameMaxLength = 100;

const ts = (d: Date | null) => (d ? timestampFromDate(d) : undefined);

export function apiKeyMessage(row: KeyRow): ApiKey {
  return create(ApiKeySchema, {
    id: row.id,
    organizationId: row.organizationId,
    principalId: row.principalId,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes,
    expireTime: ts(row.expiresAt),
    revokeTime: ts(row.revokedAt),
    lastUsedTime: ts(row.lastUsedAt),
    createTime: ts(row.createdAt),
  });
}

/** What the audit log and events say about a key: never the secret or its hash. */
const describe = (row: KeyRow) => ({
  api_key_id: row.id,
  name: row.name,
  prefix: row.prefix,
  principal_id: row.principalId,
  scopes: row.scopes,
  expire_time: row.expiresAt?.toISOString() ?? null,
});

/** Lower = more powerful; no organization role ranks below every role. */
const rank = (r: OrganizationRole | null) => (r === null ? organizationRoles.length : organizationRoles.indexOf(r));

/** Every action a key with `keyScopes` may use is one the caller's own scopes allow too. */
const scopesCovered = (callerScopes: readonly string[], keyScopes: readonly string[]) =>
  actions.every((a: Action) => !scopeAllows(keyScopes, a) || scopeAllows(callerScopes, a));

export function createApiKeyService(deps: ServiceDeps) {
  const { db } = deps;

  /** The target's organization role, or `null` when they are no member of the organization at all. */
  async function memberRole(ex: Executor, organizationId: string, principalId: string): Promise<{ role: OrganizationRole | null } | null> {
    const rows = await ex
      .select({ organizationId: memberships.organizationId, teamId: memberships.teamId, role: memberships.role })
      .from(memberships)
      .where(and(eq(memberships.organizationId, organizationId), eq(memberships.principalId, principalId)));
    if (rows.length === 0) return null;
    return { role: effectivePermissions(rows, organizationId).organizationRole };
  }

  /** Refuses handing the caller a raw key stronger than themselves (see the file comment). */
  function requireNoEscalation(ctx: CallContext, target: { role: OrganizationRole | null } | null, keyScopes: readonly string[], own: boolean) {
    if (!own && target && rank(target.role) < rank(ctx.permissions?.organizationRole ?? null)) {
      throw new DomainError("permission_denied", "the caller may not create or rotate API keys of a principal whose role outranks theirs");
    }
    if (!scopesCovered(ctx.caller.scopes, keyScopes)) {
      throw new DomainError("permission_denied", "an API key can only create or rotate keys whose scopes its own scopes cover (an empty scope list means everything)");
    }
  }

  /**
   * A key of the caller's organization that the caller may see, locked for the change,
   * with `action` checked on it. Another organization's key, and for a member another
   * principal's key, answer "not found" — as they are absent from the list.
   */
  async function loadKey(tx: Executor, ctx: CallContext, id: string, action: Action): Promise<{ row: KeyRow; own: boolean }> {
    const [row] = isUuid(id)
      ? await tx
          .select()
          .from(apiKeys)
          .where(and(eq(apiKeys.id, id), eq(apiKeys.organizationId, ctx.caller.organizationId)))
          .for("update")
      : [];
    const own = row?.principalId === ctx.caller.principalId;
    if (!row || !(own || mayRead(ctx, "api_key.read", null))) throw notFound("api_key", id);
    requirePermission(ctx, action, { teamId: null, ownedByCaller: own });
    return { row, own };
  }

  return {
    async createApiKey(ctx: CallContext, req: CreateApiKeyRequest): Promise<CreateApiKeyResponse> {
      const org = ctx.caller.organizationId;
      const name = req.name.trim();
      const issues: Issue[] = [];
      if (req.name === "") issues.push({ path: "/name", code: "required", message: "name is required" });
      else if (name.length < 1 || name.length > apiKeyNameMaxLength) issues.push({ path: "/name", code: "invalid_value", message: `name must be 1..${apiKeyNameMaxLength} characters (not only spaces)` });
      const expiresAt = req.expireTime ? timestampDate(req.expireTime) : null;
      if (expiresAt && !(expiresAt.getTime() > Date.now())) issues.push({ path: "/expire_time", code: "invalid_value", message: "expire_time must be in the future" });
      if (issues.length) throw invalidArgument(issues.map((i) => i.message).join("; "), issues);
      const scopes = requireScopes(req.scopes);

      const principalId = (req.principalId || ctx.caller.principalId).toLowerCase();
      const own = principalId === ctx.caller.principalId.toLowerCase();
      // For someone else: the organization-wide permission first, so a member learns nothing about other principals.
      requirePermission(ctx, "api_key.create", { teamId: null, ownedByCaller: own });
      if (!isUuid(principalId)) throw notFound("principal", req.principalId);

      return db.transaction(async (tx) => {
        const target = await memberRole(tx, org, principalId);
        if (!target) throw notFound("principal", req.principalId || principalId);
        requireNoEscalation(ctx, target, scopes, own);
        const key = newApiKey();
        const [row] = await tx
          .insert(apiKeys)
          .values({ id: randomUUID(), organizationId: org, principalId, name, prefix: key.prefix, secretHash: key.secretHash, scopes, expiresAt })
          .returning();
        await emitEvents(tx, [{ organizationId: org, kind: "api_key.created", payload: { ...describe(row!), request_id: ctx.requestId } }]);
        await recordAudit(tx, ctx, { action: apiKeyAuditActions.create, resource: `api_key:${row!.id}`, summary: describe(row!) });
        return create(CreateApiKeyResponseSchema, { apiKey: apiKeyMessage(row!), key: key.raw });
      });
    },

    async listApiKeys(ctx: CallContext, _req: ListApiKeysRequest): Promise<ListApiKeysResponse> {
      const everyone = mayRead(ctx, "api_key.read", null);
      const rows = await db
        .select()
        .from(apiKeys)
        .where(and(eq(apiKeys.organizationId, ctx.caller.organizationId), everyone ? undefined : eq(apiKeys.principalId, ctx.caller.principalId)))
        .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id));
      return create(ListApiKeysResponseSchema, { apiKeys: rows.map(apiKeyMessage) });
    },

    async rotateApiKey(ctx: CallContext, req: RotateApiKeyRequest): Promise<RotateApiKeyResponse> {
      return db.transaction(async (tx) => {
        const { row, own } = await loadKey(tx, ctx, req.id, "api_key.rotate");
        if (row.revokedAt) throw failedPrecondition("a revoked API key cannot be rotated", "api_key_revoked");
        if (row.expiresAt && row.expiresAt.getTime() <= Date.now()) throw failedPrecondition("an expired API key cannot be rotated", "api_key_expired");
        requireNoEscalation(ctx, own ? null : await memberRole(tx, row.organizationId, row.principalId), row.scopes, own);
        const key = newApiKey();
        // One UPDATE: the old prefix no longer exists, so the old key fails its very next request.
        const [updated] = await tx
          .update(apiKeys)
          .set({ prefix: key.prefix, secretHash: key.secretHash })
          .where(and(eq(apiKeys.id, row.id), isNull(apiKeys.revokedAt)))
          .returning();
        const summary = { ...describe(updated!), previous_prefix: row.prefix };
        await emitEvents(tx, [{ organizationId: row.organizationId, kind: "api_key.rotated", payload: { ...summary, request_id: ctx.requestId } }]);
        await notifyAccessChanged(tx, { principalId: row.principalId });
        await recordAudit(tx, ctx, { action: apiKeyAuditActions.rotate, resource: `api_key:${row.id}`, summary });
        return create(RotateApiKeyResponseSchema, { apiKey: apiKeyMessage(updated!), key: key.raw });
      });
    },

    /** Idempotent: revoking a revoked key answers it unchanged (no event, no audit entry — nothing changed). */
    async revokeApiKey(ctx: CallContext, req: RevokeApiKeyRequest): Promise<RevokeApiKeyResponse> {
      return db.transaction(async (tx) => {
        const { row } = await loadKey(tx, ctx, req.id, "api_key.revoke");
        if (row.revokedAt) return create(RevokeApiKeyResponseSchema, { apiKey: apiKeyMessage(row) });
        const [updated] = await tx.update(apiKeys).set({ revokedAt: sql`now()` }).where(eq(apiKeys.id, row.id)).returning();
        await emitEvents(tx, [{ organizationId: row.organizationId, kind: "api_key.revoked", payload: { ...describe(updated!), request_id: ctx.requestId } }]);
        await notifyAccessChanged(tx, { principalId: row.principalId });
        await recordAudit(tx, ctx, { action: apiKeyAuditActions.revoke, resource: `api_key:${row.id}`, summary: describe(updated!) });
        return create(RevokeApiKeyResponseSchema, { apiKey: apiKeyMessage(updated!) });
      });
    },
  };
}
