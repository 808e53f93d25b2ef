/**
 * Rows a test needs before it can call: organizations, users, memberships, teams and API
 * keys inserted straight into the database (no API call, no audit entry), the audit entries
 * and events a call wrote, and the REST setup call that must succeed. One name per helper,
 * for every suite.
 */
import { randomUUID } from "node:crypto";
import { and, asc, eq } from "drizzle-orm";
import { expect } from "vitest";
import { apiKeys, auditLog, events, memberships, organizations, principals, teams } from "../../src/db/schema.js";
import { newApiKey } from "../../src/services/identity/authenticator.js";
import type { Actor } from "./calls.js";
import type { TestFabric } from "./fabric.js";

type HasDatabase = Pick<TestFabric, "database">;

// ─── Database fixtures ──────────────────────────────────────────────────────────────────

/** A new organization; its id. */
export async function insertOrganization(fabric: HasDatabase, opts: { slugPrefix?: string; name?: string } = {}): Promise<string> {
  const id = randomUUID();
  await fabric.database.db.insert(organizations).values({ id, slug: `${opts.slugPrefix ?? "org"}-${id.slice(0, 8)}`, name: opts.name ?? "Fixture" });
  return id;
}

/** A user (a principal of kind `user`), with `email` or a unique one. */
export async function insertUser(fabric: HasDatabase, email?: string): Promise<{ principalId: string; email: string }> {
  const principalId = randomUUID();
  const e = email ?? `${principalId}@users.test`;
  await fabric.database.db.insert(principals).values({ id: principalId, kind: "user", email: e, displayName: `user ${e}` });
  return { principalId, email: e };
}

/** A membership: an organization role, or with `teamId` a team role; its id. */
export async function insertMembership(fabric: HasDatabase, organizationId: string, principalId: string, role: string, teamId: string | null = null): Promise<string> {
  const id = randomUUID();
  await fabric.database.db.insert(memberships).values({ id, organizationId, principalId, teamId, role });
  return id;
}

/** A team of `organizationId` (slug `<slugPrefix>-…`, unique); its id. */
export async function insertTeam(fabric: HasDatabase, organizationId: string, opts: { slugPrefix?: string; name?: string } = {}): Promise<string> {
  const id = randomUUID();
  await fabric.database.db.insert(teams).values({ id, organizationId, slug: `${opts.slugPrefix ?? "t"}-${id.slice(0, 8)}`, name: opts.name ?? "Team" });
  return id;
}

/** An API key of `principalId` in `organizationId`: its id and the raw key. */
export async function insertKey(
  fabric: HasDatabase,
  organizationId: string,
  principalId: string,
  opts: { name?: string; scopes?: string[]; expiresAt?: Date; revoked?: boolean } = {},
): Promise<{ id: string; key: string }> {
  const k = newApiKey();
  const id = randomUUID();
  await fabric.database.db.insert(apiKeys).values({
    id,
    organizationId,
    principalId,
    name: opts.name ?? "test key",
    prefix: k.prefix,
    secretHash: k.secretHash,
    scopes: opts.scopes ?? [],
    expiresAt: opts.expiresAt ?? null,
    revokedAt: opts.revoked ? new Date() : null,
  });
  return { id, key: k.raw };
}

/** A user with an organization role (and/or a team role) and an API key (with `scopes`, when given) in `organizationId`. */
export async function member(fabric: HasDatabase, organizationId: string, role: string | null, team?: { teamId: string; role: string }, scopes?: string[]) {
  const user = await insertUser(fabric);
  const membershipId = role ? await insertMembership(fabric, organizationId, user.principalId, role) : undefined;
  if (team) await insertMembership(fabric, organizationId, user.principalId, team.role, team.teamId);
  const k = await insertKey(fabric, organizationId, user.principalId, scopes ? { scopes } : {});
  return { ...user, membershipId, keyId: k.id, key: k.key, actor: { key: k.key } as Actor };
}

/** A fresh organization with one owner (who has a key). */
export async function newOrganization(fabric: HasDatabase) {
  const id = await insertOrganization(fabric);
  const owner = await member(fabric, id, "owner");
  return { id, owner };
}

// ─── What a call wrote ──────────────────────────────────────────────────────────────────

export interface AuditRow {
  id: number;
  organization_id: string;
  actor_principal_id: string | null;
  api_key_id: string | null;
  action: string;
  resource: string;
  request_id: string;
  client_address: string;
  summary: Record<string, unknown>;
}

/** The audit entries of one request, oldest first. */
export async function auditFor(fabric: HasDatabase, requestId: string): Promise<AuditRow[]> {
  const t = auditLog;
  const rows = await fabric.database.db.select().from(t).where(eq(t.requestId, requestId)).orderBy(asc(t.id));
  return rows.map((r) => ({
    id: Number(r.id),
    organization_id: r.organizationId,
    actor_principal_id: r.actorPrincipalId,
    api_key_id: r.apiKeyId,
    action: r.action,
    resource: r.resource,
    request_id: r.requestId,
    client_address: r.clientAddress,
    summary: r.summary as Record<string, unknown>,
  }));
}

/** Exactly one audit entry for the request, with this action (and resource / organization when given). */
export async function expectOneAudit(fabric: HasDatabase, requestId: string, want: { action: string; resource?: string; organizationId?: string }): Promise<AuditRow> {
  const rows = await auditFor(fabric, requestId);
  expect(rows, `audit entries of ${requestId}`).toHaveLength(1);
  const row = rows[0]!;
  expect(row.action).toBe(want.action);
  if (want.resource) expect(row.resource).toBe(want.resource);
  if (want.organizationId) expect(row.organization_id).toBe(want.organizationId);
  return row;
}

export async function expectNoAudit(fabric: HasDatabase, requestId: string): Promise<void> {
  expect(await auditFor(fabric, requestId), `audit entries of ${requestId}`).toHaveLength(0);
}

/** The payloads of `organizationId`'s events of `kind`, oldest first. */
export async function eventsOfKind(fabric: HasDatabase, organizationId: string, kind: string): Promise<Record<string, any>[]> {
  const rows = await fabric.database.db.select({ payload: events.payload }).from(events).where(and(eq(events.organizationId, organizationId), eq(events.kind, kind))).orderBy(asc(events.id));
  return rows.map((r) => r.payload as Record<string, any>);
}

// ─── Setup calls ────────────────────────────────────────────────────────────────────────

/** A REST call during setup that must answer `status`; returns the body's `data`. */
export async function setup(fabric: TestFabric, method: string, path: string, json: unknown, status: number, key?: string | null): Promise<any> {
  const res = await fabric.rest(path, { method, ...(json === undefined ? {} : { json }), ...(key === undefined ? {} : { key }) });
  const body: any = await res.json();
  expect(res.status, `${method} ${path}: ${JSON.stringify(body)}`).toBe(status);
  return body.data;
}
