/**
 * IdentityService on the wire, on both transports: sign-up, login, the access token as
 * `Authorization: Bearer <jwt>`, refresh rotation with reuse detection, logout, sessions
 * (logout and theft detection end access tokens at once), and what
 * the caller learns about themselves (organizations, teams, permissions) — including the
 * X-Organization-Id rule for users of several organizations and API-key callers.
 * Memberships are inserted directly: the tenancy service is built separately.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { eq, sql } from "drizzle-orm";
import { SignJWT, decodeJwt } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  GetMeResponseSchema,
  GetMyPermissionsResponseSchema,
  IdentityService,
  ListMyOrganizationsResponseSchema,
  ListMyTeamsResponseSchema,
  LoginResponseSchema,
  SignUpResponseSchema,
  TokensSchema,
} from "../../gen/proto/fabric/v1/identity_pb.js";
import { WorkflowService } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { query } from "../../src/db/database.js";
import { apiKeys, principals, refreshTokens } from "../../src/db/schema.js";
import { organizationRoleGrants, teamRoleGrants } from "../../src/domain/permissions.js";
import { parseApiKey } from "../../src/services/identity/authenticator.js";
import { jsonOptions } from "../../src/control-plane/contract.js";
import { engine } from "../helpers/database.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { insertKey, insertMembership, insertOrganization, insertTeam } from "../helpers/fixtures.js";

// The control plane runs in this process with a random development JWT secret: keep a copy,
// to sign tokens the server accepts (the ones from before sessions, without `sid`).
const jwtSecrets = vi.hoisted(() => [] as Uint8Array[]);
vi.mock("../../src/services/identity/authenticator.js", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../../src/services/identity/authenticator.js")>();
  return {
    ...actual,
    jwtSecretFrom: (configured: string | undefined) => {
      const secret = actual.jwtSecretFrom(configured);
      jwtSecrets.push(secret);
      return secret;
    },
  };
});

type Via = "rest" | "grpc";
const transports: readonly Via[] = ["rest", "grpc"];
type Json = Record<string, any>;

/** A failed call, the same on both transports: the stable error code and the message. */
class CallFailed extends Error {
  constructor(
    readonly via: Via,
    readonly code: string,
    readonly detail: string,
    readonly status: number | Code,
  ) {
    super(`${via} ${code} (${status}): ${detail}`);
  }
}

interface Auth {
  /** API key or access token, sent as `Authorization: Bearer …`. */
  token?: string;
  /** X-Organization-Id. */
  org?: string;
}

/** IdentityService (and ListWorkflows, to try organization scoping) on one transport; answers as REST's proto3 JSON. */
interface IdentityClient {
  signUp(body: { email: string; password: string; display_name?: string }): Promise<Json>;
  login(body: { email: string; password: string }): Promise<Json>;
  refresh(refreshToken: string): Promise<Json>;
  logout(refreshToken: string, auth: Auth): Promise<Json>;
  me(auth: Auth): Promise<Json>;
  organizations(auth: Auth): Promise<Json[]>;
  teams(auth: Auth, organizationId?: string): Promise<Json[]>;
  permissions(auth: Auth, organizationId?: string): Promise<Json>;
  listWorkflows(auth: Auth): Promise<Json[]>;
}

let fabric: TestFabric;
const sessionManagers: Http2SessionManager[] = [];

beforeAll(async () => {
  fabric = await startTestFabric({ worker: false });
});

afterAll(async () => {
  for (const m of sessionManagers) m.abort();
  await fabric?.close();
});

afterEach(() => {
  vi.useRealTimers();
});

function restClient(): IdentityClient {
  const call = async (method: string, path: string, auth: Auth = {}, json?: unknown, expected = 200): Promise<any> => {
    const headers: Record<string, string> = {};
    if (auth.org) headers["x-organization-id"] = auth.org;
    const res = await fabric.rest(path, { method, headers, key: auth.token ?? null, ...(json === undefined ? {} : { json }) });
    const body: any = await res.json();
    if (res.status !== expected) {
      if (res.status < 400) throw new Error(`unexpected ${res.status}: ${JSON.stringify(body)}`);
      expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      throw new CallFailed("rest", body.code, body.detail, res.status);
    }
    return body.data;
  };
  const q = (organizationId?: string) => (organizationId === undefined ? "" : `?organization_id=${encodeURIComponent(organizationId)}`);
  return {
    signUp: (body) => call("POST", "/v1/auth/signup", {}, body, 201),
    login: (body) => call("POST", "/v1/auth/login", {}, body),
    refresh: (refreshToken) => call("POST", "/v1/auth/refresh", {}, { refresh_token: refreshToken }),
    logout: (refreshToken, auth) => call("POST", "/v1/auth/logout", auth, { refresh_token: refreshToken }),
    me: (auth) => call("GET", "/v1/me", auth),
    organizations: (auth) => call("GET", "/v1/me/organizations", auth),
    teams: (auth, organizationId) => call("GET", `/v1/me/teams${q(organizationId)}`, auth),
    permissions: (auth, organizationId) => call("GET", `/v1/me/permissions${q(organizationId)}`, auth),
    listWorkflows: (auth) => call("GET", "/v1/workflows", auth),
  };
}

function grpcClient(): IdentityClient {
  const sessionManager = new Http2SessionManager(fabric.grpcUrl);
  sessionManagers.push(sessionManager);
  const clients = new Map<string, { identity: ReturnType<typeof createClient<typeof IdentityService>>; workflows: ReturnType<typeof createClient<typeof WorkflowService>> }>();
  const of = (auth: Auth = {}) => {
    const k = `${auth.token ?? ""}|${auth.org ?? ""}`;
    let c = clients.get(k);
    if (!c) {
      const authInterceptor: Interceptor = (next) => (req) => {
        if (auth.token) req.header.set("authorization", `Bearer ${auth.token}`);
        if (auth.org) req.header.set("x-organization-id", auth.org);
        return next(req);
      };
      const transport = createGrpcTransport({ baseUrl: fabric.grpcUrl, sessionManager, interceptors: [authInterceptor] });
      c = { identity: createClient(IdentityService, transport), workflows: createClient(WorkflowService, transport) };
      clients.set(k, c);
    }
    return c;
  };
  const wrap = async <T>(p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (err) {
      if (!(err instanceof ConnectError)) throw err;
      throw new CallFailed("grpc", err.metadata.get("fabric-error-code") ?? "", err.rawMessage, err.code);
    }
  };
  return {
    signUp: async (b) => toJson(SignUpResponseSchema, await wrap(of().identity.signUp({ email: b.email, password: b.password, displayName: b.display_name })), jsonOptions) as Json,
    login: async (b) => toJson(LoginResponseSchema, await wrap(of().identity.login(b)), jsonOptions) as Json,
    refresh: async (refreshToken) => toJson(TokensSchema, (await wrap(of().identity.refreshToken({ refreshToken }))).tokens!, jsonOptions) as Json,
    logout: async (refreshToken, auth) => (await wrap(of(auth).identity.logout({ refreshToken })), {}),
    me: async (auth) => toJson(GetMeResponseSchema, await wrap(of(auth).identity.getMe({})), jsonOptions) as Json,
    organizations: async (auth) => (toJson(ListMyOrganizationsResponseSchema, await wrap(of(auth).identity.listMyOrganizations({})), jsonOptions) as Json)["organizations"],
    teams: async (auth, organizationId) => (toJson(ListMyTeamsResponseSchema, await wrap(of(auth).identity.listMyTeams({ organizationId })), jsonOptions) as Json)["teams"],
    permissions: async (auth, organizationId) => toJson(GetMyPermissionsResponseSchema, await wrap(of(auth).identity.getMyPermissions({ organizationId })), jsonOptions) as Json,
    listWorkflows: async (auth) => (await wrap(of(auth).workflows.listWorkflows({}))).workflows.map((w) => ({ id: w.id })),
  };
}

const grpcCodes: Record<string, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
};
const httpCodes: Record<string, number> = { invalid_argument: 400, unauthenticated: 401, not_found: 404, already_exists: 409 };

/** The call's failure, checked to carry `code` with the transport's matching status. */
async function failure(p: Promise<unknown>, code: string): Promise<CallFailed> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `the call should have failed with ${code}`).toBeInstanceOf(CallFailed);
  const f = err as CallFailed;
  expect(f.code, f.message).toBe(code);
  expect(f.status).toBe(f.via === "rest" ? httpCodes[code] : grpcCodes[code]);
  return f;
}

const password = "correct horse battery staple";
const newEmail = (tag: string) => `${tag}-${randomUUID().slice(0, 8)}@example.com`;
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Refresh tokens of a session that are neither revoked nor expired. */
async function liveTokens(sessionId: string): Promise<number> {
  const rows = await query<{ n: number }>(fabric.database.db, sql`SELECT count(*)::int AS n FROM refresh_tokens WHERE session_id = ${sessionId} AND revoked_at IS NULL AND expires_at > now()`);
  return rows[0]!.n;
}

async function revokedAt(rawRefreshToken: string): Promise<Date | null> {
  const [row] = await fabric.database.db.select({ revokedAt: refreshTokens.revokedAt }).from(refreshTokens).where(eq(refreshTokens.tokenHash, sha256(rawRefreshToken)));
  return row!.revokedAt;
}

/**
 * Rotates `oldRaw` as RefreshToken does (spend it, insert a successor in the same session)
 * in a transaction held open until `during` is blocked on a lock — waiting on the spent
 * token's row — then commits and lets it finish. Returns the successor (raw).
 */
async function rotateWhile(oldRaw: string, sessionId: string, principalId: string, during: () => Promise<unknown>): Promise<string> {
  const raw = `fabr_${randomBytes(32).toString("base64url")}`;
  let pending: Promise<unknown> | undefined;
  await fabric.database.db.transaction(async (tx) => {
    const spent = await tx.update(refreshTokens).set({ revokedAt: sql`now()` }).where(eq(refreshTokens.tokenHash, sha256(oldRaw))).returning({ id: refreshTokens.id });
    expect(spent).toHaveLength(1);
    await tx.insert(refreshTokens).values({ id: randomUUID(), principalId, sessionId, tokenHash: sha256(raw), expiresAt: new Date(Date.now() + 86_400_000) });
    pending = during();
    pending.catch(() => {});
    // Outside the transaction (another pooled connection): is a backend of this database waiting on a lock?
    for (let i = 0; ; i++) {
      const waiting = await query<{ n: number }>(fabric.database.db, sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
      if (waiting[0]!.n > 0) break;
      if (i === 200) throw new Error("the concurrent call never waited on the rotation's lock");
      await new Promise((r) => setTimeout(r, 10));
    }
  });
  await pending;
  return raw;
}

/** What a genuine but expired access token is answered with (a moment later, in this process's clock). */
async function expiredTokenRefusal(client: IdentityClient, token: string): Promise<string> {
  vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
  vi.setSystemTime(Date.now() + 16 * 60_000);
  try {
    return (await failure(client.me({ token }), "unauthenticated")).detail;
  } finally {
    vi.useRealTimers();
  }
}

describe.each(transports)("identity over %s", (via) => {
  let client: IdentityClient;
  beforeAll(() => {
    client = via === "rest" ? restClient() : grpcClient();
  });

  it("signs up, logs in, and the access token works as a Bearer token on GetMe", async () => {
    const email = newEmail(`Alice.${via}`);
    const signed = await client.signUp({ email: `  ${email.toUpperCase()}  `, password });
    expect(signed.principal).toMatchObject({ kind: "user", email: email.toLowerCase(), display_name: email.slice(0, email.indexOf("@")).toLowerCase() });
    expect(signed.principal.create_time).toBeTruthy();
    expect(signed.tokens).toMatchObject({ token_type: "Bearer", expires_in: 900 });
    expect(signed.tokens.refresh_token).toMatch(/^fabr_[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(signed)).not.toMatch(/password|scrypt/i);
    const claims = decodeJwt(signed.tokens.access_token);
    expect(claims.sub).toBe(signed.principal.id);
    expect(claims.exp! - claims.iat!).toBe(900);

    // Stored: a scrypt hash (never the password), and only a hash of the refresh token.
    const [row] = await fabric.database.db.select().from(principals).where(eq(principals.id, signed.principal.id));
    expect(row!.passwordHash).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(row!.passwordHash).not.toContain(password);
    const stored = await fabric.database.db.select().from(refreshTokens).where(eq(refreshTokens.principalId, signed.principal.id));
    expect(stored.map((t) => t.tokenHash)).toEqual([sha256(signed.tokens.refresh_token)]);
    const days = (stored[0]!.expiresAt.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);

    const logged = await client.login({ email: email.toUpperCase(), password });
    expect(logged.principal).toEqual(signed.principal);
    expect(logged.tokens.refresh_token).not.toBe(signed.tokens.refresh_token);

    const me = await client.me({ token: logged.tokens.access_token });
    expect(me.principal).toEqual(signed.principal);
    // No organization yet: the call acts in none; no API key.
    expect(me.organization_id).toBeUndefined();
    expect(me.api_key_id).toBeUndefined();
    expect(await client.organizations({ token: logged.tokens.access_token })).toEqual([]);
    expect(await client.teams({ token: logged.tokens.access_token })).toEqual([]);
  });

  it("keeps a given display name", async () => {
    const signed = await client.signUp({ email: newEmail(`named-${via}`), password, display_name: "  Ada Lovelace " });
    expect(signed.principal.display_name).toBe("Ada Lovelace");
  });

  it("refuses a duplicate email (whatever its case) with already_exists, also when two race", async () => {
    const email = newEmail(`dup-${via}`);
    await client.signUp({ email, password });
    await failure(client.signUp({ email: email.toUpperCase(), password: "another password 1" }), "already_exists");

    const raced = newEmail(`race-${via}`);
    const results = await Promise.allSettled([client.signUp({ email: raced, password }), client.signUp({ email: raced, password })]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === "rejected")!;
    expect((rejected.reason as CallFailed).code).toBe("already_exists");
    const rows = await fabric.database.db.select({ id: principals.id }).from(principals).where(eq(principals.email, raced));
    expect(rows).toHaveLength(1);
  });

  it("validates sign-up input", async () => {
    await failure(client.signUp({ email: "", password }), "invalid_argument");
    await failure(client.signUp({ email: "not-an-email", password }), "invalid_argument");
    await failure(client.signUp({ email: "two@@example.com", password }), "invalid_argument");
    await failure(client.signUp({ email: newEmail(`short-${via}`), password: "123456789" }), "invalid_argument");
    await failure(client.signUp({ email: newEmail(`long-${via}`), password: "x".repeat(1025) }), "invalid_argument");
    await failure(client.signUp({ email: newEmail(`name-${via}`), password, display_name: "x".repeat(201) }), "invalid_argument");
  });

  it("answers a wrong password and an unknown email identically, in similar time", async () => {
    const email = newEmail(`bob-${via}`);
    await client.signUp({ email, password });
    const wrong = await failure(client.login({ email, password: "wrong password here" }), "unauthenticated");
    const unknown = await failure(client.login({ email: newEmail("nobody"), password }), "unauthenticated");
    const malformed = await failure(client.login({ email: "not-an-email", password }), "unauthenticated");
    expect([unknown.detail, unknown.status]).toEqual([wrong.detail, wrong.status]);
    expect([malformed.detail, malformed.status]).toEqual([wrong.detail, wrong.status]);
    expect(wrong.detail).not.toMatch(/exist|unknown|no such/i);

    // The dev owner and a service account have no password: they cannot log in, same answer.
    const noPassword = await failure(client.login({ email: "dev@fabric.local", password }), "unauthenticated");
    expect(noPassword.detail).toBe(wrong.detail);
    const serviceEmail = newEmail("robot");
    await fabric.database.db.insert(principals).values({ id: randomUUID(), kind: "service_account", email: serviceEmail, displayName: "robot" });
    expect((await failure(client.login({ email: serviceEmail, password }), "unauthenticated")).detail).toBe(wrong.detail);

    // An unknown account still costs a full password hash (loose bound: timing on shared CI is noisy).
    const time = async (p: () => Promise<unknown>) => {
      const t0 = performance.now();
      await p().catch(() => {});
      return performance.now() - t0;
    };
    const wrongMs: number[] = [];
    const unknownMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      wrongMs.push(await time(() => client.login({ email, password: `wrong password ${i}` })));
      unknownMs.push(await time(() => client.login({ email: newEmail("nobody"), password })));
    }
    expect(median(unknownMs)).toBeGreaterThan(median(wrongMs) * 0.3);
  });

  it("requires email and password to log in", async () => {
    await failure(client.login({ email: "", password }), "invalid_argument");
    await failure(client.login({ email: newEmail("x"), password: "" }), "invalid_argument");
  });

  it("rotates refresh tokens, and a reused one revokes every refresh token of the principal", async () => {
    const email = newEmail(`carol-${via}`);
    const signed = await client.signUp({ email, password });
    const other = await client.login({ email, password }); // a second session

    const r1 = await client.refresh(signed.tokens.refresh_token);
    expect(r1).toMatchObject({ token_type: "Bearer", expires_in: 900 });
    expect(r1.refresh_token).toMatch(/^fabr_/);
    expect(r1.refresh_token).not.toBe(signed.tokens.refresh_token);
    expect((await client.me({ token: r1.access_token })).principal.id).toBe(signed.principal.id);
    const r2 = await client.refresh(r1.refresh_token);

    // The spent token presented again: refused, and every live token dies with it.
    const reuse = await failure(client.refresh(signed.tokens.refresh_token), "unauthenticated");
    await failure(client.refresh(r2.refresh_token), "unauthenticated");
    await failure(client.refresh(other.tokens.refresh_token), "unauthenticated");
    const live = await query<{ n: number }>(
      fabric.database.db,
      sql`SELECT count(*)::int AS n FROM refresh_tokens WHERE principal_id = ${signed.principal.id} AND revoked_at IS NULL`,
    );
    expect(live[0]!.n).toBe(0);
    // Same answer as a token that never existed.
    const never = await failure(client.refresh(`fabr_${"A".repeat(43)}`), "unauthenticated");
    expect(never.detail).toBe(reuse.detail);
    await failure(client.refresh("garbage"), "unauthenticated");
    await failure(client.refresh(""), "invalid_argument");

    // Logging in again starts a fresh chain.
    const again = await client.login({ email, password });
    expect((await client.refresh(again.tokens.refresh_token)).refresh_token).toMatch(/^fabr_/);
  });

  it("spends a refresh token once even when two refreshes race", async () => {
    const signed = await client.signUp({ email: newEmail(`race-refresh-${via}`), password });
    const results = await Promise.allSettled([client.refresh(signed.tokens.refresh_token), client.refresh(signed.tokens.refresh_token)]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(((results.find((r) => r.status === "rejected") as PromiseRejectedResult).reason as CallFailed).code).toBe("unauthenticated");
    // The loser looked like a replay: nothing of this principal stays live.
    const live = await query<{ n: number }>(fabric.database.db, sql`SELECT count(*)::int AS n FROM refresh_tokens WHERE principal_id = ${signed.principal.id} AND revoked_at IS NULL`);
    expect(live[0]!.n).toBe(0);
  });

  it("refuses an expired refresh token", async () => {
    const signed = await client.signUp({ email: newEmail(`exp-${via}`), password });
    await fabric.database.db.update(refreshTokens).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(refreshTokens.tokenHash, sha256(signed.tokens.refresh_token)));
    await failure(client.refresh(signed.tokens.refresh_token), "unauthenticated");
  });

  it("logs out: the caller's refresh token dies; someone else's is not found", async () => {
    const email = newEmail(`dave-${via}`);
    const dave = await client.signUp({ email, password });
    const erin = await client.signUp({ email: newEmail(`erin-${via}`), password });
    const auth = { token: dave.tokens.access_token };

    // Another principal's token, a garbage one, and an unknown one all answer not_found.
    const foreign = await failure(client.logout(erin.tokens.refresh_token, auth), "not_found");
    const unknown = await failure(client.logout(`fabr_${"B".repeat(43)}`, auth), "not_found");
    expect(unknown.detail).toBe(foreign.detail);
    expect(foreign.detail).not.toContain(erin.tokens.refresh_token);
    await failure(client.logout("garbage", auth), "not_found");
    await failure(client.logout("", auth), "invalid_argument");
    expect((await client.refresh(erin.tokens.refresh_token)).refresh_token).toMatch(/^fabr_/); // untouched

    expect(await client.logout(dave.tokens.refresh_token, auth)).toEqual({});
    const [row] = await fabric.database.db.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, sha256(dave.tokens.refresh_token)));
    expect(row!.revokedAt).not.toBeNull();
    // That session is over, its access token too; from another session, logging out twice is harmless.
    await failure(client.me(auth), "unauthenticated");
    const again = { token: (await client.login({ email, password })).tokens.access_token };
    expect(await client.logout(dave.tokens.refresh_token, again)).toEqual({});
    await failure(client.refresh(dave.tokens.refresh_token), "unauthenticated");
    // Logout needs credentials.
    await failure(client.logout(dave.tokens.refresh_token, {}), "unauthenticated");
  });

  it("a login is a session: its tokens carry it, rotation keeps it, and the old and new access tokens both work", async () => {
    const email = newEmail(`sid-${via}`);
    const signed = await client.signUp({ email, password });
    const sid = decodeJwt(signed.tokens.access_token)["sid"] as string;
    expect(sid).toMatch(uuidPattern);
    const other = await client.login({ email, password });
    expect(decodeJwt(other.tokens.access_token)["sid"]).toMatch(uuidPattern);
    expect(decodeJwt(other.tokens.access_token)["sid"]).not.toBe(sid);

    const r1 = await client.refresh(signed.tokens.refresh_token);
    const r2 = await client.refresh(r1.refresh_token);
    expect(decodeJwt(r1.access_token)["sid"]).toBe(sid);
    expect(decodeJwt(r2.access_token)["sid"]).toBe(sid);
    for (const token of [signed.tokens.access_token, r1.access_token, r2.access_token, other.tokens.access_token]) {
      expect((await client.me({ token })).principal.id).toBe(signed.principal.id);
    }
    // Stored: every token of the chain in the session, only the newest live.
    const chain = await fabric.database.db
      .select({ tokenHash: refreshTokens.tokenHash, sessionId: refreshTokens.sessionId, revokedAt: refreshTokens.revokedAt })
      .from(refreshTokens)
      .where(eq(refreshTokens.sessionId, sid));
    expect(chain.map((t) => t.tokenHash).sort()).toEqual([signed.tokens.refresh_token, r1.refresh_token, r2.refresh_token].map(sha256).sort());
    expect(chain.filter((t) => t.revokedAt === null).map((t) => t.tokenHash)).toEqual([sha256(r2.refresh_token)]);
  });

  it("logout ends that session at once — its access tokens, old and new, are refused — while another session goes on", async () => {
    const email = newEmail(`bye-${via}`);
    const first = await client.signUp({ email, password });
    const second = await client.login({ email, password });
    const third = await client.login({ email, password });
    const rotated = await client.refresh(first.tokens.refresh_token);
    const expectedRefusal = await expiredTokenRefusal(client, second.tokens.access_token);

    expect(await client.logout(rotated.refresh_token, { token: rotated.access_token })).toEqual({});
    for (const token of [first.tokens.access_token, rotated.access_token]) {
      const refused = await failure(client.me({ token }), "unauthenticated");
      // Like an expired token: nothing says the session was ended.
      expect(refused.detail).toBe(expectedRefusal);
    }
    await failure(client.organizations({ token: rotated.access_token }), "unauthenticated");
    await failure(client.logout(rotated.refresh_token, { token: rotated.access_token }), "unauthenticated");

    // The other sessions of the same user go on, refresh included.
    expect((await client.me({ token: second.tokens.access_token })).principal.id).toBe(first.principal.id);
    const next = await client.refresh(second.tokens.refresh_token);
    expect((await client.me({ token: next.access_token })).principal.id).toBe(first.principal.id);
    expect((await client.me({ token: second.tokens.access_token })).principal.id).toBe(first.principal.id);

    // Logging out with a spent refresh token of a session ends it too; here another device's session, ended from this one.
    const r3 = await client.refresh(third.tokens.refresh_token);
    expect(await client.logout(third.tokens.refresh_token, { token: next.access_token })).toEqual({});
    await failure(client.me({ token: r3.access_token }), "unauthenticated");
    await failure(client.me({ token: third.tokens.access_token }), "unauthenticated");
    expect((await client.me({ token: next.access_token })).principal.id).toBe(first.principal.id);
    expect(await liveTokens(decodeJwt(third.tokens.access_token)["sid"] as string)).toBe(0);
  });

  it("refresh-token reuse ends every session of the user at once, access tokens included", async () => {
    const email = newEmail(`stolen-${via}`);
    const signed = await client.signUp({ email, password });
    const other = await client.login({ email, password });
    const r1 = await client.refresh(signed.tokens.refresh_token);
    const bystander = await client.signUp({ email: newEmail(`bystander-${via}`), password });
    for (const token of [signed.tokens.access_token, r1.access_token, other.tokens.access_token]) expect((await client.me({ token })).principal.id).toBe(signed.principal.id);

    await failure(client.refresh(signed.tokens.refresh_token), "unauthenticated"); // the spent one again
    for (const token of [signed.tokens.access_token, r1.access_token, other.tokens.access_token]) await failure(client.me({ token }), "unauthenticated");
    // Someone else's session is untouched; logging in again starts a working one.
    expect((await client.me({ token: bystander.tokens.access_token })).principal.id).toBe(bystander.principal.id);
    const again = await client.login({ email, password });
    expect((await client.me({ token: again.tokens.access_token })).principal.id).toBe(signed.principal.id);
  });

  it("an access token without a session (no sid) or without exp is refused; a session id that is not alive is too", async () => {
    const signed = await client.signUp({ email: newEmail(`legacy-${via}`), password });
    const stranger = await client.signUp({ email: newEmail(`stranger-${via}`), password });
    expect(jwtSecrets).toHaveLength(1); // the one control plane of this file
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT({ typ: "access", ...claims }).setProtectedHeader({ alg: "HS256" }).setSubject(signed.principal.id).setIssuer("fabric").setIssuedAt().setExpirationTime("15m").sign(jwtSecrets[0]!);
    const legacy = await sign({});
    await failure(client.me({ token: legacy }), "unauthenticated");
    const noExp = await new SignJWT({ typ: "access", sid: decodeJwt(signed.tokens.access_token)["sid"] }).setProtectedHeader({ alg: "HS256" }).setSubject(signed.principal.id).setIssuer("fabric").setIssuedAt().sign(jwtSecrets[0]!);
    await failure(client.me({ token: noExp }), "unauthenticated");
    // A made-up session, another user's live one, or a sid that is not a session id: refused.
    await failure(client.me({ token: await sign({ sid: randomUUID() }) }), "unauthenticated");
    await failure(client.me({ token: await sign({ sid: decodeJwt(stranger.tokens.access_token)["sid"] }) }), "unauthenticated");
    await failure(client.me({ token: await sign({ sid: "not-a-uuid" }) }), "unauthenticated");
    await failure(client.me({ token: await sign({ sid: 42 }) }), "unauthenticated");
    // The user's own live session, signed the same way: accepted (the secret is the server's).
    expect((await client.me({ token: await sign({ sid: decodeJwt(signed.tokens.access_token)["sid"] }) })).principal.id).toBe(signed.principal.id);

    await client.logout(signed.tokens.refresh_token, { token: signed.tokens.access_token });
    await failure(client.me({ token: signed.tokens.access_token }), "unauthenticated");
  });

  it("a refresh token from before sessions starts a session when refreshed; logging it out revokes just it", async () => {
    const signed = await client.signUp({ email: newEmail(`old-refresh-${via}`), password });
    const oldToken = async () => {
      const raw = `fabr_${randomBytes(32).toString("base64url")}`;
      await fabric.database.db.insert(refreshTokens).values({ id: randomUUID(), principalId: signed.principal.id, tokenHash: sha256(raw), expiresAt: new Date(Date.now() + 86_400_000) });
      return raw;
    };
    const rotated = await client.refresh(await oldToken());
    const sid = decodeJwt(rotated.access_token)["sid"] as string;
    expect(sid).toMatch(uuidPattern);
    const [row] = await fabric.database.db.select({ sessionId: refreshTokens.sessionId }).from(refreshTokens).where(eq(refreshTokens.tokenHash, sha256(rotated.refresh_token)));
    expect(row!.sessionId).toBe(sid);
    expect((await client.me({ token: rotated.access_token })).principal.id).toBe(signed.principal.id);
    await client.logout(rotated.refresh_token, { token: rotated.access_token });
    await failure(client.me({ token: rotated.access_token }), "unauthenticated");

    const untouched = await oldToken();
    const doomed = await oldToken();
    await client.logout(doomed, { token: signed.tokens.access_token });
    expect((await client.me({ token: signed.tokens.access_token })).principal.id).toBe(signed.principal.id);
    expect((await client.refresh(untouched)).refresh_token).toMatch(/^fabr_/);
  });

  it("requests with the session's access tokens never fail while it rotates", async () => {
    const signed = await client.signUp({ email: newEmail(`busy-${via}`), password });
    let refresh = signed.tokens.refresh_token as string;
    const access = [signed.tokens.access_token as string];
    for (let i = 0; i < 8; i++) {
      const [next, ...answers] = await Promise.all([client.refresh(refresh), ...access.slice(-3).flatMap((token) => [client.me({ token }), client.me({ token })])]);
      for (const a of answers) expect(a.principal.id).toBe(signed.principal.id);
      refresh = next.refresh_token;
      access.push(next.access_token);
    }
    for (const token of access) expect((await client.me({ token })).principal.id).toBe(signed.principal.id);
  });

  // A rotation held open in a transaction of the test, so the revocation below must wait on
  // its row: only a server with concurrent connections can interleave (PGlite runs one query at a time).
  it.skipIf(engine !== "postgres")("a rotation in flight never shows the session dead: before its commit the old token is live, after it the new one", async () => {
    const signed = await client.signUp({ email: newEmail(`inflight-${via}`), password });
    const sid = decodeJwt(signed.tokens.access_token)["sid"] as string;
    const successor = `fabr_${randomBytes(32).toString("base64url")}`;
    await fabric.database.db.transaction(async (tx) => {
      await tx.update(refreshTokens).set({ revokedAt: sql`now()` }).where(eq(refreshTokens.tokenHash, sha256(signed.tokens.refresh_token)));
      await tx.insert(refreshTokens).values({ id: randomUUID(), principalId: signed.principal.id, sessionId: sid, tokenHash: sha256(successor), expiresAt: new Date(Date.now() + 86_400_000) });
      // Both changes uncommitted: the server's check (another connection) does not wait on them and sees neither.
      expect((await client.me({ token: signed.tokens.access_token })).principal.id).toBe(signed.principal.id);
    });
    expect((await client.me({ token: signed.tokens.access_token })).principal.id).toBe(signed.principal.id);
    expect(await revokedAt(signed.tokens.refresh_token)).not.toBeNull();
    expect(await liveTokens(sid)).toBe(1);
  });

  it.skipIf(engine !== "postgres")("a logout waiting on a rotation of the same session still ends it, the new token too", async () => {
    const signed = await client.signUp({ email: newEmail(`race-logout-${via}`), password });
    const r1 = await client.refresh(signed.tokens.refresh_token);
    const sid = decodeJwt(r1.access_token)["sid"] as string;
    const fresh = await rotateWhile(r1.refresh_token, sid, signed.principal.id, () => client.logout(signed.tokens.refresh_token, { token: r1.access_token }));
    expect(await revokedAt(fresh)).not.toBeNull();
    expect(await liveTokens(sid)).toBe(0);
    await failure(client.me({ token: r1.access_token }), "unauthenticated");
  });

  it.skipIf(engine !== "postgres")("reuse detection waiting on a rotation of another session still revokes the new token", async () => {
    const email = newEmail(`race-reuse-${via}`);
    const signed = await client.signUp({ email, password });
    await client.refresh(signed.tokens.refresh_token); // now spent
    const other = await client.login({ email, password });
    const sid = decodeJwt(other.tokens.access_token)["sid"] as string;
    const fresh = await rotateWhile(other.tokens.refresh_token, sid, signed.principal.id, () => client.refresh(signed.tokens.refresh_token).catch((e: unknown) => e));
    expect(await revokedAt(fresh)).not.toBeNull();
    expect(await liveTokens(sid)).toBe(0);
    await failure(client.me({ token: other.tokens.access_token }), "unauthenticated");
  });

  it("refuses forged, tampered and expired access tokens", async () => {
    const signed = await client.signUp({ email: newEmail(`frank-${via}`), password });
    const good = signed.tokens.access_token;
    expect((await client.me({ token: good })).principal.id).toBe(signed.principal.id);

    const forged = await new SignJWT({ typ: "access" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(fabric.principalId)
      .setIssuer("fabric")
      .setIssuedAt()
      .setExpirationTime("15m")
      .sign(new TextEncoder().encode("not the server's secret"));
    await failure(client.me({ token: forged }), "unauthenticated");

    // The dev owner's id put into a genuine token's payload: the signature no longer matches.
    const [header, payload, signature] = good.split(".");
    const claims = JSON.parse(Buffer.from(payload!, "base64url").toString());
    const swapped = Buffer.from(JSON.stringify({ ...claims, sub: fabric.principalId })).toString("base64url");
    await failure(client.me({ token: `${header}.${swapped}.${signature}` }), "unauthenticated");
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${payload}.`;
    await failure(client.me({ token: none }), "unauthenticated");
    // A refresh token is not an access token.
    await failure(client.me({ token: signed.tokens.refresh_token }), "unauthenticated");

    // Sixteen minutes later the 15-minute token has expired (the server runs in this process).
    vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
    vi.setSystemTime(Date.now() + 16 * 60_000);
    await failure(client.me({ token: good }), "unauthenticated");
    vi.useRealTimers();
    expect((await client.me({ token: good })).principal.id).toBe(signed.principal.id);
  });

  it("a user of several organizations names one with X-Organization-Id for organization-scoped calls", async () => {
    const user = await client.signUp({ email: newEmail(`grace-${via}`), password });
    const me = user.principal.id as string;
    const token = user.tokens.access_token;
    const orgA = await insertOrganization(fabric, { slugPrefix: "alpha", name: "alpha" });
    const orgB = await insertOrganization(fabric, { slugPrefix: "beta", name: "beta" });
    const orgC = await insertOrganization(fabric, { slugPrefix: "gamma", name: "gamma" });

    // No organization at all: organization-scoped calls need one.
    await failure(client.listWorkflows({ token }), "invalid_argument");

    // One organization: it is the one the call acts in, header or not.
    await insertMembership(fabric, orgA, me, "member");
    expect(await client.listWorkflows({ token })).toEqual([]);
    expect((await client.me({ token })).organization_id).toBe(orgA);

    // Two: without the header an organization-scoped call is refused with 400.
    await insertMembership(fabric, orgB, me, "viewer");
    const refused = await failure(client.listWorkflows({ token }), "invalid_argument");
    expect(refused.detail).toMatch(/X-Organization-Id/);
    expect(await client.listWorkflows({ token, org: orgA })).toEqual([]);
    expect(await client.listWorkflows({ token, org: orgB })).toEqual([]);
    // An organization the user is not in (the dev one), or not an id at all: not found.
    await failure(client.listWorkflows({ token, org: fabric.organizationId }), "not_found");
    await failure(client.listWorkflows({ token, org: "not-a-uuid" }), "not_found");

    // GetMe reports the organization the call acts in; a foreign one is not found.
    expect((await client.me({ token })).organization_id).toBeUndefined();
    expect((await client.me({ token, org: orgB })).organization_id).toBe(orgB);
    await failure(client.me({ token, org: fabric.organizationId }), "not_found");
    await failure(client.me({ token, org: "not-a-uuid" }), "not_found");

    // Team-only membership in a third organization; a team in the first.
    const teamA = await insertTeam(fabric, orgA, { slugPrefix: "builders", name: "builders" });
    const teamC = await insertTeam(fabric, orgC, { slugPrefix: "ops", name: "ops" });
    await insertMembership(fabric, orgA, me, "member", teamA);
    await insertMembership(fabric, orgC, me, "maintainer", teamC);

    const orgs = await client.organizations({ token });
    const byId = Object.fromEntries(orgs.map((o) => [o.id, o]));
    expect(Object.keys(byId).sort()).toEqual([orgA, orgB, orgC].sort());
    expect(byId[orgA]).toMatchObject({ name: "alpha", role: "member", archived: false });
    expect(byId[orgB]).toMatchObject({ name: "beta", role: "viewer" });
    expect(byId[orgC]!.role).toBeUndefined(); // team-only: no organization role
    expect(orgs.map((o) => o.slug)).toEqual([...orgs.map((o) => o.slug)].sort());

    const myTeams = await client.teams({ token });
    expect(myTeams.map((t) => [t.id, t.organization_id, t.role]).sort()).toEqual(
      [
        [teamA, orgA, "member"],
        [teamC, orgC, "maintainer"],
      ].sort(),
    );
    expect((await client.teams({ token }, orgC)).map((t) => t.id)).toEqual([teamC]);
    expect(await client.teams({ token }, "not-a-uuid")).toEqual([]);
    expect(await client.teams({ token }, fabric.organizationId)).toEqual([]);

    // Permissions: per organization (the field, or the header), team extras only beyond org-wide.
    const inA = await client.permissions({ token }, orgA);
    expect(inA).toMatchObject({ organization_id: orgA, role: "member", scopes: [] });
    expect(inA.actions).toEqual(expect.arrayContaining([...organizationRoleGrants.member.all]));
    expect(inA.actions).not.toContain("audit.read");
    expect(inA.teams).toEqual([{ team_id: teamA, actions: [] }]); // a team member gets nothing a member lacks
    const inC = await client.permissions({ token, org: orgC });
    expect(inC.organization_id).toBe(orgC);
    expect(inC.role).toBeUndefined();
    expect(inC.actions).toEqual([]);
    expect(inC.teams).toHaveLength(1);
    expect(inC.teams[0].team_id).toBe(teamC);
    expect([...inC.teams[0].actions].sort()).toEqual([...new Set(teamRoleGrants.maintainer.all)].sort());
    await failure(client.permissions({ token }), "invalid_argument"); // several organizations, none named
    await failure(client.permissions({ token }, fabric.organizationId), "not_found");

    // An API key of this user, scoped to workflows:read in A: only A exists for it, narrowed.
    const { id: keyId, key } = await insertKey(fabric, orgA, me, { name: "narrow", scopes: ["workflows:read"] });
    const viaKey = { token: key };
    expect(await client.me(viaKey)).toMatchObject({ organization_id: orgA, api_key_id: keyId });
    expect((await client.organizations(viaKey)).map((o) => o.id)).toEqual([orgA]);
    expect((await client.teams(viaKey)).map((t) => t.id)).toEqual([teamA]);
    expect(await client.teams(viaKey, orgC)).toEqual([]);
    const narrowed = await client.permissions(viaKey);
    expect(narrowed).toMatchObject({ organization_id: orgA, role: "member", actions: ["workflow.read"], scopes: ["workflows:read"] });
    await failure(client.permissions(viaKey, orgB), "not_found");
  });

  it("an API key caller's GetMe shows the key's organization; the dev owner's permissions include audit.read", async () => {
    const auth = { token: fabric.apiKey };
    const me = await client.me(auth);
    const [key] = await fabric.database.db.select().from(apiKeys).where(eq(apiKeys.prefix, parseApiKey(fabric.apiKey)!.prefix));
    expect(me).toMatchObject({ organization_id: fabric.organizationId, api_key_id: key!.id });
    expect(me.principal).toMatchObject({ id: fabric.principalId, kind: "user", email: "dev@fabric.local" });

    const orgs = await client.organizations(auth);
    expect(orgs).toEqual([expect.objectContaining({ id: fabric.organizationId, slug: "default", role: "owner", archived: false })]);

    const perms = await client.permissions(auth);
    expect(perms).toMatchObject({ organization_id: fabric.organizationId, role: "owner", teams: [], scopes: [] });
    expect(perms.actions).toContain("audit.read");
    expect(perms.actions).toContain("organization.archive");
    expect(perms.actions).toEqual([...organizationRoleGrants.owner.all]);
    // The same through the field.
    expect((await client.permissions(auth, fabric.organizationId)).actions).toEqual(perms.actions);
  });

  it("needs credentials for everything but sign-up, login and refresh", async () => {
    await failure(client.me({}), "unauthenticated");
    await failure(client.organizations({}), "unauthenticated");
    await failure(client.teams({}), "unauthenticated");
    await failure(client.permissions({}), "unauthenticated");
  });
});
