/**
 * How a tenancy use case records a change and checks a role change: one audit entry
 * (named after the use case) plus, when something changed, one event — both in the
 * caller's transaction — and the rule for who may grant, change or remove which role.
 */
import type { Executor } from "../../db/database.js";
import { emitEvents } from "../../db/events.js";
import type { EventKind } from "../../domain/event-kinds.js";
import { permissionDenied } from "../../domain/errors.js";
import { mayChangeRole, type RoleChange } from "../../domain/permissions.js";
import { recordAudit } from "../access/record-audit.js";
import type { CallContext } from "../call-context.js";

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

/** One audit entry plus (when something changed) one event, in the caller's transaction. */
export async function recordChange(
  tx: Executor,
  ctx: CallContext,
  entry: { action: TenancyAuditAction; resource: string; summary: Record<string, unknown>; organizationId?: string },
  event?: { kind: EventKind; payload: Record<string, unknown> },
): Promise<void> {
  const organizationId = entry.organizationId ?? ctx.caller.organizationId;
  await recordAudit(tx, ctx, { action: entry.action, resource: entry.resource, summary: entry.summary, organizationId });
  if (event) await emitEvents(tx, [{ organizationId, kind: event.kind, payload: { ...event.payload, actor_principal_id: ctx.caller.principalId, request_id: ctx.requestId } }]);
}

/** Refuses a membership change the caller's role may not make (domain/permissions.ts `mayChangeRole`). */
export function requireRoleChange(ctx: CallContext, change: RoleChange): void {
  if (mayChangeRole(ctx.permissions!, change)) return;
  throw permissionDenied(
    change.teamId === null && (change.from === "owner" || change.to === "owner")
      ? "only an owner may grant, change or remove the owner role"
      : `the caller may not ${change.from === null ? "add" : change.to === null ? "remove" : "change"} this ${change.teamId === null ? "organization" : "team"} membership`,
  );
}
