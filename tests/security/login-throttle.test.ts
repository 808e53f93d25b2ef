/**
 * #14 item 9 (lockout) — failed logins are throttled per (client address, email) pair with
 * an exponential delay, so an attacker guessing one account's password is slowed while its
 * owner, from another address, still logs in. (Before: 10 attempts per email per minute,
 * whoever made them — anyone could lock anyone out.)
 *
 * The owner's address is 127.0.0.2: on Linux all of 127/8 is local, so a client socket
 * bound there reaches the server on 127.0.0.1 with a different remote address. The delay
 * is checked without clocks: failures are recorded through the API, then the attacker
 * pair's count is raised in the database to where the wait is minutes long.
 */
import { request } from "node:http";
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityService } from "../../gen/proto/fabric/v1/identity_pb.js";
import { query } from "../../src/db/database.js";
import { loginDelaySeconds, maxLoginDelaySeconds } from "../../src/services/identity/identity-service.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";

const FREE = 3;
const password = "the-owners-password-1";

let fabric: TestFabric;
let sessions: Http2SessionManager;
beforeAll(async () => {
  fabric = await startTestFabric({ worker: false, authAttempts: { perEmail: FREE, perAddress: 10_000 } });
  sessions = new Http2SessionManager(fabric.grpcUrl);
});
afterAll(async () => {
  sessions?.abort();
  await fabric?.close();
});

/** POST from a chosen local address (node:http; fetch cannot pick one). */
function postFrom(localAddress: string, path: string, json: unknown): Promise<{ status: number; body: any; retryAfter: string | undefined }> {
  const url = new URL(path, fabric.restUrl);
  const payload = JSON.stringify(json);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method: "POST", localAddress, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null, retryAfter: res.headers["retry-after"] as string | undefined }));
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

const attacker = "127.0.0.1";
const owner = "127.0.0.2";

async function failuresOf(address: string, email: string): Promise<number | undefined> {
  const [row] = await query<{ count: number }>(fabric.database.db, sql`SELECT count FROM request_counters WHERE subject = ${`login_failures:${address}|${email}`}`);
  return row?.count;
}

it("the delay doubles per failure past the free ones, up to a ceiling", () => {
  expect([0, 1, 2].map((f) => loginDelaySeconds(f, FREE))).toEqual([0, 0, 0]);
  expect([3, 4, 5, 6].map((f) => loginDelaySeconds(f, FREE))).toEqual([1, 2, 4, 8]);
  expect(loginDelaySeconds(1_000, FREE)).toBe(maxLoginDelaySeconds);
});

describe("failed logins are throttled per (address, email) pair", () => {
  it("an attacker's failures slow the attacker, not the owner logging in from another address", async () => {
    const email = `victim-${randomUUID().slice(0, 8)}@example.test`;
    expect((await postFrom(owner, "/v1/auth/signup", { email, password })).status).toBe(201);

    // The attacker's free failures: plain 401s, each recorded against their pair only.
    for (let i = 0; i < FREE; i++) expect((await postFrom(attacker, "/v1/auth/login", { email, password: `guess-${i}-xxxxxxxx` })).status).toBe(401);
    expect(await failuresOf(attacker, email)).toBe(FREE);
    expect(await failuresOf(owner, email)).toBeUndefined();

    // The owner is not locked out.
    expect((await postFrom(owner, "/v1/auth/login", { email, password })).status).toBe(200);

    // Many failures later the attacker's pair waits minutes — even with the right password
    // (an attacker learns nothing while throttled), on both transports.
    await query(fabric.database.db, sql`UPDATE request_counters SET count = 12, window_start = now() WHERE subject = ${`login_failures:${attacker}|${email}`}`);
    const refused = await postFrom(attacker, "/v1/auth/login", { email, password });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: "rate_limited" });
    expect(Number(refused.retryAfter)).toBeGreaterThan(60);
    expect(Number(refused.retryAfter)).toBeLessThanOrEqual(maxLoginDelaySeconds);
    const grpc = createClient(IdentityService, createGrpcTransport({ baseUrl: fabric.grpcUrl, sessionManager: sessions }));
    const err = await grpc.login({ email: email.toUpperCase(), password }).then(
      () => null,
      (e) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.ResourceExhausted);
    expect(err?.metadata.get("fabric-error-code")).toBe("rate_limited");
    expect(Number(err?.metadata.get("retry-after"))).toBeGreaterThan(60);

    // The owner still logs in, and a wrong password of theirs is a plain 401.
    expect((await postFrom(owner, "/v1/auth/login", { email, password: "owner-typo-xxxxxxx" })).status).toBe(401);
    expect((await postFrom(owner, "/v1/auth/login", { email, password })).status).toBe(200);
    // Their success forgot their own failure.
    expect(await failuresOf(owner, email)).toBeUndefined();
  });
});
