/**
 * Teams of an organization: created, read (lists show the teams the caller may read),
 * renamed, deleted. Deleting a team removes its memberships and invitations; it is refused
 * (`team_in_use`) while workflow definitions or runs belong to it.
 */
import { randomUUID } from "node:crypto";
import { asc, eq } from "drizzle-orm";
import { create } from "@bufbuild/protobuf";
import {
  CreateTeamResponseSchema,
  DeleteTeamResponseSchema,
  GetTeamResponseSchema,
  ListTeamsResponseSchema,
  UpdateTeamResponseSchema,
  type CreateTeamRequest,
  type CreateTeamResponse,
  type DeleteTeamRequest,
  type DeleteTeamResponse,
  type GetTeamRequest,
  type GetTeamResponse,
  type ListTeamsRequest,
  type ListTeamsResponse,
  type UpdateTeamRequest,
  type UpdateTeamResponse,
} from "../../../gen/proto/fabric/v1/tenancy_pb.js";
import { invitations, memberships, teams, workflowDefinitions, workflowRuns } from "../../db/schema.js";
import { notifyAccessChanged } from "../../db/events.js";
import { DomainError, failedPrecondition } from "../../domain/errors.js";
import { mayRead, requirePermission } from "../access/permission-checks.js";
import type { CallContext } from "../call-context.js";
import type { ServiceDeps } from "../service-deps.js";
import { recordChange, tenancyAuditActions } from "./tenancy-changes.js";
import { teamMessage } from "./tenancy-messages.js";
import { mapForeignKey, requireActive, teamRow } from "./tenancy-rows.js";
import { requireField, requireName, requireSlug } from "./tenancy-validation.js";

export function createTeamUseCases(deps: ServiceDeps) {
  const { db } = deps;
  return {
    async createTeam(ctx: CallContext, req: CreateTeamRequest): Promise<CreateTeamResponse> {
      const slug = requireSlug(req.slug);
      const name = requireName(req.name);
      requirePermission(ctx, "team.create", { teamId: null });
      const org = ctx.caller.organizationId;
      return db.transaction(async (tx) => {
        await requireActive(tx, org);
        const [team] = await tx.insert(teams).values({ id: randomUUID(), organizationId: org, slug, name }).onConflictDoNothing().returning();
        if (!team) throw new DomainError("already_exists", `a team with slug ${JSON.stringify(slug)} already exists in this organization`);
        await recordChange(tx, ctx, { action: tenancyAuditActions.teamCreate, resource: `team:${team.id}`, summary: { slug, name } }, { kind: "team.created", payload: { team_id: team.id, slug, name } });
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
        await recordChange(tx, ctx, { action: tenancyAuditActions.teamUpdate, resource: `team:${before.id}`, summary: { changes } }, changed ? { kind: "team.updated", payload: { team_id: before.id, changes } } : undefined);
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
            await recordChange(tx, ctx, { action: tenancyAuditActions.teamDelete, resource: `team:${team.id}`, summary }, { kind: "team.deleted", payload: { team_id: team.id, ...summary } });
            if (removedMembers.length) await notifyAccessChanged(tx, { organizationId: team.organizationId });
            return create(DeleteTeamResponseSchema, {});
          }),
        inUse,
      );
    },
  };
}
