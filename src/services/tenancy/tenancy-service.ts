/**
 * TenancyService: organizations, their teams, memberships, service accounts and
 * invitations — over both transports (the guard has already resolved the organization
 * and the caller's permissions there; team-level checks are made here).
 *
 * Rules kept here:
 * - Order of checks: the request's shape (invalid_argument), then the resources it names
 *   (not_found — another organization's ids answer exactly like missing ones), then
 *   team-level permission and role rules (permission_denied), then state
 *   (failed_precondition).
 * - Every successful mutating call writes exactly one audit entry in its own transaction
 *   (named after the use case, `tenancyAuditActions`) and, when something changed, an
 *   event.
 * - An organization always keeps at least one owner: demoting or removing an owner locks
 *   the organization's owner memberships (`FOR UPDATE`) and refuses with `last_owner`.
 * - An archived organization accepts no new teams, members, service accounts or
 *   invitations (`organization_archived`); reads, renames, role changes and removals
 *   still work.
 * - Removing an organization membership also removes the principal's team memberships in
 *   that organization. A team invitation (or AddMember with a team) creates the team
 *   membership only: team-only members act on their team's resources.
 * - Deleting a team removes its memberships and invitations; it is refused (`team_in_use`)
 *   while workflow definitions or runs belong to it.
 */
import { randomUUID } from "node:crypto";
import { and, asc, desc, eq, gt, isNull, sql } from "drizzle-orm";
import { create } from "@bufbuild/protobuf";
import {
  AcceptInvitationResponseSchema,
  AddMemberResponseSchema,
  ArchiveOrganizationResponseSchema,
  CreateInvitationResponseSchema,
  CreateOrganizationResponseSchema,
  CreateServiceAccountResponseSchema,
  CreateTeamResponseSchema,
  DeleteTeamResponseSchema,
  GetOrganizationResponseSchema,
  GetTeamResponseSchema,
  ListInvitationsResponseSchema,
  ListMembersResponseSchema,
  ListTeamsResponseSchema,
  RemoveMemberResponseSchema,
  RevokeInvitationResponseSchema,
  UpdateMemberResponseSchema,
  UpdateOrganizationResponseSchema,
  UpdateTeamResponseSchema,
  type AcceptInvitationRequest,
  type AcceptInvitationResponse,
  type AddMemberRequest,
  type AddMemberResponse,
  type ArchiveOrganizationRequest,
  type ArchiveOrganizationResponse,
  type CreateInvitationRequest,
  type CreateInvitationResponse,
  type CreateOrganizationRequest,
  type CreateOrganizationResponse,
  type CreateServiceAccountRequest,
  type CreateServiceAccountResponse,
  type CreateTeamRequest,
  type CreateTeamResponse,
  type DeleteTeamRequest,
  type DeleteTeamResponse,
  type GetOrganizationRequest,
  type GetOrganizationResponse,
  type GetTeamRequest,
  type GetTeamResponse,
  type ListInvitationsRequest,
  type ListInvitationsResponse,
  type ListMembersRequest,
  type ListMembersResponse,
  type ListTeamsRequest,
  type ListTeamsResponse,
  type RemoveMemberRequest,
  type RemoveMemberResponse,
  type RevokeInvitationRequest,
  type RevokeInvitationResponse,
  type UpdateMemberRequest,
  type UpdateMemberResponse,
  type UpdateOrganizationRequest,
  type UpdateOrganizationResponse,
  type UpdateTeamRequest,
  type UpdateTeamResponse,
} from "../../../gen/proto/fabric/v1/tenancy_pb.js";
import type { Executor } from "../../db/database.js";
import { emitEvents } from "../../db/events.js";
import { invitations, memberships, organizations, principals, teams, workflowDefinitions, workflowRuns } from "../../db/schema.js";
import { normalizeEmail, requireEmail } from "../../domain/email.js";
import { DomainError, failedPrecondition, notFound, permissionDenied } from "../../domain/errors.js";
import { mayChangeRole, wouldRemoveLastOwner, type RoleChange } from "../../domain/permissions.js";
import { recordAudit } from "../access/record-audit.js";
import { mayRead, requirePermission } from "../access/permission-checks.js";
import { isUuid, type CallContext } from "../call-context.js";
import type { ServiceDeps } from "../service-deps.js";
import { invitationMessage, invitationStatus, membershipMessage, organizationMessage, teamMessage, type InvitationRow, type MembershipRow, type TeamRow } from "./tenancy-messages.js";
import {
  hashInvitationToken,
  isInvitationToken,
  newInvitationToken,
  requireExpiryHours,
  requireField,
  requireName,
  requireRole,
  requireSlug,
} from "./tenancy-validation.js";

export type TenancyService = ReturnType<typeof createTenancyService>;

/** The audit entries TenancyService writes: one action per use case. */
export const tenancyAuditActions = {
  organizationCreate: "organization.create",
  organizationUpdate: "organization.update",
  organizationArchive: "organization.archive",
  teamCreate: "team.create",
  teamUpdate: "team.update",
  teamDelete: "team.delete",
  memberAdd: "member.add",
  memberUpdate: "member.update",
  memberRemove: "member.remove",
  serviceAccountCreate: "service_account.create",
  invitationCreate: "invitation.create",
  invitationRevoke: "invitation.revoke",
  invitationAccept: "invitation.accept",
} as const;
type TenancyAuditAction = (typeof tenancyAuditActions)[keyof typeof tenancyAuditActions];

/** SQLSTATE of a database error, looking through driver/ORM wrappers. */
function sqlState(err: unknown): string | undefined {
  for (let e: any = err, depth = 0; e && depth < 4; e = e.cause, depth++) {
    if (typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  }
  return undefined;
}

/** Maps a foreign-key violation (a row vanished or appeared concurrently) to `onFk`; rethrows anything else. */
async function mapForeignKey<T>(run: () => Promise<T>, onFk: () => DomainError): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (sqlState(err) === "23503") throw onFk();
    throw err;
  }
}

const denied = (change: RoleChange) =>
  permissionDenied(
    change.teamId === null && (change.from === "owner" || change.to === "owner")
      ? "only an owner may grant, change or remove the owner role"
      : `the caller may not ${change.from === null ? "add" : change.to === null ? "remove" : "change"} this ${change.teamId === null ? "organization" : "team"} membership`,
  );

export function createTenancyService(deps: ServiceDeps) {
  const { db } = deps;

  /** One audit entry plus (when something changed) one event, in the caller's transaction. */
  async function record(
    tx: Executor,
    ctx: CallContext,
    entry: { action: TenancyAuditAction; resource: string; summary: Record<string, unknown>; organizationId?: string },
    event?: { kind: string; payload: Record<string, unknown> },
  ): Promise<void> {
    const organizationId = entry.organizationId ?? ctx.caller.organizationId;
    await recordAudit(tx, ctx, { action: entry.action, resource: entry.resource, summary: entry.summary, organizationId });
    if (event) await emitEvents(tx, [{ organizationId, kind: event.kind, payload: { ...event.payload, actor_principal_id: ctx.caller.principalId, request_id: ctx.requestId } }]);
  }

  async function organizationRow(ex: Executor, id: string) {
    const [row] = await ex.select().from(organizations).where(eq(organizations.id, id));
    if (!row) throw notFound("organization", id);
    return row;
  }

  async function requireActive(ex: Executor, organizationId: string): Promise<void> {
    const row = await organizationRow(ex, organizationId);
    if (row.archivedAt) throw failedPrecondition("the organization is archived: nothing new can be added to it", "organization_archived");
  }

  /** A team of the caller's organization; anything else (another org's, malformed) is not_found. */
  async function teamRow(ex: Executor, ctx: CallContext, id: string, lock = false): Promise<TeamRow> {
    if (!isUuid(id)) throw notFound("team", id);
    const q = ex
      .select()
      .from(teams)
      .where(and(eq(teams.id, id), eq(teams.organizationId, ctx.caller.organizationId)));
    const [row] = lock ? await q.for("update") : await q;
    if (!row) throw notFound("team", id);
    return row;
  }

  async function membershipWithPrincipal(ex: Executor, ctx: CallContext, id: string, lock = false) {
    if (!isUuid(id)) throw notFound("membership", id);
    const q = ex
      .select({ m: memberships, p: principals })
      .from(memberships)
      .innerJoin(principals, eq(principals.id, memberships.principalId))
      .where(and(eq(memberships.id, id), eq(memberships.organizationId, ctx.caller.organizationId)));
    const [row] = lock ? await q.for("update", { of: memberships }) : await q;
    if (!row) throw notFound("membership", id);
    return row;
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

  return {
    // ─── Organizations ─────────────────────────────────────────────────────────────────

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
        await record(
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
        await record(tx, ctx, { action: tenancyAuditActions.organizationUpdate, resource: `organization:${id}`, summary: { changes } }, changed ? { kind: "organization.updated", payload: { organization_id: id, changes } } : undefined);
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
        await record(
          tx,
          ctx,
          { action: tenancyAuditActions.organizationArchive, resource: `organization:${id}`, summary: archived ? { archived: true } : { archived: true, already_archived: true } },
          archived ? { kind: "organization.archived", payload: { organization_id: id } } : undefined,
        );
        return create(ArchiveOrganizationResponseSchema, { organization: organizationMessage(row) });
      });
    },

    // ─── Teams ─────────────────────────────────────────────────────────────────────────

    async createTeam(ctx: CallContext, req: CreateTeamRequest): Promise<CreateTeamResponse> {
      const slug = requireSlug(req.slug);
      const name = requireName(req.name);
      requirePermission(ctx, "team.create", { teamId: null });
      const org = ctx.caller.organizationId;
      return db.transaction(async (tx) => {
        await requireActive(tx, org);
        const [team] = await tx.insert(teams).values({ id: randomUUID(), organizationId: org, slug, name }).onConflictDoNothing().returning();
        if (!team) throw new DomainError("already_exists", `a team with slug ${JSON.stringify(slug)} already exists in this organization`);
        await record(tx, ctx, { action: tenancyAuditActions.teamCreate, resource: `team:${team.id}`, summary: { slug, name } }, { kind: "team.created", payload: { team_id: team.id, slug, name } });
        return create(CreateTeamResponseSchema, { team: teamMessage(team) });
      });
    },

    async getTeam(ctx: CallContext, req: GetTeamRequest): Promise<GetTeamResponse> {
      const team = await teamRow(db, ctx, requireField(req.id, "id"));
      requirePermission(ctx, "team.read", { teamId: team.id });
      return create(GetTeamResponseSchema, { team: teamMessage(team) });
    },

    async listTeams(ctx: CallContext, _req: ListTeamsRequest): Promise<ListTeamsResponse> {
      const rows = await db.select().from(teams).where(eq(teams.organizationId, ctx.caller.organizationId)).orderBy(asc(teams.slug));
      return create(ListTeamsResponseSchema, { teams: rows.filter((t) => mayRead(ctx, "team.read", t.id)).map(teamMessage) });
    },

    async updateTeam(ctx: CallContext, req: UpdateTeamRequest): Promise<UpdateTeamResponse> {
      const id = requireField(req.id, "id");
      const name = req.name === undefined ? undefined : requireName(req.name);
      return db.transaction(async (tx) => {
        const before = await teamRow(tx, ctx, id, true);
        requirePermission(ctx, "team.update", { teamId: before.id });
        const changes: Record<string, { from: unknown; to: unknown }> = {};
        let after = before;
        if (name !== undefined && name !== before.name) {
          changes["name"] = { from: before.name, to: name };
          after = (await tx.update(teams).set({ name }).where(eq(teams.id, before.id)).returning())[0]!;
        }
        const changed = Object.keys(changes).length > 0;
        await record(tx, ctx, { action: tenancyAuditActions.teamUpdate, resource: `team:${before.id}`, summary: { changes } }, changed ? { kind: "team.updated", payload: { team_id: before.id, changes } } : undefined);
        return create(UpdateTeamResponseSchema, { team: teamMessage(after) });
      });
    },

    async deleteTeam(ctx: CallContext, req: DeleteTeamRequest): Promise<DeleteTeamResponse> {
      const id = requireField(req.id, "id");
      const inUse = () => failedPrecondition("the team still owns workflow definitions or runs; it cannot be deleted", "team_in_use");
      return mapForeignKey(
        () =>
          db.transaction(async (tx) => {
            const team = await teamRow(tx, ctx, id, true);
            requirePermission(ctx, "team.delete", { teamId: team.id });
            const [def] = await tx.select({ id: workflowDefinitions.id }).from(workflowDefinitions).where(eq(workflowDefinitions.teamId, team.id)).limit(1);
            const [run] = def ? [] : await tx.select({ id: workflowRuns.id }).from(workflowRuns).where(eq(workflowRuns.teamId, team.id)).limit(1);
            if (def || run) throw inUse();
            const removedMembers = await tx.delete(memberships).where(eq(memberships.teamId, team.id)).returning({ id: memberships.id });
            const removedInvitations = await tx.delete(invitations).where(eq(invitations.teamId, team.id)).returning({ id: invitations.id });
            await tx.delete(teams).where(eq(teams.id, team.id));
            const summary = { slug: team.slug, name: team.name, memberships_removed: removedMembers.length, invitations_removed: removedInvitations.length };
            await record(tx, ctx, { action: tenancyAuditActions.teamDelete, resource: `team:${team.id}`, summary }, { kind: "team.deleted", payload: { team_id: team.id, ...summary } });
            return create(DeleteTeamResponseSchema, {});
          }),
        inUse,
      );
    },

    // ─── Members ───────────────────────────────────────────────────────────────────────

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
            const [principal] = isUuid(principalId) ? await tx.select().from(principals).where(eq(principals.id, principalId)) : [];
            if (!principal) throw notFound("principal", principalId);
            if (principal.kind === "service_account") {
              // A service account belongs to its organization: another one's is not found here.
              const [own] = await tx
                .select({ id: memberships.id })
                .from(memberships)
                .where(and(eq(memberships.organizationId, org), eq(memberships.principalId, principal.id), isNull(memberships.teamId)));
              if (!own) throw notFound("principal", principalId);
            }
            const change: RoleChange = { teamId: team?.id ?? null, from: null, to: role };
            if (!mayChangeRole(ctx.permissions!, change)) throw denied(change);
            await requireActive(tx, org);
            const [m] = await tx
              .insert(memberships)
              .values({ id: randomUUID(), organizationId: org, principalId: principal.id, teamId: team?.id ?? null, role })
              .onConflictDoNothing()
              .returning();
            if (!m) throw new DomainError("already_exists", `the principal is already a member of this ${team ? "team" : "organization"}`);
            const summary = { principal_id: principal.id, team_id: m.teamId, role };
            await record(tx, ctx, { action: tenancyAuditActions.memberAdd, resource: `member:${m.id}`, summary }, { kind: "member.added", payload: { membership_id: m.id, ...summary } });
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
        if (!mayChangeRole(ctx.permissions!, change)) throw denied(change);
        if (m.teamId === null && m.role === "owner" && role !== "owner") await guardLastOwner(tx, m, role);
        let after = m;
        if (role !== m.role) after = (await tx.update(memberships).set({ role }).where(eq(memberships.id, m.id)).returning())[0]!;
        const changed = role !== m.role;
        const summary = { principal_id: m.principalId, team_id: m.teamId, changes: changed ? { role: { from: m.role, to: role } } : {} };
        await record(tx, ctx, { action: tenancyAuditActions.memberUpdate, resource: `member:${m.id}`, summary }, changed ? { kind: "member.updated", payload: { membership_id: m.id, ...summary } } : undefined);
        return create(UpdateMemberResponseSchema, { member: membershipMessage(after, p) });
      });
    },

    async removeMember(ctx: CallContext, req: RemoveMemberRequest): Promise<RemoveMemberResponse> {
      const id = requireField(req.id, "id");
      return db.transaction(async (tx) => {
        const { m } = await lockMembership(tx, ctx, id);
        const change: RoleChange = { teamId: m.teamId, from: m.role, to: null };
        if (!mayChangeRole(ctx.permissions!, change)) throw denied(change);
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
        await record(tx, ctx, { action: tenancyAuditActions.memberRemove, resource: `member:${m.id}`, summary }, { kind: "member.removed", payload: { membership_id: m.id, ...summary } });
        return create(RemoveMemberResponseSchema, {});
      });
    },

    async createServiceAccount(ctx: CallContext, req: CreateServiceAccountRequest): Promise<CreateServiceAccountResponse> {
      const displayName = requireName(req.displayName, "display_name");
      const role = req.role ? requireRole(req.role, false) : "member";
      const change: RoleChange = { teamId: null, from: null, to: role };
      if (!mayChangeRole(ctx.permissions!, change)) throw denied(change);
      const org = ctx.caller.organizationId;
      return db.transaction(async (tx) => {
        await requireActive(tx, org);
        const [principal] = await tx.insert(principals).values({ id: randomUUID(), kind: "service_account", email: null, displayName }).returning();
        const [m] = await tx.insert(memberships).values({ id: randomUUID(), organizationId: org, principalId: principal!.id, role }).returning();
        const summary = { kind: "service_account", principal_id: principal!.id, display_name: displayName, role };
        await record(tx, ctx, { action: tenancyAuditActions.serviceAccountCreate, resource: `member:${m!.id}`, summary }, { kind: "service_account.created", payload: { membership_id: m!.id, ...summary } });
        return create(CreateServiceAccountResponseSchema, { member: membershipMessage(m!, principal!) });
      });
    },

    // ─── Invitations ───────────────────────────────────────────────────────────────────

    async createInvitation(ctx: CallContext, req: CreateInvitationRequest): Promise<CreateInvitationResponse> {
      const email = requireEmail(req.email);
      const teamIdGiven = req.teamId ? req.teamId : undefined;
      const role = requireRole(req.role, teamIdGiven !== undefined);
      const hours = requireExpiryHours(req.expiresInHours);
      const org = ctx.caller.organizationId;
      return mapForeignKey(
        () =>
          db.transaction(async (tx) => {
            const team = teamIdGiven === undefined ? null : await teamRow(tx, ctx, teamIdGiven);
            const change: RoleChange = { teamId: team?.id ?? null, from: null, to: role };
            if (!mayChangeRole(ctx.permissions!, change)) throw denied(change);
            await requireActive(tx, org);
            const token = newInvitationToken();
            const [inv] = await tx
              .insert(invitations)
              .values({
                id: randomUUID(),
                organizationId: org,
                teamId: team?.id ?? null,
                email,
                role,
                tokenHash: token.hash,
                expiresAt: sql`now() + make_interval(hours => ${hours})`,
                createdBy: ctx.caller.principalId,
              })
              .returning();
            const summary = { email, role, team_id: inv!.teamId, expires_at: inv!.expiresAt.toISOString() };
            await record(tx, ctx, { action: tenancyAuditActions.invitationCreate, resource: `invitation:${inv!.id}`, summary }, { kind: "invitation.created", payload: { invitation_id: inv!.id, ...summary } });
            return create(CreateInvitationResponseSchema, { invitation: invitationMessage(inv!), token: token.raw });
          }),
        () => notFound("team", teamIdGiven ?? ""),
      );
    },

    async listInvitations(ctx: CallContext, _req: ListInvitationsRequest): Promise<ListInvitationsResponse> {
      const rows = await db.select().from(invitations).where(eq(invitations.organizationId, ctx.caller.organizationId)).orderBy(desc(invitations.createdAt), desc(invitations.id));
      const now = new Date();
      return create(ListInvitationsResponseSchema, { invitations: rows.filter((r) => mayRead(ctx, "invitation.read", r.teamId)).map((r) => invitationMessage(r, now)) });
    },

    async revokeInvitation(ctx: CallContext, req: RevokeInvitationRequest): Promise<RevokeInvitationResponse> {
      const id = requireField(req.id, "id");
      return db.transaction(async (tx) => {
        const [inv] = isUuid(id) ? await tx.select().from(invitations).where(and(eq(invitations.id, id), eq(invitations.organizationId, ctx.caller.organizationId))) : [];
        if (!inv) throw notFound("invitation", id);
        requirePermission(ctx, "invitation.revoke", { teamId: inv.teamId });
        const [revoked] = await tx
          .update(invitations)
          .set({ revokedAt: sql`now()` })
          .where(and(eq(invitations.id, inv.id), isNull(invitations.acceptedAt), isNull(invitations.revokedAt), gt(invitations.expiresAt, sql`now()`)))
          .returning();
        if (!revoked) {
          const [now] = await tx.select().from(invitations).where(eq(invitations.id, inv.id));
          throw notPending(now ?? inv);
        }
        const summary = { email: revoked.email, role: revoked.role, team_id: revoked.teamId };
        await record(tx, ctx, { action: tenancyAuditActions.invitationRevoke, resource: `invitation:${revoked.id}`, summary }, { kind: "invitation.revoked", payload: { invitation_id: revoked.id, ...summary } });
        return create(RevokeInvitationResponseSchema, { invitation: invitationMessage(revoked) });
      });
    },

    async acceptInvitation(ctx: CallContext, req: AcceptInvitationRequest): Promise<AcceptInvitationResponse> {
      const raw = requireField(req.token.trim(), "token");
      if (ctx.caller.via === "api_key") throw permissionDenied("invitations are accepted by a user: use a user's access token, not an API key");
      if (!isInvitationToken(raw)) throw notFound("invitation", "(token)");
      const tokenHash = hashInvitationToken(raw);
      return mapForeignKey(
        () =>
          db.transaction(async (tx) => {
            const [inv] = await tx.select().from(invitations).where(eq(invitations.tokenHash, tokenHash));
            if (!inv) throw notFound("invitation", "(token)");
            const [principal] = await tx.select().from(principals).where(eq(principals.id, ctx.caller.principalId));
            if (!principal || principal.kind !== "user" || !principal.email || normalizeEmail(principal.email) !== inv.email) {
              throw new DomainError("permission_denied", "this invitation is for another email address", { code: "email_mismatch" });
            }
            if (invitationStatus(inv) !== "pending") throw notPending(inv);
            await requireActive(tx, inv.organizationId);
            // Single use: only one accept can flip it (a concurrent one waits, then matches nothing).
            const [accepted] = await tx
              .update(invitations)
              .set({ acceptedAt: sql`now()` })
              .where(and(eq(invitations.id, inv.id), isNull(invitations.acceptedAt), isNull(invitations.revokedAt), gt(invitations.expiresAt, sql`now()`)))
              .returning();
            if (!accepted) {
              const [now] = await tx.select().from(invitations).where(eq(invitations.id, inv.id));
              throw notPending(now ?? inv);
            }
            const [m] = await tx
              .insert(memberships)
              .values({ id: randomUUID(), organizationId: inv.organizationId, principalId: principal.id, teamId: inv.teamId, role: inv.role })
              .onConflictDoNothing()
              .returning();
            // Throwing rolls the acceptance back: the invitation stays usable.
            if (!m) throw new DomainError("already_exists", `the caller is already a member of this ${inv.teamId ? "team" : "organization"}`);
            const summary = { invitation_id: inv.id, membership_id: m.id, principal_id: principal.id, email: inv.email, team_id: inv.teamId, role: inv.role };
            await record(
              tx,
              ctx,
              { action: tenancyAuditActions.invitationAccept, resource: `invitation:${inv.id}`, summary, organizationId: inv.organizationId },
              { kind: "invitation.accepted", payload: summary },
            );
            return create(AcceptInvitationResponseSchema, { member: membershipMessage(m, principal) });
          }),
        () => failedPrecondition("the invitation's team no longer exists", "invitation_revoked"),
      );
    },
  };
}

/** Why an invitation cannot be used (or revoked) any more. */
function notPending(inv: InvitationRow): DomainError {
  switch (invitationStatus(inv)) {
    case "accepted":
      return failedPrecondition("this invitation has already been used", "invitation_used");
    case "revoked":
      return failedPrecondition("this invitation was revoked", "invitation_revoked");
    case "expired":
      return failedPrecondition("this invitation has expired", "invitation_expired");
    default:
      return failedPrecondition("the invitation changed concurrently; try again", "invitation_conflict");
  }
}
