/**
 * TenancyService: organizations, their teams, memberships, service accounts and
 * invitations — over both transports (the guard has already resolved the organization
 * and the caller's permissions there; team-level checks are made here). One module per
 * concern: organizations.ts, teams.ts, members.ts, invitations.ts.
 *
 * Rules they share:
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
import type { ServiceDeps } from "../service-deps.js";
import { createInvitationUseCases } from "./invitations.js";
import { createMemberUseCases } from "./members.js";
import { createOrganizationUseCases } from "./organizations.js";
import { createTeamUseCases } from "./teams.js";

export { tenancyAuditActions } from "./tenancy-changes.js";

export type TenancyService = ReturnType<typeof createTenancyService>;

export function createTenancyService(deps: ServiceDeps) {
  return { ...createOrganizationUseCases(deps), ...createTeamUseCases(deps), ...createMemberUseCases(deps), ...createInvitationUseCases(deps) };
}
