/**
 * Invitations to an organization or one of its teams: created (a single-use token shown
 * once, only its hash stored), listed, revoked, and accepted by the user whose email they
 * name — which makes the membership (a team invitation, the team membership only).
 */
import { randomUUID } from "node:crypto";
import { and, desc, eq, gt, isNull, sql } from "drizzle-orm";
import { create } from "@bufbuild/protobuf";
import {
  AcceptInvitationResponseSchema,
  CreateInvitationResponseSchema,
  ListInvitationsResponseSchema,
  RevokeInvitationResponseSchema,
  type AcceptInvitationRequest,
  type AcceptInvitationResponse,
  type CreateInvitationRequest,
  type CreateInvitationResponse,
  type ListInvitationsRequest,
  type ListInvitationsResponse,
  type RevokeInvitationRequest,
  type RevokeInvitationResponse,
} from "../../../gen/proto/fabric/v1/tenancy_pb.js";
import { invitations, memberships, principals } from "../../db/schema.js";
import { normalizeEmail, requireEmail } from "../../domain/email.js";
import { DomainError, failedPrecondition, notFound, permissionDenied } from "../../domain/errors.js";
import type { RoleChange } from "../../domain/permissions.js";
import { mayRead, requirePermission } from "../access/permission-checks.js";
import { isUuid, type CallContext } from "../call-context.js";
import type { ServiceDeps } from "../service-deps.js";
import { recordChange, requireRoleChange, tenancyAuditActions } from "./tenancy-changes.js";
import { invitationMessage, invitationStatus, membershipMessage, type InvitationRow } from "./tenancy-messages.js";
import { mapForeignKey, requireActive, teamRow } from "./tenancy-rows.js";
import { hashInvitationToken, isInvitationToken, newInvitationToken, requireExpiryHours, requireField, requireRole } from "./tenancy-validation.js";

export function createInvitationUseCases(deps: ServiceDeps) {
  const { db } = deps;
  return {
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
            requireRoleChange(ctx, change);
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
            await recordChange(tx, ctx, { action: tenancyAuditActions.invitationCreate, resource: `invitation:${inv!.id}`, summary }, { kind: "invitation.created", payload: { invitation_id: inv!.id, role, team_id: inv!.teamId, expires_at: summary.expires_at } });
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
        await recordChange(tx, ctx, { action: tenancyAuditActions.invitationRevoke, resource: `invitation:${revoked.id}`, summary }, { kind: "invitation.revoked", payload: { invitation_id: revoked.id, role: revoked.role, team_id: revoked.teamId } });
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
            await recordChange(
              tx,
              ctx,
              { action: tenancyAuditActions.invitationAccept, resource: `invitation:${inv.id}`, summary, organizationId: inv.organizationId },
              { kind: "invitation.accepted", payload: { invitation_id: inv.id, membership_id: m.id, principal_id: principal.id, team_id: inv.teamId, role: inv.role } },
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
