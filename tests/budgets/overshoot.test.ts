/**
 * "Committed ≤ cap" is an invariant, checked as a property (fast-check) under concurrency
 * against a provider that misbehaves: the OpenAI wire-format fake replies up to 20× longer
 * than max_tokens and reports usage that is made up (up to 100,000 input or output tokens),
 * answering after a random delay so calls overlap at the provider.
 *
 * Each case: a fresh organization with a daily budget of a random size, a random batch of
 * concurrent calls over REST (`/v1/providers/execute` and `/execute/stream`) with random
 * max_tokens. Afterwards:
 * - the daily ledger's committed total ≤ the cap, and equals the sum of the settled records;
 * - no record is left `reserved`; every record's actual cost ≤ its estimate;
 * - no answer carries more than max_tokens × 4 characters or more than max_tokens output
 *   tokens.
 * Without the output limit on the adapters and the billing cap at the reservation, the first
 * case that over-reports fails (committed went past the cap).
 */
import fc from "fast-check";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../../src/db/database.js";
import { periodOf } from "../../src/domain/policy.js";
import { estimateCost, formatUsd, requirePriced } from "../../src/domain/pricing.js";
import { startFakeOpenAI, type FakeBehaviour, type FakeServer } from "../../src/providers/fakes/index.js";
import { engine } from "../helpers/database.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { parseSse } from "../usage/support.js";

const MODEL = "gpt-4o-mini";
const PROMPT = "12345678";
const estimateFor = (maxTokens: number) => requirePriced(estimateCost({ provider: "openai", model: MODEL, inputChars: PROMPT.length, maxOutputTokens: maxTokens })).totalNanoUsd;

const callArb = fc.record({
  stream: fc.boolean(),
  maxTokens: fc.integer({ min: 1, max: 60 }),
  /** The reply's length as a multiple of max_tokens × 4 characters. */
  replyFactor: fc.double({ min: 0, max: 20, noNaN: true }),
  reportOutputTokens: fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: undefined }),
  reportInputTokens: fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: undefined }),
  delayMs: fc.integer({ min: 0, max: 40 }),
});
type Call = typeof callArb extends fc.Arbitrary<infer T> ? T : never;
const caseArb = fc.record({
  /** The cap in units of 1,000 nUSD: from less than one call to a few. */
  capThousands: fc.integer({ min: 10, max: 200 }),
  calls: fc.array(callArb, { minLength: 2, maxLength: 12 }),
});

describe(`committed ≤ cap under misbehaving providers (${engine})`, () => {
  let fabric: TestFabric;
  let fake: FakeServer;

  beforeAll(async () => {
    fake = await startFakeOpenAI({ apiKey: "sk-overshoot" });
    fabric = await startTestFabric({ worker: false, env: { OPENAI_API_KEY: "sk-overshoot", OPENAI_BASE_URL: fake.url } });
  });
  afterAll(async () => {
    await fabric?.close();
    await fake?.close();
  });

  async function callOnce(key: string, c: Call): Promise<{ status: number; text?: string; outputTokens?: number }> {
    const body = JSON.stringify({ provider: "openai", model: MODEL, prompt: PROMPT, max_tokens: c.maxTokens });
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    if (!c.stream) {
      const res = await fabric.rest("/v1/providers/execute", { method: "POST", body, headers, key });
      const j: any = await res.json();
      if (res.status !== 200) return { status: res.status };
      return { status: 200, text: j.data.text, outputTokens: Number(j.data.usage.output_tokens) };
    }
    const res = await fabric.rest("/v1/providers/execute/stream", { method: "POST", body, headers: { ...headers, accept: "text/event-stream" }, key });
    if (res.status !== 200) return { status: res.status };
    const messages = parseSse(await res.text());
    const last = messages.at(-1);
    if (last?.event !== "result") return { status: 500 };
    const result = JSON.parse(last.data);
    const deltas = messages.filter((m) => m.event === "delta").map((m) => JSON.parse(m.data).text as string).join("");
    expect(result.text ?? deltas).toBe(deltas);
    return { status: 200, text: deltas, outputTokens: Number(result.usage.output_tokens) };
  }

  it("holds for every random budget, batch and misbehaviour", async () => {
    let cases = 0;
    let overReported = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ capThousands, calls }) => {
        cases++;
        const cap = capThousands * 1000;
        const org = await fabric.otherOrg();
        const put = await fabric.rest(`/v1/organizations/${org.organizationId}/budget`, { method: "PUT", json: { daily_limit_usd: formatUsd(cap) }, key: org.apiKey });
        expect(put.status, await put.clone().text()).toBe(200);

        // Behaviours are taken in arrival order; each call's own max_tokens sizes a reply, so
        // they are scripted from the batch's largest (every reply is over-long for its call).
        const biggest = Math.max(...calls.map((c) => c.maxTokens));
        fake.reset();
        fake.script(
          calls.map((c): FakeBehaviour => ({
            reply: "w".repeat(Math.round(biggest * 4 * c.replyFactor)),
            delayMs: c.delayMs,
            ...(c.reportOutputTokens !== undefined ? { reportOutputTokens: c.reportOutputTokens } : {}),
            ...(c.reportInputTokens !== undefined ? { reportInputTokens: c.reportInputTokens } : {}),
          })),
        );
        if (calls.some((c) => (c.reportOutputTokens ?? 0) > c.maxTokens || (c.reportInputTokens ?? 0) > 2)) overReported++;

        const outcomes = await Promise.all(calls.map((c) => callOnce(org.apiKey, c).then((o) => ({ ...o, call: c }))));
        for (const o of outcomes) {
          expect([200, 429]).toContain(o.status);
          if (o.status !== 200) continue;
          expect(o.text!.length).toBeLessThanOrEqual(o.call.maxTokens * 4);
          expect(o.outputTokens).toBeLessThanOrEqual(o.call.maxTokens);
        }

        const [ledger] = await query<{ c: number }>(
          fabric.database.db,
          sql`SELECT committed_nano_usd::float8 AS c FROM budget_ledger WHERE scope_key = ${`org:${org.organizationId}`} AND period = 'day' AND period_start = ${periodOf("day", new Date()).start}`,
        );
        const records = await query<{ status: string; actual: number | null; estimated: number | null }>(
          fabric.database.db,
          sql`SELECT status, actual_nano_usd::float8 AS actual, estimated_nano_usd::float8 AS estimated FROM usage_records WHERE organization_id = ${org.organizationId}`,
        );
        const committed = Number(ledger?.c ?? 0);
        const sum = records.reduce((s, r) => s + Number(r.actual ?? r.estimated ?? 0), 0);
        expect(records.filter((r) => r.status === "reserved")).toEqual([]);
        for (const r of records) if (r.actual !== null && r.estimated !== null) expect(Number(r.actual)).toBeLessThanOrEqual(Number(r.estimated));
        expect(committed, `committed ${committed} > cap ${cap}`).toBeLessThanOrEqual(cap);
        expect(committed).toBe(sum);
        // Every admitted call fit: the estimate of the smallest call is what the cap is compared to.
        expect(records.length).toBe(outcomes.filter((o) => o.status === 200).length);
        if (cap >= Math.max(...calls.map((c) => estimateFor(c.maxTokens)))) expect(records.length).toBeGreaterThan(0);
      }),
      { numRuns: 25, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) },
    );
    expect(cases).toBe(25);
    // The misbehaviour was exercised, not only generated (a positive control on the generator).
    expect(overReported).toBeGreaterThan(0);
  });
});
