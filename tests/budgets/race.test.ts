/**
 * The budget race, end to end: "50 concurrent calls against a budget that affords 10 — at
 * most 10 run, the recorded spend never exceeds the cap."
 *
 * The budget is exactly 10 × the worst-case estimate of one call (openai/gpt-4o-mini, a fixed
 * 8-character prompt, max_tokens 100), computed with the product's own `estimateCost`. The
 * OpenAI fake answers slowly, so every admitted call is still in flight at the provider while
 * the others race for the ledger.
 *
 * - REST (PGlite and Postgres): 50 concurrent `POST /v1/providers/execute`. When the fake
 *   reports exactly the estimated usage (a reply of max_tokens × 4 characters), settlement
 *   frees nothing, so exactly 10 succeed and 40 are refused 429 `budget_exceeded` with
 *   Retry-After. When the actual cost is below the estimate (the fake's echo), each settlement
 *   refunds `estimate − actual` and a late caller may fit again: then between 10 and 50
 *   succeed — what always holds is that at most 10 are at the provider at once (no more than
 *   10 reservations fit) and the spend stays under the cap.
 * - A team budget tighter than the organization's (gRPC, both engines): the team's refuses.
 * - Real processes (Postgres only): two `fabric executor` processes run one workflow of 50
 *   parallel `ai.generate` nodes; 10 call the provider, 40 fail `budget_exceeded` without a
 *   retry.
 *
 * In every case: the fake saw exactly as many requests as calls succeeded, no `reserved`
 * record is left, `budget_ledger.committed_nano_usd` equals the sum of the usage records'
 * `actual_nano_usd` after settlement, that sum is ≤ the cap, and `budget.exceeded` was
 * emitted exactly once.
 */
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProviderService } from "../../gen/proto/fabric/v1/providers_pb.js";
import { PolicyService } from "../../gen/proto/fabric/v1/usage_pb.js";
import { query } from "../../src/db/database.js";
import { periodOf } from "../../src/domain/policy.js";
import { actualCost, estimateCost, formatUsd, requirePriced } from "../../src/domain/pricing.js";
import { startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";
import { engine } from "../helpers/database.js";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { spawnExecutor, type ExecutorProcess } from "../helpers/processes.js";

// ---------------------------------------------------------------------------------------------
// The call and its price

const CALLS = 50;
const AFFORDABLE = 10;
const MODEL = "gpt-4o-mini";
/** 8 characters: 2 estimated input tokens (the fake counts them the same way). */
const PROMPT = "12345678";
const MAX_TOKENS = 100;
/** Exactly MAX_TOKENS output tokens by the fake's count (4 characters a token): actual = estimate. */
const FULL_REPLY = "abcd".repeat(MAX_TOKENS);
/**
 * Slow enough that every admitted call is still at the provider while the rest are decided,
 * even on a busy 2-core machine (50 requests through REST and the database take a while).
 */
const DELAY_MS = 1000;

const ESTIMATE = requirePriced(estimateCost({ provider: "openai", model: MODEL, inputChars: PROMPT.length, maxOutputTokens: MAX_TOKENS })).totalNanoUsd;
const CAP = AFFORDABLE * ESTIMATE;
const FULL_ACTUAL = requirePriced(actualCost({ provider: "openai", model: MODEL, usage: { inputTokens: 2, outputTokens: MAX_TOKENS } })).totalNanoUsd;
const ECHO_ACTUAL = requirePriced(actualCost({ provider: "openai", model: MODEL, usage: { inputTokens: 2, outputTokens: 2 } })).totalNanoUsd;

const call = { provider: "openai", model: MODEL, prompt: PROMPT, max_tokens: MAX_TOKENS };

it("the arithmetic the race relies on", () => {
  // gpt-4o-mini: $0.15 / $0.60 per 1M tokens = 150 / 600 nUSD per token.
  expect(ESTIMATE).toBe(2 * 150 + MAX_TOKENS * 600);
  expect(FULL_ACTUAL).toBe(ESTIMATE);
  expect(ECHO_ACTUAL).toBeLessThan(ESTIMATE);
  // The cap affords AFFORDABLE estimates and not one more.
  expect(Math.floor(CAP / ESTIMATE)).toBe(AFFORDABLE);
});

// ---------------------------------------------------------------------------------------------
// Helpers

/** The fake's peak number of requests in flight (arrived, not yet answered), from now on. */
function trackInFlight(fake: FakeServer): { peak(): number } {
  let now = 0;
  let peak = 0;
  const requests = fake.requests;
  const push = requests.push.bind(requests);
  requests.push = (...items) => {
    for (const r of items) {
      now++;
      peak = Math.max(peak, now);
      void r.closed.then(() => now--);
    }
    return push(...items);
  };
  return { peak: () => peak };
}

interface Spend {
  records: { status: string; n: number; actual: number; reserved: number }[];
  succeeded: number;
  sumActual: number;
  reservedLeft: number;
}

async function spendOf(fabric: TestFabric, organizationId: string): Promise<Spend> {
  const records = await query<{ status: string; n: number; actual: number; reserved: number }>(
    fabric.database.db,
    sql`SELECT status, count(*)::int AS n, coalesce(sum(actual_nano_usd), 0)::float8 AS actual, count(*) FILTER (WHERE status = 'reserved')::int AS reserved
        FROM usage_records WHERE organization_id = ${organizationId} GROUP BY status ORDER BY status`,
  );
  return {
    records,
    succeeded: records.find((r) => r.status === "succeeded")?.n ?? 0,
    sumActual: records.reduce((s, r) => s + Number(r.actual), 0),
    reservedLeft: records.reduce((s, r) => s + r.reserved, 0),
  };
}

async function committed(fabric: TestFabric, scopeKey: string, period: "day" | "month" = "day"): Promise<number | undefined> {
  const [row] = await query<{ c: number }>(
    fabric.database.db,
    sql`SELECT committed_nano_usd::float8 AS c FROM budget_ledger WHERE scope_key = ${scopeKey} AND period = ${period} AND period_start = ${periodOf(period, new Date()).start}`,
  );
  return row === undefined ? undefined : Number(row.c);
}

async function exceededEvents(fabric: TestFabric, organizationId: string): Promise<Record<string, any>[]> {
  const rows = await query<{ payload: unknown }>(fabric.database.db, sql`SELECT payload FROM events WHERE organization_id = ${organizationId} AND kind = 'budget.exceeded' ORDER BY id`);
  return rows.map((r) => (typeof r.payload === "string" ? JSON.parse(r.payload) : r.payload) as Record<string, any>);
}

/** Seconds until the next UTC midnight, when a daily budget resets (Retry-After's bounds). */
const secondsToMidnight = () => (periodOf("day", new Date()).resetAt.getTime() - Date.now()) / 1000;

async function setBudget(fabric: TestFabric, org: { apiKey: string; organizationId: string }, body: Record<string, unknown>) {
  const res = await fabric.rest(`/v1/organizations/${org.organizationId}/budget`, { method: "PUT", json: body, key: org.apiKey });
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as any).data;
}

interface Outcome {
  /** Seconds to the daily reset when the calls were fired: no Retry-After can exceed it. */
  resetBound: number;
  status: number;
  code?: string;
  retryAfter: string | null;
  at: number;
  body: any;
}

async function fireRest(fabric: TestFabric, key: string, n: number): Promise<Outcome[]> {
  const t0 = performance.now();
  const resetBound = Math.ceil(secondsToMidnight()) + 1;
  return Promise.all(
    Array.from({ length: n }, async () => {
      const res = await fabric.rest("/v1/providers/execute", { method: "POST", json: call, key });
      const body: any = await res.json();
      return { resetBound, status: res.status, code: body.code, retryAfter: res.headers.get("retry-after"), at: performance.now() - t0, body };
    }),
  );
}

function expectRefusals(outcomes: Outcome[], label: RegExp) {
  const refused = outcomes.filter((o) => o.status !== 200);
  for (const o of refused) {
    expect(o.status, JSON.stringify(o.body)).toBe(429);
    expect(o.code).toBe("budget_exceeded");
    expect(o.body.detail).toMatch(label);
    const retryAfter = Number(o.retryAfter);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(o.resetBound);
  }
  return refused;
}

// ---------------------------------------------------------------------------------------------
// Direct calls over REST (both engines)

describe(`budget race over REST (${engine})`, () => {
  let fabric: TestFabric;
  let fake: FakeServer;
  let inFlight: { peak(): number };

  beforeAll(async () => {
    fake = await startFakeOpenAI({ apiKey: "sk-race" });
    inFlight = trackInFlight(fake);
    fabric = await startTestFabric({ worker: false, env: { OPENAI_API_KEY: "sk-race", OPENAI_BASE_URL: fake.url } });
  });
  afterAll(async () => {
    await fabric?.close();
    await fake?.close();
  });

  it(`${CALLS} concurrent calls against a daily budget of ${AFFORDABLE} estimates: exactly ${AFFORDABLE} run, ${CALLS - AFFORDABLE} are refused 429 with Retry-After, spend = cap`, async () => {
    const org = await fabric.otherOrg();
    const budget = await setBudget(fabric, org, { daily_limit_usd: formatUsd(CAP) });
    expect(budget.daily_limit_usd).toBe(formatUsd(CAP));
    fake.reset();
    fake.script(Array.from({ length: CALLS }, () => ({ delayMs: DELAY_MS, reply: FULL_REPLY })));

    const outcomes = await fireRest(fabric, org.apiKey, CALLS);

    const ok = outcomes.filter((o) => o.status === 200);
    // actual = estimate, so a settlement refunds nothing: exactly the 10 reservations that fit run.
    expect(ok).toHaveLength(AFFORDABLE);
    for (const o of ok) expect(o.body.data.cost).toMatchObject({ estimated_usd: formatUsd(ESTIMATE), actual_usd: formatUsd(ESTIMATE) });
    expect(expectRefusals(outcomes, /the organization's daily budget/)).toHaveLength(CALLS - AFFORDABLE);
    // The race was real: refusals were answered while the admitted calls were still at the provider.
    expect(Math.min(...outcomes.filter((o) => o.status === 429).map((o) => o.at))).toBeLessThan(Math.min(...ok.map((o) => o.at)));
    expect(inFlight.peak()).toBeLessThanOrEqual(AFFORDABLE);
    expect(inFlight.peak()).toBeGreaterThan(1);

    expect(fake.requests).toHaveLength(ok.length);
    const spend = await spendOf(fabric, org.organizationId);
    expect(spend.records.map((r) => [r.status, r.n])).toEqual([["succeeded", AFFORDABLE]]); // refusals leave no record
    expect(spend.reservedLeft).toBe(0);
    expect(spend.sumActual).toBe(CAP);
    expect(spend.sumActual).toBeLessThanOrEqual(CAP);
    expect(await committed(fabric, `org:${org.organizationId}`)).toBe(spend.sumActual);

    const events = await exceededEvents(fabric, org.organizationId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ scope: "organization", period: "day", limit_nano_usd: String(CAP), committed_nano_usd: String(CAP), refused_estimate_nano_usd: String(ESTIMATE) });

    // The budget API reports the same spend.
    const res = await fabric.rest(`/v1/organizations/${org.organizationId}/budget`, { key: org.apiKey });
    const now = ((await res.json()) as any).data;
    expect(now.periods).toMatchObject([{ period: "day", limit_usd: formatUsd(CAP), committed_usd: formatUsd(CAP), remaining_usd: "0" }]);
  });

  it("with actual < estimate, settlements refund and late calls may fit again — but never more than 10 at once, and spend stays under the cap", async () => {
    const org = await fabric.otherOrg();
    await setBudget(fabric, org, { daily_limit_usd: formatUsd(CAP), monthly_limit_usd: formatUsd(100 * CAP) });
    fake.reset();
    const tracker = trackInFlight(fake); // a fresh peak for this case
    fake.script(Array.from({ length: CALLS }, () => ({ delayMs: DELAY_MS }))); // echo: 2 output tokens

    const outcomes = await fireRest(fabric, org.apiKey, CALLS);

    const ok = outcomes.filter((o) => o.status === 200);
    expect(ok.length).toBeGreaterThanOrEqual(AFFORDABLE);
    expect(ok.length + expectRefusals(outcomes, /the organization's daily budget/).length).toBe(CALLS);
    expect(tracker.peak()).toBeLessThanOrEqual(AFFORDABLE);
    expect(fake.requests).toHaveLength(ok.length);

    const spend = await spendOf(fabric, org.organizationId);
    expect(spend.succeeded).toBe(ok.length);
    expect(spend.reservedLeft).toBe(0);
    expect(spend.sumActual).toBe(ok.length * ECHO_ACTUAL);
    expect(spend.sumActual).toBeLessThanOrEqual(CAP);
    expect(await committed(fabric, `org:${org.organizationId}`, "day")).toBe(spend.sumActual);
    expect(await committed(fabric, `org:${org.organizationId}`, "month")).toBe(spend.sumActual);
    if (ok.length < CALLS) expect(await exceededEvents(fabric, org.organizationId)).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------
// A team's budget tighter than the organization's, over gRPC (both engines)

describe(`team budget tighter than the organization's, over gRPC (${engine})`, () => {
  let fabric: TestFabric;
  let fake: FakeServer;
  let sessions: Http2SessionManager;

  beforeAll(async () => {
    fake = await startFakeOpenAI({ apiKey: "sk-team" });
    fabric = await startTestFabric({ worker: false, env: { OPENAI_API_KEY: "sk-team", OPENAI_BASE_URL: fake.url } });
    sessions = new Http2SessionManager(fabric.grpcUrl);
  });
  afterAll(async () => {
    sessions?.abort();
    await fabric?.close();
    await fake?.close();
  });

  it(`the team's daily budget (${AFFORDABLE} estimates) refuses before the organization's (${2 * AFFORDABLE}); both ledgers hold the spend`, async () => {
    const org = await fabric.otherOrg();
    const transport = createGrpcTransport({
      baseUrl: fabric.grpcUrl,
      sessionManager: sessions,
      interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${org.apiKey}`), next(req))],
    });
    const policies = createClient(PolicyService, transport);
    const providers = createClient(ProviderService, transport);

    const teamRes = await fabric.rest(`/v1/organizations/${org.organizationId}/teams`, { method: "POST", json: { slug: "racers", name: "Racers" }, key: org.apiKey });
    expect(teamRes.status, await teamRes.clone().text()).toBeLessThan(300);
    const teamId = ((await teamRes.json()) as any).data.id as string;

    await policies.setBudget({ organizationId: org.organizationId, dailyLimitUsd: formatUsd(2 * CAP), monthlyLimitUsd: formatUsd(10 * CAP) });
    const team = await policies.setBudget({ organizationId: org.organizationId, teamId, dailyLimitUsd: formatUsd(CAP) });
    expect(team.budget?.dailyLimitUsd).toBe(formatUsd(CAP));

    fake.reset();
    fake.script(Array.from({ length: CALLS }, () => ({ delayMs: DELAY_MS, reply: FULL_REPLY })));
    const resetBound = Math.ceil(secondsToMidnight()) + 1;
    const outcomes = await Promise.all(
      Array.from({ length: CALLS }, () =>
        providers.execute({ call: { provider: "openai", model: MODEL, prompt: PROMPT, maxTokens: MAX_TOKENS, teamId } }).then(
          (r) => ({ ok: true as const, r }),
          (err: unknown) => ({ ok: false as const, err: ConnectError.from(err) }),
        ),
      ),
    );

    const ok = outcomes.filter((o) => o.ok);
    expect(ok).toHaveLength(AFFORDABLE);
    const refused = outcomes.flatMap((o) => (o.ok ? [] : [o.err]));
    expect(refused).toHaveLength(CALLS - AFFORDABLE);
    for (const err of refused) {
      expect(err.code, err.message).toBe(Code.ResourceExhausted);
      expect(err.metadata.get("fabric-error-code")).toBe("budget_exceeded");
      expect(err.rawMessage).toMatch(/the team's daily budget/);
      const retryAfter = Number(err.metadata.get("retry-after"));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(resetBound);
    }
    expect(fake.requests).toHaveLength(AFFORDABLE);

    const spend = await spendOf(fabric, org.organizationId);
    expect(spend.records.map((r) => [r.status, r.n])).toEqual([["succeeded", AFFORDABLE]]);
    expect(spend.sumActual).toBe(CAP);
    // Every ledger the calls were billed to holds exactly the settled spend.
    expect(await committed(fabric, `team:${teamId}`)).toBe(spend.sumActual);
    expect(await committed(fabric, `org:${org.organizationId}`)).toBe(spend.sumActual);
    expect(await committed(fabric, `org:${org.organizationId}`, "month")).toBe(spend.sumActual);
    const [attributed] = await query<{ n: number }>(fabric.database.db, sql`SELECT count(*)::int AS n FROM usage_records WHERE organization_id = ${org.organizationId} AND team_id = ${teamId}`);
    expect(attributed!.n).toBe(AFFORDABLE);

    // Only the team's budget was exceeded; the organization's had room left.
    const events = await exceededEvents(fabric, org.organizationId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ scope: "team", team_id: teamId, period: "day", limit_nano_usd: String(CAP), committed_nano_usd: String(CAP) });

    // An organization-level call (no team) still fits the organization's budget.
    fake.script([{ reply: FULL_REPLY }]);
    const orgCall = await providers.execute({ call: { provider: "openai", model: MODEL, prompt: PROMPT, maxTokens: MAX_TOKENS } });
    expect(orgCall.cost?.actualUsd).toBe(formatUsd(ESTIMATE));
    expect(await committed(fabric, `org:${org.organizationId}`)).toBe(CAP + ESTIMATE);
    expect(await committed(fabric, `team:${teamId}`)).toBe(CAP);
  });
});

// ---------------------------------------------------------------------------------------------
// Real executor processes on real Postgres

describe.skipIf(engine !== "postgres")("budget race across two executor processes (real processes, real Postgres)", () => {
  let fabric: TestFabric;
  let fake: FakeServer;
  const executors: ExecutorProcess[] = [];

  beforeAll(async () => {
    fake = await startFakeOpenAI({ apiKey: "sk-exec" });
    fabric = await startTestFabric({ worker: false });
  });
  afterAll(async () => {
    for (const e of executors) e.child.kill("SIGKILL");
    await Promise.all(executors.map((e) => e.exited));
    await fabric?.close();
    await fake?.close();
  });

  it(
    `a workflow of ${CALLS} parallel ai.generate nodes under a budget for ${AFFORDABLE}: ${AFFORDABLE} call the provider, the rest fail budget_exceeded without a retry`,
    async () => {
      const org = { apiKey: fabric.apiKey, organizationId: fabric.organizationId };
      await setBudget(fabric, org, { daily_limit_usd: formatUsd(CAP) });
      fake.script(Array.from({ length: CALLS }, () => ({ delayMs: DELAY_MS, reply: FULL_REPLY })));

      const workflow = {
        name: "budget-race",
        nodes: Array.from({ length: CALLS }, (_, i) => ({
          key: `g${i}`,
          operation: "ai.generate",
          config: { provider: "openai", model: MODEL, max_tokens: MAX_TOKENS },
          inputs: { prompt: "$context.prompt" },
          outputs: { text: `$context.out${i}` },
          // Retries allowed, so "not retried" is the refusal's doing, not the policy's.
          policy: { max_attempts: 5, backoff: { initial_ms: 10, max_ms: 50 } },
        })),
      };
      const wfRes = await fabric.rest("/v1/workflows", { method: "POST", json: workflow });
      expect(wfRes.status, await wfRes.clone().text()).toBeLessThan(300);
      const wf = ((await wfRes.json()) as any).data;
      // fail_fast off: a refused node must not cancel its siblings, so every node gets its turn at the budget.
      // Both executors up before the run exists, so both claim from its 50 ready nodes (32 slots each).
      const env = {
        DATABASE_URL: fabric.database.url!,
        DATABASE_POOL_MAX: "8",
        LOG_LEVEL: "info",
        OPENAI_API_KEY: "sk-exec",
        OPENAI_BASE_URL: fake.url,
        WORKER_CONCURRENCY: "32",
        WORKER_POLL_INTERVAL: "100ms",
      };
      executors.push(spawnExecutor(env, "budget-a"), spawnExecutor(env, "budget-b"));
      await eventually(async () => (executors.every((e) => e.stderr().includes('"executor started"')) ? true : undefined), 30_000, "both executors to start");

      const runRes = await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: wf.id, input: { prompt: PROMPT }, fail_fast: false } });
      expect(runRes.status, await runRes.clone().text()).toBeLessThan(300);
      const runId = ((await runRes.json()) as any).data.id as string;

      const status = await eventually(
        async () => {
          const [r] = await query<{ status: string }>(fabric.database.db, sql`SELECT status FROM workflow_runs WHERE id = ${runId}`);
          return r && ["completed", "failed", "cancelled"].includes(r.status) ? r.status : undefined;
        },
        60_000,
        `run ${runId} to finish`,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; executors' stderr:\n${executors.map((e) => e.stderr()).join("\n")}`);
      });
      expect(status).toBe("failed");

      const nodes = await query<{ node_key: string; status: string; attempt: number; code: string | null; lease_owner: string | null }>(
        fabric.database.db,
        sql`SELECT node_key, status, attempt, error->>'code' AS code, lease_owner FROM workflow_run_nodes WHERE run_id = ${runId}`,
      );
      expect(nodes).toHaveLength(CALLS);
      const succeeded = nodes.filter((n) => n.status === "succeeded");
      const failed = nodes.filter((n) => n.status === "failed");
      expect(succeeded).toHaveLength(AFFORDABLE);
      expect(failed).toHaveLength(CALLS - AFFORDABLE);
      for (const n of failed) expect(n).toMatchObject({ code: "budget_exceeded", attempt: 1 });
      const [retries] = await query<{ n: number }>(fabric.database.db, sql`SELECT count(*)::int AS n FROM events WHERE run_id = ${runId} AND kind = 'workflow.node.retrying'`);
      expect(retries!.n).toBe(0);
      // Both processes took part (each claimed some of the nodes).
      const [claimers] = await query<{ n: number }>(
        fabric.database.db,
        sql`SELECT count(DISTINCT payload->>'worker_id')::int AS n FROM events WHERE run_id = ${runId} AND kind = 'workflow.node.started'`,
      );
      expect(claimers!.n).toBe(2);

      expect(fake.requests).toHaveLength(AFFORDABLE);
      const spend = await spendOf(fabric, org.organizationId);
      expect(spend.records.map((r) => [r.status, r.n])).toEqual([["succeeded", AFFORDABLE]]);
      expect(spend.sumActual).toBe(CAP);
      expect(await committed(fabric, `org:${org.organizationId}`)).toBe(spend.sumActual);
      const [byRun] = await query<{ n: number }>(fabric.database.db, sql`SELECT count(*)::int AS n FROM usage_records WHERE run_id = ${runId} AND status = 'succeeded'`);
      expect(byRun!.n).toBe(AFFORDABLE);
      expect(await exceededEvents(fabric, org.organizationId)).toHaveLength(1);
    },
    120_000,
  );
});
