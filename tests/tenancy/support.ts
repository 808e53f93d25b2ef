/**
 * Shared by the tenancy tests: one call helper for both transports (answers normalised
 * to REST's `data` JSON, errors to status + code), principals/organizations/keys created
 * straight in the database, and audit-log lookups by request id.
 */
import { randomUUID } from "node:crypto";
import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { sql } from "drizzle-orm";
import { expect } from "vitest";
import { TenancyService } from "../../gen/proto/fabric/v1/tenancy_pb.js";
import { jsonOptions, restOperations } from "../../src/control-plane/contract.js";
import { query } from "../../src/db/database.js";
import { apiKeys, memberships, organizations, principals } from "../../src/db/schema.js";
import { newApiKey } from "../../src/services/identity/authenticator.js";
import { grpcStatus, headersOf, type Actor } from "../helpers/actors.js";
import type { TestFabric } from "../helpers/fabric.js";

export type { Actor };

export type Via = "rest" | "grpc";
export const transports: readonly Via[] = ["rest", "grpc"];

/** Who calls: an API key, or (development) a principal id with an optional organization header. */

export type Result = { ok: true; data: any; requestId: string } | { ok: false; status: number; code: string; detail: string; requestId: string };



export interface TenancyClient {
  readonly via: Via;
  /** Calls TenancyService.<method> (localName) with proto-JSON `fields`. */
  call(method: string, fields: Record<string, unknown>, actor: Actor): Promise<Result>;
  /** Like `call`, failing the test unless it succeeded; returns `data`. */
  ok(method: string, fields: Record<string, unknown>, actor: Actor): Promise<any>;
  /** Like `call`, failing the test unless it failed with `status` (and `code`, when given). */
  fails(method: string, fields: Record<string, unknown>, actor: Actor, status: number, code?: string): Promise<Result & { ok: false }>;
}

export function tenancyClient(fabric: TestFabric, via: Via): TenancyClient {
  const grpc: any = via === "grpc" ? createClient(TenancyService, createGrpcTransport({ baseUrl: fabric.grpcUrl })) : undefined;

  async function call(method: string, fields: Record<string, unknown>, actor: Actor): Promise<Result> {
    const requestId = `t-${randomUUID()}`;
    const op = restOperations.find((o) => o.rpc?.startsWith("fabric.v1.TenancyService/") && o.protoMethod?.localName === method);
    if (!op) throw new Error(`no TenancyService operation ${method}`);
    const desc = op.protoMethod!;
    if (via === "grpc") {
      try {
        const res = await grpc[method](fromJson(desc.input, fields as JsonValue), { headers: headersOf(actor, requestId) });
        const json = toJson(desc.output, res, jsonOptions) as Record<string, unknown>;
        return { ok: true, data: op.data === "*" ? json : json[op.data!], requestId };
      } catch (err) {
        const e = ConnectError.from(err);
        return { ok: false, status: grpcStatus[e.code] ?? 0, code: e.metadata.get("fabric-error-code") ?? Code[e.code], detail: e.rawMessage, requestId };
      }
    }
    const rest = { ...fields };
    const path = op.path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const v = rest[name];
      delete rest[name];
      return encodeURIComponent(String(v ?? ""));
    });
    const qs = op.body ? "" : new URLSearchParams(Object.entries(rest).map(([k, v]): [string, string] => [k, String(v)])).toString();
    const res = await fetch(fabric.restUrl + path + (qs ? `?${qs}` : ""), {
      method: op.method,
      headers: { ...headersOf(actor, requestId), ...(op.body ? { "content-type": "application/json" } : {}) },
      body: op.body ? JSON.stringify(rest) : undefined,
    });
    const body: any = await res.json();
    if (res.status >= 200 && res.status < 300) return { ok: true, data: body.data, requestId };
    return { ok: false, status: res.status, code: body.code, detail: body.detail, requestId };
  }

  return {
    via,
    call,
    async ok(method, fields, actor) {
      const r = await call(method, fields, actor);
      expect(r, `${method} should succeed`).toMatchObject({ ok: true });
      return (r as any).data;
    },
    async fails(method, fields, actor, status, code) {
      const r = await call(method, fields, actor);
      expect(r.ok, `${method} should fail with ${status} ${code ?? ""}: ${JSON.stringify(r)}`).toBe(false);
      const f = r as Result & { ok: false };
      expect(f.status, `${method}: ${f.code} ${f.detail}`).toBe(status);
      if (code !== undefined) expect(f.code, `${method}: ${f.detail}`).toBe(code);
      return f;
    },
  };
}

// ─── Database fixtures ──────────────────────────────────────────────────────────────────

export async function insertUser(fabric: TestFabric, email?: string): Promise<{ principalId: string; email: string }> {
  const principalId = randomUUID();
  const e = email ?? `${principalId}@users.test`;
  await fabric.database.db.insert(principals).values({ id: principalId, kind: "user", email: e, displayName: `user ${e}` });
  return { principalId, email: e };
}

export async function insertMembership(fabric: TestFabric, organizationId: string, principalId: string, role: string, teamId: string | null = null): Promise<string> {
  const id = randomUUID();
  await fabric.database.db.insert(memberships).values({ id, organizationId, principalId, teamId, role });
  return id;
}

export async function insertKey(fabric: TestFabric, organizationId: string, principalId: string): Promise<string> {
  const k = newApiKey();
  await fabric.database.db.insert(apiKeys).values({ id: randomUUID(), organizationId, principalId, name: "tenancy test", prefix: k.prefix, secretHash: k.secretHash });
  return k.raw;
}

/** A user with an organization role (and/or a team role) and an API key in `organizationId`. */
export async function member(fabric: TestFabric, organizationId: string, role: string | null, team?: { teamId: string; role: string }) {
  const user = await insertUser(fabric);
  const membershipId = role ? await insertMembership(fabric, organizationId, user.principalId, role) : undefined;
  if (team) await insertMembership(fabric, organizationId, user.principalId, team.role, team.teamId);
  const key = await insertKey(fabric, organizationId, user.principalId);
  return { ...user, membershipId, key, actor: { key } as Actor };
}

/** A fresh organization with one owner (who has a key). */
export async function newOrganization(fabric: TestFabric) {
  const id = randomUUID();
  await fabric.database.db.insert(organizations).values({ id, slug: `org-${id.slice(0, 8)}`, name: "Fixture" });
  const owner = await member(fabric, id, "owner");
  return { id, owner };
}

// ─── Audit log ──────────────────────────────────────────────────────────────────────────

export interface AuditRow {
  organization_id: string;
  actor_principal_id: string | null;
  api_key_id: string | null;
  action: string;
  resource: string;
  summary: Record<string, unknown>;
}

export async function auditFor(fabric: TestFabric, requestId: string): Promise<AuditRow[]> {
  return query<AuditRow>(fabric.database.db, sql`SELECT organization_id, actor_principal_id, api_key_id, action, resource, summary FROM audit_log WHERE request_id = ${requestId} ORDER BY id`);
}

/** Exactly one audit entry for the request, with this action (and resource / organization when given). */
export async function expectOneAudit(fabric: TestFabric, requestId: string, want: { action: string; resource?: string; organizationId?: string }): Promise<AuditRow> {
  const rows = await auditFor(fabric, requestId);
  expect(rows, `audit entries of ${requestId}`).toHaveLength(1);
  const row = rows[0]!;
  expect(row.action).toBe(want.action);
  if (want.resource) expect(row.resource).toBe(want.resource);
  if (want.organizationId) expect(row.organization_id).toBe(want.organizationId);
  return row;
}

export async function expectNoAudit(fabric: TestFabric, requestId: string): Promise<void> {
  expect(await auditFor(fabric, requestId)).toHaveLength(0);
}

export async function eventsOfKind(fabric: TestFabric, organizationId: string, kind: string): Promise<Record<string, any>[]> {
  const rows = await query<{ payload: Record<string, any> }>(fabric.database.db, sql`SELECT payload FROM events WHERE organization_id = ${organizationId} AND kind = ${kind} ORDER BY id`);
  return rows.map((r) => r.payload);
}
