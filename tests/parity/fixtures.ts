/**
 * Fixtures for the identity/tenancy/access parity cases: principals, memberships and API
 * keys inserted straight into the database (like tests/access/support.ts does), and a
 * REST helper for the setup calls that must succeed.
 */
import { randomUUID } from "node:crypto";
import { expect } from "vitest";
import { apiKeys, memberships, principals } from "../../src/db/schema.js";
import { newApiKey } from "../../src/services/identity/authenticator.js";
import type { TestFabric } from "../helpers/fabric.js";

export async function insertUser(fabric: TestFabric, email: string): Promise<string> {
  const id = randomUUID();
  await fabric.database.db.insert(principals).values({ id, kind: "user", email, displayName: `user ${email}` });
  return id;
}

export async function insertMembership(fabric: TestFabric, organizationId: string, principalId: string, role: string, teamId: string | null = null): Promise<string> {
  const id = randomUUID();
  await fabric.database.db.insert(memberships).values({ id, organizationId, principalId, teamId, role });
  return id;
}

export async function insertKey(fabric: TestFabric, organizationId: string, principalId: string, name: string): Promise<{ id: string; key: string }> {
  const k = newApiKey();
  const id = randomUUID();
  await fabric.database.db.insert(apiKeys).values({ id, organizationId, principalId, name, prefix: k.prefix, secretHash: k.secretHash });
  return { id, key: k.raw };
}

/** A REST call during setup that must answer `status`; returns the body's `data`. */
export async function setup(fabric: TestFabric, method: string, path: string, json: unknown, status: number, key?: string | null): Promise<any> {
  const res = await fabric.rest(path, { method, ...(json === undefined ? {} : { json }), ...(key === undefined ? {} : { key }) });
  const body: any = await res.json();
  expect(res.status, `${method} ${path}: ${JSON.stringify(body)}`).toBe(status);
  return body.data;
}
