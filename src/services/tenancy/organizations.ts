/**
 * Organizations: created by a user (who becomes its owner), read, renamed, archived. An
 * archived organization accepts nothing new (see tenancy-service.ts) but can be read.
 */
import { randomUUID } from "node:crypto";
import { and, eq, isNull, sql } from "drizzle-orm";
import { create } from "@bufbuild/protobuf";
import {
  ArchiveOrganizationResponseSchema,
  CreateOrganizationResponseSchema,
  GetOrganizationResponseSchema,
  UpdateOrganizationResponseSchema,
  type ArchiveOrganizationRequest,
  type ArchiveOrganizationResponse,
  type CreateOrganizationRequest,
  type CreateOrganizationResponse,
  type GetOrganizationRequest,
  type GetOrganizationResponse,
  type UpdateOrganizationRequest,
  type UpdateOrganizationResponse,
} from "../../../gen/proto/fabric/v1/tenancy_pb.js";
import { memberships, organizations, principals } from "../../db/schema.js";
import { notifyAccessChanged } from "../../db/events.js";
import { DomainError, notFound, permissionDenied } from "../../domain/errors.js";
import { requirePermission } from "../access/permission-checks.js";
import type { CallContext } from "../call-context.js";
import type { ServiceDeps } from "../service-deps.js";
import { recordChange, tenancyAuditActions } from "./tenancy-changes.js";
import { organizationMessage } from "./tenancy-messages.js";
import { organizationRow } from "./tenancy-rows.js";
import { requireName, requireSlug } from "./tenancy-validation.js";

export function createOrganizationUseCases(deps: ServiceDeps) {
  const { db } = deps;
  return {
    async createOrganization(ctx: CallContext, req: CreateOrganizationRequest): Promise<CreateOrganizationResponse> {
      const slug = requireSlug(req.slug);
      const name = requireName(req.name);
      if (ctx.caller.via === "api_key") throw permissionDenied("an API key acts in its own organization and cannot create one: use a user's access token");
      const [caller] = await db.select({ kind: principals.kind }).from(principals).where(eq(principals.id, ctx.caller.principalId));
      if (caller?.kind !== "user") throw permissionDenied("only users create organizations: use a user's access token");
      return db.transaction(async (tx) => {
        const [org] = await tx.insert(organizations).values({ id: randomUUID(), slug, name }).onConflictDoNothing().returning();
        if (!org) throw new DomainError("already_exists", `an organization with slug ${JSON.stringify(slug)} already exists`);
        const membershipId = randomUUID();
        await tx.insert(memberships).values({ id: membershipId, organizationId: org.id, principalId: ctx.caller.principalId, role: "owner" });
        await recordChange(
          tx,
          ctx,
          { action: tenancyAuditActions.organizationCreate, resource: `organization:${org.id}`, summary: { slug, name, owner_membership_id: membershipId }, organizationId: org.id },
          { kind: "organization.created", payload: { organization_id: org.id, slug, name } },
        );
        return create(CreateOrganizationResponseSchema, { organization: organizationMessage(org) });
      });
    },

    async getOrganization(ctx: CallContext, _req: GetOrganizationRequest): Promise<GetOrganizationResponse> {
      requirePermission(ctx, "organization.read", { teamId: null });
      return create(GetOrganizationResponseSchema, { organization: organizationMessage(await organizationRow(db, ctx.caller.organizationId)) });
    },

    async updateOrganization(ctx: CallContext, req: UpdateOrganizationRequest): Promise<UpdateOrganizationResponse> {
      const name = req.name === undefined ? undefined : requireName(req.name);
      requirePermission(ctx, "organization.update", { teamId: null });
      const id = ctx.caller.organizationId;
      return db.transaction(async (tx) => {
        const [before] = await tx.select().from(organizations).where(eq(organizations.id, id)).for("update");
        if (!before) throw notFound("organization", id);
        const changes: Record<string, { from: unknown; to: unknown }> = {};
        let after = before;
        if (name !== undefined && name !== before.name) {
          changes["name"] = { from: before.name, to: name };
          after = (await tx.update(organizations).set({ name }).where(eq(organizations.id, id)).returning())[0]!;
        }
        const changed = Object.keys(changes).length > 0;
        await recordChange(tx, ctx, { action: tenancyAuditActions.organizationUpdate, resource: `organization:${id}`, summary: { changes } }, changed ? { kind: "organization.updated", payload: { organization_id: id, changes } } : undefined);
        return create(UpdateOrganizationResponseSchema, { organization: organizationMessage(after) });
      });
    },

    async archiveOrganization(ctx: CallContext, _req: ArchiveOrganizationRequest): Promise<ArchiveOrganizationResponse> {
      requirePermission(ctx, "organization.archive", { teamId: null });
      const id = ctx.caller.organizationId;
      return db.transaction(async (tx) => {
        const [archived] = await tx
          .update(organizations)
          .set({ archivedAt: sql`now()` })
          .where(and(eq(organizations.id, id), isNull(organizations.archivedAt)))
          .returning();
        const row = archived ?? (await organizationRow(tx, id));
        if (archived) await notifyAccessChanged(tx, { organizationId: id });
        await recordChange(
          tx,
          ctx,
          { action: tenancyAuditActions.organizationArchive, resource: `organization:${id}`, summary: archived ? { archived: true } : { archived: true, already_archived: true } },
          archived ? { kind: "organization.archived", payload: { organization_id: id } } : undefined,
        );
        return create(ArchiveOrganizationResponseSchema, { organization: organizationMessage(row) });
      });
    },
  };
}
