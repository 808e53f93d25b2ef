/**
 * ProviderService on the wire (REST and gRPC): the providers list, direct calls (text,
 * embeddings, streamed) with exact usage and cost, the cost estimate, validation, provider
 * failures and fallbacks, and who may call. One Fabric with the OpenAI fake enabled.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { actualCost, DEFAULT_PRICE_TABLE, estimateCost, formatUsdPerMTok, parseUsd, PRICE_TABLE_VERSION } from "../../src/domain/pricing.js";
import { OPENAI_EMBEDDING_MODELS, OPENAI_MODELS } from "../../src/providers/openai/index.js";
import { type Actor } from "../helpers/calls.js";
import { insertTeam, member } from "../helpers/fixtures.js";
import { startProviderFabric, tokens, transports, usageCount, usageRecord, usageRows, type ProviderFabric } from "../usage/support.js";

let pf: ProviderFabric;
let orgId: string;
let admin: Awaited<ReturnType<typeof member>>;
let viewer: Awaited<ReturnType<typeof member>>;
let readOnly: Awaited<ReturnType<typeof member>>;
let teamId: string;
let foreignTeamId: string;

beforeAll(async () => {
  pf = await startProviderFabric();
  orgId = pf.fabric.organizationId;
  admin = await member(pf.fabric, orgId, "admin");
  viewer = await member(pf.fabric, orgId, "viewer");
  readOnly = await member(pf.fabric, orgId, "admin", undefined, ["providers:read"]);
  teamId = await insertTeam(pf.fabric, orgId);
  const other = await pf.fabric.otherOrg();
  foreignTeamId = await insertTeam(pf.fabric, other.organizationId);
});
afterAll(() => pf?.close());
afterEach(() => pf.fake.reset());

const price = (model: string) => DEFAULT_PRICE_TABLE.providers["openai"]![model]!;
const expectedActual = (model: string, input: number, output: number) => actualCost({ provider: "openai", model, usage: { inputTokens: input, outputTokens: output } });
const usd = (c: ReturnType<typeof actualCost>) => (c.status === "priced" ? c.usd : "unpriced");
const nano = (c: ReturnType<typeof actualCost>) => (c.status === "priced" ? String(c.totalNanoUsd) : null);

describe("ListProviders", () => {
  it.each(transports)("lists echo and openai with models, table prices and health (%s)", async (via) => {
    const data = await pf.api[via].ok("ProviderService/ListProviders", {}, { key: admin.key });
    expect(data.price_table).toBe(PRICE_TABLE_VERSION);
    expect(data.default_strategy).toBe("local_first");
    expect(data.providers.map((p: any) => p.name)).toEqual(["echo", "openai"]);

    const echo = data.providers[0];
    expect(echo).toMatchObject({ name: "echo", local: true, stub: true, health: "healthy", modalities: ["text", "embedding"] });
    expect(echo.models.map((m: any) => m.name)).toEqual(["echo-1", "echo-embed-1"]);

    const openai = data.providers[1];
    expect(openai).toMatchObject({ name: "openai", tier: "premium", local: false, stub: false, operations: ["ai.generate", "ai.embed"], modalities: ["text", "embedding"], health: "healthy" });
    expect(openai.models.map((m: any) => m.name)).toEqual([...OPENAI_MODELS, ...OPENAI_EMBEDDING_MODELS]);
    for (const m of openai.models) {
      const p = price(m.name);
      expect(m.operation).toBe(m.name.startsWith("text-embedding") ? "ai.embed" : "ai.generate");
      expect(m.input_usd_per_mtok, m.name).toBe(formatUsdPerMTok(p.inputNanoUsd));
      expect(m.output_usd_per_mtok, m.name).toBe(formatUsdPerMTok(p.outputNanoUsd));
      expect(m.cached_input_usd_per_mtok, m.name).toBe(p.cachedInputNanoUsd === undefined ? "" : formatUsdPerMTok(p.cachedInputNanoUsd));
      expect(m.breaker).toBe("closed");
    }
    expect(openai.models.find((m: any) => m.name === "gpt-4o-mini")).toMatchObject({ input_usd_per_mtok: "0.15", output_usd_per_mtok: "0.6", cached_input_usd_per_mtok: "0.075", quality: 58 });
  });

  it.each(transports)("is allowed to a key scoped providers:read and to a viewer (%s)", async (via) => {
    for (const who of [readOnly, viewer]) {
      const data = await pf.api[via].ok("ProviderService/ListProviders", {}, { key: who.key });
      expect(data.providers.map((p: any) => p.name)).toContain("echo");
    }
  });
});

describe("Execute", () => {
  it("answers text with exact usage and cost, the same on both transports, and records the caller", async () => {
    const prompt = "hello there, general kenobi";
    const call = { prompt, model: "gpt-4o-mini", max_tokens: 64 };
    const results: Record<string, any> = {};
    for (const via of transports) {
      const before = await usageCount(pf.fabric);
      const r = await pf.api[via].ok("ProviderService/Execute", { call }, { key: admin.key });
      const actual = expectedActual("gpt-4o-mini", tokens(prompt), tokens(prompt));
      const estimate = estimateCost({ provider: "openai", model: "gpt-4o-mini", operation: "ai.generate", inputChars: prompt.length, maxOutputTokens: 64 });
      expect(r).toMatchObject({
        text: prompt,
        finish_reason: "stop",
        embeddings: [],
        provider: "openai",
        model: "gpt-4o-mini",
        usage: { input_tokens: String(tokens(prompt)), output_tokens: String(tokens(prompt)), cached_input_tokens: "0", cache_write_tokens: "0" },
        cost: { estimated_usd: usd(estimate), actual_usd: usd(actual), price_table: PRICE_TABLE_VERSION, unpriced_reason: "" },
        routing: { provider: "openai", model: "gpt-4o-mini", attempts: [{ provider: "openai", model: "gpt-4o-mini", error: "" }] },
      });
      // The actual cost is tokens × the table's nano-dollar prices, exactly.
      const p = price("gpt-4o-mini");
      expect(parseUsd(r.cost.actual_usd)).toBe(tokens(prompt) * p.inputNanoUsd + tokens(prompt) * p.outputNanoUsd);
      expect(r.routing.candidates[0]).toMatchObject({ provider: "openai", model: "gpt-4o-mini", eligible: true, rank: 1, estimated_usd: usd(estimate), breaker: "closed" });

      expect(await usageCount(pf.fabric)).toBe(before + 1);
      const row = await usageRecord(pf.fabric, r.usage_record_id);
      expect(row).toMatchObject({
        organization_id: orgId,
        team_id: null,
        principal_id: admin.principalId,
        api_key_id: admin.keyId,
        provider: "openai",
        model: "gpt-4o-mini",
        operation: "ai.generate",
        status: "succeeded",
        input_tokens: String(tokens(prompt)),
        output_tokens: String(tokens(prompt)),
        actual_nano_usd: nano(actual),
        price_table: PRICE_TABLE_VERSION,
        error_code: null,
      });
      results[via] = r;
    }
    const strip = ({ usage_record_id: _, ...rest }: any) => rest;
    expect(strip(results["grpc"])).toEqual(strip(results["rest"]));
    expect(results["grpc"].usage_record_id).not.toBe(results["rest"].usage_record_id);
  });

  it.each(transports)("embeds with usage and cost from the table (%s)", async (via) => {
    const input = ["alpha", "beta gamma"];
    const r = await pf.api[via].ok("ProviderService/Execute", { call: { operation: "ai.embed", input, model: "text-embedding-3-small" } }, { key: admin.key });
    expect(r.embeddings).toHaveLength(2);
    for (const e of r.embeddings) expect(e.values.length).toBeGreaterThan(0);
    const actual = actualCost({ provider: "openai", model: "text-embedding-3-small", usage: { inputTokens: tokens(...input), outputTokens: 0 } });
    expect(r).toMatchObject({ text: "", provider: "openai", model: "text-embedding-3-small", usage: { input_tokens: String(tokens(...input)), output_tokens: "0" }, cost: { actual_usd: usd(actual), estimated_usd: usd(actual) } });
    const row = await usageRecord(pf.fabric, r.usage_record_id);
    expect(row).toMatchObject({ operation: "ai.embed", status: "succeeded", principal_id: admin.principalId, api_key_id: admin.keyId, actual_nano_usd: nano(actual) });
  });

  it.each(transports)("bills a call to its team (%s)", async (via) => {
    const r = await pf.api[via].ok("ProviderService/Execute", { call: { prompt: "for the team", provider: "echo", team_id: teamId } }, { key: admin.key });
    expect(r).toMatchObject({ text: "for the team", provider: "echo", model: "echo-1", cost: { actual_usd: "0" } });
    expect(await usageRecord(pf.fabric, r.usage_record_id)).toMatchObject({ team_id: teamId, organization_id: orgId, status: "succeeded" });
  });
});

describe("ExecuteStream", () => {
  it.each(transports)("streams deltas that concatenate to the result's text, then the result (%s)", async (via) => {
    const prompt = "the quick brown fox jumps over the lazy dog";
    const before = await usageCount(pf.fabric);
    const s = await pf.stream(via, { prompt, model: "gpt-4o-mini" }, { key: admin.key });
    expect(s.ok, JSON.stringify(s)).toBe(true);
    if (!s.ok) return;
    expect(s.deltas.length).toBeGreaterThan(1);
    expect(s.deltas.join("")).toBe(prompt);
    expect(s.events.at(-1)).toBe("result");
    expect(s.events.filter((e) => e === "result")).toHaveLength(1);
    expect(s.events.slice(0, -1).every((e) => e === "delta")).toBe(true);
    const actual = expectedActual("gpt-4o-mini", tokens(prompt), tokens(prompt));
    expect(s.result).toMatchObject({ text: prompt, provider: "openai", model: "gpt-4o-mini", finish_reason: "stop", cost: { actual_usd: usd(actual) } });
    expect(await usageCount(pf.fabric)).toBe(before + 1);
    expect(await usageRecord(pf.fabric, s.result.usage_record_id)).toMatchObject({ status: "succeeded", api_key_id: admin.keyId, principal_id: admin.principalId, actual_nano_usd: nano(actual) });
  });

  it.each(transports)("ends with an error after a provider fails mid-stream, never falling back (%s)", async (via) => {
    pf.fake.script([{ streamErrorAfterChunks: 3 }]);
    const before = await usageRows(pf.fabric);
    // Pinned: a model whose breaker sees successes between these failures (5 in a row would open it).
    const s = await pf.stream(via, { prompt: "one two three four five six", model: "gpt-4o-mini" }, { key: admin.key });
    expect(s.ok).toBe(false);
    if (s.ok) return;
    // The role chunk, then two words, then the provider's in-stream error.
    expect(s.deltas).toEqual(["one ", "two "]);
    expect(s.code).toMatch(/^provider_/);
    expect(s.status).toBeGreaterThanOrEqual(500);
    if (via === "grpc") expect(s.grpcCode).toBe(Code.Unavailable);
    expect(pf.fake.requests).toHaveLength(1);
    const after = await usageRows(pf.fabric);
    expect(after).toHaveLength(before.length + 1);
    // The stream had begun: the provider may have billed it, so its cost is unknown (not 0).
    expect(after.at(-1)).toMatchObject({ status: "failed", error_code: s.code, actual_nano_usd: null, api_key_id: admin.keyId });
  });

  it.each(transports)("refuses to stream an embedding, before the stream opens (%s)", async (via) => {
    const s = await pf.stream(via, { operation: "ai.embed", input: ["x"] }, { key: admin.key });
    expect(s).toMatchObject({ ok: false, status: 400, issues: [{ path: "/operation" }] });
  });

  it.each(transports)("refuses a viewer (%s)", async (via) => {
    const s = await pf.stream(via, { prompt: "hi", provider: "echo" }, { key: viewer.key });
    expect(s).toMatchObject({ ok: false, status: 403 });
  });
});

describe("EstimateCost", () => {
  const prompt = "estimate me, please";

  it.each(transports)("routes and prices without calling anything (%s)", async (via) => {
    const before = await usageCount(pf.fabric);
    const requests = pf.fake.requests.length;
    const r = await pf.api[via].ok("ProviderService/EstimateCost", { call: { prompt, model: "gpt-4o-mini", max_tokens: 100 } }, { key: admin.key });
    const expected = estimateCost({ provider: "openai", model: "gpt-4o-mini", operation: "ai.generate", inputChars: prompt.length, maxOutputTokens: 100 });
    expect(r).toMatchObject({ estimated_usd: usd(expected), estimated_input_tokens: String(tokens(prompt)), max_output_tokens: "100", price_table: PRICE_TABLE_VERSION, budgets: [], allowed: true, refusal_code: "" });
    expect(r.routing).toMatchObject({ provider: "openai", model: "gpt-4o-mini", attempts: [] });
    expect(r.routing.candidates[0]).toMatchObject({ provider: "openai", model: "gpt-4o-mini", eligible: true, rank: 1, estimated_usd: usd(expected) });

    // Unpinned: every eligible candidate ranked (cheapest remote first under local_first), each with its own estimate.
    const open = await pf.api[via].ok("ProviderService/EstimateCost", { call: { prompt, max_tokens: 100 } }, { key: admin.key });
    const eligible = open.routing.candidates.filter((c: any) => c.eligible);
    expect(eligible.map((c: any) => c.rank)).toEqual(OPENAI_MODELS.map((_, i) => i + 1));
    expect(eligible.map((c: any) => c.model).sort()).toEqual([...OPENAI_MODELS].sort());
    for (const c of eligible) {
      expect(c.estimated_usd, c.model).toBe(usd(estimateCost({ provider: "openai", model: c.model, operation: "ai.generate", inputChars: prompt.length, maxOutputTokens: 100 })));
    }
    const costs = eligible.map((c: any) => parseUsd(c.estimated_usd));
    expect([...costs].sort((a, b) => a - b)).toEqual(costs);
    expect(open.estimated_usd).toBe(eligible[0].estimated_usd);
    expect(open.routing.model).toBe(eligible[0].model);
    // A stub is never a candidate when a real provider serves the call.
    expect(open.routing.candidates.find((c: any) => c.provider === "echo" && c.model === "echo-1")).toMatchObject({ eligible: false, rank: 0 });

    expect(await usageCount(pf.fabric)).toBe(before);
    expect(pf.fake.requests.length).toBe(requests);
  });

  it.each(transports)("lists the budgets that apply and refuses what would not fit (%s)", async (via) => {
    const api = pf.api[via];
    const call = { prompt, model: "gpt-4o-mini", max_tokens: 100, team_id: teamId };
    const estimate = estimateCost({ provider: "openai", model: "gpt-4o-mini", operation: "ai.generate", inputChars: prompt.length, maxOutputTokens: 100 });
    try {
      await api.ok("PolicyService/SetBudget", { organization_id: orgId, daily_limit_usd: "5" }, { key: admin.key });
      await api.ok("PolicyService/SetBudget", { organization_id: orgId, team_id: teamId, monthly_limit_usd: "2.5" }, { key: admin.key });
      // A budget set mid-period counts what was already spent in it (earlier tests' calls).
      const committed = async (teamId?: string) => (await api.ok("PolicyService/GetBudget", { organization_id: orgId, ...(teamId ? { team_id: teamId } : {}) }, { key: admin.key })).periods[0].committed_usd;
      const orgCommitted = await committed();
      const teamCommitted = await committed(teamId);
      const fits = await api.ok("ProviderService/EstimateCost", { call }, { key: admin.key });
      expect(fits).toMatchObject({ allowed: true, refusal_code: "", estimated_usd: usd(estimate) });
      expect(fits.budgets).toEqual([
        { scope: "organization", period: "day", limit_usd: "5", committed_usd: orgCommitted, fits: true },
        { scope: "team", period: "month", limit_usd: "2.5", committed_usd: teamCommitted, fits: true },
      ]);

      await api.ok("PolicyService/SetBudget", { organization_id: orgId, team_id: teamId, monthly_limit_usd: "0.00001" }, { key: admin.key });
      const refused = await api.ok("ProviderService/EstimateCost", { call }, { key: admin.key });
      expect(refused).toMatchObject({ allowed: false, refusal_code: "budget_exceeded" });
      expect(refused.refusal_message).toContain("team's monthly budget");
      expect(refused.budgets).toEqual([
        { scope: "organization", period: "day", limit_usd: "5", committed_usd: orgCommitted, fits: true },
        { scope: "team", period: "month", limit_usd: "0.00001", committed_usd: teamCommitted, fits: false },
      ]);
      // Without the team, only the organization's budget applies.
      const orgOnly = await api.ok("ProviderService/EstimateCost", { call: { ...call, team_id: "" } }, { key: admin.key });
      expect(orgOnly).toMatchObject({ allowed: true, budgets: [{ scope: "organization", period: "day", fits: true }] });
    } finally {
      await api.ok("PolicyService/SetBudget", { organization_id: orgId }, { key: admin.key });
      await api.ok("PolicyService/SetBudget", { organization_id: orgId, team_id: teamId }, { key: admin.key });
    }
    const cleared = await api.ok("ProviderService/EstimateCost", { call }, { key: admin.key });
    expect(cleared).toMatchObject({ allowed: true, budgets: [] });
  });
});

describe("validation", () => {
  it.each(transports)("reports every problem with its path and writes nothing (%s)", async (via) => {
    const api = pf.api[via];
    const before = await usageCount(pf.fabric);
    const requests = pf.fake.requests.length;
    const cases: [Record<string, unknown>, string[]][] = [
      [{ max_tokens: 0, temperature: 3, strategy: "fastest-ish", tier: "gold" }, ["/strategy", "/tier", "/max_tokens", "/temperature", "/prompt"]],
      [{ operation: "ai.rerank", prompt: "x" }, ["/operation"]],
      [{ operation: "ai.embed", prompt: "x" }, ["/input", "/prompt"]],
      [{ prompt: "x", messages: [{ role: "wizard", content: "y" }] }, ["/messages", "/messages/0/role"]],
      [{ messages: [{ role: "system", content: "only a system turn" }] }, ["/messages"]],
      [{ prompt: "x", team_id: "not-a-uuid" }, ["/team_id"]],
    ];
    for (const [call, paths] of cases) {
      const f = await api.fails("ProviderService/Execute", { call }, { key: admin.key }, 400, "invalid_argument");
      if (via === "grpc") expect(f.grpcCode).toBe(Code.InvalidArgument);
      expect(f.issues.map((i) => i.path), JSON.stringify(call)).toEqual(paths);
      await api.fails("ProviderService/EstimateCost", { call }, { key: admin.key }, 400, "invalid_argument");
    }
    // Routing refusals are argument errors too: a model nobody serves.
    await api.fails("ProviderService/Execute", { call: { prompt: "x", model: "no-such-model" } }, { key: admin.key }, 400, "model_not_served");
    expect(await usageCount(pf.fabric)).toBe(before);
    expect(pf.fake.requests.length).toBe(requests);
  });
});

describe("provider failures", () => {
  it.each(transports)("falls back to the next candidate after a 500 (%s)", async (via) => {
    pf.fake.script([{ status: 500 }]);
    const before = await usageCount(pf.fabric);
    const r = await pf.api[via].ok("ProviderService/Execute", { call: { prompt: "fall back please" } }, { key: admin.key });
    expect(r.routing.attempts).toHaveLength(2);
    const [failed, answered] = r.routing.attempts;
    expect(failed.provider).toBe("openai");
    expect(failed.error).toMatch(/^transient: /);
    expect(answered).toEqual({ provider: "openai", model: r.model, error: "" });
    expect(failed.model).not.toBe(r.model);
    expect(r.routing.candidates.slice(0, 2).map((c: any) => c.model)).toEqual([failed.model, answered.model]);
    expect(pf.fake.requests.map((q) => q.body.model)).toEqual([failed.model, answered.model]);
    // One call, one record: the one that answered.
    expect(await usageCount(pf.fabric)).toBe(before + 1);
    expect(await usageRecord(pf.fabric, r.usage_record_id)).toMatchObject({ status: "succeeded", provider: "openai", model: r.model });
  });

  it.each(transports)("does not retry a request the provider refuses: 400 provider_invalid_request, record failed (%s)", async (via) => {
    pf.fake.script([{ status: 400 }]);
    const before = await usageRows(pf.fabric);
    const f = await pf.api[via].fails("ProviderService/Execute", { call: { prompt: "refuse me" } }, { key: admin.key }, 400, "provider_invalid_request");
    if (via === "grpc") expect(f.grpcCode).toBe(Code.InvalidArgument);
    expect(pf.fake.requests).toHaveLength(1);
    const after = await usageRows(pf.fabric);
    expect(after).toHaveLength(before.length + 1);
    expect(after.at(-1)).toMatchObject({ status: "failed", error_code: "provider_invalid_request", provider: "openai", actual_nano_usd: "0", principal_id: admin.principalId, api_key_id: admin.keyId });
  });

  it.each(transports)("answers 503 provider_* when every candidate fails, record failed (%s)", async (via) => {
    pf.fake.script(OPENAI_MODELS.map(() => ({ status: 500 })));
    const before = await usageRows(pf.fabric);
    const f = await pf.api[via].fails("ProviderService/Execute", { call: { prompt: "nobody answers" } }, { key: admin.key }, 503, "provider_transient");
    if (via === "grpc") expect(f.grpcCode).toBe(Code.Unavailable);
    expect(f.detail).toContain("attempts:");
    expect(new Set(pf.fake.requests.map((q) => q.body.model))).toEqual(new Set(OPENAI_MODELS));
    const after = await usageRows(pf.fabric);
    expect(after).toHaveLength(before.length + 1);
    expect(after.at(-1)).toMatchObject({ status: "failed", error_code: "provider_transient", provider: "openai", actual_nano_usd: "0", input_tokens: "0" });
  });

  it("keeps the breakers closed and the providers healthy after these few failures", async () => {
    const data = await pf.api.rest.ok("ProviderService/ListProviders", {}, { key: admin.key });
    expect(data.providers.find((p: any) => p.name === "openai").health).toBe("healthy");
  });
});

describe("who may call", () => {
  const teamCall = (team: string) => ({ call: { prompt: "x", provider: "echo", team_id: team } });

  it.each(transports)("answers 404 for a team of another organization or an unknown team, writing nothing (%s)", async (via) => {
    const api = pf.api[via];
    const before = await usageCount(pf.fabric);
    for (const team of [foreignTeamId, "7f1c1c1e-0000-4000-8000-000000000000"]) {
      await api.fails("ProviderService/Execute", teamCall(team), { key: admin.key }, 404, "not_found");
      await api.fails("ProviderService/EstimateCost", teamCall(team), { key: admin.key }, 404, "not_found");
      const s = await pf.stream(via, teamCall(team).call, { key: admin.key });
      expect(s).toMatchObject({ ok: false, status: 404 });
    }
    expect(await usageCount(pf.fabric)).toBe(before);
  });

  it.each(transports)("refuses Execute to a viewer (no provider.execute) and to a key scoped providers:read (%s)", async (via) => {
    const api = pf.api[via];
    const before = await usageCount(pf.fabric);
    for (const who of [viewer, readOnly]) {
      const actor: Actor = { key: who.key };
      const f = await api.fails("ProviderService/Execute", { call: { prompt: "x", provider: "echo" } }, actor, 403, "permission_denied");
      if (via === "grpc") expect(f.grpcCode).toBe(Code.PermissionDenied);
      // provider.read is enough to estimate.
      await api.ok("ProviderService/EstimateCost", { call: { prompt: "x", provider: "echo" } }, actor);
    }
    expect(await usageCount(pf.fabric)).toBe(before);
  });

  it.each(transports)("lets a key scoped providers:execute call (%s)", async (via) => {
    const scoped = await member(pf.fabric, orgId, "member", undefined, ["providers:execute"]);
    const r = await pf.api[via].ok("ProviderService/Execute", { call: { prompt: "scoped", provider: "echo" } }, { key: scoped.key });
    expect(await usageRecord(pf.fabric, r.usage_record_id)).toMatchObject({ principal_id: scoped.principalId, api_key_id: scoped.keyId });
  });

  it.each(transports)("refuses an unauthenticated call (%s)", async (via) => {
    await pf.api[via].fails("ProviderService/Execute", { call: { prompt: "x" } }, { key: "fab_nope_nope" }, 401);
  });
});
