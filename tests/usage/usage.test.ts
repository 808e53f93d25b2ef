/**
 * UsageService on the wire (REST and gRPC): after calls by two keys/principals, on two
 * teams (and none), with several models and one failure, QueryUsage's groups and totals
 * equal what the calls' own responses add up to; filters; ListUsageRecords newest first
 * with keyset pages; visibility across teams and organizations.
 */
import { randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ListUsageRecordsRequestSchema, QueryUsageRequestSchema } from "../../gen/proto/fabric/v1/usage_pb.js";
import { effectivePermissions } from "../../src/domain/permissions.js";
import { formatUsd, parseUsd } from "../../src/domain/pricing.js";
import type { CallContext } from "../../src/services/call-context.js";
import { createUsageService } from "../../src/services/usage/usage-service.js";
import { insertKey, insertMembership, insertTeam, insertUser, member } from "../helpers/fixtures.js";
import { startProviderFabric, transports, usageRows, type ProviderFabric, type Via } from "./support.js";

type Member = Awaited<ReturnType<typeof member>>;

/** One provider call as the usage should count it. */
interface Call {
  id: string;
  principal: string;
  apiKey: string;
  team: string;
  provider: string;
  model: string;
  day: string;
  phase: 1 | 2;
  input: number;
  output: number;
  costNano: number;
  failed: boolean;
}

let pf: ProviderFabric;
let orgId: string;
let alice: Member;
let bob: Member;
let viewer: Member;
let t1: string;
let t2: string;
let foreign: { key: string; organizationId: string };
let mid: Date;
let start: Date;
let end: Date;
const calls: Call[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  pf = await startProviderFabric();
  orgId = pf.fabric.organizationId;
  alice = await member(pf.fabric, orgId, "admin");
  bob = await member(pf.fabric, orgId, "member");
  viewer = await member(pf.fabric, orgId, "viewer");
  t1 = await insertTeam(pf.fabric, orgId);
  t2 = await insertTeam(pf.fabric, orgId);
  const other = await pf.fabric.otherOrg();
  foreign = { key: other.apiKey, organizationId: other.organizationId };

  const run = async (phase: 1 | 2, via: Via, who: Member, call: Record<string, unknown>) => {
    const r = await pf.api[via].ok("ProviderService/Execute", { call }, { key: who.key });
    calls.push({
      id: r.usage_record_id,
      principal: who.principalId,
      apiKey: who.keyId,
      team: (call["team_id"] as string | undefined) ?? "",
      provider: r.provider,
      model: r.model,
      day: "",
      phase,
      input: Number(r.usage.input_tokens),
      output: Number(r.usage.output_tokens),
      costNano: parseUsd(r.cost.actual_usd),
      failed: false,
    });
  };

  start = new Date(Date.now() - 1000);
  await run(1, "rest", alice, { prompt: "the first call of the day", model: "gpt-4o-mini", team_id: t1 });
  await run(1, "grpc", alice, { prompt: "a nano call, somewhat longer than the first", model: "gpt-4.1-nano", team_id: t1 });
  await run(1, "rest", bob, { prompt: "bob on team two", model: "gpt-4o-mini", team_id: t2 });
  // A call the provider refuses: counted as a call and a failed call, with no tokens or cost.
  pf.fake.script([{ status: 400 }]);
  const before = (await usageRows(pf.fabric)).length;
  await pf.api.grpc.fails("ProviderService/Execute", { call: { prompt: "refused", model: "gpt-4o-mini", team_id: t1 } }, { key: bob.key }, 400, "provider_invalid_request");
  const failed = (await usageRows(pf.fabric)).slice(before);
  expect(failed).toHaveLength(1);
  calls.push({ id: failed[0]!.id, principal: bob.principalId, apiKey: bob.keyId, team: t1, provider: "openai", model: "gpt-4o-mini", day: "", phase: 1, input: 0, output: 0, costNano: 0, failed: true });

  await sleep(30);
  mid = new Date();
  await sleep(30);
  await run(2, "grpc", alice, { prompt: "alice on team two", model: "gpt-4o-mini", team_id: t2 });
  await run(2, "rest", bob, { prompt: "bob, no team, nano", model: "gpt-4.1-nano" });
  await run(2, "rest", alice, { prompt: "free echo", provider: "echo" });
  // Another organization's call, which nobody here may see.
  await pf.api.rest.ok("ProviderService/Execute", { call: { prompt: "elsewhere", provider: "echo" } }, { key: foreign.key });
  end = new Date(Date.now() + 1000);

  // The UTC day of each record, as stored.
  const records = await pf.api.rest.ok("UsageService/ListUsageRecords", { organization_id: orgId, page_size: 200 }, { key: alice.key });
  for (const c of calls) c.day = records.find((r: any) => r.id === c.id).create_time.slice(0, 10);
});
afterAll(() => pf?.close());

// ─── Expected values, from the calls ─────────────────────────────────────────────────────

const keyOf: Record<string, (c: Call) => string> = {
  team: (c) => c.team,
  principal: (c) => c.principal,
  api_key: (c) => c.apiKey,
  provider: (c) => c.provider,
  model: (c) => c.model,
  day: (c) => c.day,
};
const field: Record<string, string> = { team: "team_id", principal: "principal_id", api_key: "api_key_id", provider: "provider", model: "model", day: "day" };

function sums(cs: Call[]) {
  return {
    calls: String(cs.length),
    failed_calls: String(cs.filter((c) => c.failed).length),
    usage: {
      input_tokens: String(cs.reduce((n, c) => n + c.input, 0)),
      output_tokens: String(cs.reduce((n, c) => n + c.output, 0)),
      cached_input_tokens: "0",
      cache_write_tokens: "0",
    },
    cost_usd: formatUsd(cs.reduce((n, c) => n + c.costNano, 0)),
    reserved_usd: "0",
  };
}

/** The groups QueryUsage should answer for `by`, sorted by their keys. */
function expectedGroups(cs: Call[], by: string[]) {
  const groups = new Map<string, Call[]>();
  for (const c of cs) {
    const k = JSON.stringify(by.map((b) => keyOf[b]!(c)));
    groups.set(k, [...(groups.get(k) ?? []), c]);
  }
  const out = [...groups.entries()].map(([k, members]) => {
    const keys = JSON.parse(k) as string[];
    const g: Record<string, unknown> = { team_id: "", principal_id: "", api_key_id: "", run_id: "", workflow_name: "", provider: "", model: "", operation: "", day: "" };
    by.forEach((b, i) => (g[field[b]!] = keys[i]));
    return { ...g, ...sums(members) };
  });
  return sortGroups(out, by);
}

/** By the grouping keys; an empty key (SQL NULL) sorts last, as Postgres orders ascending. */
function sortGroups<T extends Record<string, any>>(groups: T[], by: string[]): T[] {
  return [...groups].sort((a, b) => {
    for (const k of by.map((x) => field[x]!)) {
      if (a[k] === b[k]) continue;
      if (a[k] === "") return 1;
      if (b[k] === "") return -1;
      return a[k] < b[k] ? -1 : 1;
    }
    return 0;
  });
}

// ─── Tests ───────────────────────────────────────────────────────────────────────────────

describe("QueryUsage", () => {
  it.each(transports)("groups by model, team+day, api_key and principal with exact totals (%s)", async (via) => {
    const api = pf.api[via];
    expect(calls).toHaveLength(7);
    for (const by of [["model"], ["team", "day"], ["api_key"], ["principal"], ["provider", "model"]]) {
      const r = await api.ok("UsageService/QueryUsage", { organization_id: orgId, group_by: by.join(",") }, { key: viewer.key });
      expect(r.total, `total by ${by}`).toEqual({ team_id: "", principal_id: "", api_key_id: "", run_id: "", workflow_name: "", provider: "", model: "", operation: "", day: "", ...sums(calls) });
      // Postgres's collation may order punctuation differently from JS: compare in one order.
      expect(sortGroups(r.groups, by), `group_by=${by}`).toEqual(expectedGroups(calls, by));
    }
    // Models sort plainly, so their order is checked as answered.
    const byModel = await api.ok("UsageService/QueryUsage", { organization_id: orgId, group_by: "model" }, { key: alice.key });
    expect(byModel.groups.map((g: any) => g.model)).toEqual(["echo-1", "gpt-4.1-nano", "gpt-4o-mini"]);
    expect(byModel.groups.find((g: any) => g.model === "gpt-4o-mini")).toMatchObject({ calls: "4", failed_calls: "1" });
    // The calls billed to no team form their own group, last.
    const byTeam = await api.ok("UsageService/QueryUsage", { organization_id: orgId, group_by: "team" }, { key: alice.key });
    expect(byTeam.groups.at(-1)).toMatchObject({ team_id: "", calls: "2" });
    // No group_by: the total only; "organization" is the scope anyway.
    for (const group_by of ["", "organization"]) {
      const total = await api.ok("UsageService/QueryUsage", { organization_id: orgId, ...(group_by ? { group_by } : {}) }, { key: alice.key });
      expect(total.groups).toEqual([]);
      expect(total.total).toMatchObject(sums(calls));
    }
  });

  it.each(transports)("filters by team, time range, provider, model and principal (%s)", async (via) => {
    const api = pf.api[via];
    const q = async (filters: Record<string, unknown>) => (await api.ok("UsageService/QueryUsage", { organization_id: orgId, ...filters }, { key: alice.key })).total;
    expect(await q({ team_id: t1 })).toMatchObject(sums(calls.filter((c) => c.team === t1)));
    expect(await q({ team_id: t2 })).toMatchObject(sums(calls.filter((c) => c.team === t2)));
    expect(await q({ start_time: mid.toISOString() })).toMatchObject(sums(calls.filter((c) => c.phase === 2)));
    expect(await q({ end_time: mid.toISOString() })).toMatchObject(sums(calls.filter((c) => c.phase === 1)));
    expect(await q({ start_time: start.toISOString(), end_time: end.toISOString() })).toMatchObject(sums(calls));
    expect(await q({ start_time: end.toISOString() })).toMatchObject(sums([]));
    expect(await q({ provider: "echo" })).toMatchObject(sums(calls.filter((c) => c.provider === "echo")));
    expect(await q({ provider: "openai" })).toMatchObject(sums(calls.filter((c) => c.provider === "openai")));
    expect(await q({ model: "gpt-4.1-nano", team_id: t1 })).toMatchObject(sums(calls.filter((c) => c.model === "gpt-4.1-nano" && c.team === t1)));
    expect(await q({ principal_id: bob.principalId, start_time: mid.toISOString() })).toMatchObject(sums(calls.filter((c) => c.principal === bob.principalId && c.phase === 2)));
    expect(await q({ api_key_id: alice.keyId })).toMatchObject(sums(calls.filter((c) => c.apiKey === alice.keyId)));
  });

  it.each(transports)("refuses a bad group_by or filter with its path (%s)", async (via) => {
    const api = pf.api[via];
    for (const [fields, path] of [
      [{ group_by: "model,colour" }, "/group_by"],
      [{ group_by: "team;drop table usage_records" }, "/group_by"],
      [{ team_id: "t1" }, "/team_id"],
      [{ start_time: end.toISOString(), end_time: start.toISOString() }, "/start_time"],
    ] as const) {
      const f = await api.fails("UsageService/QueryUsage", { organization_id: orgId, ...fields }, { key: alice.key }, 400, "invalid_argument");
      if (via === "grpc") expect(f.grpcCode).toBe(Code.InvalidArgument);
      expect(f.issues.map((i) => i.path)).toContain(path);
    }
    await api.fails("UsageService/ListUsageRecords", { organization_id: orgId, page_token: "not-a-token" }, { key: alice.key }, 400, "invalid_argument");
  });
});

describe("ListUsageRecords", () => {
  it.each(transports)("lists the newest first, two per page, with no overlap (%s)", async (via) => {
    const api = pf.api[via];
    const ids: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const r = await api.call("UsageService/ListUsageRecords", { organization_id: orgId, page_size: 2, ...(token ? { page_token: token } : {}) }, { key: viewer.key });
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.data.length).toBeLessThanOrEqual(2);
      for (const rec of r.data) expect(rec.organization_id).toBe(orgId);
      ids.push(...r.data.map((x: any) => x.id));
      token = r.json.next_page_token ?? "";
      pages++;
    } while (token && pages < 20);
    expect(pages).toBe(Math.ceil(calls.length / 2));
    const expected = calls.map((c) => c.id).sort((a, b) => Number(b) - Number(a));
    expect(ids).toEqual(expected);
    expect(new Set(ids).size).toBe(ids.length);

    // The records say what the calls were.
    const [newest] = await api.ok("UsageService/ListUsageRecords", { organization_id: orgId, page_size: 1 }, { key: viewer.key });
    const last = calls.find((c) => c.id === newest.id)!;
    expect(newest).toMatchObject({ principal_id: last.principal, api_key_id: last.apiKey, team_id: last.team, provider: last.provider, model: last.model, status: "succeeded", actual_usd: formatUsd(last.costNano) });
    const failed = calls.find((c) => c.failed)!;
    const onT1 = await api.ok("UsageService/ListUsageRecords", { organization_id: orgId, team_id: t1, page_size: 50 }, { key: viewer.key });
    expect(onT1.map((r: any) => r.id)).toEqual(calls.filter((c) => c.team === t1).map((c) => c.id).sort((a, b) => Number(b) - Number(a)));
    expect(onT1.find((r: any) => r.id === failed.id)).toMatchObject({ status: "failed", error_code: "provider_invalid_request", actual_usd: "0" });
  });

  it.each(transports)("filters like QueryUsage (%s)", async (via) => {
    const api = pf.api[via];
    const list = async (f: Record<string, unknown>) => (await api.ok("UsageService/ListUsageRecords", { organization_id: orgId, ...f }, { key: alice.key })).map((r: any) => r.id);
    const ids = (cs: Call[]) => cs.map((c) => c.id).sort((a, b) => Number(b) - Number(a));
    expect(await list({ start_time: mid.toISOString() })).toEqual(ids(calls.filter((c) => c.phase === 2)));
    expect(await list({ provider: "openai", end_time: mid.toISOString() })).toEqual(ids(calls.filter((c) => c.phase === 1)));
    expect(await list({ api_key_id: bob.keyId })).toEqual(ids(calls.filter((c) => c.apiKey === bob.keyId)));
  });
});

describe("visibility", () => {
  it.each(transports)("hides an organization's usage from another organization (%s)", async (via) => {
    const api = pf.api[via];
    const f = await api.fails("UsageService/QueryUsage", { organization_id: orgId }, { key: foreign.key }, 404, "not_found");
    if (via === "grpc") expect(f.grpcCode).toBe(Code.NotFound);
    await api.fails("UsageService/ListUsageRecords", { organization_id: orgId }, { key: foreign.key }, 404, "not_found");
    // Their own usage is theirs only, and ours does not count theirs (checked in the totals above).
    const own = await api.ok("UsageService/QueryUsage", { organization_id: foreign.organizationId, group_by: "provider" }, { key: foreign.key });
    expect(own.total).toMatchObject({ calls: "1", cost_usd: "0" });
    expect(own.groups.map((g: any) => g.provider)).toEqual(["echo"]);
    const records = await api.ok("UsageService/ListUsageRecords", { organization_id: foreign.organizationId }, { key: foreign.key });
    expect(records).toHaveLength(1);
    expect(records[0].organization_id).toBe(foreign.organizationId);
  });

  it.each(transports)("shows a team-only member their team's usage and nothing else (%s)", async (via) => {
    // Team roles grant usage.read on their team (domain/permissions.ts).
    const { principalId } = await insertUser(pf.fabric);
    await insertMembership(pf.fabric, orgId, principalId, "maintainer", t1);
    const { key } = await insertKey(pf.fabric, orgId, principalId);
    const r = await pf.api[via].call("UsageService/QueryUsage", { organization_id: orgId, group_by: "team" }, { key });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.data.groups.map((g: any) => g.team_id)).toEqual([t1]);
    expect(r.data.total).toMatchObject(sums(calls.filter((c) => c.team === t1)));
    const l = await pf.api[via].call("UsageService/ListUsageRecords", { organization_id: orgId }, { key });
    expect(l.ok).toBe(true);
    if (!l.ok) return;
    expect(l.data.length).toBeGreaterThan(0);
    for (const rec of l.data) expect(rec.team_id).toBe(t1);
  });

  it("the service shows a caller allowed usage.read on one team only that team's calls", async () => {
    // The guard's permissions for a team-only principal (team roles grant usage.read on their team).
    const perms = effectivePermissions([{ organizationId: orgId, teamId: t1, role: "maintainer" }], orgId);
    const ctx: CallContext = { caller: { principalId: randomUUID(), organizationId: orgId, via: "api_key", scopes: [] }, requestId: "usage-test", signal: new AbortController().signal, clientAddress: "", permissions: perms };
    const usage = createUsageService({ db: pf.fabric.database.db });
    const onT1 = calls.filter((c) => c.team === t1);

    const byTeam = await usage.queryUsage(ctx, create(QueryUsageRequestSchema, { organizationId: orgId, groupBy: "team" }));
    expect(byTeam.groups.map((g) => g.teamId)).toEqual([t1]);
    expect(byTeam.total!.calls).toBe(BigInt(onT1.length));
    expect(byTeam.total!.costUsd).toBe(formatUsd(onT1.reduce((n, c) => n + c.costNano, 0)));
    // Asking for another team's calls finds none.
    const other = await usage.queryUsage(ctx, create(QueryUsageRequestSchema, { organizationId: orgId, teamId: t2 }));
    expect(other.total!.calls).toBe(0n);
    const records = await usage.listUsageRecords(ctx, create(ListUsageRecordsRequestSchema, { organizationId: orgId, startTime: timestampFromDate(start) }));
    expect(records.records.map((r) => r.id).sort()).toEqual(onT1.map((c) => c.id).sort());

    // No team with the grant: nothing at all.
    const none = effectivePermissions([], orgId);
    const nothing = await usage.queryUsage({ ...ctx, permissions: none }, create(QueryUsageRequestSchema, { organizationId: orgId }));
    expect(nothing.total!.calls).toBe(0n);
    expect((await usage.listUsageRecords({ ...ctx, permissions: none }, create(ListUsageRecordsRequestSchema, { organizationId: orgId }))).records).toEqual([]);
  });
});
