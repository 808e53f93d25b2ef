/**
 * The SDK's provider, job, usage, policy and budget resources against a real Fabric on
 * loopback (echo provider, in-process executor): direct calls (plain, streamed,
 * estimated), refusals as typed errors with their code and Retry-After, budgets, usage
 * totals and records, and jobs created, waited for, watched and accounted.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FabricClient, FabricError, parseRetryAfter, type FetchLike, type ProviderStreamChunk, type RunEvent } from "../../src/sdk/index.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { collect, rejection } from "./support.js";

let fabric: TestFabric;
let client: FabricClient;
let org: string;
const terminal = new Set(["workflow.run.completed", "workflow.run.failed", "workflow.run.cancelled"]);

const newClient = (extra: Partial<ConstructorParameters<typeof FabricClient>[0]> = {}) =>
  new FabricClient({ baseUrl: fabric.restUrl, apiKey: fabric.apiKey, retry: { initialDelayMs: 10, maxDelayMs: 50 }, ...extra });

async function newTeam(name: string): Promise<string> {
  return (await client.teams.create(org, { slug: `${name}-${randomUUID().slice(0, 8)}`, name })).id;
}

/** A fetch answering every provider stream with `sse` (a canned body), other requests as is. */
function cannedStream(sse: string): FetchLike {
  return async (input, init) => {
    if (!String(input).endsWith("/v1/providers/execute/stream")) return fetch(input, init);
    return new Response(sse, { status: 200, headers: { "content-type": "text/event-stream", "x-request-id": "canned" } });
  };
}

beforeAll(async () => {
  fabric = await startTestFabric();
  client = newClient();
  org = fabric.organizationId;
});

afterAll(async () => {
  client?.close();
  await fabric?.close();
});

describe("providers", () => {
  it("lists the enabled providers with their models, prices and health", async () => {
    const list = await client.providers.list();
    expect(list.price_table).toBeTruthy();
    expect(list.default_strategy).toBeTruthy();
    const echo = list.providers.find((p) => p.name === "echo");
    expect(echo).toMatchObject({ local: true, stub: true, health: "healthy", modalities: ["text", "embedding"] });
    expect(echo!.models.map((m) => [m.name, m.operation])).toEqual([
      ["echo-1", "ai.generate"],
      ["echo-embed-1", "ai.embed"],
    ]);
  });

  it("execute: text with usage, cost and routing; embeddings", async () => {
    const r = await client.providers.execute({ prompt: "hello fabric", max_tokens: 64 });
    expect(r).toMatchObject({ text: "hello fabric", finish_reason: "stop", provider: "echo", model: "echo-1" });
    expect(Number(r.usage.input_tokens)).toBeGreaterThan(0);
    expect(r.cost.price_table).toBe((await client.providers.list()).price_table);
    expect(r.routing).toMatchObject({ provider: "echo", model: "echo-1" });
    expect(r.routing.why).toBeTruthy();
    expect(r.usage_record_id).toBeTruthy();

    const e = await client.providers.execute({ operation: "ai.embed", input: ["one", "two"] });
    expect(e.model).toBe("echo-embed-1");
    expect(e.embeddings).toHaveLength(2);
    expect(e.embeddings[0]!.values.length).toBeGreaterThan(0);

    const bad = await rejection(client.providers.execute({ prompt: "" }));
    expect([bad.status, bad.code]).toEqual([400, "invalid_argument"]);
    expect(bad.requestId).toBeTruthy();
  });

  it("stream: deltas concatenate to the result's text, then the iterator ends", async () => {
    const prompt = "the quick brown fox jumps over the lazy dog";
    const chunks = await collect(client.providers.stream({ prompt }));
    const deltas = chunks.filter((c): c is Extract<ProviderStreamChunk, { type: "delta" }> => c.type === "delta");
    expect(deltas.length).toBeGreaterThan(1);
    const last = chunks.at(-1)!;
    expect(last.type).toBe("result");
    if (last.type !== "result") throw new Error("unreachable");
    expect(deltas.map((d) => d.text).join("")).toBe(last.result.text);
    expect(last.result).toMatchObject({ text: prompt, provider: "echo", model: "echo-1" });
    expect(last.result.usage_record_id).toBeTruthy();
    expect(chunks.filter((c) => c.type === "result")).toHaveLength(1);

    // An error status before the stream starts is thrown as the typed error.
    const bad = await rejection(collect(client.providers.stream({ prompt: "x", max_tokens: 0 })));
    expect([bad.status, bad.code]).toEqual([400, "invalid_argument"]);
  });

  it("stream: breaking out aborts the request; an aborted signal rethrows its reason", async () => {
    const signals: AbortSignal[] = [];
    const recording = newClient({
      fetch: (input, init) => {
        if (init.signal) signals.push(init.signal);
        return fetch(input, init);
      },
    });
    for await (const c of recording.providers.stream({ prompt: "one two three four five" })) {
      expect(c.type).toBe("delta");
      break;
    }
    expect(signals).toHaveLength(1);
    expect(signals[0]!.aborted).toBe(true);

    const ac = new AbortController();
    const reason = new Error("stop here");
    const it = client.providers.stream({ prompt: "one two three" }, { signal: ac.signal });
    expect((await it.next()).value).toMatchObject({ type: "delta" });
    ac.abort(reason);
    await expect(it.next()).rejects.toBe(reason);
  });

  it("stream: an `event: error` problem is thrown as the typed error; an early end is a network_error", async () => {
    const problem = { type: "https://fabric.dev/problems/provider_unavailable", title: "Service Unavailable", status: 503, detail: "every candidate failed", code: "provider_unavailable", request_id: "r-1" };
    const failing = newClient({ fetch: cannedStream(`event: delta\ndata: {"text":"partial "}\n\nevent: error\ndata: ${JSON.stringify(problem)}\n\n`) });
    const seen: ProviderStreamChunk[] = [];
    const err = await rejection(
      (async () => {
        for await (const c of failing.providers.stream({ prompt: "p" })) seen.push(c);
      })(),
    );
    expect(seen).toEqual([{ type: "delta", text: "partial " }]);
    expect(err).toMatchObject({ status: 503, code: "provider_unavailable", detail: "every candidate failed", requestId: "r-1" });

    const cut = newClient({ fetch: cannedStream(`event: delta\ndata: {"text":"partial"}\n\n`) });
    const early = await rejection(collect(cut.providers.stream({ prompt: "p" })));
    expect([early.status, early.code, early.requestId]).toEqual([0, "network_error", "canned"]);

    const garbled = newClient({ fetch: cannedStream(`event: delta\ndata: {"txt":1}\n\n`) });
    expect((await rejection(collect(garbled.providers.stream({ prompt: "p" })))).code).toBe("invalid_response");
  });

  it("estimate: routing, the upper-bound estimate and the budgets, without calling", async () => {
    const team = await newTeam("estimate");
    const est = await client.providers.estimate({ prompt: "how much would this cost", max_tokens: 100, team_id: team });
    expect(est).toMatchObject({ allowed: true, refusal_code: "", price_table: expect.any(String) });
    expect(est.routing.provider).toBe("echo");
    expect(Number(est.max_output_tokens)).toBe(100);
    expect(Number(est.estimated_input_tokens)).toBeGreaterThan(0);
    expect(est.estimated_usd).not.toBe("");
    // Nothing was called, so nothing was recorded.
    expect((await client.usage.query(org, { team_id: team })).total.calls).toEqual("0");
  });
});

describe("policies, budgets and refusals", () => {
  it("a team policy allowing only gpt-4o refuses calls billed to that team with model_not_allowed", async () => {
    const team = await newTeam("gpt4o-only");
    const set = await client.policies.set(org, { team_id: team, allowed_models: ["gpt-4o"] });
    expect(set).toMatchObject({ organization_id: org, team_id: team, allowed_models: ["gpt-4o"], allowed_providers: [] });
    expect(await client.policies.get(org, { team_id: team })).toMatchObject({ team_id: team, allowed_models: ["gpt-4o"] });
    // The organization's own policy is untouched.
    expect((await client.policies.get(org)).allowed_models).toEqual([]);

    const refused = await rejection(client.providers.execute({ prompt: "hi", team_id: team }));
    expect(refused).toMatchObject({ status: 403, code: "model_not_allowed" });
    expect(refused.retryable).toBe(false);
    expect(refused.retryAfterSeconds).toBeUndefined();
    expect(refused.problem?.code).toBe("model_not_allowed");

    const streamed = await rejection(collect(client.providers.stream({ prompt: "hi", team_id: team })));
    expect(streamed).toMatchObject({ status: 403, code: "model_not_allowed" });

    expect(await client.providers.estimate({ prompt: "hi", team_id: team })).toMatchObject({ allowed: false, refusal_code: "model_not_allowed" });
    // Calls billed to the organization alone still go through.
    expect((await client.providers.execute({ prompt: "hi" })).text).toBe("hi");
  });

  it("sets a team budget and reads it back with its current periods", async () => {
    const team = await newTeam("budgeted");
    const set = await client.policies.setBudget(org, { team_id: team, daily_limit_usd: "5", monthly_limit_usd: "100" });
    expect(set).toMatchObject({ organization_id: org, team_id: team });
    expect(Number(set.daily_limit_usd)).toBe(5);
    expect(Number(set.monthly_limit_usd)).toBe(100);
    expect(set.periods.map((p) => p.period).sort()).toEqual(["day", "month"]);
    const read = await client.policies.getBudget(org, { team_id: team });
    expect(read).toMatchObject({ team_id: team, daily_limit_usd: set.daily_limit_usd, monthly_limit_usd: set.monthly_limit_usd });
    const day = read.periods.find((p) => p.period === "day")!;
    expect(Number(day.limit_usd)).toBe(5);
    expect(Number(day.remaining_usd)).toBeLessThanOrEqual(5);
    expect(Date.parse(day.reset_time!)).toBeGreaterThan(Date.now());
    // The organization has no budget of its own.
    const orgBudget = await client.policies.getBudget(org);
    expect([orgBudget.team_id, orgBudget.daily_limit_usd, orgBudget.periods]).toEqual(["", undefined, []]);
  });

  it("budget_exceeded: a 429 with retryAfterSeconds from Retry-After (until the period resets)", async () => {
    const team = await newTeam("tiny-budget");
    // Price echo for this organization, so that estimates are not $0.
    const before = await client.policies.get(org);
    await client.policies.set(org, { price_overrides: [{ provider: "echo", model: "*", input_usd_per_mtok: "1000", output_usd_per_mtok: "1000" }] });
    try {
      await client.policies.setBudget(org, { team_id: team, daily_limit_usd: "0.000001" });
      const est = await client.providers.estimate({ prompt: "an expensive prompt", max_tokens: 1000, team_id: team });
      expect(est).toMatchObject({ allowed: false, refusal_code: "budget_exceeded" });
      expect(est.budgets).toEqual([expect.objectContaining({ scope: "team", period: "day", fits: false })]);

      const err = await rejection(client.providers.execute({ prompt: "an expensive prompt", max_tokens: 1000, team_id: team }));
      expect(err).toMatchObject({ status: 429, code: "budget_exceeded" });
      expect(err.retryAfterSeconds).toBeGreaterThan(0);
      expect(err.retryAfterSeconds).toBeLessThanOrEqual(86_400);
      expect(err.retryable).toBe(true);
    } finally {
      await client.policies.set(org, { price_overrides: before.price_overrides });
    }
  });

  it("rate_limited: a 429 with retryAfterSeconds within the minute", async () => {
    const team = await newTeam("rate-limited");
    await client.policies.set(org, { team_id: team, requests_per_minute_per_key: 1 });
    // A key of its own, so that only these calls count.
    const { key } = await client.apiKeys.create(org, { name: "rate-limited" });
    const limited = newClient({ apiKey: key });
    let err: FabricError | undefined;
    // One call per minute: of three calls within seconds, two share a minute.
    for (let i = 0; i < 3 && !err; i++) {
      try {
        await limited.providers.execute({ prompt: "tick", team_id: team });
      } catch (e) {
        err = e as FabricError;
      }
    }
    expect(err).toBeInstanceOf(FabricError);
    expect(err).toMatchObject({ status: 429, code: "rate_limited" });
    expect(err!.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(err!.retryAfterSeconds).toBeLessThanOrEqual(60);
    expect(err!.retryable).toBe(true);
    // Calls not billed to that team are not limited.
    expect((await limited.providers.execute({ prompt: "free" })).text).toBe("free");
  });

  it("parseRetryAfter reads both forms of Retry-After", () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    expect(parseRetryAfter("120", now)).toBe(120);
    expect(parseRetryAfter("Tue, 01 Jan 2030 00:01:30 GMT", now)).toBe(90);
    expect(parseRetryAfter("Mon, 31 Dec 2029 23:59:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("-1", now)).toBeUndefined();
    expect(parseRetryAfter("1e3", now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe("usage", () => {
  it("query groups and totals the calls made; records pages through them", async () => {
    const team = await newTeam("usage");
    const since = new Date(Date.now() - 60_000);
    await client.providers.execute({ prompt: "counted one", team_id: team });
    await client.providers.execute({ prompt: "counted two", team_id: team });
    await collect(client.providers.stream({ prompt: "counted three", team_id: team }));

    const byTeam = await client.usage.query(org, { team_id: team, start_time: since });
    expect(byTeam.total).toMatchObject({ calls: "3", failed_calls: "0" });
    expect(Number(byTeam.total.usage?.input_tokens)).toBeGreaterThan(0);

    const grouped = await client.usage.query(org, { group_by: ["provider", "model"], team_id: team });
    expect(grouped.groups.map((g) => [g.provider, g.model, String(g.calls)])).toEqual([["echo", "echo-1", "3"]]);
    // The wire's comma-separated form works the same.
    expect((await client.usage.query(org, { group_by: "provider,model", team_id: team })).groups).toEqual(grouped.groups);
    // Nothing in the future.
    expect((await client.usage.query(org, { team_id: team, start_time: new Date(Date.now() + 3_600_000).toISOString() })).total.calls).toEqual("0");

    const page = await client.usage.records(org, { team_id: team, page_size: 2 });
    expect(page.data).toHaveLength(2);
    expect(page.next_page_token).toBeTruthy();
    const all = await collect(client.usage.recordsAll(org, { team_id: team, page_size: 2 }));
    expect(all).toHaveLength(3);
    expect(new Set(all.map((r) => r.id)).size).toBe(3);
    expect(all.every((r) => r.team_id === team && r.status === "succeeded" && r.run_id === "")).toBe(true);

    const everything = await client.usage.query(org, { start_time: since });
    expect(Number(everything.total.calls)).toBeGreaterThanOrEqual(3);
  });
});

describe("jobs", () => {
  it("create → wait → result.text; get, list, usage; idempotent create", async () => {
    const key = `job-${randomUUID()}`;
    const job = await client.jobs.create({ modality: "text", input: { prompt: "a job well done" }, params: { max_tokens: 32 }, idempotency_key: key });
    expect(job).toMatchObject({ modality: "text", organization_id: org, idempotency_key: key });
    expect(job.workflow_run_id).toBe(job.id);

    const done = await client.jobs.wait(job.id, { timeoutMs: 20_000 });
    expect(done.status).toBe("completed");
    expect(done.result).toMatchObject({ text: "a job well done" });
    expect(await client.jobs.get(job.id)).toEqual(done);
    // The same idempotency key answers the original job.
    expect((await client.jobs.create({ modality: "text", input: { prompt: "another" }, idempotency_key: key })).id).toBe(job.id);

    const usage = await client.jobs.usage(job.id);
    expect(usage.records).toHaveLength(1);
    expect(usage.records[0]).toMatchObject({ run_id: job.id, provider: "echo", model: "echo-1", status: "succeeded" });
    expect(usage.total).toMatchObject({ calls: "1" });

    const page = await client.jobs.list({ status: "completed", page_size: 200 });
    expect(page.data.map((j) => j.id)).toContain(job.id);
    expect((await collect(client.jobs.listAll({ page_size: 1 }))).map((j) => j.id)).toContain(job.id);

    const missing = await rejection(client.jobs.get(randomUUID()));
    expect([missing.status, missing.code]).toEqual([404, "not_found"]);
  });

  it("watch yields the job's events in order through the terminal one, then ends", async () => {
    const job = await client.jobs.create({ modality: "embedding", input: { input: ["a", "b"] } });
    const events: RunEvent[] = await collect(client.jobs.watch(job.id));
    expect(events.length).toBeGreaterThan(1);
    for (let i = 1; i < events.length; i++) expect(BigInt(events[i]!.id) > BigInt(events[i - 1]!.id)).toBe(true);
    expect(events.at(-1)!.kind).toBe("workflow.run.completed");
    expect(events.filter((e) => terminal.has(e.kind))).toHaveLength(1);
    expect(events.every((e) => e.run_id === job.id)).toBe(true);
    // Resuming after the terminal event: nothing more, the iterator ends.
    expect(await collect(client.jobs.watch(job.id, { afterId: events.at(-1)!.id }))).toEqual([]);
    // Resuming in the middle: exactly the rest.
    expect((await collect(client.jobs.watch(job.id, { afterId: events[0]!.id }))).map((e) => e.id)).toEqual(events.slice(1).map((e) => e.id));

    const done = await client.jobs.wait(job.id);
    expect(done.status).toBe("completed");
    expect((done.result as { embeddings?: unknown[] }).embeddings).toHaveLength(2);
  });

  it("a job billed to a team whose policy refuses the model fails with model_not_allowed", async () => {
    const team = await newTeam("job-gpt4o-only");
    await client.policies.set(org, { team_id: team, allowed_models: ["gpt-4o"] });
    const job = await client.jobs.create({ modality: "text", input: { prompt: "not allowed" }, team_id: team });
    const done = await client.jobs.wait(job.id, { timeoutMs: 20_000 });
    expect(done.status).toBe("failed");
    // A job is its one call: its error is the call's, with the refusal's stable code.
    expect(done.error).toMatchObject({ code: "model_not_allowed", node_key: "call" });
    expect(done.error?.message).toContain("not allowed");
    const run = await client.runs.get(job.workflow_run_id);
    expect(run.nodes.find((n) => n.key === "call")?.error).toMatchObject({ code: "model_not_allowed" });
  });

  it("wait times out with code timeout; watch of a missing job throws not_found", async () => {
    const err = await rejection(client.jobs.wait(randomUUID(), { timeoutMs: 5_000 }));
    expect(err.code).toBe("not_found");
    const job = await client.jobs.create({ modality: "text", input: { prompt: "quick" } });
    const timedOut = await rejection(client.jobs.wait(job.id, { timeoutMs: 1 }));
    expect(timedOut.code).toBe("timeout");
    expect((await client.jobs.wait(job.id, { timeoutMs: 20_000 })).status).toBe("completed");
  });
});
