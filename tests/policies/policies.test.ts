/**
 * PolicyService on the wire (REST and gRPC) and what its rules do to provider calls:
 * get/set with replace semantics for the organization and its teams, validation, RBAC,
 * audit + event in the change's transaction; then allow-lists, price overrides, daily
 * budgets, the per-run cost cap and the per-key rate limit, enforced on Execute.
 *
 * One Fabric; tests that change the organization's rules put them back, and the rest use a
 * team of their own so they cannot see each other's rules.
 */
import { sql } from "drizzle-orm";
import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { query } from "../../src/db/database.js";
import { actualCost, estimateCost, formatUsd, parseUsd, PRICE_TABLE_VERSION } from "../../src/domain/pricing.js";
import { insertTeam, member } from "../helpers/fixtures.js";
import { freshMinute, secondsToUtcMidnight, startProviderFabric, tokens, transports, usageRecord, usageRows, type ProviderFabric, type Via } from "../usage/support.js";

type Member = Awaited<ReturnType<typeof member>>;

let pf: ProviderFabric;
let orgId: string;
let admin: Member;
let plain: Member;
let viewer: Member;
let foreignAdmin: Member;
let foreignTeamId: string;

beforeAll(async () => {
  pf = await startProviderFabric();
  orgId = pf.fabric.organizationId;
  admin = await member(pf.fabric, orgId, "admin");
  plain = await member(pf.fabric, orgId, "member");
  viewer = await member(pf.fabric, orgId, "viewer");
  const other = await pf.fabric.otherOrg();
  foreignAdmin = await member(pf.fabric, other.organizationId, "admin");
  foreignTeamId = await insertTeam(pf.fabric, other.organizationId);
});
afterAll(() => pf?.close());
afterEach(async () => {
  pf.fake.reset();
  // Back to no organization rules, whatever a test left behind.
  await pf.api.rest.ok("PolicyService/SetPolicy", { organization_id: orgId }, { key: admin.key });
  await pf.api.rest.ok("PolicyService/SetBudget", { organization_id: orgId }, { key: admin.key });
});

const newTeam = () => insertTeam(pf.fabric, orgId);
const as = (m: Member) => ({ key: m.key });

async function eventsOf(kind: string): Promise<{ payload: any; created_at: string }[]> {
  return query(pf.fabric.database.db, sql`SELECT payload, created_at::text AS created_at FROM events WHERE organization_id = ${orgId} AND kind = ${kind} ORDER BY id`);
}
async function auditOf(action: string): Promise<{ resource: string; summary: any; actor_principal_id: string; api_key_id: string; created_at: string }[]> {
  return query(
    pf.fabric.database.db,
    sql`SELECT resource, summary, actor_principal_id, api_key_id, created_at::text AS created_at FROM audit_log WHERE organization_id = ${orgId} AND action = ${action} ORDER BY id`,
  );
}
async function counts() {
  const [r] = await query<{ audit: number; events: number; policies: number }>(
    pf.fabric.database.db,
    sql`SELECT (SELECT count(*)::int FROM audit_log) AS audit, (SELECT count(*)::int FROM events) AS events, (SELECT count(*)::int FROM policies) AS policies`,
  );
  return r;
}

describe("policy: get and set", () => {
  it.each(transports)("sets, reads and replaces the organization's policy (%s)", async (via) => {
    const api = pf.api[via];
    // No rules (never set, or cleared by the previous test).
    const initial = await api.ok("PolicyService/GetPolicy", { organization_id: orgId }, as(admin));
    expect(initial).toMatchObject({ organization_id: orgId, team_id: "", allowed_providers: [], allowed_models: [], price_overrides: [] });
    expect(initial).not.toHaveProperty("max_run_cost_usd");
    expect(initial).not.toHaveProperty("requests_per_minute_per_key");

    const full = {
      organization_id: orgId,
      allowed_providers: ["openai", "echo"],
      allowed_models: ["gpt-4o-mini", "echo-1"],
      max_run_cost_usd: "2.50",
      requests_per_minute_per_key: 1000,
      price_overrides: [{ provider: "openai", model: "gpt-4o-mini", input_usd_per_mtok: "0.2", output_usd_per_mtok: "0.8", cached_input_usd_per_mtok: "", cache_write_usd_per_mtok: "" }],
    };
    const set = await api.ok("PolicyService/SetPolicy", full, as(admin));
    expect(set).toMatchObject({ ...full, team_id: "", max_run_cost_usd: "2.5", updated_by: admin.principalId });
    expect(Date.now() - Date.parse(set.update_time)).toBeLessThan(60_000);
    expect(await api.ok("PolicyService/GetPolicy", { organization_id: orgId }, as(viewer))).toEqual(set);

    // PUT replaces: what is left out is cleared.
    const replaced = await api.ok("PolicyService/SetPolicy", { organization_id: orgId, allowed_models: ["gpt-4.1-mini"] }, as(admin));
    expect(replaced).toMatchObject({ allowed_providers: [], allowed_models: ["gpt-4.1-mini"], price_overrides: [] });
    expect(replaced).not.toHaveProperty("max_run_cost_usd");
    expect(replaced).not.toHaveProperty("requests_per_minute_per_key");
    expect(await api.ok("PolicyService/GetPolicy", { organization_id: orgId }, as(admin))).toEqual(replaced);
  });

  it.each(transports)("keeps a team's policy apart from the organization's (%s)", async (via) => {
    const api = pf.api[via];
    const teamId = await newTeam();
    expect(await api.ok("PolicyService/GetPolicy", { organization_id: orgId, team_id: teamId }, as(admin))).toEqual({
      organization_id: orgId,
      team_id: teamId,
      allowed_providers: [],
      allowed_models: [],
      price_overrides: [],
      updated_by: "",
      etag: "policy-0",
    });
    const set = await api.ok("PolicyService/SetPolicy", { organization_id: orgId, team_id: teamId, allowed_providers: ["echo"], max_run_cost_usd: "0.000000001", requests_per_minute_per_key: 7 }, as(admin));
    expect(set).toMatchObject({ organization_id: orgId, team_id: teamId, allowed_providers: ["echo"], max_run_cost_usd: "0.000000001", requests_per_minute_per_key: 7, updated_by: admin.principalId });
    expect(await api.ok("PolicyService/GetPolicy", { organization_id: orgId, team_id: teamId }, as(viewer))).toEqual(set);
    const org = await api.ok("PolicyService/GetPolicy", { organization_id: orgId }, as(admin));
    expect(org).toMatchObject({ team_id: "", allowed_providers: [] });
    expect(org).not.toHaveProperty("requests_per_minute_per_key");

    const cleared = await api.ok("PolicyService/SetPolicy", { organization_id: orgId, team_id: teamId }, as(admin));
    expect(cleared).toMatchObject({ team_id: teamId, allowed_providers: [], allowed_models: [], price_overrides: [] });
    expect(cleared).not.toHaveProperty("max_run_cost_usd");
    expect(cleared).not.toHaveProperty("requests_per_minute_per_key");
  });
});

describe("budget: get and set", () => {
  it.each(transports)("sets, reads and replaces budgets, for the organization and a team (%s)", async (via) => {
    const api = pf.api[via];
    const teamId = await newTeam();
    const now = new Date();
    const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const iso = (d: Date) => d.toISOString().replace(".000Z", "Z");

    for (const team of ["", teamId]) {
      const scope = { organization_id: orgId, ...(team ? { team_id: team } : {}) };
      const empty = await api.ok("PolicyService/GetBudget", scope, as(viewer));
      expect(empty).toMatchObject({ organization_id: orgId, team_id: team, periods: [] });
      expect(empty).not.toHaveProperty("daily_limit_usd");

      const set = await api.ok("PolicyService/SetBudget", { ...scope, daily_limit_usd: "10", monthly_limit_usd: "100.123456789" }, as(admin));
      expect(set).toMatchObject({ organization_id: orgId, team_id: team, daily_limit_usd: "10", monthly_limit_usd: "100.123456789", updated_by: admin.principalId });
      expect(set.periods).toEqual([
        { period: "day", limit_usd: "10", committed_usd: "0", remaining_usd: "10", period_start_time: iso(dayStart), reset_time: iso(new Date(dayStart.getTime() + 86_400_000)) },
        {
          period: "month",
          limit_usd: "100.123456789",
          committed_usd: "0",
          remaining_usd: "100.123456789",
          period_start_time: iso(monthStart),
          reset_time: iso(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1))),
        },
      ]);
      expect(await api.ok("PolicyService/GetBudget", scope, as(viewer))).toEqual(set);

      const replaced = await api.ok("PolicyService/SetBudget", { ...scope, monthly_limit_usd: "50" }, as(admin));
      expect(replaced).not.toHaveProperty("daily_limit_usd");
      expect(replaced.periods.map((p: any) => [p.period, p.limit_usd])).toEqual([["month", "50"]]);
      expect(await api.ok("PolicyService/GetBudget", scope, as(admin))).toEqual(replaced);
    }
    // Budgets and policies share a row per scope but are set separately: setting one leaves the other.
    await api.ok("PolicyService/SetPolicy", { organization_id: orgId, team_id: teamId, allowed_providers: ["echo"] }, as(admin));
    expect(await api.ok("PolicyService/GetBudget", { organization_id: orgId, team_id: teamId }, as(admin))).toMatchObject({ monthly_limit_usd: "50" });
    await api.ok("PolicyService/SetBudget", { organization_id: orgId, team_id: teamId }, as(admin));
    expect(await api.ok("PolicyService/GetPolicy", { organization_id: orgId, team_id: teamId }, as(admin))).toMatchObject({ allowed_providers: ["echo"] });
  });
});

describe("validation", () => {
  it.each(transports)("refuses bad amounts, limits and overrides with their paths, changing nothing (%s)", async (via) => {
    const api = pf.api[via];
    const teamId = await newTeam();
    await api.ok("PolicyService/SetPolicy", { organization_id: orgId, allowed_models: ["gpt-4o-mini"], max_run_cost_usd: "1" }, as(admin));
    await api.ok("PolicyService/SetBudget", { organization_id: orgId, daily_limit_usd: "3" }, as(admin));
    const policyBefore = await api.ok("PolicyService/GetPolicy", { organization_id: orgId }, as(admin));
    const budgetBefore = await api.ok("PolicyService/GetBudget", { organization_id: orgId }, as(admin));
    const before = await counts();

    const bad: [string, Record<string, unknown>, { path: string; code: string }[]][] = [
      ["PolicyService/SetBudget", { daily_limit_usd: "1.2345678901" }, [{ path: "/daily_limit_usd", code: "invalid_amount" }]],
      ["PolicyService/SetBudget", { daily_limit_usd: "-1", monthly_limit_usd: "abc" }, [{ path: "/daily_limit_usd", code: "invalid_amount" }, { path: "/monthly_limit_usd", code: "invalid_amount" }]],
      ["PolicyService/SetBudget", { team_id: teamId, monthly_limit_usd: "" }, [{ path: "/monthly_limit_usd", code: "invalid_amount" }]],
      ["PolicyService/SetPolicy", { max_run_cost_usd: "abc" }, [{ path: "/max_run_cost_usd", code: "invalid_amount" }]],
      ["PolicyService/SetPolicy", { max_run_cost_usd: "1.2345678901" }, [{ path: "/max_run_cost_usd", code: "invalid_amount" }]],
      ["PolicyService/SetPolicy", { requests_per_minute_per_key: 0 }, [{ path: "/requests_per_minute_per_key", code: "invalid_value" }]],
      ["PolicyService/SetPolicy", { requests_per_minute_per_key: 1_000_001 }, [{ path: "/requests_per_minute_per_key", code: "invalid_value" }]],
      ["PolicyService/SetPolicy", { allowed_models: ["ok-model", "not a model"] }, [{ path: "/allowed_models/1", code: "invalid_name" }]],
      ["PolicyService/SetPolicy", { team_id: teamId, price_overrides: [{ provider: "openai", model: "gpt-4o-mini", input_usd_per_mtok: "1" }] }, [{ path: "/price_overrides", code: "organization_only" }]],
      ["PolicyService/SetPolicy", { price_overrides: [{ provider: "openai", model: "gpt-9-turbo", input_usd_per_mtok: "1" }] }, [{ path: "/price_overrides", code: "incomplete_price" }]],
      ["PolicyService/SetPolicy", { price_overrides: [{ provider: "openai", model: "gpt-4o-mini", input_usd_per_mtok: "0.0001" }] }, [{ path: "/price_overrides", code: "invalid_price" }]],
      ["PolicyService/SetPolicy", { price_overrides: [{ provider: "openai", model: "gpt-4o-mini" }] }, [{ path: "/price_overrides/0", code: "empty_price" }]],
    ];
    for (const [rpc, fields, issues] of bad) {
      const f = await api.fails(rpc, { organization_id: orgId, ...fields }, as(admin), 400, "invalid_argument");
      if (via === "grpc") expect(f.grpcCode).toBe(Code.InvalidArgument);
      expect(f.issues, `${rpc} ${JSON.stringify(fields)}`).toEqual(issues);
    }
    expect(await counts()).toEqual(before);
    expect(await api.ok("PolicyService/GetPolicy", { organization_id: orgId }, as(admin))).toEqual(policyBefore);
    expect(await api.ok("PolicyService/GetBudget", { organization_id: orgId }, as(admin))).toEqual(budgetBefore);
    expect(await api.ok("PolicyService/GetPolicy", { organization_id: orgId, team_id: teamId }, as(admin))).toMatchObject({ updated_by: "" });
  });

  it.each(transports)("accepts an override of an unknown model that prices input and output (%s)", async (via) => {
    const set = await pf.api[via].ok(
      "PolicyService/SetPolicy",
      { organization_id: orgId, price_overrides: [{ provider: "openai", model: "gpt-9-turbo", input_usd_per_mtok: "1", output_usd_per_mtok: "2.5" }] },
      as(admin),
    );
    expect(set.price_overrides).toEqual([{ provider: "openai", model: "gpt-9-turbo", input_usd_per_mtok: "1", output_usd_per_mtok: "2.5", cached_input_usd_per_mtok: "", cache_write_usd_per_mtok: "" }]);
  });
});

describe("who may read and change rules", () => {
  it.each(transports)("lets a viewer and a member read, refuses them changes, and hides the organization from another one (%s)", async (via) => {
    const api = pf.api[via];
    const teamId = await newTeam();
    const before = await counts();
    for (const team of ["", teamId]) {
      const scope = { organization_id: orgId, ...(team ? { team_id: team } : {}) };
      for (const reader of [viewer, plain]) {
        await api.ok("PolicyService/GetPolicy", scope, as(reader));
        await api.ok("PolicyService/GetBudget", scope, as(reader));
        const p = await api.fails("PolicyService/SetPolicy", { ...scope, allowed_providers: ["echo"] }, as(reader), 403, "permission_denied");
        if (via === "grpc") expect(p.grpcCode).toBe(Code.PermissionDenied);
        await api.fails("PolicyService/SetBudget", { ...scope, daily_limit_usd: "1" }, as(reader), 403, "permission_denied");
      }
      for (const rpc of ["GetPolicy", "SetPolicy", "GetBudget", "SetBudget"]) {
        const f = await api.fails(`PolicyService/${rpc}`, scope, as(foreignAdmin), 404, "not_found");
        if (via === "grpc") expect(f.grpcCode).toBe(Code.NotFound);
      }
    }
    // Our admin, naming another organization's team (or none that exists): 404.
    for (const team of [foreignTeamId, "00000000-0000-4000-8000-000000000000"]) {
      await api.fails("PolicyService/GetPolicy", { organization_id: orgId, team_id: team }, as(admin), 404, "not_found");
      await api.fails("PolicyService/SetBudget", { organization_id: orgId, team_id: team, daily_limit_usd: "1" }, as(admin), 404, "not_found");
    }
    expect(await counts()).toEqual(before);
  });
});

describe("audit and events", () => {
  it.each(transports)("writes one audit entry and one event per change, in the change's transaction (%s)", async (via) => {
    const api = pf.api[via];
    const teamId = await newTeam();
    const [a0, e0, b0, f0] = [(await auditOf("policy.set")).length, (await eventsOf("policy.updated")).length, (await auditOf("budget.set")).length, (await eventsOf("budget.updated")).length];

    await api.ok("PolicyService/SetPolicy", { organization_id: orgId, team_id: teamId, allowed_models: ["gpt-4o-mini"], max_run_cost_usd: "0.5" }, as(admin));
    const audits = (await auditOf("policy.set")).slice(a0);
    const events = (await eventsOf("policy.updated")).slice(e0);
    expect(audits).toHaveLength(1);
    expect(events).toHaveLength(1);
    const summary = { scope: "team", team_id: teamId, allowed_providers: [], allowed_models: ["gpt-4o-mini"], max_run_cost_usd: "0.5", requests_per_minute_per_key: null, price_overrides: null };
    expect(audits[0]).toMatchObject({ resource: `team:${teamId}:policy`, actor_principal_id: admin.principalId, api_key_id: admin.keyId, summary });
    expect(events[0]!.payload).toEqual(summary);
    // now() is the transaction's start: equal timestamps = one transaction.
    expect(events[0]!.created_at).toBe(audits[0]!.created_at);

    await api.ok("PolicyService/SetBudget", { organization_id: orgId, daily_limit_usd: "12.5" }, as(admin));
    const bAudits = (await auditOf("budget.set")).slice(b0);
    const bEvents = (await eventsOf("budget.updated")).slice(f0);
    expect(bAudits).toHaveLength(1);
    expect(bEvents).toHaveLength(1);
    const bSummary = { scope: "organization", team_id: null, daily_limit_usd: "12.5", monthly_limit_usd: null };
    expect(bAudits[0]).toMatchObject({ resource: `organization:${orgId}:budget`, actor_principal_id: admin.principalId, summary: bSummary });
    expect(bEvents[0]!.payload).toEqual(bSummary);
    expect(bEvents[0]!.created_at).toBe(bAudits[0]!.created_at);
  });
});

describe("allow-lists", () => {
  it.each(transports)("refuses a model the policy does not allow, and a team's list narrows the organization's (%s)", async (via) => {
    const api = pf.api[via];
    const teamId = await newTeam();
    await api.ok("PolicyService/SetPolicy", { organization_id: orgId, allowed_models: ["gpt-4o-mini", "gpt-4.1-mini"] }, as(admin));
    await api.ok("PolicyService/SetPolicy", { organization_id: orgId, team_id: teamId, allowed_models: ["gpt-4o-mini"] }, as(admin));
    const exec = (model: string, team = "") => ({ call: { prompt: "allowed?", model, ...(team ? { team_id: team } : {}) } });
    const before = (await usageRows(pf.fabric)).length;

    const denied = await api.fails("ProviderService/Execute", exec("gpt-4o"), as(admin), 403, "model_not_allowed");
    if (via === "grpc") expect(denied.grpcCode).toBe(Code.PermissionDenied);
    expect(denied.detail).toMatch(/polic/);
    await api.fails("ProviderService/Execute", exec("gpt-4o", teamId), as(admin), 403, "model_not_allowed");
    // Allowed by the organization, not by the team: only calls billed to the team are refused.
    await api.ok("ProviderService/Execute", exec("gpt-4.1-mini"), as(admin));
    await api.fails("ProviderService/Execute", exec("gpt-4.1-mini", teamId), as(admin), 403, "model_not_allowed");
    expect(await api.ok("ProviderService/Execute", exec("gpt-4o-mini", teamId), as(admin))).toMatchObject({ model: "gpt-4o-mini" });
    // Streamed calls and estimates see the same rules.
    expect(await pf.stream(via, exec("gpt-4.1-mini", teamId).call, as(admin))).toMatchObject({ ok: false, status: 403, code: "model_not_allowed" });
    expect(await api.ok("ProviderService/EstimateCost", exec("gpt-4.1-mini", teamId), as(admin))).toMatchObject({ allowed: false, refusal_code: "model_not_allowed" });
    // Unpinned: the router picks among the allowed only.
    const open = await api.ok("ProviderService/Execute", { call: { prompt: "anything", team_id: teamId } }, as(admin));
    expect(open.model).toBe("gpt-4o-mini");
    expect(open.routing.candidates.filter((c: any) => c.eligible).map((c: any) => c.model)).toEqual(["gpt-4o-mini"]);

    // Refusals call nobody and record nothing.
    expect((await usageRows(pf.fabric)).length).toBe(before + 3);
    expect(pf.fake.requests.map((r) => r.body.model)).toEqual(["gpt-4.1-mini", "gpt-4o-mini", "gpt-4o-mini"]);
  });
});

describe("price overrides", () => {
  it.each(transports)("bill the organization's next call at the override (%s)", async (via) => {
    const api = pf.api[via];
    const prompt = "price me with the negotiated rate";
    const call = { call: { prompt, model: "gpt-4o-mini" } };
    const n = tokens(prompt);
    const listPrice = await api.ok("ProviderService/Execute", call, as(admin));
    expect(listPrice.cost).toMatchObject({ price_table: PRICE_TABLE_VERSION, actual_usd: formatUsd(n * 150 + n * 600) });

    await api.ok("PolicyService/SetPolicy", { organization_id: orgId, price_overrides: [{ provider: "openai", model: "gpt-4o-mini", input_usd_per_mtok: "1", output_usd_per_mtok: "2.5" }] }, as(admin));
    const overridden = await api.ok("ProviderService/Execute", call, as(admin));
    const expected = n * 1000 + n * 2500;
    expect(overridden.cost).toMatchObject({ price_table: `${PRICE_TABLE_VERSION}+org`, actual_usd: formatUsd(expected) });
    expect(await usageRecord(pf.fabric, overridden.usage_record_id)).toMatchObject({ actual_nano_usd: String(expected), price_table: `${PRICE_TABLE_VERSION}+org` });
    // The providers list shows the organization's prices; the cached-input price not overridden is inherited.
    const list = await api.ok("ProviderService/ListProviders", {}, as(admin));
    expect(list.price_table).toBe(`${PRICE_TABLE_VERSION}+org`);
    expect(list.providers.find((p: any) => p.name === "openai").models.find((m: any) => m.name === "gpt-4o-mini")).toMatchObject({ input_usd_per_mtok: "1", output_usd_per_mtok: "2.5", cached_input_usd_per_mtok: "0.075" });

    // Another organization is billed by the built-in table.
    const foreign = await api.ok("ProviderService/Execute", call, as(foreignAdmin));
    expect(foreign.cost).toMatchObject({ price_table: PRICE_TABLE_VERSION, actual_usd: formatUsd(n * 150 + n * 600) });
  });
});

describe("budgets", () => {
  it("admits calls until the team's daily budget is spent, then refuses with Retry-After, once evented", async () => {
    const teamId = await newTeam();
    // 4000 characters: 1000 tokens in, 1000 out (the fake echoes) = $0.00075 each at gpt-4o-mini's
    // prices; max_tokens 2000 makes each reservation $0.00135. $0.003 admits three calls
    // (0.00225 committed + 0.00135 > 0.003 refuses the fourth).
    const prompt = "abcd".repeat(1000);
    const call = { call: { prompt, model: "gpt-4o-mini", max_tokens: 2000, team_id: teamId } };
    const per = actualCost({ provider: "openai", model: "gpt-4o-mini", usage: { inputTokens: 1000, outputTokens: 1000 } });
    const reserve = estimateCost({ provider: "openai", model: "gpt-4o-mini", inputChars: prompt.length, maxOutputTokens: 2000 });
    expect([per.status === "priced" && per.totalNanoUsd, reserve.status === "priced" && reserve.totalNanoUsd]).toEqual([750_000, 1_350_000]);
    await pf.api.grpc.ok("PolicyService/SetBudget", { organization_id: orgId, team_id: teamId, daily_limit_usd: "0.003" }, as(admin));

    const spent: number[] = [];
    for (const via of ["rest", "grpc", "rest"] as Via[]) {
      const r = await pf.api[via].ok("ProviderService/Execute", call, as(admin));
      expect(r.cost.estimated_usd).toBe("0.00135");
      spent.push(parseUsd(r.cost.actual_usd));
      const mid = await pf.api[via].ok("PolicyService/GetBudget", { organization_id: orgId, team_id: teamId }, as(viewer));
      expect(mid.periods[0].committed_usd).toBe(formatUsd(spent.reduce((a, b) => a + b, 0)));
    }
    const rows = (await usageRows(pf.fabric)).filter((r) => r.team_id === teamId);
    expect(rows.map((r) => r.status)).toEqual(["succeeded", "succeeded", "succeeded"]);

    const rest = await pf.api.rest.fails("ProviderService/Execute", call, as(admin), 429, "budget_exceeded");
    expect(rest.detail).toContain("team's daily budget");
    const retry = Number(rest.retryAfter);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(Math.abs(retry - secondsToUtcMidnight())).toBeLessThanOrEqual(5);
    const grpc = await pf.api.grpc.fails("ProviderService/Execute", call, as(admin), 429, "budget_exceeded");
    expect(grpc.grpcCode).toBe(Code.ResourceExhausted);
    expect(Math.abs(Number(grpc.retryAfter) - secondsToUtcMidnight())).toBeLessThanOrEqual(5);
    expect(await pf.stream("rest", call.call, as(admin))).toMatchObject({ ok: false, status: 429, code: "budget_exceeded" });

    // Committed = the actual costs (the reservations were settled down to them); refusals add nothing.
    const budget = await pf.api.rest.ok("PolicyService/GetBudget", { organization_id: orgId, team_id: teamId }, as(admin));
    const committed = spent.reduce((a, b) => a + b, 0);
    expect(budget.periods[0]).toMatchObject({ period: "day", limit_usd: "0.003", committed_usd: formatUsd(committed), remaining_usd: formatUsd(3_000_000 - committed) });
    expect(committed).toBe(2_250_000);
    expect((await usageRows(pf.fabric)).filter((r) => r.team_id === teamId)).toHaveLength(3);
    expect(pf.fake.requests).toHaveLength(3);

    const exceeded = (await eventsOf("budget.exceeded")).filter((e) => e.payload.team_id === teamId);
    expect(exceeded).toHaveLength(1);
    expect(exceeded[0]!.payload).toMatchObject({ scope: "team", period: "day", limit_nano_usd: "3000000", committed_nano_usd: "2250000", refused_estimate_nano_usd: "1350000" });

    // The estimate agrees, and a call small enough to fit is still admitted.
    expect(await pf.api.rest.ok("ProviderService/EstimateCost", call, as(admin))).toMatchObject({ allowed: false, refusal_code: "budget_exceeded" });
    await pf.api.rest.ok("ProviderService/Execute", { call: { prompt: "tiny", model: "gpt-4o-mini", max_tokens: 10, team_id: teamId } }, as(admin));
  });

  it.each(transports)("the organization's budget applies to its teams' calls too (%s)", async (via) => {
    const api = pf.api[via];
    const teamId = await newTeam();
    await api.ok("PolicyService/SetBudget", { organization_id: orgId, daily_limit_usd: "0.000001" }, as(admin));
    await api.fails("ProviderService/Execute", { call: { prompt: "x", model: "gpt-4o-mini", team_id: teamId } }, as(admin), 429, "budget_exceeded");
    // Free calls (echo costs nothing) fit any budget.
    await api.ok("ProviderService/Execute", { call: { prompt: "x", provider: "echo", team_id: teamId } }, as(admin));
  });
});

describe("ids and amounts at the edges", () => {
  it.each(transports)("an upper-case team id names the same team: one budget, enforced on calls billed with either form (%s)", async (via) => {
    const api = pf.api[via];
    const teamId = await newTeam();
    const upper = teamId.toUpperCase();
    await api.ok("PolicyService/SetBudget", { organization_id: orgId, team_id: upper, daily_limit_usd: "0.000001" }, as(admin));
    expect(await api.ok("PolicyService/GetBudget", { organization_id: orgId, team_id: teamId }, as(admin))).toMatchObject({ team_id: teamId, daily_limit_usd: "0.000001" });
    for (const id of [teamId, upper]) await api.fails("ProviderService/Execute", { call: { prompt: "x", model: "gpt-4o-mini", team_id: id } }, as(admin), 429, "budget_exceeded");
  });

  it.each(transports)("an amount beyond exact counting is 400 invalid_amount, not a 500 (%s)", async (via) => {
    const api = pf.api[via];
    const f = await api.fails("PolicyService/SetBudget", { organization_id: orgId, daily_limit_usd: "10000000" }, as(admin), 400, "invalid_argument");
    expect(f.issues).toEqual([{ path: "/daily_limit_usd", code: "invalid_amount" }]);
    const g = await api.fails("PolicyService/SetPolicy", { organization_id: orgId, max_run_cost_usd: "9007199.254740992" }, as(admin), 400, "invalid_argument");
    expect(g.issues).toEqual([{ path: "/max_run_cost_usd", code: "invalid_amount" }]);
    await api.ok("PolicyService/SetBudget", { organization_id: orgId, team_id: await newTeam(), daily_limit_usd: "9007199.254740991" }, as(admin));
  });

  it.each(transports)("EstimateCost checks what the call would reserve, so it agrees with Execute (%s)", async (via) => {
    const api = pf.api[via];
    const teamId = await newTeam();
    // Unpinned, the call may fall back to the dearest model: that is what a call reserves.
    const call = { prompt: "which model?", max_tokens: 50, team_id: teamId };
    const estimate = await api.ok("ProviderService/EstimateCost", { call }, as(admin));
    const first = Number(estimate.estimated_usd);
    await api.ok("PolicyService/SetBudget", { organization_id: orgId, team_id: teamId, daily_limit_usd: estimate.estimated_usd }, as(admin));
    const checked = await api.ok("ProviderService/EstimateCost", { call }, as(admin));
    const execute = await api.call("ProviderService/Execute", { call }, as(admin));
    expect(checked.allowed).toBe(execute.ok);
    if (!execute.ok) expect(checked.refusal_code).toBe("budget_exceeded");
    expect(first).toBeGreaterThanOrEqual(0);
  });

  it("EstimateCost shows a budget's amounts only to callers who may read it", async () => {
    const api = pf.api.rest;
    const teamId = await newTeam();
    await api.ok("PolicyService/SetBudget", { organization_id: orgId, team_id: teamId, daily_limit_usd: "5" }, as(admin));
    const narrow = await member(pf.fabric, orgId, "member", undefined, ["providers:read"]);
    const seen = await api.ok("ProviderService/EstimateCost", { call: { prompt: "x", model: "gpt-4o-mini", team_id: teamId } }, { key: narrow.key });
    expect(seen.budgets).toEqual([{ scope: "team", period: "day", limit_usd: "", committed_usd: "", fits: true }]);
    const full = await api.ok("ProviderService/EstimateCost", { call: { prompt: "x", model: "gpt-4o-mini", team_id: teamId } }, as(admin));
    expect(full.budgets).toEqual([expect.objectContaining({ limit_usd: "5", fits: true })]);
  });
});

describe("a budget set mid-period", () => {
  it.each(transports)("counts what the scope already spent in the period, and still admits free calls once spent (%s)", async (via) => {
    const api = pf.api[via];
    const teamId = await newTeam();
    const first = await api.ok("ProviderService/Execute", { call: { prompt: "before the budget", model: "gpt-4o-mini", max_tokens: 50, team_id: teamId } }, as(admin));
    const spent = first.cost.actual_usd;
    expect(Number(spent)).toBeGreaterThan(0);
    const budget = await api.ok("PolicyService/SetBudget", { organization_id: orgId, team_id: teamId, daily_limit_usd: spent }, as(admin));
    expect(budget.periods).toEqual([expect.objectContaining({ period: "day", limit_usd: spent, committed_usd: spent, remaining_usd: "0" })]);
    // Spent to the cent: a priced call no longer fits, a free one still does.
    await api.fails("ProviderService/Execute", { call: { prompt: "after", model: "gpt-4o-mini", max_tokens: 50, team_id: teamId } }, as(admin), 429, "budget_exceeded");
    await api.ok("ProviderService/Execute", { call: { prompt: "free", provider: "echo", team_id: teamId } }, as(admin));
  });
});

describe("per-run cost cap", () => {
  it.each(transports)("refuses a direct call whose estimate exceeds max_run_cost_usd (%s)", async (via) => {
    const api = pf.api[via];
    const teamId = await newTeam();
    await api.ok("PolicyService/SetPolicy", { organization_id: orgId, team_id: teamId, max_run_cost_usd: "0.001" }, as(admin));
    const before = (await usageRows(pf.fabric)).length;
    // No max_tokens: the estimate assumes 4096 output tokens ($0.0024576+ at gpt-4o-mini).
    const f = await api.fails("ProviderService/Execute", { call: { prompt: "expensive", model: "gpt-4o-mini", team_id: teamId } }, as(admin), 429, "budget_exceeded");
    if (via === "grpc") expect(f.grpcCode).toBe(Code.ResourceExhausted);
    expect(f.detail).toContain("per-run cost cap");
    expect(f.retryAfter).toBeNull();
    expect((await usageRows(pf.fabric)).length).toBe(before);
    expect(pf.fake.requests).toHaveLength(0);
    expect(await api.ok("ProviderService/EstimateCost", { call: { prompt: "expensive", model: "gpt-4o-mini", team_id: teamId } }, as(admin))).toMatchObject({ allowed: false, refusal_code: "budget_exceeded" });
    // A bounded call fits under the cap; calls not billed to the team are not capped.
    await api.ok("ProviderService/Execute", { call: { prompt: "bounded", model: "gpt-4o-mini", max_tokens: 100, team_id: teamId } }, as(admin));
    await api.ok("ProviderService/Execute", { call: { prompt: "expensive", model: "gpt-4o-mini" } }, as(admin));
  });
});

describe("rate limit", () => {
  it("refuses the 4th call of a key within the minute at 3 per minute, on both transports; other keys are not limited", async () => {
    const teamId = await newTeam();
    await pf.api.rest.ok("PolicyService/SetPolicy", { organization_id: orgId, team_id: teamId, requests_per_minute_per_key: 3 }, as(admin));
    const keys = { rest: await member(pf.fabric, orgId, "member"), grpc: await member(pf.fabric, orgId, "member") };
    const other = await member(pf.fabric, orgId, "member");
    const call = { call: { prompt: "tick", provider: "echo", team_id: teamId } };
    await freshMinute(56);
    const before = (await usageRows(pf.fabric)).length;
    for (const via of transports) {
      const api = pf.api[via];
      const k = keys[via];
      for (let i = 0; i < 3; i++) await api.ok("ProviderService/Execute", call, as(k));
      const f = await api.fails("ProviderService/Execute", call, as(k), 429, "rate_limited");
      if (via === "grpc") expect(f.grpcCode).toBe(Code.ResourceExhausted);
      const retry = Number(f.retryAfter);
      expect(Number.isInteger(retry), `${via} retry-after ${f.retryAfter}`).toBe(true);
      expect(retry).toBeGreaterThanOrEqual(1);
      expect(retry).toBeLessThanOrEqual(60);
      // Streams count against the same limit.
      expect(await pf.stream(via, call.call, as(k))).toMatchObject({ ok: false, status: 429, code: "rate_limited" });
      // The key's calls not billed to the team are under no limit.
      await api.ok("ProviderService/Execute", { call: { prompt: "untethered", provider: "echo" } }, as(k));
      // Estimates are not rate limited.
      await api.ok("ProviderService/EstimateCost", call, as(k));
    }
    // Another key, same team and minute: admitted.
    await pf.api.grpc.ok("ProviderService/Execute", call, as(other));
    // Admitted calls wrote usage; refused ones did not.
    expect((await usageRows(pf.fabric)).length).toBe(before + 2 * 4 + 1);
  });
});
