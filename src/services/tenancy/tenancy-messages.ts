/** Tenancy rows → the generated messages (one conversion for both transports). */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  InvitationSchema,
  MembershipSchema,
  OrganizationSchema,
  TeamSchema,
  type Invitation,
  type Membership,
  type Organization,
  type Team,
} from "../../../gen/proto/fabric/v1/tenancy_pb.js";
import type { invitations, memberships, organizations, teams } from "../../db/schema.js";
import { principalMessage, type PrincipalRow } from "../identity/identity-messages.js";

export type OrganizationRow = typeof organizations.$inferSelect;
export type TeamRow = typeof teams.$inferSelect;
export type MembershipRow = typeof memberships.$inferSelect;
export type InvitationRow = typeof invitations.$inferSelect;

export type InvitationStatus = "pending" | "accepted" | "revoked" | "expired";

export function organizationMessage(row: OrganizationRow): Organization {
  return create(OrganizationSchema, { id: row.id, slug: row.slug, name: row.name, archived: row.archivedAt !== null, createTime: timestampFromDate(row.createdAt) });
}

export function teamMessage(row: TeamRow): Team {
  return create(TeamSchema, { id: row.id, organizationId: row.organizationId, slug: row.slug, name: row.name, createTime: timestampFromDate(row.createdAt) });
}

export function membershipMessage(m: MembershipRow, p: PrincipalRow): Membership {
  return create(MembershipSchema, {
    id: m.id,
    organizationId: m.organizationId,
    teamId: m.teamId ?? undefined,
    principal: principalMessage(p),
    role: m.role,
    createTime: timestampFromDate(m.createdAt),
  });
}

/** Accepted and revoked are final; otherwise the expiry decides. */
export function invitationStatus(row: InvitationRow, now = new Date()): InvitationStatus {
  if (row.acceptedAt) return "accepted";
  if (row.revokedAt) return "revoked";
  return row.expiresAt.getTime() <= now.getTime() ? "expired" : "pending";
}

/** Never exposes the token (only its hash is stored anyway). */
export function invitationMessage(row: InvitationRow, now = new Date()): Invitation {
  return create(InvitationSchema, {
    id: row.id,
    organizationId: row.organizationId,
    teamId: row.teamId ?? undefined,
    email: row.email,
    role: row.role,
    status: invitationStatus(row, now),
    expireTime: timestampFromDate(row.expiresAt),
    createTime: timestampFromDate(row.createdAt),
  });
}
