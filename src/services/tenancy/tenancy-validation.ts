/** Input rules of the tenancy operations: each throws `invalid_argument` naming the field. */
import { createHash, randomBytes } from "node:crypto";
import { invalidArgument } from "../../domain/errors.js";
import { isOrganizationRole, isTeamRole, organizationRoles, teamRoles } from "../../domain/permissions.js";

const slugPattern = /^[a-z0-9][a-z0-9-]{1,62}$/;

const bad = (field: string, code: string, message: string) => invalidArgument(`${field}: ${message}`, [{ path: `/${field}`, code, message }]);

export function requireSlug(s: string, field = "slug"): string {
  if (!s) throw bad(field, "required", `${field} is required`);
  if (!slugPattern.test(s)) throw bad(field, "invalid_slug", "lowercase letters, digits and `-`, 2..63 characters, not starting with `-`");
  return s;
}

/** Trimmed, 1..200 characters. */
export function requireName(s: string | undefined, field = "name"): string {
  const v = (s ?? "").trim();
  if (!v) throw bad(field, "required", `${field} is required`);
  if ([...v].length > 200) throw bad(field, "too_long", `${field} is longer than 200 characters`);
  return v;
}

/** An organization role, or (for a team membership) a team role. */
export function requireRole(role: string, team: boolean, field = "role"): string {
  if (!role) throw bad(field, "required", `${field} is required`);
  if (team ? !isTeamRole(role) : !isOrganizationRole(role)) {
    throw bad(field, "invalid_role", `${team ? "team" : "organization"} roles are ${(team ? teamRoles : organizationRoles).join(", ")}`);
  }
  return role;
}

export function requireField(v: string, field: string): string {
  if (!v) throw bad(field, "required", `${field} is required`);
  return v;
}

export const defaultInvitationHours = 168;

export function requireExpiryHours(h: number | undefined): number {
  if (h === undefined) return defaultInvitationHours;
  if (!Number.isInteger(h) || h < 1 || h > 720) throw bad("expires_in_hours", "out_of_range", "expires_in_hours must be between 1 and 720");
  return h;
}

// ─── Invitation tokens ──────────────────────────────────────────────────────────────────

const tokenPattern = /^fabi_[A-Za-z0-9_-]{43}$/;

/** A new single-use token (shown once) and the only thing stored of it. */
export function newInvitationToken(): { raw: string; hash: string } {
  const raw = `fabi_${randomBytes(32).toString("base64url")}`;
  return { raw, hash: hashInvitationToken(raw) };
}

export const hashInvitationToken = (raw: string) => createHash("sha256").update(raw).digest("hex");

export const isInvitationToken = (s: string) => tokenPattern.test(s);
