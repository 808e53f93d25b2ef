/**
 * What the console needs from the API, on both transports: the one-time sign-in token
 * (`fabric dev`'s link), the run list's team / time / text filters, and usage grouped by
 * workflow. The console's static files are served only over REST (see serving.test.ts).
 */
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signInTokens } from "../../src/db/schema.js";
import { issueSignInToken } from "../../src/services/identity/sign-in-tokens.js";
import { FabricClient, FabricError } from "../../src/sdk/index.js";
import { client, transports } from "../helpers/calls.js";
import { insertTeam } from "../helpers/fixtures.js";
import { engine } from "../helpers/database.js";
import { eventually, smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";

let fabric: TestFabric;
const dev = () => ({ key: fabric.apiKey });
const anonymous = { principalId: "" };

beforeAll(async () => {
  fabric = await startTestFabric({ engine });
});
afterAll(async () => fabric?.close());

describe.each(transports)("ExchangeSignInToken over %s", (via) => {
  it("starts a session once per token; the tokens act as the principal and log out at once", async () => {
    const c = client(fabric, via);
    const { token } = await issueSignInToken(fabric.database.db, fabric.principalId);
    const first = await c.ok("IdentityService/ExchangeSignInToken", { token }, anonymous);
    expect(first.principal.id).toBe(fabric.principalId);
    expect(first.tokens.access_token).toMatch(/^ey/);
    const me = await c.ok("IdentityService/GetMe", {}, { key: first.tokens.access_token });
    expect(me.principal.id).toBe(fabric.principalId);
    // Single use: the same token again is refused like an unknown one.
    await c.fails("IdentityService/ExchangeSignInToken", { token }, anonymous, 401, "unauthenticated");
    const [row] = await fabric.database.db.select().from(signInTokens).where(eq(signInTokens.principalId, fabric.principalId));
    expect(row!.tokenHash).not.toContain(token.slice(5)); // only the hash is stored
    // The session it started ends at logout, its access token with it.
    await c.ok("IdentityService/Logout", { refresh_token: first.tokens.refresh_token }, { key: first.tokens.access_token });
    await c.fails("IdentityService/GetMe", {}, { key: first.tokens.access_token }, 401);
  });

  it("refuses expired, unknown and malformed tokens alike, and requires one", async () => {
    const c = client(fabric, via);
    const expired = await issueSignInToken(fabric.database.db, fabric.principalId, { ttlSeconds: -1 });
    await c.fails("IdentityService/ExchangeSignInToken", { token: expired.token }, anonymous, 401, "unauthenticated");
    await c.fails("IdentityService/ExchangeSignInToken", { token: `fabs_${"A".repeat(43)}` }, anonymous, 401, "unauthenticated");
    await c.fails("IdentityService/ExchangeSignInToken", { token: "not a token" }, anonymous, 401, "unauthenticated");
    await c.fails("IdentityService/ExchangeSignInToken", { token: "" }, anonymous, 400);
  });

  it("lets exactly one of two concurrent exchanges of one token win", async () => {
    const c = client(fabric, via);
    const { token } = await issueSignInToken(fabric.database.db, fabric.principalId);
    const results = await Promise.all([0, 1, 2].map(() => c.call("IdentityService/ExchangeSignInToken", { token }, anonymous)));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok).map((r) => r.status)).toEqual([401, 401]);
  });
});

describe("the SDK's auth.exchangeSignInToken", () => {
  it("signs in once with the token, then fails with unauthenticated", async () => {
    const sdk = new FabricClient({ baseUrl: fabric.restUrl });
    const { token } = await issueSignInToken(fabric.database.db, fabric.principalId);
    const signed = await sdk.auth.exchangeSignInToken(token);
    expect(signed.principal.id).toBe(fabric.principalId);
    const err = await sdk.auth.exchangeSignInToken(token).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FabricError);
    expect((err as FabricError).code).toBe("unauthenticated");
  });
});

describe("ListRuns filters", () => {
  let teamId: string;
  const runs: Record<string, string> = {};
  beforeAll(async () => {
    teamId = await insertTeam(fabric, fabric.organizationId);
    const c = client(fabric, "rest");
    await c.ok("WorkflowService/UpsertWorkflow", { spec: { name: "console-orgwide", nodes: [{ key: "a", operation: "workflow.noop" }] } }, dev());
    await c.ok("WorkflowService/UpsertWorkflow", { spec: { name: "console_team_flow", team_id: teamId, nodes: [{ key: "a", operation: "workflow.noop" }] } }, dev());
    runs.org = (await c.ok("RunService/StartRun", { workflow_name: "console-orgwide", idempotency_key: "invoice-7781" }, dev())).id;
    runs.team = (await c.ok("RunService/StartRun", { workflow_name: "console_team_flow" }, dev())).id;
  });

  describe.each(transports)("over %s", (via) => {
    const ids = async (fields: Record<string, unknown>) => ((await client(fabric, via).ok("RunService/ListRuns", { page_size: 200, ...fields }, dev())) as { id: string }[]).map((r) => r.id);

    it("filters by team", async () => {
      expect(await ids({ team_id: teamId })).toEqual([runs.team]);
      expect(await ids({ team_id: randomUUID() })).toEqual([]);
      expect(await ids({ team_id: "not-a-uuid" })).toEqual([]);
    });

    it("filters by creation time, and refuses an empty range", async () => {
      const future = new Date(Date.now() + 3_600_000).toISOString();
      const past = new Date(Date.now() - 3_600_000).toISOString();
      expect(await ids({ created_after: future })).toEqual([]);
      expect(await ids({ created_after: past, created_before: future })).toEqual(expect.arrayContaining([runs.org, runs.team]));
      expect(await ids({ created_before: past })).toEqual([]);
      await client(fabric, via).fails("RunService/ListRuns", { created_after: future, created_before: past }, dev(), 400, "invalid_argument");
    });

    it("searches run id prefixes, workflow names and idempotency keys, taking wildcards literally", async () => {
      expect(await ids({ query: runs.org!.slice(0, 8) })).toEqual([runs.org]);
      expect(await ids({ query: "INVOICE-77" })).toEqual([runs.org]);
      expect(await ids({ query: "TEAM_fl" })).toEqual([runs.team]);
      // `%` and `_` are characters to find, not patterns: "console_" matches only the name with an underscore.
      expect(await ids({ query: "console_" })).toEqual([runs.team]);
      expect(await ids({ query: "%" })).toEqual([]);
      await client(fabric, via).fails("RunService/ListRuns", { query: "x".repeat(201) }, dev(), 400, "invalid_argument");
    });
  });
});

describe("QueryUsage grouped by workflow", () => {
  beforeAll(async () => {
    const c = client(fabric, "rest");
    await c.ok("WorkflowService/UpsertWorkflow", { spec: smokeWorkflow }, dev());
    const run = await c.ok("RunService/StartRun", { workflow_name: "smoke", input: { topic: "spend" } }, dev());
    await eventually(async () => ((await c.ok("RunService/GetRun", { id: run.id }, dev())).status === "completed" ? true : undefined), 20_000, "the smoke run");
    await c.ok("ProviderService/Execute", { call: { prompt: "a direct call", max_tokens: 16 } }, dev());
  });

  it.each(transports)("names each group's workflow over %s, empty for direct calls", async (via) => {
    const res = await client(fabric, via).ok("UsageService/QueryUsage", { organization_id: fabric.organizationId, group_by: "workflow,day" }, dev());
    const byWorkflow = Object.fromEntries((res.groups as { workflow_name: string; calls: string | number }[]).map((g) => [g.workflow_name, Number(g.calls)]));
    expect(byWorkflow).toEqual({ "": 1, smoke: 1 });
  });
});
