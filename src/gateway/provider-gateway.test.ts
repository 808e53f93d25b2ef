/**
 * The provider gateway over stub providers and a real database (PGlite by default, Postgres
 * with FABRIC_TEST_DB=postgres):
 *
 * - routing: order and fallback (other providers before the failed one's other models), the
 *   breaker opening and being routed around, the advisory breaker of a single candidate, pins,
 *   per-request strategy and observed latency, no fail-over once a stream produced text,
 *   non-retryable errors and aborts failing at once, the estimate and actual cost;
 * - the policy path, through real `policies` rows: the usage record of every call, budget
 *   reservation and settlement on `budget_ledger`, refusals (`budget_exceeded`, once-only
 *   `budget.exceeded` event), allow-lists (tightest wins), the per-run cost cap, the release of
 *   a failed call's reservation, and an unpriced model failing closed under a budget.
 */
import { randomUUID } from "node:crypto";
import { and, asc, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../tests/helpers/database.js";
import { channels, notify } from "../db/events.js";
import { budgetLedger, events, organizations, policies, usageRecords } from "../db/schema.js";
import { DomainError } from "../domain/errors.js";
import { periodOf } from "../domain/policy.js";
import { DEFAULT_PRICE_TABLE, withPriceOverrides } from "../domain/pricing.js";
import type { ProviderCallRequest } from "../domain/provider-call.js";
import { RoutingError } from "../domain/routing.js";
import { createEchoProvider } from "../providers/echo/index.js";
import { stub } from "../providers/fakes/scripted.js";
import type { Provider, Usage } from "../providers/provider.js";
import { createProviderGateway, ProviderCallError, type Attribution, type CallResult, type GatewayOptions } from "./index.js";

// ---------------------------------------------------------------------------------------------
// Database and call helpers

let database: TestDatabase;
/** An organization with no policy, for the routing tests. */
let plainOrg: string;

beforeAll(async () => {
  database = await createTestDatabase();
  plainOrg = await newOrg();
});
afterAll(() => database?.close());

async function newOrg(): Promise<string> {
  const id = randomUUID();
  await database.db.insert(organizations).values({ id, slug: `gw-${id.slice(0, 8)}`, name: "Gateway" });
  return id;
}

function gateway(providers: Provider[], options: GatewayOptions = {}) {
  return createProviderGateway({ db: database.db, providers }, options);
}
type Gateway = ReturnType<typeof gateway>;

function attribution(organizationId: string, extra: Partial<Attribution> = {}): Attribution {
  return { organizationId, teamId: null, principalId: null, apiKeyId: null, runId: null, nodeKey: null, ...extra };
}

const gen = (extra: Partial<ProviderCallRequest> = {}): ProviderCallRequest => ({ operation: "ai.generate", prompt: "hi", ...extra });

interface CallOpts {
  org?: string;
  attribution?: Partial<Attribution>;
  stream?: boolean;
  signal?: AbortSignal;
  deltas?: string[];
}

function call(gw: Gateway, request: ProviderCallRequest, o: CallOpts = {}): Promise<CallResult> {
  return gw.call({
    request,
    attribution: attribution(o.org ?? plainOrg, o.attribution),
    signal: o.signal ?? new AbortController().signal,
    stream: o.stream ?? false,
    ...(o.deltas ? { onDelta: (t: string) => void o.deltas!.push(t) } : {}),
  });
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the call to fail");
}

async function callError(p: Promise<unknown>): Promise<ProviderCallError> {
  const err = await rejection(p);
  expect(err).toBeInstanceOf(ProviderCallError);
  return err as ProviderCallError;
}

async function domainError(p: Promise<unknown>): Promise<DomainError> {
  const err = await rejection(p);
  expect(err).toBeInstanceOf(DomainError);
  return err as DomainError;
}

const records = (org: string) => database.db.select().from(usageRecords).where(eq(usageRecords.organizationId, org)).orderBy(asc(usageRecords.id));

async function committed(scopeKey: string, period: "day" | "month" | "run" = "day"): Promise<number | undefined> {
  const periodStart = period === "run" ? "" : periodOf(period, new Date()).start;
  const [row] = await database.db
    .select()
    .from(budgetLedger)
    .where(and(eq(budgetLedger.scopeKey, scopeKey), eq(budgetLedger.period, period), eq(budgetLedger.periodStart, periodStart)));
  return row?.committedNanoUsd;
}

const exceededEvents = (org: string) =>
  database.db
    .select()
    .from(events)
    .where(and(eq(events.organizationId, org), eq(events.kind, "budget.exceeded")))
    .orderBy(asc(events.id));

/**
 * Priced requests: openai/gpt-4.1-nano is $0.10 / $0.40 per 1M tokens (100 / 400 nUSD per
 * token). "12345678" is 8 chars = 2 estimated input tokens; with max_tokens 100 the estimate
 * is 2 × 100 + 100 × 400 = 40 200 nUSD. The stub's default usage (10 in, 5 out) costs
 * 10 × 100 + 5 × 400 = 3 000 nUSD.
 */
const NANO = "gpt-4.1-nano";
const pricedRequest = (extra: Partial<ProviderCallRequest> = {}) => gen({ prompt: "12345678", maxTokens: 100, ...extra });
const NANO_ESTIMATE = 40_200;
const NANO_ACTUAL = 3_000;

// ---------------------------------------------------------------------------------------------
// Routing, fallback, breakers

describe("provider gateway routing", () => {
  it("falls back on a retryable error, to another provider before the failed one's other models", async () => {
    const a = stub("alpha", ["a1", "a2"], [{ fail: "overloaded" }]);
    const b = stub("beta", ["b1"]);
    const deltas: string[] = [];
    const r = await call(gateway([a, b]), gen(), { stream: true, deltas });
    expect(r.generate?.text).toBe("beta:hi");
    expect(r).toMatchObject({ provider: "beta", model: "b1" });
    expect(r.decision.explanation.strategy).toBe("local_first");
    expect(r.attempts).toEqual([{ provider: "alpha", model: "a1", error: "overloaded: alpha: scripted overloaded" }, { provider: "beta", model: "b1" }]);
    expect(r.decision.explanation.why).toMatch(/^local_first: .*fallbacks: alpha\/a2, beta\/b1/);
    expect(a.calls.map((c) => c.model)).toEqual(["a1"]);
    // A stream that failed before producing text is failed over; only the answer's text was delivered.
    expect(deltas.join("")).toBe("beta:hi");
  });

  it("tries the failed provider's other models last, and fails with every attempt named when all fail", async () => {
    const a = stub("alpha", ["a1", "a2"], [{ fail: "transient" }, "ok"]);
    const b = stub("beta", ["b1"], [{ fail: "rate_limited" }]);
    const r = await call(gateway([a, b]), gen());
    expect(r.attempts.map((x) => [x.provider, x.model, x.error !== undefined])).toEqual([
      ["alpha", "a1", true],
      ["beta", "b1", true],
      ["alpha", "a2", false],
    ]);

    const org = await newOrg();
    const c = stub("gamma", ["c1"], [{ fail: "transient" }]);
    const d = stub("delta", ["d1"], [{ fail: "timeout" }]);
    const err = await callError(call(gateway([c, d]), gen(), { org, stream: true }));
    expect(err.providerError).toMatchObject({ provider: "delta", errorClass: "timeout", retryable: true });
    expect(err.afterStreamBegan).toBe(false);
    expect(err.attempts.map((x) => x.provider)).toEqual(["gamma", "delta"]);
    expect(err.message).toContain("gamma/c1 ✗ transient");
    expect(err.message).toContain("delta/d1 ✗ timeout");
    // The failed call is recorded once, against the last candidate tried; a timed-out request
    // may have been billed, so its cost is unknown rather than 0.
    expect(await records(org)).toMatchObject([{ status: "failed", provider: "delta", model: "d1", errorCode: "provider_timeout", actualNanoUsd: null, inputTokens: 0 }]);
  });

  it("opens a breaker after repeated failures and routes around it, then reports it", async () => {
    const a = stub("alpha", ["a1"], [{ fail: "overloaded" }, { fail: "overloaded" }, { fail: "overloaded" }]);
    const b = stub("beta", ["b1"]);
    const gw = gateway([a, b], { breakers: { consecutiveFailures: 2, cooldownMs: 60_000 } });
    await call(gw, gen());
    await call(gw, gen());
    expect(gw.breakers.inspect("alpha", "a1").state).toBe("open");
    expect(a.calls).toHaveLength(2);

    const r = await call(gw, gen());
    expect(a.calls).toHaveLength(2); // skipped: its breaker is open
    expect(r.attempts).toEqual([{ provider: "beta", model: "b1" }]);
    expect(r.decision.explanation.why).toContain("1 of 2 candidates eligible");
    expect(gw.breakers.inspect("beta", "b1")).toMatchObject({ state: "closed", consecutiveFailures: 0 });
  });

  it("treats the breaker as advisory when only one candidate serves the request", async () => {
    const a = stub("alpha", ["a1"], [{ fail: "transient" }, { fail: "transient" }]);
    const gw = gateway([a], { breakers: { consecutiveFailures: 1, cooldownMs: 60_000 } });
    expect((await callError(call(gw, gen()))).providerError.errorClass).toBe("transient");
    expect(gw.breakers.inspect("alpha", "a1").state).toBe("open");
    expect((await callError(call(gw, gen()))).providerError.errorClass).toBe("transient");
    const r = await call(gw, gen());
    expect(r.generate?.text).toBe("alpha:hi");
    expect(r.decision.explanation.why).toContain("breaker is open but advisory");
    expect(a.calls).toHaveLength(3);
    // A success outside a probe does not cut the cooldown short (the breaker's rule).
    expect(gw.breakers.inspect("alpha", "a1").state).toBe("open");
  });

  it("with several candidates all behind open breakers, refuses as unavailable without calling any", async () => {
    const org = await newOrg();
    const a = stub("alpha", ["a1"], [{ fail: "transient" }]);
    const b = stub("beta", ["b1"], [{ fail: "transient" }]);
    const gw = gateway([a, b], { breakers: { consecutiveFailures: 1, cooldownMs: 60_000 } });
    await callError(call(gw, gen(), { org }));
    const err = await domainError(call(gw, gen(), { org }));
    expect(err).toBeInstanceOf(RoutingError);
    expect(err).toMatchObject({ kind: "unavailable", code: "no_healthy_provider" });
    expect(err.options.retryAfterSeconds).toBeGreaterThan(0);
    expect(a.calls.length + b.calls.length).toBe(2);
    expect(await records(org)).toHaveLength(1); // the refused call made no provider call and left no record
  });

  it("pins by provider and by model, and rejects a pin nothing serves", async () => {
    const a = stub("alpha", ["a1", "a2"]);
    const b = stub("beta", ["b1"]);
    const gw = gateway([a, b]);
    expect(await call(gw, gen({ provider: "beta" }))).toMatchObject({ provider: "beta", model: "b1" });
    const pinned = await call(gw, gen({ model: "a2" }));
    expect(pinned).toMatchObject({ provider: "alpha", model: "a2" });
    expect(pinned.decision.explanation.why).toContain("pinned to model a2");
    expect(a.calls.map((c) => c.model)).toEqual(["a2"]);
    // A provider pin alone means its default model, whatever the strategy, with no fallback to its others.
    const flaky = stub("gamma", ["g-default", "g-cheap"], [{ fail: "transient" }]);
    const pinnedProvider = gateway([flaky], { strategy: "cheapest" });
    expect((await callError(call(pinnedProvider, gen({ provider: "gamma" })))).providerError.errorClass).toBe("transient");
    expect(await call(pinnedProvider, gen({ provider: "gamma" }))).toMatchObject({ provider: "gamma", model: "g-default" });
    expect(flaky.calls.map((c) => c.model)).toEqual(["g-default", "g-default"]);
    const err = await domainError(call(gw, gen({ model: "zz" })));
    expect(err).toBeInstanceOf(RoutingError);
    expect(err).toMatchObject({ kind: "invalid_argument", code: "model_not_served" });
  });

  it("a pinned model with a retryable failure and nothing else serving it fails, not swaps models", async () => {
    const a = stub("alpha", ["a1", "a2"], [{ fail: "overloaded" }]);
    const err = await callError(call(gateway([a]), gen({ model: "a1" })));
    expect(err.providerError).toMatchObject({ errorClass: "overloaded", retryable: true });
    expect(err.message).toBe("alpha: alpha: scripted overloaded");
    expect(a.calls.map((c) => c.model)).toEqual(["a1"]);
  });

  it("never fails over once the stream produced text", async () => {
    const org = await newOrg();
    const a = stub("alpha", ["a1"], [{ deltasThenFail: "transient" }]);
    const b = stub("beta", ["b1"]);
    const deltas: string[] = [];
    const err = await callError(call(gateway([a, b]), gen(), { org, stream: true, deltas }));
    expect(err.providerError).toMatchObject({ errorClass: "transient", retryable: true });
    expect(err.afterStreamBegan).toBe(true);
    expect(deltas).toEqual(["alpha:"]);
    expect(b.calls).toHaveLength(0);
    expect(await records(org)).toMatchObject([{ status: "failed", provider: "alpha", errorCode: "provider_transient" }]);
  });

  it("fails at once on invalid_request and auth (no fallback, breaker untouched)", async () => {
    for (const cls of ["invalid_request", "auth"] as const) {
      const a = stub("alpha", ["a1"], [{ fail: cls }]);
      const b = stub("beta", ["b1"]);
      const gw = gateway([a, b]);
      const err = await callError(call(gw, gen()));
      expect(err.providerError).toMatchObject({ errorClass: cls, retryable: false });
      expect(b.calls).toHaveLength(0);
      // The caller's mistake says nothing about alpha's health.
      expect(gw.breakers.inspect("alpha", "a1").consecutiveFailures).toBe(0);
    }
  });

  it("an aborted call fails at once: no fallback, even when the provider reports a retryable error", async () => {
    const org = await newOrg();
    const a = stub("alpha", ["a1"], ["hang"]);
    const b = stub("beta", ["b1"]);
    const ac = new AbortController();
    const pending = call(gateway([a, b]), gen(), { org, signal: ac.signal, stream: true });
    setTimeout(() => ac.abort(), 20);
    const err = await callError(pending);
    expect(err.providerError).toMatchObject({ errorClass: "aborted", retryable: false });
    expect(b.calls).toHaveLength(0);
    expect(await records(org)).toMatchObject([{ status: "failed", provider: "alpha", errorCode: "provider_aborted" }]);

    // The provider saw a timeout, but the caller had given up: not failed over either.
    const ac2 = new AbortController();
    const c = stub("gamma", ["c1"], [{ fail: "timeout" }], { onCall: () => ac2.abort() });
    const d = stub("delta", ["d1"]);
    const err2 = await callError(call(gateway([c, d]), gen(), { signal: ac2.signal }));
    expect(err2.providerError.errorClass).toBe("timeout");
    expect(d.calls).toHaveLength(0);
  });

  it("per-request strategy wins over the deployment's; fastest follows observed latency", async () => {
    let t = 0;
    const slow = stub("alpha", ["a1"]);
    const fast = stub("beta", ["b1"]);
    const slowStream = slow.stream.bind(slow);
    slow.stream = async function* (req) {
      t += 500;
      yield* slowStream(req);
    };
    const fastStream = fast.stream.bind(fast);
    fast.stream = async function* (req) {
      t += 20;
      yield* fastStream(req);
    };
    const gw = gateway([slow, fast], { strategy: "cheapest", now: () => t });
    await call(gw, gen({ provider: "alpha" }), { stream: true });
    await call(gw, gen({ provider: "beta" }), { stream: true });
    expect(gw.latencies()).toEqual({ "alpha/a1": 500, "beta/b1": 20 });
    expect((await call(gw, gen(), { stream: true })).provider).toBe("alpha"); // cheapest: a tie, input order
    const r = await call(gw, gen({ strategy: "fastest" }), { stream: true });
    expect(r.decision.explanation.strategy).toBe("fastest");
    expect(r.provider).toBe("beta");
    expect(r.decision.explanation.why).toContain("lowest observed latency");
  });

  it("cheapest picks the cheaper model; cost is estimated and actual, exact", async () => {
    const openai = stub("openai", ["gpt-4.1-mini", NANO]);
    const r = await call(gateway([createEchoProvider(), openai], { strategy: "cheapest" }), pricedRequest());
    expect(r).toMatchObject({ provider: "openai", model: NANO, priceTable: "2026-11-01" });
    expect(r.decision.explanation.strategy).toBe("cheapest");
    expect(r.estimate).toMatchObject({ status: "priced", usd: "0.0000402", totalNanoUsd: NANO_ESTIMATE });
    expect(r.actual).toMatchObject({ status: "priced", usd: "0.000003", totalNanoUsd: NANO_ACTUAL });
  });

  it("an unpriced model reports unpriced costs with the reason, and still records the call", async () => {
    const org = await newOrg();
    const r = await call(gateway([stub("alpha", ["a1"])]), gen(), { org });
    expect(r.estimate).toMatchObject({ status: "unpriced" });
    expect(r.estimate.status === "unpriced" && r.estimate.reason).toContain("no price for alpha/a1");
    expect(r.actual.status).toBe("unpriced");
    expect(await records(org)).toMatchObject([{ id: r.usageRecordId, status: "succeeded", estimatedNanoUsd: null, actualNanoUsd: null, inputTokens: 10, outputTokens: 5 }]);
  });

  it("echo pinned by provider streams its answer at zero cost", async () => {
    const deltas: string[] = [];
    const r = await call(gateway([createEchoProvider(), stub("openai", ["gpt-4.1-mini"])]), gen({ provider: "echo", prompt: "HELLO WORLD" }), { stream: true, deltas });
    expect(r).toMatchObject({ provider: "echo", model: "echo-1", attempts: [{ provider: "echo", model: "echo-1" }], generate: { text: "HELLO WORLD" } });
    expect(deltas.join("")).toBe("HELLO WORLD");
    expect(r.estimate).toMatchObject({ status: "priced", usd: "0" });
    expect(r.actual).toMatchObject({ status: "priced", usd: "0" });
  });

  it("embeds through the same path, recorded as ai.embed", async () => {
    const org = await newOrg();
    const r = await call(gateway([createEchoProvider()]), { operation: "ai.embed", texts: ["a", "bb"] }, { org });
    expect(r).toMatchObject({ provider: "echo", model: "echo-embed-1" });
    expect(r.embed?.embeddings).toHaveLength(2);
    expect(await records(org)).toMatchObject([{ operation: "ai.embed", provider: "echo", model: "echo-embed-1", status: "succeeded", estimatedNanoUsd: 0, actualNanoUsd: 0 }]);
  });
});

// ---------------------------------------------------------------------------------------------
// Policies, budgets and usage records

describe("provider gateway policies and usage", () => {
  it("a call under no policy writes exactly one settled usage record with its attribution, tokens and costs", async () => {
    const org = await newOrg();
    const who = { teamId: randomUUID(), principalId: randomUUID(), apiKeyId: randomUUID(), runId: randomUUID(), nodeKey: "gen" };
    // Cached input is billed at the cache-read price: 6 × 100 + 4 × 25 + 5 × 400 = 2 700 nUSD.
    const openai = stub("openai", [NANO], [], { usage: () => ({ inputTokens: 10, outputTokens: 5, cachedInputTokens: 4 }) });
    const r = await call(gateway([openai]), pricedRequest(), { org, attribution: who });
    expect(r.actual).toMatchObject({ status: "priced", totalNanoUsd: 2_700 });
    const rows = await records(org);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: r.usageRecordId,
      organizationId: org,
      ...who,
      provider: "openai",
      model: NANO,
      operation: "ai.generate",
      status: "succeeded",
      inputTokens: 10,
      outputTokens: 5,
      cachedInputTokens: 4,
      cacheWriteTokens: 0,
      estimatedNanoUsd: NANO_ESTIMATE,
      actualNanoUsd: 2_700,
      priceTable: "2026-11-01",
      charges: null,
      errorCode: null,
    });
    expect(rows[0]!.settledAt).toBeInstanceOf(Date);
    expect(rows[0]!.latencyMs).toBeGreaterThanOrEqual(0);
    // No budget: nothing was reserved anywhere.
    expect(await committed(`org:${org}`)).toBeUndefined();
  });

  it("under a daily budget, a call reserves its estimate, then settles the ledger to the actual cost", async () => {
    const org = await newOrg();
    const key = `org:${org}`;
    await database.db.insert(policies).values({ scopeKey: key, organizationId: org, dailyLimitNanoUsd: 1_000_000 });
    const seen: { committed: number | undefined; status: string | undefined }[] = [];
    const openai = stub("openai", [NANO], [], {
      onCall: async () => void seen.push({ committed: await committed(key), status: (await records(org)).at(-1)?.status }),
    });
    const gw = gateway([openai]);
    const first = await call(gw, pricedRequest(), { org });
    const second = await call(gw, pricedRequest(), { org });

    // While each call was in flight: the settled costs so far plus this call's estimate, and a reserved record.
    expect(seen).toEqual([
      { committed: NANO_ESTIMATE, status: "reserved" },
      { committed: NANO_ACTUAL + NANO_ESTIMATE, status: "reserved" },
    ]);
    expect(await committed(key)).toBe(2 * NANO_ACTUAL);
    const rows = await records(org);
    expect(rows.map((r) => r.id)).toEqual([first.usageRecordId, second.usageRecordId]);
    const today = periodOf("day", new Date()).start;
    for (const row of rows) {
      expect(row).toMatchObject({ status: "succeeded", provider: "openai", model: NANO, estimatedNanoUsd: NANO_ESTIMATE, actualNanoUsd: NANO_ACTUAL, inputTokens: 10, outputTokens: 5 });
      expect(row.charges).toEqual([{ scope_key: key, period: "day", period_start: today }]);
      expect(row.settledAt).toBeInstanceOf(Date);
    }
    expect(rows.reduce((n, r) => n + (r.actualNanoUsd ?? 0), 0)).toBe(await committed(key));
  });

  it("a call that may have been billed without a result keeps its estimate charged: aborted, or a stream that broke", async () => {
    const org = await newOrg();
    const key = `org:${org}`;
    await database.db.insert(policies).values({ scopeKey: key, organizationId: org, dailyLimitNanoUsd: 1_000_000 });
    const openai = stub("openai", [NANO], ["hang", { deltasThenFail: "transient" }, { fail: "overloaded" }]);
    const gw = gateway([openai]);
    const abort = new AbortController();
    const hung = call(gw, pricedRequest(), { org, signal: abort.signal });
    await vi.waitFor(() => expect(openai.calls).toHaveLength(1));
    abort.abort();
    expect(await rejection(hung)).toBeInstanceOf(ProviderCallError);
    expect(await committed(key)).toBe(NANO_ESTIMATE);
    expect(await rejection(call(gw, pricedRequest(), { org, stream: true }))).toBeInstanceOf(ProviderCallError);
    expect(await committed(key)).toBe(2 * NANO_ESTIMATE);
    // Refused by the provider before anything ran: released.
    expect(await rejection(call(gw, pricedRequest(), { org }))).toBeInstanceOf(ProviderCallError);
    expect(await committed(key)).toBe(2 * NANO_ESTIMATE);
    expect((await records(org)).map((r) => [r.status, r.errorCode, r.actualNanoUsd])).toEqual([
      ["failed", "provider_aborted", null],
      ["failed", "provider_transient", null],
      ["failed", "provider_overloaded", 0],
    ]);
  });

  it("a call that started under no budget is counted by a budget set while it was in flight", async () => {
    const org = await newOrg();
    const key = `org:${org}`;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const openai = stub("openai", [NANO], [], { onCall: () => gate });
    const gw = gateway([openai]);
    const inFlight = call(gw, pricedRequest(), { org });
    await vi.waitFor(() => expect(openai.calls).toHaveLength(1));
    // The budget arrives (rebased to what is recorded so far: nothing), then the call finishes.
    await database.db.insert(policies).values({ scopeKey: key, organizationId: org, dailyLimitNanoUsd: 1_000_000 });
    await database.db.insert(budgetLedger).values({ scopeKey: key, period: "day", periodStart: periodOf("day", new Date()).start, committedNanoUsd: 0 });
    release();
    expect((await inFlight).actual).toMatchObject({ totalNanoUsd: NANO_ACTUAL });
    expect(await committed(key)).toBe(NANO_ACTUAL);
  });

  it("refuses a call whose estimate does not fit: budget_exceeded with Retry-After, no record, one event", async () => {
    const org = await newOrg();
    const key = `org:${org}`;
    await database.db.insert(policies).values({ scopeKey: key, organizationId: org, dailyLimitNanoUsd: 40_000 });
    const openai = stub("openai", [NANO]);
    const gw = gateway([openai]);
    for (let i = 0; i < 2; i++) {
      const err = await domainError(call(gw, pricedRequest(), { org }));
      expect(err).toMatchObject({ kind: "resource_exhausted", code: "budget_exceeded" });
      expect(err.options.retryAfterSeconds).toBeGreaterThan(0);
      expect(err.options.retryAfterSeconds).toBeLessThanOrEqual(86_400);
      expect(err.message).toContain("the organization's daily budget");
    }
    expect(openai.calls).toHaveLength(0);
    expect(await records(org)).toEqual([]);
    expect(await committed(key)).toBe(0);
    const evs = await exceededEvents(org);
    expect(evs).toHaveLength(1);
    expect(evs[0]!.payload).toMatchObject({
      scope: "organization",
      period: "day",
      period_start: periodOf("day", new Date()).start,
      // 64-bit amounts are decimal strings in events, as in every API response.
      limit_nano_usd: "40000",
      committed_nano_usd: "0",
      refused_estimate_nano_usd: String(NANO_ESTIMATE),
    });

    // The refusal is about the estimate: a smaller request (2 × 100 + 10 × 400 = 4 200) fits.
    const r = await call(gw, pricedRequest({ maxTokens: 10 }), { org });
    expect(r.estimate).toMatchObject({ totalNanoUsd: 4_200 });
    expect(await committed(key)).toBe(NANO_ACTUAL);
    expect(await exceededEvents(org)).toHaveLength(1);
  });

  it("allow-lists intersect: a team policy refuses a model its organization's policy allows", async () => {
    const org = await newOrg();
    const team = randomUUID();
    await database.db.insert(policies).values([
      { scopeKey: `org:${org}`, organizationId: org, allowedModels: ["gpt-4.1-mini", NANO] },
      { scopeKey: `team:${team}`, organizationId: org, teamId: team, allowedModels: [NANO] },
    ]);
    const openai = stub("openai", ["gpt-4.1-mini", NANO, "gpt-4.1"]);
    const gw = gateway([openai]);

    const err = await domainError(call(gw, pricedRequest({ model: "gpt-4.1-mini" }), { org, attribution: { teamId: team } }));
    expect(err).toBeInstanceOf(RoutingError);
    expect(err).toMatchObject({ kind: "permission_denied", code: "model_not_allowed" });
    expect(err.message).toContain("not allowed by team policy");
    expect(openai.calls).toHaveLength(0);

    // The organization's policy alone allows it.
    expect(await call(gw, pricedRequest({ model: "gpt-4.1-mini" }), { org })).toMatchObject({ provider: "openai", model: "gpt-4.1-mini" });
    // Unpinned, the team's call routes to what both allow.
    expect(await call(gw, pricedRequest(), { org, attribution: { teamId: team } })).toMatchObject({ model: NANO });
    // A model outside the organization's list is refused with or without the team.
    expect(await domainError(call(gw, pricedRequest({ model: "gpt-4.1" }), { org }))).toMatchObject({ code: "model_not_allowed" });
    expect((await records(org)).map((r) => [r.model, r.teamId])).toEqual([
      ["gpt-4.1-mini", null],
      [NANO, team],
    ]);
  });

  it("with listen, rules are cached until a fabric_policy NOTIFY (or invalidate) drops the organization's", async () => {
    const org = await newOrg();
    const openai = stub("openai", ["gpt-4.1-mini", NANO]);
    const gw = createProviderGateway({ db: database.db, providers: [openai], listen: (channel, fn) => database.listen(channel, fn) }, { rulesCacheMs: 60_000 });
    try {
      expect(await call(gw, pricedRequest({ model: "gpt-4.1-mini" }), { org })).toMatchObject({ model: "gpt-4.1-mini" });
      await database.db.insert(policies).values({ scopeKey: `org:${org}`, organizationId: org, allowedModels: [NANO] });
      // Cached: the row written behind the gateway's back is not seen yet.
      expect(await call(gw, pricedRequest({ model: "gpt-4.1-mini" }), { org })).toMatchObject({ model: "gpt-4.1-mini" });
      // Another organization's change leaves this one's rules cached; its own drops them.
      await notify(database.db, channels.policy, await newOrg());
      await new Promise((r) => setTimeout(r, 100));
      expect(await call(gw, pricedRequest({ model: "gpt-4.1-mini" }), { org })).toMatchObject({ model: "gpt-4.1-mini" });
      await notify(database.db, channels.policy, org);
      await vi.waitFor(async () => expect(await domainError(call(gw, pricedRequest({ model: "gpt-4.1-mini" }), { org }))).toMatchObject({ code: "model_not_allowed" }), { timeout: 5_000, interval: 20 });
      // invalidate() drops them at once (the process that made the change).
      await database.db.update(policies).set({ allowedModels: [] }).where(eq(policies.scopeKey, `org:${org}`));
      gw.invalidate(org);
      expect(await call(gw, pricedRequest({ model: "gpt-4.1-mini" }), { org })).toMatchObject({ model: "gpt-4.1-mini" });
    } finally {
      await gw.close();
    }
  });

  it("the per-run cap admits a run's calls until their total would exceed it", async () => {
    const org = await newOrg();
    await database.db.insert(policies).values({ scopeKey: `org:${org}`, organizationId: org, maxRunCostNanoUsd: 100_000 });
    // Usage equal to the estimate (2 input tokens, max_tokens output): each call costs exactly 40 200.
    const openai = stub("openai", [NANO], [], { usage: (req) => ({ inputTokens: Math.ceil((req.prompt ?? "").length / 4), outputTokens: req.maxTokens! }) });
    const gw = gateway([openai]);
    const run = randomUUID();
    const inRun = { org, attribution: { runId: run, nodeKey: "gen" } };

    expect((await call(gw, pricedRequest(), inRun)).actual).toMatchObject({ totalNanoUsd: NANO_ESTIMATE });
    await call(gw, pricedRequest(), inRun);
    expect(await committed(`run:${run}`, "run")).toBe(2 * NANO_ESTIMATE);
    // 3 × 40 200 = 120 600 > 100 000.
    const err = await domainError(call(gw, pricedRequest(), inRun));
    expect(err).toMatchObject({ kind: "resource_exhausted", code: "budget_exceeded" });
    expect(err.options.retryAfterSeconds).toBeUndefined(); // a run's cap never resets
    expect(err.message).toContain("per-run cost cap");
    // A smaller call still fits (80 400 + 4 200 ≤ 100 000).
    await call(gw, pricedRequest({ maxTokens: 10 }), inRun);
    expect(await committed(`run:${run}`, "run")).toBe(2 * NANO_ESTIMATE + 4_200);
    expect(openai.calls).toHaveLength(3);

    // Another run has its own ledger.
    const other = randomUUID();
    await call(gw, pricedRequest(), { org, attribution: { runId: other } });
    expect(await committed(`run:${other}`, "run")).toBe(NANO_ESTIMATE);
    // The run's refusal is an event of that run.
    expect(await exceededEvents(org)).toMatchObject([{ runId: run, payload: { scope: "run", period: "run", limit_nano_usd: "100000" } }]);

    // Without a run the cap bounds the single call's estimate, with nothing to reserve.
    expect(await domainError(call(gw, pricedRequest({ maxTokens: 300 }), { org }))).toMatchObject({ code: "budget_exceeded" });
    await call(gw, pricedRequest(), { org });
    expect(await records(org)).toHaveLength(5);
  });

  it("a failed call under a budget releases its reservation and is recorded as failed", async () => {
    const org = await newOrg();
    const key = `org:${org}`;
    await database.db.insert(policies).values({ scopeKey: key, organizationId: org, dailyLimitNanoUsd: 1_000_000 });
    const during: (number | undefined)[] = [];
    const openai = stub("openai", [NANO], ["ok", { fail: "invalid_request" }, { fail: "overloaded" }], { onCall: async () => void during.push(await committed(key)) });
    const gw = gateway([openai]);
    await call(gw, pricedRequest(), { org });
    expect(await committed(key)).toBe(NANO_ACTUAL);

    // Non-retryable, then retryable with no other candidate: both released.
    expect((await callError(call(gw, pricedRequest(), { org }))).providerError.errorClass).toBe("invalid_request");
    expect(await committed(key)).toBe(NANO_ACTUAL);
    expect((await callError(call(gw, pricedRequest(), { org, stream: true }))).providerError.errorClass).toBe("overloaded");
    expect(await committed(key)).toBe(NANO_ACTUAL);
    expect(during).toEqual([NANO_ESTIMATE, NANO_ACTUAL + NANO_ESTIMATE, NANO_ACTUAL + NANO_ESTIMATE]);

    const rows = await records(org);
    expect(rows.map((r) => [r.status, r.errorCode, r.estimatedNanoUsd, r.actualNanoUsd])).toEqual([
      ["succeeded", null, NANO_ESTIMATE, NANO_ACTUAL],
      ["failed", "provider_invalid_request", NANO_ESTIMATE, 0],
      ["failed", "provider_overloaded", NANO_ESTIMATE, 0],
    ]);
    for (const r of rows) expect(r.settledAt).toBeInstanceOf(Date);
  });

  it("under a budget, a call that fell back is recorded against the provider that answered", async () => {
    const org = await newOrg();
    const key = `org:${org}`;
    await database.db.insert(policies).values({ scopeKey: key, organizationId: org, dailyLimitNanoUsd: 1_000_000 });
    const openai = stub("openai", [NANO], [{ fail: "overloaded" }]);
    const anthropic = stub("anthropic", ["claude-haiku-4-5"]);
    const r = await call(gateway([openai, anthropic]), pricedRequest(), { org });
    expect(r).toMatchObject({ provider: "anthropic", model: "claude-haiku-4-5" });
    // haiku: $1 / $5 per 1M. The reservation is the dearest candidate's estimate: 2 × 1 000 + 100 × 5 000;
    // the actual 10 × 1 000 + 5 × 5 000.
    expect(r.actual).toMatchObject({ totalNanoUsd: 35_000 });
    expect(await records(org)).toMatchObject([{ status: "succeeded", provider: "anthropic", model: "claude-haiku-4-5", estimatedNanoUsd: 502_000, actualNanoUsd: 35_000 }]);
    expect(await committed(key)).toBe(35_000);
  });

  it("settles a reservation whose estimate exceeds the actual by more than a 32-bit amount", async () => {
    const org = await newOrg();
    const key = `org:${org}`;
    await database.db.insert(policies).values({ scopeKey: key, organizationId: org, dailyLimitNanoUsd: 10_000_000_000 });
    // $1 000 per 1M tokens = 1 000 000 nUSD per token: estimate (2 + 4 096) × 1e6, actual 15 × 1e6.
    const prices = withPriceOverrides(DEFAULT_PRICE_TABLE, { version: "test", providers: { alpha: { a1: { input: "1000", output: "1000" } } } });
    const r = await call(gateway([stub("alpha", ["a1"])], { prices }), gen({ prompt: "12345678" }), { org });
    expect(r.estimate).toMatchObject({ totalNanoUsd: 4_098_000_000 });
    expect(r.priceTable).toBe("2026-11-01+test");
    expect(await records(org)).toMatchObject([{ status: "succeeded", estimatedNanoUsd: 4_098_000_000, actualNanoUsd: 15_000_000, priceTable: "2026-11-01+test" }]);
    expect(await committed(key)).toBe(15_000_000);
  });

  it("an unpriced model under a budget fails closed (model_unpriced) without calling or recording", async () => {
    const org = await newOrg();
    await database.db.insert(policies).values({ scopeKey: `org:${org}`, organizationId: org, dailyLimitNanoUsd: 1_000_000_000 });
    const alpha = stub("alpha", ["a1"]);
    const err = await domainError(call(gateway([alpha]), gen(), { org }));
    expect(err).toMatchObject({ kind: "failed_precondition", code: "model_unpriced" });
    expect(err.message).toContain("no price for alpha/a1");
    expect(alpha.calls).toHaveLength(0);
    expect(await records(org)).toEqual([]);

    // The organization's price overrides price it: then the call goes through, billed by the merged table.
    await database.db
      .update(policies)
      .set({ priceOverrides: { version: "acme", providers: { alpha: { a1: { input: "1.00", output: "2.00" } } } } })
      .where(eq(policies.scopeKey, `org:${org}`));
    const r = await call(gateway([alpha]), gen({ prompt: "12345678", maxTokens: 100 }), { org });
    // 2 × 1 000 + 100 × 2 000 estimated; 10 × 1 000 + 5 × 2 000 actual.
    expect(r).toMatchObject({ priceTable: "2026-11-01+acme", estimate: { totalNanoUsd: 202_000 }, actual: { totalNanoUsd: 20_000 } });
    expect(await committed(`org:${org}`)).toBe(20_000);
  });

  it("estimate and prepare read the rules without reserving or recording anything", async () => {
    const org = await newOrg();
    await database.db.insert(policies).values({ scopeKey: `org:${org}`, organizationId: org, dailyLimitNanoUsd: 1_000_000, monthlyLimitNanoUsd: 5_000_000 });
    const gw = gateway([stub("openai", [NANO])]);
    const e = await gw.estimate(pricedRequest(), attribution(org));
    expect(e).toMatchObject({ estimate: { totalNanoUsd: NANO_ESTIMATE }, inputTokens: 2, maxOutputTokens: 100 });
    expect(e.decision.chosen[0]).toMatchObject({ provider: "openai", model: NANO });
    expect(e.rules.charges.map((c) => [c.scopeKey, c.period, c.limitNanoUsd])).toEqual([
      [`org:${org}`, "day", 1_000_000],
      [`org:${org}`, "month", 5_000_000],
    ]);
    const prepared = await gw.prepare({ organizationId: org, teamId: null, runId: null });
    expect(prepared.rules.charges).toHaveLength(2);
    expect(prepared.prices.version).toBe("2026-11-01");
    expect(await records(org)).toEqual([]);
    expect(await committed(`org:${org}`)).toBeUndefined();
  });
});
