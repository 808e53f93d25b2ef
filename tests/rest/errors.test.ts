/**
 * Wire-level error behaviour of the REST edge: problem+json for malformed input,
 * media types, body limits, unknown routes and ids, authentication, tenant isolation,
 * request ids, no internal detail in any error — and a property-based fuzz of the
 * write endpoints (never a 5xx, every answer valid against the OpenAPI document).
 */
import http from "node:http";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openApiDocument } from "../../src/control-plane/contract.js";
import { createOpenApiValidator } from "../../src/control-plane/rest/openapi-validator.js";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { expectValid } from "../helpers/openapi.js";

let fabric: TestFabric;
let seq = 0;
const unique = (base: string) => `${base}-${Date.now().toString(36)}-${++seq}`;
const MiB = 1 << 20;
const validator = createOpenApiValidator(openApiDocument);

beforeAll(async () => {
  fabric = await startTestFabric();
});
afterAll(() => fabric?.close());

/** Internal detail that must never reach a client. */
const leaks: [string, RegExp][] = [
  ["a stack frame", /(^|\\n|\n)\s*at\s+\S+/],
  ["a stack frame location", /\(?[\w./-]+\.(ts|js|mjs):\d+:\d+\)?/],
  ["node_modules", /node_modules/],
  ["SQL", /\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|WHERE)\b/],
  ["the database", /postgres|pglite|drizzle|sqlstate|relation "/i],
];
function expectNoLeak(text: string) {
  for (const [what, re] of leaks) expect(re.test(text), `error body contains ${what}: ${text}`).toBe(false);
}

/** Status, problem+json, the code, request id = header, valid against the document, nothing internal. */
async function expectProblem(res: Response, path: string | null, method: string, status: number, code: string) {
  expect(res.status, `expected ${status} ${code}`).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  const text = await res.clone().text();
  expectNoLeak(text);
  let body: any;
  if (path) body = await expectValid(res, path, method);
  else {
    // No path template (an unknown route): check against the Problem schema itself.
    body = await res.json();
    const validate = validator.forResponse("/healthz", "get", 404, "application/problem+json")!;
    expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
    expect(body.request_id).toBe(res.headers.get("x-request-id"));
  }
  expect(body.code).toBe(code);
  expect(body.status).toBe(status);
  expect(body.type).toBe(`https://fabric.dev/problems/${code}`);
  expect(body.title).toBeTruthy();
  return body;
}

const post = (path: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }) => fabric.rest(path, { method: "POST", headers, body });

/**
 * POST over a fresh connection (no keep-alive pool), optionally streamed in chunks
 * without a Content-Length. Used for oversized bodies, so the 413 tests do not depend
 * on what the server does with a half-read connection (see the keep-alive test).
 */
function rawPost(path: string, body: string, opts: { chunked?: boolean } = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const u = new URL(fabric.restUrl + path);
    const headers: Record<string, string | number> = { authorization: `Bearer ${fabric.apiKey}`, "content-type": "application/json" };
    if (!opts.chunked) headers["content-length"] = Buffer.byteLength(body);
    const req = http.request({ agent: false, host: u.hostname, port: u.port, path: u.pathname, method: "POST", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") h.set(k, v);
        resolve(new Response(Buffer.concat(chunks), { status: res.statusCode!, headers: h }));
      });
    });
    req.on("error", reject);
    if (opts.chunked) {
      const bytes = Buffer.from(body);
      for (let i = 0; i < bytes.length; i += 64 * 1024) req.write(bytes.subarray(i, i + 64 * 1024));
      req.end();
    } else req.end(body);
  });
}

async function createWorkflow(spec: Record<string, unknown>, key?: string) {
  const res = await fabric.rest("/v1/workflows", { method: "POST", json: spec, key });
  expect([200, 201]).toContain(res.status);
  return (await expectValid(res, "/v1/workflows", "post")).data;
}
const noopSpec = (name: string) => ({ name, nodes: [{ key: "a", operation: "workflow.noop", inputs: { v: "$context.v" }, outputs: { v: "$context.out" } }] });
const waitSpec = (name: string) => ({ name, nodes: [{ key: "gate", operation: "workflow.wait_signal" }] });

async function workflowCount(key?: string): Promise<number> {
  let n = 0;
  let token = "";
  for (;;) {
    const body = await expectValid(await fabric.rest(`/v1/workflows?page_size=200${token ? `&page_token=${token}` : ""}`, { key }), "/v1/workflows", "get");
    n += body.data.length;
    token = body.next_page_token;
    if (!token) return n;
  }
}

describe("request bodies", () => {
  it("malformed JSON → 400 malformed_json, on every JSON-body operation", async () => {
    for (const text of ["{", '{"name": "x",}', "{'name': 'x'}", "nul", '{"a":1} trailing', "\u0000"]) {
      await expectProblem(await post("/v1/workflows", text), "/v1/workflows", "post", 400, "malformed_json");
    }
    await expectProblem(await post("/v1/workflows/validate", "[1,"), "/v1/workflows/validate", "post", 400, "malformed_json");
    await expectProblem(await post("/v1/workflow-runs", "{{}"), "/v1/workflow-runs", "post", 400, "malformed_json");
    const id = "00000000-0000-4000-8000-000000000000";
    await expectProblem(await post(`/v1/workflow-runs/${id}/cancel`, "{oops"), "/v1/workflow-runs/{id}/cancel", "post", 400, "malformed_json");
    await expectProblem(await post(`/v1/workflow-runs/${id}/signal`, '{"payload":'), "/v1/workflow-runs/{id}/signal", "post", 400, "malformed_json");
  });

  it("a non-JSON content type → 415 (and the JSON family is accepted)", async () => {
    const json = JSON.stringify(noopSpec(unique("media")));
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data; boundary=x", "application/jsonx"]) {
      await expectProblem(await post("/v1/workflows", json, { "content-type": type }), "/v1/workflows", "post", 415, "unsupported_media_type");
    }
    // No content type at all.
    const untyped = await fabric.rest("/v1/workflows", { method: "POST", body: new Blob([json]) });
    await expectProblem(untyped, "/v1/workflows", "post", 415, "unsupported_media_type");
    await expectProblem(await post("/v1/workflow-runs", "{}", { "content-type": "text/plain" }), "/v1/workflow-runs", "post", 415, "unsupported_media_type");

    for (const type of ["application/json; charset=utf-8", "APPLICATION/JSON", "application/merge-patch+json"]) {
      const res = await post("/v1/workflows", json, { "content-type": type });
      expect([200, 201], type).toContain(res.status);
      await expectValid(res, "/v1/workflows", "post");
    }
  });

  it("a body over the limit (1 MiB) → 413 payload_too_large and nothing stored", async () => {
    const wf = await createWorkflow(noopSpec(unique("huge-run")));
    const before = await workflowCount();
    const name = unique("huge");
    const huge = JSON.stringify({ ...noopSpec(name), description: "x".repeat(MiB + 10) });
    await expectProblem(await rawPost("/v1/workflows", huge), "/v1/workflows", "post", 413, "payload_too_large");
    await expectProblem(await rawPost("/v1/workflows/validate", huge), "/v1/workflows/validate", "post", 413, "payload_too_large");
    await expectProblem(await rawPost("/v1/workflow-runs", JSON.stringify({ workflow_id: wf.id, input: { blob: "y".repeat(MiB) } })), "/v1/workflow-runs", "post", 413, "payload_too_large");
    // Chunked, without a Content-Length: the limit holds while streaming too.
    await expectProblem(await rawPost("/v1/workflows", huge, { chunked: true }), "/v1/workflows", "post", 413, "payload_too_large");
    // Much larger than the limit: refused without reading it all.
    await expectProblem(await rawPost("/v1/workflows", JSON.stringify({ ...noopSpec(name), description: "z".repeat(16 * MiB) })), "/v1/workflows", "post", 413, "payload_too_large");

    expect(await workflowCount()).toBe(before);
    expect((await expectValid(await fabric.rest(`/v1/workflows?name=${name}`), "/v1/workflows", "get")).data).toEqual([]);
    expect((await expectValid(await fabric.rest(`/v1/workflow-runs?workflow_id=${wf.id}`), "/v1/workflow-runs", "get")).data).toEqual([]);
  });

  it("a body just under the limit is read (and a spec over 256 KiB is refused as too_large, 400)", async () => {
    const body = JSON.stringify({ ...noopSpec(unique("almost")), description: "x".repeat(MiB - 200) });
    expect(body.length).toBeLessThan(MiB);
    const problem = await expectProblem(await rawPost("/v1/workflows", body), "/v1/workflows", "post", 400, "invalid_argument");
    expect(problem.issues.map((i: any) => i.code)).toContain("too_large");
    const chunked = await expectProblem(await rawPost("/v1/workflows", body, { chunked: true }), "/v1/workflows", "post", 400, "invalid_argument");
    expect(chunked.issues.map((i: any) => i.code)).toContain("too_large");
  });

  it("a 413 does not break the client's kept-alive connection (it is answered and the next request works)", async () => {
    // A 413 answered before the body is read must not leave a keep-alive connection the
    // server then drops: either say `Connection: close` or read the rest of the body.
    const huge = JSON.stringify({ ...noopSpec(unique("keepalive")), description: "x".repeat(MiB + 10) });
    const failures: string[] = [];
    for (let i = 0; i < 4; i++) {
      try {
        const res = await fabric.rest("/v1/workflows", { method: "POST", headers: { "content-type": "application/json" }, body: huge });
        await expectProblem(res, "/v1/workflows", "post", 413, "payload_too_large");
      } catch (err) {
        failures.push(`oversized POST #${i}: ${(err as any).cause?.message ?? err}`);
      }
      try {
        const next = await fabric.rest("/v1/workflows?page_size=1");
        expect(next.status).toBe(200);
        await expectValid(next, "/v1/workflows", "get");
      } catch (err) {
        failures.push(`request after 413 #${i}: ${(err as any).cause?.message ?? err}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it("strings PostgreSQL cannot store (NUL, lone surrogates) are a 400 or stored faithfully — never a 500", async () => {
    const wf = await createWorkflow(noopSpec(unique("nul")));
    const cases: [string, string, string][] = [
      ["/v1/workflows", "post", JSON.stringify({ ...noopSpec(unique("nul-desc")), description: "a\u0000b" })],
      ["/v1/workflows", "post", JSON.stringify({ name: unique("nul-cfg"), nodes: [{ key: "a", operation: "workflow.noop", config: { "k\u0000": 1 } }] })],
      ["/v1/workflow-runs", "post", JSON.stringify({ workflow_id: wf.id, input: { v: "x\u0000y" } })],
      ["/v1/workflow-runs", "post", JSON.stringify({ workflow_id: wf.id, idempotency_key: "k\u0000" })],
      ["/v1/workflow-runs", "post", JSON.stringify({ workflow_name: "n\u0000" })],
      ["/v1/workflow-runs", "post", `{"workflow_id":"${wf.id}","input":{"v":"\\ud800"}}`],
      ["/v1/workflows", "post", `{"name":"${unique("surrogate")}","description":"\\udfff","nodes":[{"key":"a","operation":"workflow.noop"}]}`],
    ];
    const failures: string[] = [];
    for (const [path, method, body] of cases) {
      const res = await post(path, body);
      if (res.status >= 500) failures.push(`${res.status} for POST ${path} ${body.slice(0, 120)}`);
      await expectValid(res, path, method);
    }
    for (const query of ["/v1/workflows?name=a%00b", "/v1/workflow-runs?workflow_name=a%00b"]) {
      const res = await fabric.rest(query);
      if (res.status >= 500) failures.push(`${res.status} for GET ${query}`);
      await expectValid(res, query.startsWith("/v1/workflows") ? "/v1/workflows" : "/v1/workflow-runs", "get");
    }
    expect(failures).toEqual([]);
  });

  it("a page_token that decodes but holds garbage is a 400, not a 500", async () => {
    const token = (c: unknown) => Buffer.from(JSON.stringify(c)).toString("base64url");
    const uuid = "00000000-0000-4000-8000-000000000000";
    const tokens = [token({ t: "2020-01-01T00:00:00.000Z", id: "not-a-uuid" }), token({ t: "+275760-09-13T00:00:00.000Z", id: uuid }), token({ t: "-271821-04-20T00:00:00.000Z", id: uuid })];
    const failures: string[] = [];
    for (const path of ["/v1/workflows", "/v1/workflow-runs"]) {
      for (const t of tokens) {
        const res = await fabric.rest(`${path}?page_token=${t}`);
        if (res.status !== 400) failures.push(`${res.status} for GET ${path}?page_token=${Buffer.from(t, "base64url").toString()}`);
        await expectValid(res, path, "get");
      }
    }
    expect(failures).toEqual([]);
  });
});

describe("routes and ids", () => {
  it("an unknown route → 404 route_not_found", async () => {
    for (const path of ["/v1/nope", "/v2/workflows", "/v1/workflows/x/y/z", "/", "/v1/workflow-runs/x/explode"]) {
      // GETs outside /v1 are the console's (tests/console/serving.test.ts); API paths and other methods are not.
      if (path.startsWith("/v1/")) await expectProblem(await fabric.rest(path), null, "get", 404, "route_not_found");
      await expectProblem(await fabric.rest(path, { method: "POST", json: {} }), null, "post", 404, "route_not_found");
    }
    // Even without credentials, an unknown route is a problem, not an HTML page.
    await expectProblem(await fabric.rest("/v1/nope", { key: null }), null, "get", 404, "route_not_found");
    // The client normalises this to /package.json, a console route: the page, never the file.
    const traversal = await fabric.rest("/docs/assets/../../package.json");
    expect(await traversal.text()).not.toContain("devDependencies");
    await expectProblem(await fabric.rest("/docs/assets/secret.js"), null, "get", 404, "route_not_found");
  });

  it("a method a known path does not have is a problem+json 405 with Allow", async () => {
    for (const [method, path, allow] of [
      ["DELETE", "/v1/workflows", "POST, GET"],
      ["PUT", "/v1/workflow-runs", "POST, GET"],
      ["PATCH", "/v1/workflows/00000000-0000-4000-8000-000000000000", "GET"],
      ["GET", "/v1/workflow-runs/00000000-0000-4000-8000-000000000000/cancel", "POST"],
    ] as const) {
      const res = await fabric.rest(path, { method });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get("allow")).toBe(allow);
      await expectProblem(res, null, method, 405, "method_not_allowed");
    }
  });

  it("an unknown id and a non-UUID id → 404 not_found, for every operation on an id", async () => {
    const ids = ["00000000-0000-4000-8000-000000000000", "not-a-uuid", "1", "%27%3B%20DROP%20TABLE%20workflow_runs%3B--"];
    for (const id of ids) {
      await expectProblem(await fabric.rest(`/v1/workflows/${id}`), "/v1/workflows/{id}", "get", 404, "not_found");
      await expectProblem(await fabric.rest(`/v1/workflow-runs/${id}`), "/v1/workflow-runs/{id}", "get", 404, "not_found");
      await expectProblem(await fabric.rest(`/v1/workflow-runs/${id}/events`), "/v1/workflow-runs/{id}/events", "get", 404, "not_found");
      for (const action of ["cancel", "pause", "resume", "signal", "rerun"]) {
        await expectProblem(await fabric.rest(`/v1/workflow-runs/${id}/${action}`, { method: "POST", json: {} }), `/v1/workflow-runs/{id}/${action}`, "post", 404, "not_found");
      }
    }
  });
});

describe("authentication", () => {
  const operations = Object.entries<Record<string, any>>(openApiDocument.paths).flatMap(([path, item]) =>
    Object.entries<any>(item)
      // Every operation with credentials required (sign-up, login and refresh are anonymous by design).
      .filter(([, op]) => op["x-fabric-rpc"] && !(Array.isArray(op.security) && op.security.length === 0))
      .map(([method]) => ({ method: method.toUpperCase(), path, url: path.replace(/\{\w+\}/g, "00000000-0000-4000-8000-000000000000") })),
  );

  it("no credentials → 401 unauthenticated on every API operation", async () => {
    expect(operations.length).toBeGreaterThanOrEqual(12);
    for (const op of operations) {
      const res = await fabric.rest(op.url, { method: op.method, key: null, ...(op.method === "POST" ? { json: {} } : {}) });
      await expectProblem(res, op.path, op.method, 401, "unauthenticated");
    }
  });

  it("a 401 carries a WWW-Authenticate challenge (RFC 9110 §15.5.2)", async () => {
    const res = await fabric.rest("/v1/workflows", { key: null });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate") ?? "").toMatch(/^Bearer\b/i);
  });

  it("a bad key or a malformed Authorization header → 401 unauthenticated", async () => {
    const real = fabric.apiKey;
    const wrongSecret = real.slice(0, -1) + (real.endsWith("a") ? "b" : "a");
    const unknownPrefix = `fab_zzzzzzzz_${"A".repeat(32)}`;
    const headers = [
      `Bearer ${wrongSecret}`,
      `Bearer ${unknownPrefix}`,
      "Bearer",
      "Bearer ",
      "Bearer fab_short",
      `Bearer ${real} extra`,
      `Basic ${Buffer.from("user:pass").toString("base64")}`,
      real,
      `Token ${real}`,
      `Bearer ${real.toUpperCase()}`,
      "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    ];
    for (const authorization of headers) {
      const res = await fetch(`${fabric.restUrl}/v1/workflows`, { headers: { authorization } });
      await expectProblem(res, "/v1/workflows", "get", 401, "unauthenticated");
    }
    // The real key still works (no lock-out side effect).
    expect((await fabric.rest("/v1/workflows")).status).toBe(200);
  });

  it("X-Principal-Id (development only) must name a member principal", async () => {
    for (const principal of ["not-a-uuid", "00000000-0000-4000-8000-000000000000"]) {
      const res = await fetch(`${fabric.restUrl}/v1/workflows`, { headers: { "x-principal-id": principal } });
      await expectProblem(res, "/v1/workflows", "get", 401, "unauthenticated");
    }
    const ok = await fetch(`${fabric.restUrl}/v1/workflows`, { headers: { "x-principal-id": fabric.principalId } });
    expect(ok.status).toBe(200);
    await expectValid(ok, "/v1/workflows", "get");
  });
});

describe("tenant isolation", () => {
  it("another organization's key gets 404 for this organization's workflow and runs, and does not see them in lists", async () => {
    const other = await fabric.otherOrg();
    const key = other.apiKey;
    const wf = await createWorkflow(waitSpec(unique("private")));
    const started = await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: wf.id } });
    const live = (await expectValid(started, "/v1/workflow-runs", "post")).data;
    await eventually(async () => {
      const r = (await expectValid(await fabric.rest(`/v1/workflow-runs/${live.id}`), "/v1/workflow-runs/{id}", "get")).data;
      return r.status === "waiting" ? r : undefined;
    });
    const doneWf = await createWorkflow(noopSpec(unique("private-done")));
    const done = (await expectValid(await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: doneWf.id, input: { v: 1 } } }), "/v1/workflow-runs", "post")).data;
    await eventually(async () => {
      const r = (await expectValid(await fabric.rest(`/v1/workflow-runs/${done.id}`), "/v1/workflow-runs/{id}", "get")).data;
      return r.status === "completed" ? r : undefined;
    });

    await expectProblem(await fabric.rest(`/v1/workflows/${wf.id}`, { key }), "/v1/workflows/{id}", "get", 404, "not_found");
    for (const run of [live, done]) {
      await expectProblem(await fabric.rest(`/v1/workflow-runs/${run.id}`, { key }), "/v1/workflow-runs/{id}", "get", 404, "not_found");
      await expectProblem(await fabric.rest(`/v1/workflow-runs/${run.id}/events`, { key }), "/v1/workflow-runs/{id}/events", "get", 404, "not_found");
      for (const action of ["cancel", "pause", "resume", "signal", "rerun"]) {
        await expectProblem(await fabric.rest(`/v1/workflow-runs/${run.id}/${action}`, { method: "POST", json: {}, key }), `/v1/workflow-runs/{id}/${action}`, "post", 404, "not_found");
      }
    }
    // Nor can it start runs of this organization's workflow, by id or by name.
    await expectProblem(await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: wf.id }, key }), "/v1/workflow-runs", "post", 404, "not_found");
    await expectProblem(await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_name: wf.name }, key }), "/v1/workflow-runs", "post", 404, "not_found");

    // Lists: nothing of ours, whatever the filter.
    for (const q of ["", `?name=${wf.name}`]) expect((await expectValid(await fabric.rest(`/v1/workflows${q}`, { key }), "/v1/workflows", "get")).data).toEqual([]);
    for (const q of ["", `?workflow_id=${wf.id}`, `?workflow_name=${wf.name}`, "?status=waiting", "?status=completed"]) {
      expect((await expectValid(await fabric.rest(`/v1/workflow-runs${q}`, { key }), "/v1/workflow-runs", "get")).data).toEqual([]);
    }

    // The cross-tenant attempts changed nothing.
    expect((await expectValid(await fabric.rest(`/v1/workflow-runs/${live.id}`), "/v1/workflow-runs/{id}", "get")).data.status).toBe("waiting");

    // And the other organization's own workflow of the same name is its own (a separate v1).
    const theirs = await createWorkflow(waitSpec(wf.name), key);
    expect(theirs.version).toBe(1);
    expect(theirs.id).not.toBe(wf.id);
    expect(theirs.organization_id).toBe(other.organizationId);
    expect((await expectValid(await fabric.rest(`/v1/workflows?name=${wf.name}`), "/v1/workflows", "get")).data.map((w: any) => w.id)).toEqual([wf.id]);

    await expectValid(await fabric.rest(`/v1/workflow-runs/${live.id}/cancel`, { method: "POST", json: {} }), "/v1/workflow-runs/{id}/cancel", "post");
  });
});

describe("request ids", () => {
  it("every error's request_id equals the X-Request-Id header, unique per request", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const res = await fabric.rest("/v1/workflows/nope");
      const body = await expectProblem(res, "/v1/workflows/{id}", "get", 404, "not_found");
      expect(body.request_id).toMatch(/^[0-9a-f-]{36}$/);
      seen.add(body.request_id);
    }
    expect(seen.size).toBe(5);
    const ok = await fabric.rest("/v1/workflows");
    expect(ok.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("a client-provided X-Request-Id is echoed, on errors (body and header) and successes", async () => {
    const id = `client-req.${Date.now()}:1`;
    const err = await fabric.rest("/v1/workflow-runs/nope", { headers: { "x-request-id": id } });
    expect(err.headers.get("x-request-id")).toBe(id);
    expect((await expectProblem(err, "/v1/workflow-runs/{id}", "get", 404, "not_found")).request_id).toBe(id);

    const unauth = await fabric.rest("/v1/workflows", { key: null, headers: { "x-request-id": id } });
    expect((await expectProblem(unauth, "/v1/workflows", "get", 401, "unauthenticated")).request_id).toBe(id);

    const bad = await post("/v1/workflows", "{", { "content-type": "application/json", "x-request-id": id });
    expect((await expectProblem(bad, "/v1/workflows", "post", 400, "malformed_json")).request_id).toBe(id);

    const route = await fabric.rest("/v1/nowhere", { headers: { "x-request-id": id } });
    expect((await expectProblem(route, null, "get", 404, "route_not_found")).request_id).toBe(id);

    const ok = await fabric.rest("/v1/workflows", { headers: { "x-request-id": id } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-request-id")).toBe(id);
    await expectValid(ok, "/v1/workflows", "get");

    expect((await fetch(`${fabric.restUrl}/healthz`, { headers: { "x-request-id": id } })).headers.get("x-request-id")).toBe(id);
  });

  it("an unusable X-Request-Id is replaced by a fresh one, not echoed", async () => {
    for (const given of ["has space", "x".repeat(129), "<script>", "a\tb", "ünïcode"]) {
      const res = await fetch(`${fabric.restUrl}/v1/workflows/nope`, { headers: { authorization: `Bearer ${fabric.apiKey}`, "x-request-id": encodeURI(given) === given ? given : encodeURI(given) } });
      const header = res.headers.get("x-request-id")!;
      expect(header).toMatch(/^[0-9a-f-]{36}$/);
      expect((await expectProblem(res, "/v1/workflows/{id}", "get", 404, "not_found")).request_id).toBe(header);
    }
  });
});

describe("fuzz: random JSON bodies never cause a 5xx", () => {
  const str = fc.oneof(
    fc.string(),
    fc.string({ unit: "grapheme" }),
    fc.constantFrom("", "$context", "$context.a", "$context..x", "$ctx.a", "$$lit", "context.a", "*", "a", "b", "text.transform_basic", "workflow.noop", "workflow.wait_signal", "ai.generate", "upper", "replace", "deep_merge", "append", "native", "provider"),
  );
  const json = fc.jsonValue({ maxDepth: 4, stringUnit: "grapheme" });
  const value = fc.oneof(json, str, fc.integer({ min: -(2 ** 33), max: 2 ** 33 }), fc.double(), fc.boolean(), fc.constant(null));
  const object = (keys: string[]) => fc.dictionary(fc.oneof(fc.constantFrom(...keys), str), value, { maxKeys: 5 });
  const node = fc.record(
    {
      key: fc.oneof(fc.constantFrom("a", "b", "c"), str, value),
      operation: fc.oneof(fc.constantFrom("workflow.noop", "text.transform_basic", "workflow.wait_signal", "workflow.fan_in", "ai.generate", "nope"), value),
      runtime: fc.oneof(fc.constantFrom("native", "provider", ""), value),
      config: fc.oneof(object(["op", "timeout_ms", "provider", "values", "schema"]), value),
      inputs: fc.oneof(object(["text", "prompt", "value"]), value),
      outputs: fc.oneof(fc.dictionary(fc.oneof(fc.constantFrom("*", "text", "v"), str), fc.oneof(str, value), { maxKeys: 3 }), value),
      depends_on: fc.oneof(fc.array(fc.oneof(fc.constantFrom("a", "b", "c"), str), { maxLength: 3 }), value),
      merge: fc.oneof(fc.constantFrom("replace", "deep_merge", "append", ""), value),
      policy: fc.oneof(
        fc.record({ max_attempts: fc.oneof(fc.integer({ min: -5, max: 30 }), value), timeout_ms: fc.oneof(fc.integer(), value), retry_on: fc.oneof(fc.array(str, { maxLength: 3 }), value), backoff: fc.oneof(object(["initial_ms", "factor", "max_ms", "jitter"]), value) }, { requiredKeys: [] }),
        value,
      ),
    },
    { requiredKeys: [] },
  );
  const spec = fc.record(
    {
      name: fc.oneof(fc.constantFrom("fuzz", "fuzz-a", "fuzz.b"), str, value),
      description: fc.oneof(str, value),
      nodes: fc.oneof(fc.array(node, { maxLength: 4 }), value),
      run_timeout_ms: fc.oneof(fc.integer({ min: -10, max: 2 ** 31 }), value),
    },
    { requiredKeys: [] },
  );

  let workflowId = "";
  const failures: string[] = [];
  beforeAll(async () => {
    workflowId = (await createWorkflow(noopSpec(unique("fuzz-target")))).id;
  });

  async function check(path: string, body: unknown) {
    const res = await post(path, JSON.stringify(body));
    const text = await res.clone().text();
    if (res.status >= 500) failures.push(`${res.status} for POST ${path} ${JSON.stringify(body).slice(0, 300)}`);
    expect(res.status, `POST ${path} ${JSON.stringify(body)}\n→ ${text}`).toBeLessThan(500);
    if (res.status >= 400) expectNoLeak(text);
    await expectValid(res, path, "post");
  }

  it("POST /v1/workflows: 50 random bodies", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(json, spec), (body) => check("/v1/workflows", body)),
      { numRuns: 50 },
    );
  });

  it("POST /v1/workflows/validate: 50 random bodies", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(json, spec), (body) => check("/v1/workflows/validate", body)),
      { numRuns: 50 },
    );
  });

  it("POST /v1/workflow-runs: 50 random bodies", async () => {
    const start = fc.record(
      {
        workflow_id: fc.oneof(fc.constant(workflowId), fc.uuid(), str, value),
        workflow_name: fc.oneof(fc.constantFrom("fuzz", "nope"), str, value),
        workflow_version: fc.oneof(fc.integer({ min: -3, max: 3 }), value),
        input: fc.oneof(object(["v", "topic"]), value),
        idempotency_key: fc.oneof(fc.constantFrom("k1", "k2"), str, value),
        priority: fc.oneof(fc.integer({ min: -5, max: 105 }), value),
        state: value,
        metadata: fc.oneof(object(["team"]), value),
        fail_fast: fc.oneof(fc.boolean(), value),
        timeout_ms: fc.oneof(fc.integer({ min: -10, max: 2 ** 31 }), value),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(json, start), (body) => check("/v1/workflow-runs", body)),
      { numRuns: 50 },
    );
  });
});
