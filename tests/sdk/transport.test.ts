/**
 * The SDK's REST transport against a real Fabric on loopback, with failures injected by
 * a wrapping fetch in front of it: which calls are retried (GET, PUT, DELETE after a
 * network error, 429 or 5xx) and which never are (POST, other 4xx), `Retry-After`
 * honoured or — beyond 30 s — thrown at once, `maxRetries` per client and per call, and
 * the time limit of a call (`timeoutMs`), which event streams are not bound by.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FabricClient, type FabricClientOptions, type FetchLike } from "../../src/sdk/index.js";
import { smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { collect, gateWorkflow, problemBody, rejection } from "./support.js";

let fabric: TestFabric;

beforeAll(async () => {
  fabric = await startTestFabric();
});

afterAll(async () => {
  await fabric?.close();
});

interface Attempt {
  method: string;
  path: string;
  at: number;
}

/**
 * A fetch that answers the first `failures.length` requests matching `method path` with
 * the given failure (a status with optional Retry-After, or a thrown network error, or
 * no answer until aborted), and passes everything else to the real server. Records every
 * matching attempt.
 */
function failingFetch(method: string, path: string, failures: ({ status: number; retryAfter?: string } | "network" | "hang")[]) {
  const attempts: Attempt[] = [];
  const fetchImpl: FetchLike = async (input, init) => {
    const url = new URL(String(input));
    if (init.method !== method || url.pathname !== path) return fetch(input, init);
    attempts.push({ method, path, at: Date.now() });
    const failure = failures[attempts.length - 1];
    if (failure === undefined) return fetch(input, init);
    if (failure === "network") throw new TypeError("fetch failed", { cause: new Error("read ECONNRESET") });
    if (failure === "hang") {
      return new Promise<Response>((_, reject) => {
        const signal = init.signal!;
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    }
    const headers: Record<string, string> = { "content-type": "application/problem+json", "x-request-id": "injected" };
    if (failure.retryAfter !== undefined) headers["retry-after"] = failure.retryAfter;
    const code = failure.status === 429 ? "rate_limited" : failure.status >= 500 ? "unavailable" : "injected";
    return new Response(JSON.stringify(problemBody(failure.status, code)), { status: failure.status, headers });
  };
  return { fetchImpl, attempts };
}

const newClient = (fetchImpl: FetchLike, extra: Partial<FabricClientOptions> = {}) => new FabricClient({ baseUrl: fabric.restUrl, apiKey: fabric.apiKey, fetch: fetchImpl, ...extra });

describe("retries", () => {
  it("a GET answered 503 with Retry-After is tried again after that delay, and succeeds", async () => {
    const { fetchImpl, attempts } = failingFetch("GET", "/v1/workflows", [{ status: 503, retryAfter: "1" }]);
    const page = await newClient(fetchImpl).workflows.list();
    expect(Array.isArray(page.data)).toBe(true);
    expect(attempts).toHaveLength(2);
    // Not before the server said (a lower bound only: a loaded machine can only make it later).
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it("network errors, 429 and 5xx on GET, PUT and DELETE are retried up to maxRetries (default 2), then thrown", async () => {
    const org = fabric.organizationId;
    const get = failingFetch("GET", `/v1/organizations/${org}/policy`, ["network", { status: 429, retryAfter: "0" }, { status: 502 }]);
    const getErr = await rejection(newClient(get.fetchImpl).policies.get(org));
    expect(getErr).toMatchObject({ status: 502, code: "unavailable" });
    expect(get.attempts).toHaveLength(3);

    // PUT replaces the whole policy: the same request twice has the effect of one.
    const put = failingFetch("PUT", `/v1/organizations/${org}/policy`, [{ status: 503, retryAfter: "0" }]);
    const policy = await newClient(put.fetchImpl).policies.set(org, { allowed_providers: [] });
    expect(policy.organization_id).toBe(org);
    expect(put.attempts).toHaveLength(2);

    const team = await newClient(fetch).teams.create(org, { slug: `retry-${randomUUID().slice(0, 8)}`, name: "Retry" });
    const del = failingFetch("DELETE", `/v1/organizations/${org}/teams/${team.id}`, ["network"]);
    await newClient(del.fetchImpl).teams.delete(org, team.id);
    expect(del.attempts).toHaveLength(2);
    expect((await rejection(newClient(fetch).teams.get(org, team.id))).code).toBe("not_found");
  });

  it("a POST is never retried: it may have taken effect", async () => {
    for (const failure of ["network", { status: 503, retryAfter: "0" }, { status: 429, retryAfter: "0" }] as const) {
      const { fetchImpl, attempts } = failingFetch("POST", "/v1/workflows", [failure]);
      const err = await rejection(newClient(fetchImpl).workflows.upsert(smokeWorkflow));
      expect(err.retryable).toBe(true);
      expect(attempts).toHaveLength(1);
    }
  });

  it("other 4xx are thrown at once", async () => {
    const { fetchImpl, attempts } = failingFetch("GET", "/v1/workflows", []);
    expect((await rejection(newClient(fetchImpl).workflows.list({ page_token: "nope" }))).code).toBe("invalid_argument");
    expect(attempts).toHaveLength(1);
  });

  it("a Retry-After beyond 30 s is not waited for: thrown at once with retryAfterSeconds", async () => {
    const { fetchImpl, attempts } = failingFetch("GET", "/v1/workflows", [{ status: 429, retryAfter: "120" }]);
    const err = await rejection(newClient(fetchImpl).workflows.list());
    expect(err).toMatchObject({ status: 429, code: "rate_limited", retryAfterSeconds: 120 });
    expect(attempts).toHaveLength(1);
  });

  it("maxRetries: 0 turns retries off; RequestOptions.maxRetries overrides the client's", async () => {
    const off = failingFetch("GET", "/v1/workflows", [{ status: 503, retryAfter: "0" }, { status: 503, retryAfter: "0" }]);
    const client = newClient(off.fetchImpl, { maxRetries: 0 });
    expect((await rejection(client.workflows.list())).status).toBe(503);
    expect(off.attempts).toHaveLength(1);
    // The second injected failure, then the server: one retry is enough.
    expect((await client.workflows.list({}, { maxRetries: 1 })).data).toBeDefined();
    expect(off.attempts).toHaveLength(3);

    expect(() => newClient(fetch, { maxRetries: -1 })).toThrow(TypeError);
    expect(() => newClient(fetch, { timeoutMs: 1.5 })).toThrow(TypeError);
  });
});

describe("time limit and cancellation", () => {
  it("a call with no answer fails with timeout after timeoutMs (client default, or per call)", async () => {
    const { fetchImpl, attempts } = failingFetch("GET", "/v1/workflows", ["hang", "hang"]);
    const client = newClient(fetchImpl, { timeoutMs: 200 });
    const err = await rejection(client.workflows.list());
    expect(err).toMatchObject({ status: 0, code: "timeout" });
    expect(err.retryable).toBe(false);
    const perCall = await rejection(newClient(fetchImpl).workflows.list({}, { timeoutMs: 200 }));
    expect(perCall.code).toBe("timeout");
    expect(attempts).toHaveLength(2);
  });

  it("timeoutMs bounds the retries too: a long Retry-After wait ends in timeout", async () => {
    const { fetchImpl, attempts } = failingFetch("GET", "/v1/workflows", [{ status: 503, retryAfter: "20" }]);
    const err = await rejection(newClient(fetchImpl, { timeoutMs: 300 }).workflows.list());
    expect(err.code).toBe("timeout");
    expect(attempts).toHaveLength(1);
  });

  it("aborting the caller's signal rethrows its reason, also while waiting to retry", async () => {
    const { fetchImpl } = failingFetch("GET", "/v1/workflows", ["hang", { status: 503, retryAfter: "20" }]);
    const client = newClient(fetchImpl);
    const reason = new Error("caller gave up");
    const ac = new AbortController();
    setTimeout(() => ac.abort(reason), 50);
    await expect(client.workflows.list({}, { signal: ac.signal })).rejects.toBe(reason);
    const again = new AbortController();
    setTimeout(() => again.abort(reason), 200);
    await expect(client.workflows.list({}, { signal: again.signal })).rejects.toBe(reason);
  });

  it("event streams are not bound by timeoutMs: a watch outlives it", async () => {
    const setup = newClient(fetch);
    const wf = await setup.workflows.upsert(gateWorkflow(`timeout-watch-${randomUUID().slice(0, 8)}`));
    const run = await setup.runs.start({ workflow_id: wf.id, input: { word: "late" } });
    const client = newClient(fetch, { timeoutMs: 300 });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const kinds: string[] = [];
    for await (const ev of client.runs.watch(run.id)) {
      kinds.push(ev.kind);
      // Signal well after the call time limit: the stream must still be there to see the end.
      if (ev.kind === "workflow.node.waiting") timer = setTimeout(() => void setup.runs.signal(run.id, { payload: { approved: true } }), 1_000);
    }
    clearTimeout(timer);
    expect(kinds.at(-1)).toBe("workflow.run.completed");
    expect((await collect(setup.runs.watch(run.id))).at(-1)?.kind).toBe("workflow.run.completed");
  });
});
