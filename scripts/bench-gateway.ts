/**
 * Provider-gateway overhead benchmark: what the one call path (src/gateway/provider-gateway.ts —
 * rules, routing, budget reservation, usage record, settlement) adds to a provider call.
 *
 * Against a zero-latency provider (an in-process stub named `openai` serving `gpt-4o-mini`,
 * so calls are priced and reservations are real amounts), one call at a time after a
 * warm-up, it times:
 *   - direct:       `provider.generate(…)` itself (the baseline, microseconds);
 *   - no policy:    `gateway.call(…)` for an organization with no policy rows — the rules
 *                   (cached per process, as deployed), routing, one INSERT of the settled
 *                   usage record;
 *   - org+team budgets: `gateway.call(…)` billed to a team, with daily and monthly budgets on
 *                   both the organization and the team (limits far above the spend) — the
 *                   reservation (one statement in a transaction: 4 conditional ledger
 *                   upserts and the `reserved` record), the settlement statement.
 * Added latency = gateway call − the direct call's median. Prints p50/p90/p99 in ms and the
 * sequential calls/s, on the local Postgres and on PGlite; then, per engine, the p50 of the
 * gateway's database statements timed alone (the rules query, the reservation transaction,
 * the settlement, the settled record of an unbudgeted call), which is where the time goes.
 * On Postgres it runs a second time with `synchronous_commit = off` on the bench database:
 * the difference is the commits' WAL flushes (each waits for the disk), not Fabric's work.
 *
 *   npm run bench:gateway                          # both engines, 3000 calls per case
 *   npm run bench:gateway -- --engine postgres --calls 5000 --warmup 1000
 *
 * Needs the local Postgres (FABRIC_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres)
 * for the Postgres part; creates and drops its own database (tests/helpers/database.ts).
 */
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { openDatabase, query, type Database } from "../src/db/database.js";
import { organizations, policies, teams } from "../src/db/schema.js";
import { loadScopeRules, recordSettled, reserve, settle, type Settlement } from "../src/db/usage.js";
import { effectiveRules } from "../src/domain/policy.js";
import type { ProviderCallRequest } from "../src/domain/provider-call.js";
import type { GenerateRequest, GenerateResult, Provider } from "../src/providers/provider.js";
import { createProviderGateway, type Attribution } from "../src/gateway/index.js";
import { createTestDatabase, type Engine } from "../tests/helpers/database.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string" },
    calls: { type: "string", default: "3000" },
    warmup: { type: "string", default: "500" },
  },
});
const CALLS = Number(values.calls);
const WARMUP = Number(values.warmup);

/** Answers at once: whatever the gateway adds is all there is to measure. */
const zeroLatency: Provider = {
  name: "openai",
  tier: "premium",
  local: false,
  models: ["gpt-4o-mini"],
  embeddingModels: [],
  operations: ["ai.generate"],
  async generate(req: GenerateRequest): Promise<GenerateResult> {
    return { text: "ok", model: req.model ?? "gpt-4o-mini", provider: "openai", usage: { inputTokens: 3, outputTokens: 1 }, finishReason: "stop" };
  },
  async *stream() {
    throw new Error("not used");
  },
};

const request: ProviderCallRequest = { operation: "ai.generate", provider: "openai", model: "gpt-4o-mini", prompt: "hello there!", maxTokens: 64 };

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const ms = (n: number) => n.toFixed(3);

interface Series {
  samples: number[];
  seconds: number;
}

async function time(n: number, fn: () => Promise<unknown>): Promise<Series> {
  const samples = new Array<number>(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    samples[i] = performance.now() - t;
  }
  return { samples: samples.sort((a, b) => a - b), seconds: (performance.now() - t0) / 1000 };
}

async function newOrg(database: Database): Promise<string> {
  const id = randomUUID();
  await database.db.insert(organizations).values({ id, slug: `bench-${id.slice(0, 8)}`, name: "Bench" });
  return id;
}

async function benchEngine(engine: Engine, opts: { asyncCommit?: boolean } = {}): Promise<void> {
  const test = await createTestDatabase({ engine, poolMax: 8 });
  let database: Database = test;
  if (opts.asyncCommit) {
    // New sessions of this database only; the server's other databases are untouched.
    await query(test.db, sql.raw(`ALTER DATABASE ${new URL(test.url!).pathname.slice(1)} SET synchronous_commit = off`));
    database = await openDatabase({ url: test.url!, poolMax: 8, migrate: false });
  }
  try {
    // As deployed: rules cached per process, dropped on a policy change's NOTIFY.
    const gateway = createProviderGateway({ db: database.db, providers: [zeroLatency], listen: (channel, fn) => database.listen(channel, fn) });
    const signal = new AbortController().signal;

    const plainOrg = await newOrg(database);
    const budgetOrg = await newOrg(database);
    const teamId = randomUUID();
    await database.db.insert(teams).values({ id: teamId, organizationId: budgetOrg, slug: "bench", name: "Bench" });
    const $1M = 1_000_000 * 1e9;
    await database.db.insert(policies).values([
      { scopeKey: `org:${budgetOrg}`, organizationId: budgetOrg, teamId: null, dailyLimitNanoUsd: $1M, monthlyLimitNanoUsd: 30 * $1M },
      { scopeKey: `team:${teamId}`, organizationId: budgetOrg, teamId, dailyLimitNanoUsd: $1M, monthlyLimitNanoUsd: 30 * $1M },
    ]);

    const attribution = (organizationId: string, team: string | null): Attribution => ({ organizationId, teamId: team, principalId: null, apiKeyId: null, runId: null, nodeKey: null });
    const plain = attribution(plainOrg, null);
    const budgeted = attribution(budgetOrg, teamId);
    const direct = () => zeroLatency.generate({ model: "gpt-4o-mini", prompt: request.prompt!, maxTokens: request.maxTokens!, signal });
    const viaGateway = (a: Attribution) => () => gateway.call({ request, attribution: a, signal });

    // Sanity: the budgeted path really reserves (4 ledgers) and settles.
    const check = await viaGateway(budgeted)();
    if (check.estimate.status !== "priced" || check.actual.status !== "priced") throw new Error("the benchmark call is not priced");

    // Warm-up: JIT, prepared plans, connection pool, page cache.
    await time(WARMUP, direct);
    await time(WARMUP, viaGateway(plain));
    await time(WARMUP, viaGateway(budgeted));

    const base = await time(CALLS, direct);
    const baseP50 = pct(base.samples, 50);
    const cases: [string, Series][] = [
      ["no policy", await time(CALLS, viaGateway(plain))],
      ["org+team daily+monthly budgets", await time(CALLS, viaGateway(budgeted))],
    ];

    console.log(`== ${engine}${opts.asyncCommit ? " (synchronous_commit = off)" : ""}`);
    console.log(`  direct provider call: p50 ${ms(baseP50)} ms, p99 ${ms(pct(base.samples, 99))} ms (${Math.round(CALLS / base.seconds).toLocaleString("en")} calls/s)`);
    for (const [name, s] of cases) {
      const added = (p: number) => ms(pct(s.samples, p) - baseP50);
      console.log(`  ${name.padEnd(31)} added p50 ${added(50)} ms, p90 ${added(90)} ms, p99 ${added(99)} ms; ${Math.round(CALLS / s.seconds).toLocaleString("en")} calls/s sequential`);
    }
    console.log(`  statements alone, p50: ${await statements(database, budgetOrg, teamId)}`);
    await gateway.close();
  } finally {
    if (database !== test) await database.close();
    await test.close();
  }
}

/** The gateway's database work for one call, statement by statement (p50 ms over CALLS / 2 rounds). */
async function statements(database: Database, organizationId: string, teamId: string): Promise<string> {
  const db = database.db;
  const attribution: Attribution = { organizationId, teamId, principalId: null, apiKeyId: null, runId: null, nodeKey: null };
  const facts = { provider: "openai", model: "gpt-4o-mini", operation: "ai.generate", priceTable: "bench", estimatedNanoUsd: 40_000 };
  const settlement: Settlement = { status: "succeeded", provider: "openai", model: "gpt-4o-mini", inputTokens: 3, outputTokens: 1, cachedInputTokens: 0, cacheWriteTokens: 0, actualNanoUsd: 1_050, errorCode: null, latencyMs: 0 };
  const laps: Record<string, number[]> = { rules: [], reserve: [], settle: [], "unbudgeted record": [] };
  const lap = async <T>(name: string, keep: boolean, fn: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const r = await fn();
    if (keep) laps[name]!.push(performance.now() - t);
    return r;
  };
  const rounds = Math.max(100, Math.floor(CALLS / 2));
  for (let i = 0; i < WARMUP + rounds; i++) {
    const keep = i >= WARMUP;
    const { rules } = await lap("rules", keep, () => loadScopeRules(db, organizationId, teamId));
    const { charges } = effectiveRules(rules, { now: new Date() });
    const r = await lap("reserve", keep, () => reserve(db, { attribution, facts, charges, estimateNanoUsd: facts.estimatedNanoUsd }));
    if (!r.ok) throw new Error("the bench budget refused a reservation");
    await lap("settle", keep, () => settle(db, { id: r.id, charges, estimateNanoUsd: facts.estimatedNanoUsd, settlement }));
    await lap("unbudgeted record", keep, () => recordSettled(db, { ...attribution, teamId: null }, facts, settlement));
  }
  return Object.entries(laps)
    .map(([name, xs]) => `${name} ${ms(pct(xs.sort((a, b) => a - b), 50))}`)
    .join(", ");
}

async function main() {
  const engines: Engine[] = values.engine ? [values.engine as Engine] : ["postgres", "pglite"];
  console.log(`Fabric provider-gateway overhead — ${CALLS} sequential calls per case after ${WARMUP} warm-up calls, zero-latency provider\n`);
  for (const engine of engines) {
    await benchEngine(engine);
    if (engine === "postgres") await benchEngine(engine, { asyncCommit: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
