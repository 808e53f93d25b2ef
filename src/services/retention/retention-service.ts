/**
 * RetentionService: an organization's retention of finished runs (`organizations.
 * retention_seconds`), which the retention pruner (control-plane/retention-pruner.ts,
 * db/prune-runs.ts) uses over the server default FABRIC_RETENTION_SECONDS. Reading needs
 * `organization.read`, setting `organization.update` (organization-wide). A change writes
 * one audit entry (`retention.set`) and emits `organization.updated` in its transaction;
 * setting the value it already has changes nothing and records nothing.
 */
import { create } from "@bufbuild/protobuf";
import { eq } from "drizzle-orm";
import { GetRetentionResponseSchema, RetentionSettingsSchema, SetRetentionResponseSchema, type GetRetentionRequest, type RetentionSettings, type SetRetentionRequest } from "../../../gen/proto/fabric/v1/retention_pb.js";
import type { Db } from "../../db/database.js";
import { emitEvents } from "../../db/events.js";
import { organizations } from "../../db/schema.js";
import { invalidArgument, notFound } from "../../domain/errors.js";
import { recordAudit } from "../access/record-audit.js";
import { requirePermission } from "../access/permission-checks.js";
import type { CallContext } from "../call-context.js";

export const retentionLimits = { minSeconds: 60, maxSeconds: 2_000_000_000 } as const;
export const retentionAuditActions = { set: "retention.set" } as const;

export function createRetentionService(deps: { db: Db; defaultRetentionSeconds: number }) {
  const { db } = deps;
  const settings = (organizationId: string, own: number | null): RetentionSettings =>
    create(RetentionSettingsSchema, {
      organizationId,
      retentionSeconds: own === null ? undefined : BigInt(own),
      defaultRetentionSeconds: BigInt(deps.defaultRetentionSeconds),
      effectiveRetentionSeconds: BigInt(own ?? deps.defaultRetentionSeconds),
    });

  return {
    async getRetention(ctx: CallContext, _req: GetRetentionRequest) {
      requirePermission(ctx, "organization.read", { teamId: null });
      const [org] = await db.select({ retentionSeconds: organizations.retentionSeconds }).from(organizations).where(eq(organizations.id, ctx.caller.organizationId));
      if (!org) throw notFound("organization", ctx.caller.organizationId);
      return create(GetRetentionResponseSchema, { retention: settings(ctx.caller.organizationId, org.retentionSeconds) });
    },

    async setRetention(ctx: CallContext, req: SetRetentionRequest) {
      const v = req.retentionSeconds;
      if (v !== undefined && v !== 0n && (v < BigInt(retentionLimits.minSeconds) || v > BigInt(retentionLimits.maxSeconds))) {
        throw invalidArgument(`retention_seconds must be 0 (forever) or within ${retentionLimits.minSeconds}..${retentionLimits.maxSeconds}`, [{ path: "/retention_seconds", code: "invalid_value", message: "out of range" }]);
      }
      requirePermission(ctx, "organization.update", { teamId: null });
      const id = ctx.caller.organizationId;
      const next = v === undefined ? null : Number(v);
      return db.transaction(async (tx) => {
        const [before] = await tx.select({ retentionSeconds: organizations.retentionSeconds }).from(organizations).where(eq(organizations.id, id)).for("update");
        if (!before) throw notFound("organization", id);
        if (before.retentionSeconds !== next) {
          await tx.update(organizations).set({ retentionSeconds: next }).where(eq(organizations.id, id));
          const changes = { retention_seconds: { from: before.retentionSeconds, to: next } };
          await emitEvents(tx, [{ organizationId: id, kind: "organization.updated", payload: { organization_id: id, changes, request_id: ctx.requestId } }]);
          await recordAudit(tx, ctx, { action: retentionAuditActions.set, resource: `organization:${id}`, summary: { changes, default_retention_seconds: deps.defaultRetentionSeconds } });
        }
        return create(SetRetentionResponseSchema, { retention: settings(id, next) });
      });
    },
  };
}
