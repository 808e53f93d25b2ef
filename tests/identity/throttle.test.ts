/**
 * Sign-up and login throttling: attempts per client address per minute, counted in the
 * database before any password hash is computed, refused with 429 / RESOURCE_EXHAUSTED
 * `rate_limited` and a Retry-After — on both transports. (Failed logins per (address,
 * email) pair and their exponential delay: tests/security/login-throttle.test.ts.)
 *
 * The counts live in fixed minutes of the database's clock. A case only proves something
 * when its attempts fall in one minute, so each case starts its Fabric first (slow on a
 * loaded machine, and outside the window), then runs its attempts early in a minute; if
 * they fail and the database's minute changed meanwhile, the case runs again in a fresh
 * minute. A pass never needs that: a new minute only lowers the counts.
 */
import { randomUUID } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { IdentityService } from "../../gen/proto/fabric/v1/identity_pb.js";
import { query } from "../../src/db/database.js";
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

/** The database's current minute, as the counters (db/rate-limits.ts) truncate it. */
async function databaseMinute(fabric: TestFabric): Promise<string> {
  const [row] = await query<{ minute: string }>(fabric.database.db, sql`SELECT date_trunc('minute', now())::text AS minute`);
  return row!.minute;
}

/** Waits until the database's minute is no longer `minute`. */
async function nextMinute(fabric: TestFabric, minute: string): Promise<void> {
  while ((await databaseMinute(fabric)) === minute) await new Promise((r) => setTimeout(r, 250));
}

/**
 * Runs `attempts` with every attempt in one minute of the counters: started early in a
 * minute, and when it fails after the minute changed, run again from the start of a minute
 * no attempt has touched (at most three times).
 */
async function inOneMinute(fabric: TestFabric, attempts: () => Promise<void>): Promise<void> {
  await freshMinute(45);
  for (let round = 1; ; round++) {
    const minute = await databaseMinute(fabric);
    try {
      return await attempts();
    } catch (err) {
      const now = await databaseMinute(fabric);
      if (now === minute || round === 3) throw err;
      await nextMinute(fabric, now);
    }
  }
}

// Starting a Fabric and waiting for a minute (up to two) happen inside each case.
const caseTimeout = 300_000;

describe("sign-up and login throttling", () => {
  it("refuses sign-ups and logins from one address beyond its limit, whatever the email", async () => {
    const { fabric, post } = await fabricWith(1000, 4);
    await inOneMinute(fabric, async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await post("/v1/auth/signup", { email: email(), password })).status);
      statuses.push((await post("/v1/auth/login", { email: email(), password })).status); // unknown user: 401, counted
      const refused = await post("/v1/auth/signup", { email: email(), password });
      statuses.push(refused.status);
      expect(statuses).toEqual([201, 201, 201, 401, 429]);
      expect(((await refused.json()) as any).code).toBe("rate_limited");
      expect((await post("/v1/auth/login", { email: email(), password })).status).toBe(429);
    });
  }, caseTimeout);

  it("checks the request before counting it: malformed input is 400 and uses no attempt", async () => {
    const { fabric, post } = await fabricWith(2, 2);
    await inOneMinute(fabric, async () => {
      const carol = email();
      for (let i = 0; i < 5; i++) expect((await post("/v1/auth/login", { email: carol })).status).toBe(400);
      for (let i = 0; i < 5; i++) expect((await post("/v1/auth/signup", { email: "not-an-email", password })).status).toBe(400);
      expect((await post("/v1/auth/signup", { email: carol, password })).status).toBe(201);
      expect((await post("/v1/auth/login", { email: carol, password })).status).toBe(200);
    });
  }, caseTimeout);
});
