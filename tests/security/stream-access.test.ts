/**
 * Issue 14, item 2: open event streams follow access. Logout, key revocation, membership
 * removal and a role change (a demotion) end a stream at once — SSE with a final `error`
 * event carrying the problem, gRPC StreamEvents with UNAUTHENTICATED / PERMISSION_DENIED —
 * driven by the `fabric_access` notification: the periodic re-check is set to a minute
 * here, so only the notification can end a stream within the ceiling below. A stream of
 * someone unaffected (the positive control) goes on delivering.
 */
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventService } from "../../gen/proto/fabric/v1/events_pb.js";
import { apiKeys, memberships, principals } from "../../src/db/schema.js";
import { newApiKey } from "../../src/services/identity/authenticator.js";
import { smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { openSse } from "../rest/sse.js";

type Via = "sse" | "grpc";
/** Far below the one-minute periodic re-check: only the notification ends a stream this fast. */
const CEILING_MS = 5000;

let fabric: TestFabric;
let workflowId: string;
const latencies: string[] = [];

beforeAll(async () => {
  fabric = await startTestFabric({ streamRecheckMs: Number(process.env.RECHECK ?? 60_000) });
  workflowId = ((await (await fabric.rest("/v1/workflows", { method: "POST", json: { ...smokeWorkflow, name: "stream-access" } })).json()) as any).data.id;
});
afterAll(async () => {
  console.log(`stream end after the access change (ms):\n  ${latencies.join("\n  ")}`);
  await fabric?.close();
});

const startRun = async () => ((await (await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: workflowId, input: { topic: "x" } } })).json()) as any).data.id as string;

/** A member of the organization with `role` and an API key of their own. */
async function member(role: string): Promise<{ principalId: string; membershipId: string; keyId: string; key: string }> {
  const db = fabric.database.db;
  const principalId = randomUUID();
  const membershipId = randomUUID();
  await db.insert(principals).values({ id: principalId, kind: "user", email: `${principalId}@access.test`, displayName: "m" });
  await db.insert(memberships).values({ id: membershipId, organizationId: fabric.organizationId, principalId, role });
  const k = newApiKey();
  const keyId = randomUUID();
  await db.insert(apiKeys).values({ id: keyId, organizationId: fabric.organizationId, principalId, name: "mine", prefix: k.prefix, secretHash: k.secretHash });
  return { principalId, membershipId, keyId, key: k.raw };
}

interface OpenStream {
  /** Run ids seen so far. */
  runs: Set<string>;
  /** Resolves when the stream ends: the code it ended with (SSE problem code / gRPC code name) and when. */
  ended: Promise<{ code: string; at: number }>;
  close(): void;
}

async function open(via: Via, headers: Record<string, string>): Promise<OpenStream> {
  const runs = new Set<string>();
  if (via === "sse") {
    const s = await openSse(`${fabric.restUrl}/v1/events/stream`, headers);
    expect(s.response.status).toBe(200);
    const ended = (async () => {
      let code = "closed";
      for await (const m of s.messages) {
        if (m.event === "error") code = JSON.parse(m.data).code;
        else if (m.data) {
          const e = JSON.parse(m.data);
          if (e.run_id) runs.add(e.run_id);
        }
      }
      return { code, at: Date.now() };
    })();
    return { runs, ended, close: () => s.close() };
  }
  const client = createClient(EventService, createGrpcTransport({ baseUrl: fabric.grpcUrl, interceptors: [(next) => (req) => (Object.entries(headers).forEach(([k, v]) => req.header.set(k, v)), next(req))] }));
  const abort = new AbortController();
  const ended = (async () => {
    try {
      for await (const r of client.streamEvents({}, { signal: abort.signal })) if (r.event?.runId) runs.add(r.event.runId);
      return { code: "closed", at: Date.now() };
    } catch (err) {
      return { code: Code[ConnectError.from(err).code] ?? "unknown", at: Date.now() };
    }
  })();
  return { runs, ended, close: () => abort.abort() };
}

/**
 * Waits until every stream delivered an event of a run started here: they are live. (A
 * gRPC stream's request may still be on its way when the first run starts: start
 * another until each has seen one.)
 */
async function live(...streams: OpenStream[]) {
  const started: string[] = [];
  const deadline = Date.now() + 15_000;
  while (!streams.every((s) => started.some((r) => s.runs.has(r)))) {
    if (Date.now() > deadline) throw new Error("stream never delivered");
    started.push(await startRun());
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function endsWithin(s: OpenStream, changedAt: number, what: string): Promise<string> {
  const result = await Promise.race([s.ended, new Promise<null>((r) => setTimeout(() => r(null), CEILING_MS))]);
  s.close();
  expect(result, `${what}: the stream is still open ${CEILING_MS} ms after the change`).not.toBeNull();
  latencies.push(`${what}: ${result!.at - changedAt}`);
  return result!.code;
}

const problemOrCode = (via: Via, rest: string, grpc: string) => (via === "sse" ? rest : grpc);

describe.each(["sse", "grpc"] as const)("streams follow access (%s)", (via) => {
  it("end at once when the API key is revoked", async () => {
    const m = await member("member");
    const s = await open(via, { authorization: `Bearer ${m.key}` });
    await live(s);
    const changedAt = Date.now();
    expect((await fabric.rest(`/v1/organizations/${fabric.organizationId}/api-keys/${m.keyId}/revoke`, { method: "POST", json: {} })).status).toBe(200);
    expect(await endsWithin(s, changedAt, `${via} key revoked`)).toBe(problemOrCode(via, "unauthenticated", "Unauthenticated"));
  });

  it("end at once when the member is removed, while an unaffected stream goes on", async () => {
    const m = await member("member");
    const s = await open(via, { authorization: `Bearer ${m.key}` });
    const control = await open(via, { authorization: `Bearer ${fabric.apiKey}` });
    await live(s, control);
    const changedAt = Date.now();
    expect((await fabric.rest(`/v1/organizations/${fabric.organizationId}/members/${m.membershipId}`, { method: "DELETE" })).status).toBeLessThan(300);
    expect(await endsWithin(s, changedAt, `${via} member removed`)).toBe(problemOrCode(via, "access_revoked", "PermissionDenied"));
    // The removed member sees nothing of a run started after; the owner's stream still does.
    const after = await startRun();
    const deadline = Date.now() + 15_000;
    while (!control.runs.has(after) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(control.runs.has(after)).toBe(true);
    expect(s.runs.has(after)).toBe(false);
    control.close();
  });

  it("end at once when the member's role is lowered", async () => {
    const m = await member("admin");
    const s = await open(via, { authorization: `Bearer ${m.key}` });
    await live(s);
    const changedAt = Date.now();
    expect((await fabric.rest(`/v1/organizations/${fabric.organizationId}/members/${m.membershipId}`, { method: "PATCH", json: { role: "viewer" } })).status).toBe(200);
    expect(await endsWithin(s, changedAt, `${via} role lowered`)).toBe(problemOrCode(via, "access_revoked", "PermissionDenied"));
  });

  it("end at once on logout", async () => {
    const email = `${randomUUID()}@logout.test`;
    const password = "a long enough password 1";
    const up = await fetch(`${fabric.restUrl}/v1/auth/signup`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, password, display_name: "Leaver" }) });
    expect(up.status).toBe(201);
    const { tokens, principal } = ((await up.json()) as any).data;
    const principalId = principal.id as string;
    await fabric.database.db.insert(memberships).values({ id: randomUUID(), organizationId: fabric.organizationId, principalId, role: "member" });
    const auth = { authorization: `Bearer ${tokens.access_token}`, "x-organization-id": fabric.organizationId };
    const s = await open(via, auth);
    await live(s);
    const changedAt = Date.now();
    const out = await fetch(`${fabric.restUrl}/v1/auth/logout`, { method: "POST", headers: { "content-type": "application/json", authorization: auth.authorization }, body: JSON.stringify({ refresh_token: tokens.refresh_token }) });
    expect(out.status).toBeLessThan(300);
    expect(await endsWithin(s, changedAt, `${via} logout`)).toBe(problemOrCode(via, "unauthenticated", "Unauthenticated"));
  });
});
