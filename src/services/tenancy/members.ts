/**
 * Members of an organization and its teams: listed, added (a member of the organization to
 * one of its teams, or a new service account), their role changed, removed. Nobody is made
 * a member of an organization without consent: a person joins by accepting an invitation
 * (invitations.ts), and AddMember without a team answers `invitation_required`; a principal
 * outside the organization is `not_found` for a team, whether it exists or not. Removing an organization membership also
 * removes the principal's team memberships there. An organization always keeps at least
 * one owner: demoting or removing an owner locks the organization's owner memberships
 * (`FOR UPDATE`) and refuses with `last_owner`.
 */
import { randomUUID } from "node:crypto";
import { and, asc, eq, isNull, sql } from "drizzle-orm";
import { create } from "@bufbuild/protobuf";
import {
  AddMemberResponseSchema,
  CreateServiceAccountResponseSchema,
  ListMembersResponseSchema,
  RemoveMemberResponseSchema,
  UpdateMemberResponseSchema,
  type AddMemberRequest,
  type AddMemberResponse,
  type CreateServiceAccountRequest,
  type CreateServiceAccountResponse,
  type ListMembersRequest,
  type ListMembersResponse,
  type RemoveMemberRequest,
  type RemoveMemberResponse,
  type UpdateMemberRequest,
  type UpdateMemberResponse,
} from "../../../gen/proto/fabric/v1/tenancy_pb.js";
import type { Executor } from "../../db/database.js";
import { notifyAccessChanged } from "../../db/events.js";
import { memberships, principals } from "../../db/schema.js";
import { DomainError, failedPrecondition, notFound } from "../../domain/errors.js";
import { wouldRemoveLastOwner, type RoleChange } from "../../domain/permissions.js";
import { mayRead } from "../access/permission-checks.js";
import { isUuid, type CallContext } from "../call-context.js";
import type { ServiceDeps } from "../service-deps.js";
import { recordChange, requireRoleChange, tenancyAuditActions } from "./tenancy-changes.js";
import { membershipMessage, type MembershipRow } from "./tenancy-messages.js";
import { mapForeignKey, membershipWithPrincipal, requireActive, teamRow } from "./tenancy-rows.js";
import { requireField, requireName, requireRole } from "./tenancy-validation.js";

export function createMemberUseCases(deps: ServiceDeps) {
  const { db } = deps;
  return {
    async listMembers(ctx: CallContext, req: ListMembersRequest): Promise<ListMembersResponse> {
      const teamId = req.teamId ? (await teamRow(db, ctx, req.teamId)).id : undefined;
      const rows = await db
        .select({ m: memberships, p: principals })
        .from(memberships)
        .innerJoin(principals, eq(principals.id, memberships.principalId))
        .where(and(eq(memberships.organizationId, ctx.caller.organizationId), teamId ? eq(memberships.teamId, teamId) : undefined))
        .orderBy(asc(memberships.createdAt), asc(memberships.id));
      return create(ListMembersResponseSchema, { members: rows.filter((r) => mayRead(ctx, "member.read", r.m.teamId)).map((r) => membershipMessage(r.m, r.p)) });
    },

    async addMember(ctx: CallContext, req: AddMemberRequest): Promise<AddMemberResponse> {
      const principalId = requireField(req.principalId, "principal_id");
      const teamIdGiven = req.teamId ? req.teamId : undefined;
      const role = requireRole(req.role, teamIdGiven !== undefined);
      const org = ctx.caller.organizationId;
      return mapForeignKey(
        () =>
          db.transaction(async (tx) => {
            const team = teamIdGiven === undefined ? null : await teamRow(tx, ctx, teamIdGiven);
            const change: RoleChange = { teamId: team?.id ?? null, from: null, to: role };
            // Only principals already in this organization (any membership there) can be added
            // here, and only to a team: anyone else joins by an invitation they accept. A
            // principal outside the organization answers the same whether it exists or not.
            const own = isUuid(principalId)
              ? (
                  await tx
                    .select({ p: principals, teamId: memberships.teamId })
                    .from(memberships)
                    .innerJoin(principals, eq(principals.id, memberships.principalId))
                    .where(and(eq(memberships.organizationId, org), eq(memberships.principalId, principalId)))
                )
              : [];
            const principal = own[0]?.p;
            if (team === null) {
              requireRoleChange(ctx, change);
              if (own.some((r) => r.teamId === null)) throw new DomainError("already_exists", "the principal is already a member of this organization");
              throw failedPrecondition(
                "a person joins an organization only by accepting an invitation: invite their email (POST /v1/organizations/{organization_id}/invitations); existing members can be added to teams",
                "invitation_required",
              );
            }
            if (!principal) throw notFound("principal", principalId);
            requireRoleChange(ctx, change);
            await requireActive(tx, org);
            const [m] = await tx
              .insert(memberships)
              .values({ id: randomUUID(), organizationId: org, principalId: principal.id, teamId: team?.id ?? null, role })
              .onConflictDoNothing()
              .returning();
            if (!m) throw new DomainError("already_exists", `the principal is already a member of this ${team ? "team" : "organization"}`);
            const summary = { principal_id: principal.id, team_id: m.teamId, role };
            await recordChange(tx, ctx, { action: tenancyAuditActions.memberAdd, resource: `member:${m.id}`, summary }, { kind: "member.added", payload: { membership_id: m.id, ...summary } });
            await notifyAccessChanged(tx, { principalId: principal.id });
            return create(AddMemberResponseSchema, { member: membershipMessage(m, principal) });
          }),
        () => notFound("team", teamIdGiven ?? ""),
      );
    },

    async updateMember(ctx: CallContext, req: UpdateMemberRequest): Promise<UpdateMemberResponse> {
      const id = requireField(req.id, "id");
      requireField(req.role, "role");
      return db.transaction(async (tx) => {
        const { m, p } = await lockMembership(tx, ctx, id);
        const role = requireRole(req.role, m.teamId !== null);
        const change: RoleChange = { teamId: m.teamId, from: m.role, to: role };
        requireRoleChange(ctx, change);
        if (m.teamId === null && m.role === "owner" && role !== "owner") await guardLastOwner(tx, m, role);
        let after = m;
        if (role !== m.role) after = (await tx.update(memberships).set({ role }).where(eq(memberships.id, m.id)).returning())[0]!;
        const changed = role !== m.role;
        const summary = { principal_id: m.principalId, team_id: m.teamId, changes: changed ? { role: { from: m.role, to: role } } : {} };
        await recordChange(tx, ctx, { action: tenancyAuditActions.memberUpdate, resource: `member:${m.id}`, summary }, changed ? { kind: "member.updated", payload: { membership_id: m.id, ...summary } } : undefined);
        if (changed) await notifyAccessChanged(tx, { principalId: m.principalId });
        return create(UpdateMemberResponseSchema, { member: membershipMessage(after, p) });
      });
    },

    async removeMember(ctx: CallContext, req: RemoveMemberRequest): Promise<RemoveMemberResponse> {
      const id = requireField(req.id, "id");
      return db.transaction(async (tx) => {
        const { m } = await lockMembership(tx, ctx, id);
        const change: RoleChange = { teamId: m.teamId, from: m.role, to: null };
        requireRoleChange(ctx, change);
        let teamMemberships = 0;
        if (m.teamId === null) {
          if (m.role === "owner") await guardLastOwner(tx, m, null);
          // Leaving the organization means leaving its teams too.
          const removed = await tx
            .delete(memberships)
            .where(and(eq(memberships.organizationId, m.organizationId), eq(memberships.principalId, m.principalId), sql`${memberships.teamId} IS NOT NULL`))
            .returning({ id: memberships.id });
          teamMemberships = removed.length;
        }
        await tx.delete(memberships).where(eq(memberships.id, m.id));
        const summary = { principal_id: m.principalId, team_id: m.teamId, role: m.role, ...(m.teamId === null ? { team_memberships_removed: teamMemberships } : {}) };
        await recordChange(tx, ctx, { action: tenancyAuditActions.memberRemove, resource: `member:${m.id}`, summary }, { kind: "member.removed", payload: { membership_id: m.id, ...summary } });
        await notifyAccessChanged(tx, { principalId: m.principalId });
        return create(RemoveMemberResponseSchema, {});
      });
    },

    async createServiceAccount(ctx: CallContext, req: CreateServiceAccountRequest): Promise<CreateServiceAccountResponse> {
      const displayName = requireName(req.displayName, "display_name");
      const role = req.role ? requireRole(req.role, false) : "member";
      const change: RoleChange = { teamId: null, from: null, to: role };
      requireRoleChange(ctx, change);
      const org = ctx.caller.organizationId;
      return db.transaction(async (tx) => {
        await requireActive(tx, org);
        const [principal] = await tx.insert(principals).values({ id: randomUUID(), kind: "service_account", email: null, displayName }).returning();
        const [m] = await tx.insert(memberships).values({ id: randomUUID(), organizationId: org, principalId: principal!.id, role }).returning();
        const summary = { kind: "service_account", principal_id: principal!.id, display_name: displayName, role };
        await recordChange(tx, ctx, { action: tenancyAuditActions.serviceAccountCreate, resource: `member:${m!.id}`, summary }, { kind: "service_account.created", payload: { membership_id: m!.id, ...summary } });
        return create(CreateServiceAccountResponseSchema, { member: membershipMessage(m!, principal!) });
      });
    },
  };
}

/**
 * Locks the organization's owner memberships (in id order, so concurrent changes queue
 * instead of deadlocking) and refuses a change that would leave no owner. Postgres
 * re-checks `role = 'owner'` after waiting, so two concurrent demotions of the last two
 * owners cannot both pass.
 */
async function guardLastOwner(tx: Executor, target: MembershipRow, to: string | null): Promise<void> {
  const owners = await tx
    .select({ organizationId: memberships.organizationId, teamId: memberships.teamId, role: memberships.role, principalId: memberships.principalId })
    .from(memberships)
    .where(and(eq(memberships.organizationId, target.organizationId), isNull(memberships.teamId), eq(memberships.role, "owner")))
    .orderBy(asc(memberships.id))
    .for("update");
  const change = to === null ? { kind: "remove" as const, organizationId: target.organizationId, principalId: target.principalId, teamId: null } : { kind: "update" as const, organizationId: target.organizationId, principalId: target.principalId, teamId: null, role: to };
  if (wouldRemoveLastOwner(owners, change)) throw failedPrecondition("an organization must keep at least one owner: make someone else an owner first", "last_owner");
}

/** Reads the membership for a role change or removal, with the locks the last-owner rule needs. */
async function lockMembership(tx: Executor, ctx: CallContext, id: string) {
  const first = await membershipWithPrincipal(tx, ctx, id);
  if (first.m.teamId === null) {
    // Owners first (always the same order), then the row itself.
    await tx
      .select({ id: memberships.id })
      .from(memberships)
      .where(and(eq(memberships.organizationId, first.m.organizationId), isNull(memberships.teamId), eq(memberships.role, "owner")))
      .orderBy(asc(memberships.id))
      .for("update");
  }
  return membershipWithPrincipal(tx, ctx, id, true);
}
