/**
 * Sign-up and login throttling: attempts per email and per client address per minute,
 * counted in the database before any password hash is computed, refused with 429 /
 * RESOURCE_EXHAUSTED `rate_limited` and a Retry-After — on both transports.
 */
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { IdentityService } from "../../gen/proto/fabric/v1/identity_pb.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { freshMinute } from "../usage/support.js";

const password = "throttle-password-1";
const fabrics: TestFabric[] = [];
const sessions: Http2SessionManager[] = [];

afterAll(async () => {
  for (const s of sessions) s.abort();
  await Promise.all(fabrics.map((f) => f.close()));
});

async function fabricWith(perEmail: number, perAddress: number) {
  const fabric = await startTestFabric({ worker: false, authAttempts: { perEmail, perAddress } });
  fabrics.push(fabric);
  const session = new Http2SessionManager(fabric.grpcUrl);
  sessions.push(session);
  const grpc = createClient(IdentityService, createGrpcTransport({ baseUrl: fabric.grpcUrl, sessionManager: session }));
  const post = (path: string, json: unknown) => fabric.rest(path, { method: "POST", json, key: null });
  return { fabric, grpc, post };
}

const email = () => `throttle-${randomUUID().slice(0, 8)}@example.test`;

describe("sign-up and login throttling", () => {
  // The counts are per minute: start each case early in one.
  beforeEach(() => freshMinute(45), 20_000);

  it("refuses a sixth login for one email within the minute (even with the right password), not other emails", async () => {
    const { post, grpc } = await fabricWith(5, 1000);
    const alice = email();
    expect((await post("/v1/auth/signup", { email: alice, password })).status).toBe(201);
    for (let i = 0; i < 4; i++) expect((await post("/v1/auth/login", { email: alice, password: "wrong-password-x" })).status).toBe(401);
    expect((await post("/v1/auth/login", { email: alice, password })).status).toBe(200); // the 5th is still counted and admitted

    const refused = await post("/v1/auth/login", { email: alice, password });
    const problem: any = await refused.json();
    expect(refused.status).toBe(429);
    expect(problem).toMatchObject({ code: "rate_limited", status: 429 });
    expect(problem.detail).toContain("login attempts for this account");
    const wait = Number(refused.headers.get("retry-after"));
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(60);
    // The same email over gRPC shares the count; the email's case does not matter.
    const err = await grpc.login({ email: alice.toUpperCase(), password }).then(
      () => null,
      (e) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.ResourceExhausted);
    expect(err?.metadata.get("fabric-error-code")).toBe("rate_limited");
    expect(Number(err?.metadata.get("retry-after"))).toBeGreaterThanOrEqual(1);

    // Another account is not affected.
    const bob = email();
    expect((await post("/v1/auth/signup", { email: bob, password })).status).toBe(201);
    expect((await post("/v1/auth/login", { email: bob, password })).status).toBe(200);
  });

  it("refuses sign-ups and logins from one address beyond its limit, whatever the email", async () => {
    const { post } = await fabricWith(1000, 4);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await post("/v1/auth/signup", { email: email(), password })).status);
    statuses.push((await post("/v1/auth/login", { email: email(), password })).status); // unknown user: 401, counted
    const refused = await post("/v1/auth/signup", { email: email(), password });
    statuses.push(refused.status);
    expect(statuses).toEqual([201, 201, 201, 401, 429]);
    expect(((await refused.json()) as any).code).toBe("rate_limited");
    expect((await post("/v1/auth/login", { email: email(), password })).status).toBe(429);
  });

  it("checks the request before counting it: malformed input is 400 and uses no attempt", async () => {
    const { post } = await fabricWith(2, 2);
    const carol = email();
    for (let i = 0; i < 5; i++) expect((await post("/v1/auth/login", { email: carol })).status).toBe(400);
    for (let i = 0; i < 5; i++) expect((await post("/v1/auth/signup", { email: "not-an-email", password })).status).toBe(400);
    expect((await post("/v1/auth/signup", { email: carol, password })).status).toBe(201);
    expect((await post("/v1/auth/login", { email: carol, password })).status).toBe(200);
  });
});
