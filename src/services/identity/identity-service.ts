/**
 * IdentityService: sign-up and login with email and password, access tokens (HS256 JWT,
 * `issueAccessToken`) and single-use refresh tokens, logout, and what the caller may
 * know about themselves — who they are, their organizations and teams, and their
 * effective permissions in one organization (computed by the guard).
 *
 * Refresh tokens are `fabr_` + 32 random bytes (base64url); only their sha256 is stored.
 * Each refresh spends the presented token and issues a new one in one transaction;
 * presenting a spent (revoked) token again is taken as theft — every refresh token of
 * that principal is revoked — and fails like any bad token.
 *
 * Sessions: sign-up and login start one (a new `session_id` on the refresh token, the `sid`
 * of the access tokens); rotation carries it on. A session lives while one of its refresh
 * tokens does, and the authenticator refuses access tokens of a dead one — so Logout
 * (which revokes the session's tokens) and theft detection (all of the principal's) end
 * sessions at once, not when their access tokens expire.
 *
 * Nothing here writes the audit log: audit entries belong to an organization and none of
 * these calls changes one (sign-up creates a principal that belongs to none yet).
 * Passwords and their hashes never leave this module and `passwords.ts`, nor reach a log.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { and, asc, eq, gt, isNotNull, isNull, sql, type SQL } from "drizzle-orm";
import { create } from "@bufbuild/protobuf";
import {
  ExchangeSignInTokenResponseSchema,
  GetMeResponseSchema,
  GetMyPermissionsResponseSchema,
  ListMyOrganizationsResponseSchema,
  ListMyTeamsResponseSchema,
  LoginResponseSchema,
  LogoutResponseSchema,
  MyOrganizationSchema,
  MyTeamSchema,
  RefreshTokenResponseSchema,
  SignUpResponseSchema,
  TeamPermissionsSchema,
  TokensSchema,
  type ExchangeSignInTokenRequest,
  type ExchangeSignInTokenResponse,
  type GetMeRequest,
  type GetMeResponse,
  type GetMyPermissionsRequest,
  type GetMyPermissionsResponse,
  type ListMyOrganizationsRequest,
  type ListMyOrganizationsResponse,
  type ListMyTeamsRequest,
  type ListMyTeamsResponse,
  type LoginRequest,
  type LoginResponse,
  type LogoutRequest,
  type LogoutResponse,
  type RefreshTokenRequest,
  type RefreshTokenResponse,
  type SignUpRequest,
  type SignUpResponse,
  type Tokens,
} from "../../../gen/proto/fabric/v1/identity_pb.js";
import type { Executor } from "../../db/database.js";
import { notifyAccessChanged } from "../../db/events.js";
import { clearLoginFailures, countRequest, loginFailures, recordLoginFailure } from "../../db/rate-limits.js";
import { memberships, organizations, principals, refreshTokens, teams } from "../../db/schema.js";
import { DomainError, invalidArgument, notFound, unauthenticated } from "../../domain/errors.js";
import { isValidEmail, normalizeEmail, requireEmail } from "../../domain/email.js";
import { rateLimitRefusal } from "../../domain/rate-limit.js";
import { describePermissions, isOrganizationRole, isTeamRole, organizationRoles, type OrganizationRole, type TeamRole } from "../../domain/permissions.js";
import { accessTokenSeconds, hashSecret, issueAccessToken } from "./authenticator.js";
import { principalColumns, principalMessage } from "./identity-messages.js";
import { isUuid, type CallContext } from "../call-context.js";
import { spendSignInToken } from "./sign-in-tokens.js";
import { hashPassword, needsRehash, plausiblePassword, requireAcceptablePassword, verifyPassword } from "./passwords.js";
import type { ServiceDeps } from "../service-deps.js";

export type IdentityService = ReturnType<typeof createIdentityService>;

// ─── Names ──────────────────────────────────────────────────────────────────────────────

const maxDisplayNameLength = 200;

function displayNameFor(given: string, email: string): string {
  const name = given.trim();
  if (!name) return email.slice(0, email.indexOf("@"));
  if ([...name].length > maxDisplayNameLength) {
    throw invalidArgument(`display_name must be at most ${maxDisplayNameLength} characters`, [{ path: "/display_name", code: "too_long", message: `at most ${maxDisplayNameLength} characters` }]);
  }
  if (/\p{Cc}/u.test(name)) throw invalidArgument("display_name must not contain control characters", [{ path: "/display_name", code: "invalid_value", message: "control characters are not allowed" }]);
  return name;
}

// ─── Refresh tokens ─────────────────────────────────────────────────────────────────────

export const refreshTokenPrefix = "fabr_";
export const refreshTokenDays = 30;
const refreshTokenPattern = /^fabr_[A-Za-z0-9_-]{43}$/;

/** The stored hash of a well-formed refresh token, or null. */
const refreshTokenHash = (raw: string) => (refreshTokenPattern.test(raw) ? hashSecret(raw) : null);

async function insertRefreshToken(tx: Executor, principalId: string, sessionId: string): Promise<string> {
  const raw = refreshTokenPrefix + randomBytes(32).toString("base64url");
  await tx.insert(refreshTokens).values({ id: randomUUID(), principalId, sessionId, tokenHash: hashSecret(raw), expiresAt: sql`now() + make_interval(days => ${refreshTokenDays})` });
  return raw;
}

/** A new session's first refresh token (sign-up, login). */
async function startSession(tx: Executor, principalId: string): Promise<{ sessionId: string; refresh: string }> {
  const sessionId = randomUUID();
  return { sessionId, refresh: await insertRefreshToken(tx, principalId, sessionId) };
}

/**
 * Revokes every live refresh token `which` selects (a session's, a principal's), also one a
 * rotation inserts meanwhile: the UPDATE's snapshot misses a token whose rotation commits
 * while the UPDATE waits on the old token's row (it then skips the old one as spent), so
 * look again — each statement of the transaction takes a fresh snapshot — until none is
 * left. A rotation that starts later finds its token revoked here (it waits for this
 * transaction) and fails as a replay.
 */
async function revokeLive(tx: Executor, which: SQL | undefined): Promise<void> {
  const live = and(which, isNull(refreshTokens.revokedAt));
  for (let attempt = 0; attempt < 10; attempt++) {
    await tx.update(refreshTokens).set({ revokedAt: sql`now()` }).where(live);
    const [left] = await tx.select({ id: refreshTokens.id }).from(refreshTokens).where(live).limit(1);
    if (!left) return;
  }
}

const badCredentials = () => unauthenticated("invalid email or password");
const badRefreshToken = () => unauthenticated("invalid, expired or revoked refresh token");

// ─── The service ────────────────────────────────────────────────────────────────────────

const orgRank = (r: OrganizationRole) => organizationRoles.indexOf(r);

/** Sign-up and login attempts allowed (each costs a slow password hash). */
export interface AuthAttemptLimits {
  /**
   * Failed logins of one (client address, email) pair before each further attempt from that
   * pair waits: 1 s after the next failure, then 2 s, 4 s … up to `maxLoginDelaySeconds`.
   * Another address (the owner's) is not slowed; a successful login forgets the failures.
   */
  perEmail: number;
  /** Sign-ups and logins per client address per minute. */
  perAddress: number;
}

/** The longest a (client address, email) pair waits between failed logins. */
export const maxLoginDelaySeconds = 15 * 60;
/** Failed logins older than this are forgotten. */
const forgetLoginFailuresSeconds = 60 * 60;

/** The wait before the next login of a pair that failed `failures` times, `free` of them without delay. */
export function loginDelaySeconds(failures: number, free: number): number {
  if (failures < free) return 0;
  return Math.min(maxLoginDelaySeconds, 2 ** Math.min(30, failures - free));
}

export const defaultAuthAttemptLimits: AuthAttemptLimits = { perEmail: 10, perAddress: 60 };

export function createIdentityService(deps: ServiceDeps & { authAttempts?: AuthAttemptLimits }) {
  const { db, jwtSecret, log } = deps;
  const limits = deps.authAttempts ?? defaultAuthAttemptLimits;

  /**
   * Throttles password guessing and hash flooding before any hash is computed: per client
   * address; and for a login, per (client address, email) pair with an exponential delay
   * after `perEmail` failures — an attacker is slowed, but never locks the owner out (their
   * address is another pair). A per-email cap would let anyone lock anyone out.
   */
  async function throttle(ctx: CallContext, email: string | null): Promise<void> {
    if (ctx.clientAddress && !(await countRequest(db, `auth_address:${ctx.clientAddress}`, limits.perAddress))) {
      throw rateLimitRefusal(`too many sign-up and login attempts from this address; at most ${limits.perAddress} a minute`);
    }
    if (email) {
      const { failures, secondsSinceLast } = await loginFailures(db, pairOf(ctx, email), forgetLoginFailuresSeconds);
      const wait = loginDelaySeconds(failures, limits.perEmail) - secondsSinceLast;
      if (wait > 0) throw rateLimitRefusal(`too many failed logins for this account from this address; try again in ${Math.ceil(wait)} s`, Math.ceil(wait));
    }
  }
  const pairOf = (ctx: CallContext, email: string) => `login_failures:${ctx.clientAddress || "unknown"}|${email}`;

  async function tokens(principalId: string, session: { sessionId: string; refresh: string }): Promise<Tokens> {
    return create(TokensSchema, { accessToken: await issueAccessToken(principalId, session.sessionId, jwtSecret), expiresIn: accessTokenSeconds, refreshToken: session.refresh, tokenType: "Bearer" });
  }

  return {
    async signUp(ctx: CallContext, req: SignUpRequest): Promise<SignUpResponse> {
      const email = requireEmail(req.email);
      requireAcceptablePassword(req.password);
      const displayName = displayNameFor(req.displayName, email);
      await throttle(ctx, null);
      const passwordHash = await hashPassword(req.password);
      const created = await db.transaction(async (tx) => {
        // The unique index on email decides, so two concurrent sign-ups cannot both win.
        const [row] = await tx
          .insert(principals)
          .values({ id: randomUUID(), kind: "user", email, displayName, passwordHash })
          .onConflictDoNothing({ target: principals.email })
          .returning(principalColumns);
        if (!row) return null;
        return { row, session: await startSession(tx, row.id) };
      });
      if (!created) throw new DomainError("already_exists", "an account with this email already exists");
      log.info("user signed up", { principal_id: created.row.id, request_id: ctx.requestId });
      return create(SignUpResponseSchema, { principal: principalMessage(created.row), tokens: await tokens(created.row.id, created.session) });
    },

    async login(ctx: CallContext, req: LoginRequest): Promise<LoginResponse> {
      const email = normalizeEmail(req.email);
      if (!email) throw invalidArgument("email is required", [{ path: "/email", code: "required", message: "email is required" }]);
      if (!req.password) throw invalidArgument("password is required", [{ path: "/password", code: "required", message: "password is required" }]);
      // Longer than any password we accept: it cannot match anything.
      if (!plausiblePassword(req.password)) throw badCredentials();
      await throttle(ctx, email);
      const [user] = isValidEmail(email)
        ? await db
            .select({ ...principalColumns, passwordHash: principals.passwordHash })
            .from(principals)
            .where(and(eq(principals.email, email), eq(principals.kind, "user")))
        : [];
      // No such user (or one without a password) costs a full hash too: same error, similar time.
      const ok = await verifyPassword(req.password, user?.passwordHash ?? null);
      if (!ok || !user?.passwordHash) {
        await recordLoginFailure(db, pairOf(ctx, email), forgetLoginFailuresSeconds);
        throw badCredentials();
      }
      await clearLoginFailures(db, pairOf(ctx, email));
      const rehash = needsRehash(user.passwordHash) ? await hashPassword(req.password) : null;
      const session = await db.transaction(async (tx) => {
        if (rehash) await tx.update(principals).set({ passwordHash: rehash }).where(and(eq(principals.id, user.id), eq(principals.passwordHash, user.passwordHash!)));
        return startSession(tx, user.id);
      });
      log.debug("user logged in", { principal_id: user.id, request_id: ctx.requestId });
      return create(LoginResponseSchema, { principal: principalMessage(user), tokens: await tokens(user.id, session) });
    },

    async refreshToken(ctx: CallContext, req: RefreshTokenRequest): Promise<RefreshTokenResponse> {
      if (!req.refreshToken) throw invalidArgument("refresh_token is required", [{ path: "/refresh_token", code: "required", message: "refresh_token is required" }]);
      const hash = refreshTokenHash(req.refreshToken);
      if (!hash) throw badRefreshToken();
      const t = refreshTokens;
      const outcome = await db.transaction(async (tx) => {
        // Spending is one conditional UPDATE: of two concurrent refreshes with the same
        // token, exactly one sees it live (the other waits on the row, then sees it spent).
        // The new token (same session) is inserted in the same transaction, so the session
        // never looks dead to the authenticator: its queries see both changes or neither.
        const [spent] = await tx
          .update(t)
          .set({ revokedAt: sql`now()` })
          .where(and(eq(t.tokenHash, hash), isNull(t.revokedAt), gt(t.expiresAt, sql`now()`)))
          .returning({ principalId: t.principalId, sessionId: t.sessionId });
        if (spent) {
          // A token from before sessions starts one here, so its chain can be logged out from now on.
          const sessionId = spent.sessionId ?? randomUUID();
          return { principalId: spent.principalId, session: { sessionId, refresh: await insertRefreshToken(tx, spent.principalId, sessionId) } };
        }
        const [known] = await tx.select({ principalId: t.principalId, revokedAt: t.revokedAt }).from(t).where(eq(t.tokenHash, hash));
        if (known?.revokedAt) {
          // A spent token presented again: whoever holds the newest one may be a thief.
          await revokeLive(tx, eq(t.principalId, known.principalId));
          await notifyAccessChanged(tx, { principalId: known.principalId });
          return { reused: known.principalId };
        }
        return null;
      });
      if (!outcome) throw badRefreshToken();
      if ("reused" in outcome) {
        log.warn("a spent refresh token was presented again; every refresh token of its principal was revoked", { principal_id: outcome.reused, request_id: ctx.requestId });
        throw badRefreshToken();
      }
      return create(RefreshTokenResponseSchema, { tokens: await tokens(outcome.principalId, outcome.session) });
    },

    async exchangeSignInToken(ctx: CallContext, req: ExchangeSignInTokenRequest): Promise<ExchangeSignInTokenResponse> {
      if (!req.token) throw invalidArgument("token is required", [{ path: "/token", code: "required", message: "token is required" }]);
      // Guessing a 256-bit token is hopeless, but each attempt costs a write: same throttle as logins.
      await throttle(ctx, null);
      const started = await db.transaction(async (tx) => {
        const principalId = await spendSignInToken(tx, req.token);
        if (!principalId) return null;
        const [row] = await tx.select(principalColumns).from(principals).where(eq(principals.id, principalId));
        return row ? { row, session: await startSession(tx, row.id) } : null;
      });
      // One answer for unknown, used and expired tokens: the caller learns nothing about which.
      if (!started) throw unauthenticated("invalid, used or expired sign-in token");
      log.info("signed in with a one-time token", { principal_id: started.row.id, request_id: ctx.requestId });
      return create(ExchangeSignInTokenResponseSchema, { principal: principalMessage(started.row), tokens: await tokens(started.row.id, started.session) });
    },

    async logout(ctx: CallContext, req: LogoutRequest): Promise<LogoutResponse> {
      if (!req.refreshToken) throw invalidArgument("refresh_token is required", [{ path: "/refresh_token", code: "required", message: "refresh_token is required" }]);
      const hash = refreshTokenHash(req.refreshToken);
      const t = refreshTokens;
      const principalId = ctx.caller.principalId;
      const found = hash
        ? await db.transaction(async (tx) => {
            // Someone else's token answers like a missing one (and the token is never echoed).
            const [row] = await tx
              .update(t)
              .set({ revokedAt: sql`coalesce(${t.revokedAt}, now())` })
              .where(and(eq(t.tokenHash, hash), eq(t.principalId, principalId)))
              .returning({ sessionId: t.sessionId });
            if (!row) return false;
            // The whole session ends: its live tokens die, and with them its access tokens.
            if (row.sessionId) await revokeLive(tx, and(eq(t.sessionId, row.sessionId), eq(t.principalId, principalId)));
            await notifyAccessChanged(tx, { principalId }); // the session's open streams end now
            return true;
          })
        : false;
      if (!found) throw new DomainError("not_found", "no such refresh token");
      return create(LogoutResponseSchema, {});
    },

    async getMe(ctx: CallContext, _req: GetMeRequest): Promise<GetMeResponse> {
      const [me] = await db.select(principalColumns).from(principals).where(eq(principals.id, ctx.caller.principalId));
      if (!me) throw unauthenticated("no such principal");
      const orgId = ctx.caller.organizationId;
      if (orgId && ctx.caller.via !== "api_key") {
        // X-Organization-Id is only validated by the guard for organization-scoped calls;
        // this one reports it, so it must be one the caller belongs to (else: not found, as the guard says).
        const member = isUuid(orgId)
          ? await db
              .select({ id: memberships.id })
              .from(memberships)
              .where(and(eq(memberships.principalId, me.id), eq(memberships.organizationId, orgId)))
              .limit(1)
          : [];
        if (member.length === 0) throw notFound("organization", orgId);
      }
      return create(GetMeResponseSchema, { principal: principalMessage(me), organizationId: orgId || undefined, apiKeyId: ctx.caller.apiKeyId });
    },

    async listMyOrganizations(ctx: CallContext, _req: ListMyOrganizationsRequest): Promise<ListMyOrganizationsResponse> {
      const rows = await db
        .select({ id: organizations.id, slug: organizations.slug, name: organizations.name, archivedAt: organizations.archivedAt, teamId: memberships.teamId, role: memberships.role })
        .from(memberships)
        .innerJoin(organizations, eq(organizations.id, memberships.organizationId))
        .where(
          and(
            eq(memberships.principalId, ctx.caller.principalId),
            // An API key belongs to one organization; the principal's others do not exist for it.
            ctx.caller.via === "api_key" ? eq(memberships.organizationId, ctx.caller.organizationId) : undefined,
          ),
        )
        .orderBy(asc(organizations.slug));
      const byId = new Map<string, { row: (typeof rows)[number]; role: OrganizationRole | null }>();
      for (const r of rows) {
        const entry = byId.get(r.id) ?? { row: r, role: null };
        if (r.teamId === null && isOrganizationRole(r.role) && (entry.role === null || orgRank(r.role) < orgRank(entry.role))) entry.role = r.role;
        byId.set(r.id, entry);
      }
      return create(ListMyOrganizationsResponseSchema, {
        organizations: [...byId.values()].map(({ row, role }) =>
          create(MyOrganizationSchema, { id: row.id, slug: row.slug, name: row.name, role: role ?? undefined, archived: row.archivedAt !== null }),
        ),
      });
    },

    async listMyTeams(ctx: CallContext, req: ListMyTeamsRequest): Promise<ListMyTeamsResponse> {
      const filter = req.organizationId;
      const empty = create(ListMyTeamsResponseSchema, { teams: [] });
      if (filter && !isUuid(filter)) return empty;
      const keyOrg = ctx.caller.via === "api_key" ? ctx.caller.organizationId : null;
      if (keyOrg && filter && filter.toLowerCase() !== keyOrg.toLowerCase()) return empty;
      const orgFilter = filter || keyOrg;
      const rows = await db
        .select({ id: teams.id, organizationId: teams.organizationId, slug: teams.slug, name: teams.name, role: memberships.role })
        .from(memberships)
        .innerJoin(teams, eq(teams.id, memberships.teamId))
        .where(and(eq(memberships.principalId, ctx.caller.principalId), isNotNull(memberships.teamId), orgFilter ? eq(memberships.organizationId, orgFilter) : undefined))
        .orderBy(asc(teams.organizationId), asc(teams.slug));
      const byId = new Map<string, { row: (typeof rows)[number]; role: TeamRole }>();
      for (const r of rows) {
        if (!isTeamRole(r.role)) continue; // unknown roles grant nothing: not a membership
        const held = byId.get(r.id);
        if (!held || (held.role === "member" && r.role === "maintainer")) byId.set(r.id, { row: r, role: r.role });
      }
      return create(ListMyTeamsResponseSchema, {
        teams: [...byId.values()].map(({ row, role }) => create(MyTeamSchema, { id: row.id, organizationId: row.organizationId, slug: row.slug, name: row.name, role })),
      });
    },

    async getMyPermissions(ctx: CallContext, _req: GetMyPermissionsRequest): Promise<GetMyPermissionsResponse> {
      // The guard resolved the organization (the field or the caller's), checked
      // membership and computed the permissions, narrowed by the key's scopes.
      if (!ctx.permissions) throw new DomainError("internal", "GetMyPermissions reached without the guard's permissions");
      const d = describePermissions(ctx.permissions);
      const orgWide = new Set<string>(d.organization);
      return create(GetMyPermissionsResponseSchema, {
        organizationId: d.organizationId,
        role: d.organizationRole ?? undefined,
        actions: d.organization,
        teams: d.teams.map((t) => create(TeamPermissionsSchema, { teamId: t.teamId, actions: t.actions.filter((a) => !orgWide.has(a)) })),
        scopes: [...ctx.caller.scopes],
        ownActions: d.own.filter((a) => !orgWide.has(a)),
      });
    },
  };
}
