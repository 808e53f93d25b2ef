/**
 * Wire-level tests of the workflow-definition REST surface: upsert (versioning and
 * idempotence), get, list (filter + keyset pagination), validate, and every way a spec
 * is rejected. Every response is checked against the OpenAPI document.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { expectValid } from "../helpers/openapi.js";

let fabric: TestFabric;
let seq = 0;
const unique = (base: string) => `${base}-${Date.now().toString(36)}-${++seq}`;

beforeAll(async () => {
  fabric = await startTestFabric({ worker: false });
});
afterAll(() => fabric?.close());

const upsert = (spec: unknown) => fabric.rest("/v1/workflows", { method: "POST", json: spec });
const validate = (spec: unknown) => fabric.rest("/v1/workflows/validate", { method: "POST", json: spec });

async function expectProblem(res: Response, path: string, method: string, status: number, code: string) {
  expect(res.status, `expected ${status} ${code}`).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  const body = await expectValid(res, path, method);
  expect(body.code).toBe(code);
  expect(body.status).toBe(status);
  return body;
}

/** Every definition of the organization, walking all pages. */
async function allWorkflows(query = ""): Promise<any[]> {
  const out: any[] = [];
  let token = "";
  for (let i = 0; i < 100; i++) {
    const res = await fabric.rest(`/v1/workflows?page_size=200${query}${token ? `&page_token=${encodeURIComponent(token)}` : ""}`);
    expect(res.status).toBe(200);
    const body = await expectValid(res, "/v1/workflows", "get");
    out.push(...body.data);
    token = body.next_page_token;
    if (!token) return out;
  }
  throw new Error("pagination did not end");
}

const simpleSpec = (name: string) => ({
  name,
  description: "upper-cases the topic",
  nodes: [{ key: "shout", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.topic" }, outputs: { text: "$context.shouted" } }],
});

describe("POST /v1/workflows (upsert)", () => {
  it("creates version 1 with 201 and returns the stored spec with defaults made explicit", async () => {
    const name = unique("create");
    const res = await upsert(simpleSpec(name));
    expect(res.status).toBe(201);
    const { data } = await expectValid(res, "/v1/workflows", "post");
    expect(data.name).toBe(name);
    expect(data.version).toBe(1);
    expect(data.organization_id).toBe(fabric.organizationId);
    expect(data.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(data.create_time)).not.toBeNaN();
    expect(data.spec.name).toBe(name);
    expect(data.spec.nodes[0]).toMatchObject({ key: "shout", operation: "text.transform_basic", runtime: "native", merge: "replace", config: { op: "upper" } });
  });

  it("returns the same version with 200 for an identical spec, even reordered or with defaults written out", async () => {
    const name = unique("same");
    const first = await upsert(simpleSpec(name));
    expect(first.status).toBe(201);
    const v1 = (await expectValid(first, "/v1/workflows", "post")).data;

    const again = await upsert(simpleSpec(name));
    expect(again.status).toBe(200);
    expect((await expectValid(again, "/v1/workflows", "post")).data).toMatchObject({ id: v1.id, version: 1 });

    // Same spec, keys in a different order at every level, defaults written explicitly.
    const reordered = {
      nodes: [
        {
          outputs: { text: "$context.shouted" },
          merge: "replace",
          runtime: "native",
          depends_on: [],
          inputs: { text: "$context.topic" },
          config: { op: "upper" },
          operation: "text.transform_basic",
          key: "shout",
        },
      ],
      description: "upper-cases the topic",
      name,
    };
    const third = await upsert(reordered);
    expect(third.status).toBe(200);
    expect((await expectValid(third, "/v1/workflows", "post")).data).toMatchObject({ id: v1.id, version: 1 });

    expect(await allWorkflows(`&name=${name}`)).toHaveLength(1);
  });

  it("empty defaults written out (inputs: {}, config: {}, policy: {}) are the same spec: 200, same version", async () => {
    const name = unique("empty-defaults");
    const base = { name, nodes: [{ key: "a", operation: "workflow.noop" }] };
    const v1 = (await expectValid(await upsert(base), "/v1/workflows", "post")).data;
    const variants: [string, Record<string, unknown>][] = [
      ["inputs: {}", { inputs: {} }],
      ["config: {}", { config: {} }],
      ["outputs: {}", { outputs: {} }],
      ["policy: {}", { policy: {} }],
      ["policy: {retry_on: []}", { policy: { retry_on: [] } }],
      ['description: ""', {}],
    ];
    const got: string[] = [];
    for (const [what, extra] of variants) {
      const spec = what.startsWith("description") ? { ...base, description: "" } : { name, nodes: [{ ...base.nodes[0], ...extra }] };
      const res = await upsert(spec);
      const { data } = await expectValid(res, "/v1/workflows", "post");
      got.push(`${what} → ${res.status} v${data.version}`);
      // Put the base spec back on top, so each variant is compared with it.
      if (data.version !== v1.version) await upsert(base);
    }
    expect(got).toEqual(variants.map(([what]) => `${what} → 200 v1`));
  });

  it("stores version 2 with 201 when the spec changes, and a changed-back spec is version 3", async () => {
    const name = unique("change");
    const v1 = (await expectValid(await upsert(simpleSpec(name)), "/v1/workflows", "post")).data;
    const changed = simpleSpec(name);
    changed.nodes[0]!.config.op = "lower";
    const res = await upsert(changed);
    expect(res.status).toBe(201);
    const v2 = (await expectValid(res, "/v1/workflows", "post")).data;
    expect(v2.version).toBe(2);
    expect(v2.id).not.toBe(v1.id);
    expect(v2.spec.nodes[0].config.op).toBe("lower");

    // Only the latest version counts as "identical": going back to v1's spec is a new version.
    const back = await upsert(simpleSpec(name));
    expect(back.status).toBe(201);
    expect((await expectValid(back, "/v1/workflows", "post")).data.version).toBe(3);

    // Versions are immutable: v1 is still what it was.
    const got = (await expectValid(await fabric.rest(`/v1/workflows/${v1.id}`), "/v1/workflows/{id}", "get")).data;
    expect(got.version).toBe(1);
    expect(got.spec.nodes[0].config.op).toBe("upper");
  });

  it("a description-only change is a new version", async () => {
    const name = unique("desc");
    await expectValid(await upsert(simpleSpec(name)), "/v1/workflows", "post");
    const res = await upsert({ ...simpleSpec(name), description: "something else" });
    expect(res.status).toBe(201);
    expect((await expectValid(res, "/v1/workflows", "post")).data.version).toBe(2);
  });
});

describe("GET /v1/workflows/{id}", () => {
  it("returns the definition by id", async () => {
    const name = unique("get");
    const created = (await expectValid(await upsert(simpleSpec(name)), "/v1/workflows", "post")).data;
    const res = await fabric.rest(`/v1/workflows/${created.id}`);
    expect(res.status).toBe(200);
    const { data } = await expectValid(res, "/v1/workflows/{id}", "get");
    expect(data).toEqual(created);
  });

  it("404 not_found for an unknown UUID and for a non-UUID id", async () => {
    await expectProblem(await fabric.rest("/v1/workflows/00000000-0000-4000-8000-000000000000"), "/v1/workflows/{id}", "get", 404, "not_found");
    await expectProblem(await fabric.rest("/v1/workflows/not-a-uuid"), "/v1/workflows/{id}", "get", 404, "not_found");
  });
});

describe("GET /v1/workflows (list)", () => {
  it("filters by name, newest first", async () => {
    const name = unique("filter");
    const other = unique("filter-other");
    const v1 = (await expectValid(await upsert(simpleSpec(name)), "/v1/workflows", "post")).data;
    await expectValid(await upsert(simpleSpec(other)), "/v1/workflows", "post");
    const v2 = (await expectValid(await upsert({ ...simpleSpec(name), description: "v2" }), "/v1/workflows", "post")).data;

    const res = await fabric.rest(`/v1/workflows?name=${encodeURIComponent(name)}`);
    expect(res.status).toBe(200);
    const body = await expectValid(res, "/v1/workflows", "get");
    expect(body.data.map((w: any) => [w.name, w.version])).toEqual([
      [name, 2],
      [name, 1],
    ]);
    expect(body.data.map((w: any) => w.id)).toEqual([v2.id, v1.id]);
    expect(body.next_page_token).toBe("");

    const none = await expectValid(await fabric.rest(`/v1/workflows?name=${unique("nothing")}`), "/v1/workflows", "get");
    expect(none.data).toEqual([]);
    expect(none.next_page_token).toBe("");
  });

  it("page_size=1 walks every page exactly once; next_page_token is empty at the end", async () => {
    const name = unique("pages");
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await expectValid(await upsert({ ...simpleSpec(name), description: `v${i + 1}` }), "/v1/workflows", "post")).data.id);

    const seen: string[] = [];
    let token = "";
    for (let page = 0; page < 10; page++) {
      const res = await fabric.rest(`/v1/workflows?name=${name}&page_size=1${token ? `&page_token=${encodeURIComponent(token)}` : ""}`);
      expect(res.status).toBe(200);
      const body = await expectValid(res, "/v1/workflows", "get");
      expect(body.data.length).toBeLessThanOrEqual(1);
      seen.push(...body.data.map((w: any) => w.id));
      token = body.next_page_token;
      if (!token) break;
    }
    expect(token).toBe("");
    expect(seen).toEqual([...ids].reverse());

    // Without a filter too: all pages of page_size=1 equal one big page.
    const big = await allWorkflows();
    const walked: string[] = [];
    token = "";
    for (let page = 0; page < big.length + 2; page++) {
      const body = await expectValid(await fabric.rest(`/v1/workflows?page_size=1${token ? `&page_token=${encodeURIComponent(token)}` : ""}`), "/v1/workflows", "get");
      walked.push(...body.data.map((w: any) => w.id));
      token = body.next_page_token;
      if (!token) break;
    }
    expect(token).toBe("");
    expect(walked).toEqual(big.map((w) => w.id));
  });

  it("400 for a garbage page_token", async () => {
    for (const token of ["garbage", "%%%", Buffer.from('{"t":"x","id":"y"}').toString("base64url"), Buffer.from("[]").toString("base64url")]) {
      const res = await fabric.rest(`/v1/workflows?page_token=${encodeURIComponent(token)}`);
      const body = await expectProblem(res, "/v1/workflows", "get", 400, "invalid_argument");
      expect(body.issues?.[0]?.path).toBe("/page_token");
    }
  });

  it("400 for an out-of-range or non-integer page_size, and for an unknown query parameter", async () => {
    for (const q of ["page_size=201", "page_size=-1", "page_size=abc", "page_size=1.5", "bogus=1"]) {
      await expectProblem(await fabric.rest(`/v1/workflows?${q}`), "/v1/workflows", "get", 400, "invalid_argument");
    }
  });
});

describe("POST /v1/workflows/validate", () => {
  it("valid:true and no issues for a good spec, and nothing is stored", async () => {
    const name = unique("validate-ok");
    const res = await validate(simpleSpec(name));
    expect(res.status).toBe(200);
    const body = await expectValid(res, "/v1/workflows/validate", "post");
    expect(body.data).toEqual({ valid: true, issues: [] });
    expect(await allWorkflows(`&name=${name}`)).toEqual([]);
  });

  it("valid:false with every issue for a bad spec (200, not an error)", async () => {
    const res = await validate({
      name: "bad name!",
      nodes: [
        { key: "a", operation: "no.such.op" },
        { key: "a", operation: "workflow.noop", depends_on: ["ghost"] },
      ],
    });
    expect(res.status).toBe(200);
    const body = await expectValid(res, "/v1/workflows/validate", "post");
    expect(body.data.valid).toBe(false);
    const got = body.data.issues.map((i: any) => [i.path, i.code]);
    expect(got).toEqual(
      expect.arrayContaining([
        ["/name", "invalid_value"],
        ["/nodes/0/operation", "unknown_operation"],
        ["/nodes/1/key", "duplicate_key"],
        ["/nodes/1/depends_on/0", "unknown_dependency"],
      ]),
    );
    for (const issue of body.data.issues) expect(issue.message).toBeTruthy();
  });

  it("schema violations in the body are 400, as for upsert", async () => {
    await expectProblem(await validate({ name: "x", nodes: [], extra: 1 }), "/v1/workflows/validate", "post", 400, "invalid_argument");
    await expectProblem(await validate({ name: 1, nodes: [] }), "/v1/workflows/validate", "post", 400, "invalid_argument");
  });
});

describe("rejected specs: 400 invalid_argument with issues, nothing stored", () => {
  const node = (over: Record<string, unknown> = {}) => ({ key: "a", operation: "workflow.noop", ...over });
  const cases: { what: string; nodes: unknown[]; issues: [string, string][]; name?: string }[] = [
    {
      what: "a cycle",
      nodes: [node({ key: "a", depends_on: ["c"] }), node({ key: "b", depends_on: ["a"] }), node({ key: "c", depends_on: ["b"] })],
      issues: [["/nodes", "cycle"]],
    },
    { what: "a self-dependency", nodes: [node({ key: "a", depends_on: ["a"] })], issues: [["/nodes/0/depends_on/0", "cycle"]] },
    { what: "an unknown dependency", nodes: [node({ key: "a" }), node({ key: "b", depends_on: ["a", "nope"] })], issues: [["/nodes/1/depends_on/1", "unknown_dependency"]] },
    { what: "a duplicate key", nodes: [node({ key: "a" }), node({ key: "b" }), node({ key: "a" })], issues: [["/nodes/2/key", "duplicate_key"]] },
    { what: "a dependency listed twice", nodes: [node({ key: "a" }), node({ key: "b", depends_on: ["a", "a"] })], issues: [["/nodes/1/depends_on/1", "duplicate_key"]] },
    { what: 'input binding "$context..x"', nodes: [node({ inputs: { v: "$context..x" } })], issues: [["/nodes/0/inputs/v", "malformed_binding"]] },
    { what: 'input binding "$ctx.a"', nodes: [node({ inputs: { v: "$ctx.a" } })], issues: [["/nodes/0/inputs/v", "malformed_binding"]] },
    { what: 'output target "context.a"', nodes: [node({ outputs: { x: "context.a" } })], issues: [["/nodes/0/outputs/x", "malformed_binding"]] },
    { what: "whole-context output without deep_merge", nodes: [node({ outputs: { "*": "$context" } })], issues: [["/nodes/0/outputs/*", "malformed_binding"]] },
    { what: "an unknown operation", nodes: [node({ operation: "ai.teleport" })], issues: [["/nodes/0/operation", "unknown_operation"]] },
    { what: "a runtime that does not match the operation", nodes: [node({ runtime: "provider" })], issues: [["/nodes/0/runtime", "invalid_value"]] },
    { what: "a bad text.transform_basic config.op", nodes: [node({ operation: "text.transform_basic", config: { op: "reverse" } })], issues: [["/nodes/0/config/op", "invalid_value"]] },
    { what: "a missing text.transform_basic config.op", nodes: [node({ operation: "text.transform_basic" })], issues: [["/nodes/0/config/op", "invalid_value"]] },
    { what: "a bad wait_signal config.timeout_ms", nodes: [node({ operation: "workflow.wait_signal", config: { timeout_ms: 0 } })], issues: [["/nodes/0/config/timeout_ms", "invalid_value"]] },
    {
      what: "policy bounds",
      nodes: [node({ policy: { max_attempts: 0, timeout_ms: 0, backoff: { initial_ms: -1, max_ms: 3_600_001, factor: 0.5, jitter: 2 } } }), node({ key: "b", policy: { max_attempts: 21 } })],
      issues: [
        ["/nodes/0/policy/max_attempts", "invalid_value"],
        ["/nodes/0/policy/timeout_ms", "invalid_value"],
        ["/nodes/0/policy/backoff/initial_ms", "invalid_value"],
        ["/nodes/0/policy/backoff/max_ms", "invalid_value"],
        ["/nodes/0/policy/backoff/factor", "invalid_value"],
        ["/nodes/0/policy/backoff/jitter", "invalid_value"],
        ["/nodes/1/policy/max_attempts", "invalid_value"],
      ],
    },
    { what: "no nodes", nodes: [], issues: [["/nodes", "required"]] },
    { what: "a bad node key", nodes: [node({ key: "1abc" })], issues: [["/nodes/0/key", "invalid_value"]] },
    { what: "an empty name", name: "", nodes: [node()], issues: [["/name", "required"]] },
    { what: "a bad name", name: "has space", nodes: [node()], issues: [["/name", "invalid_value"]] },
  ];

  for (const c of cases) {
    it(`rejects ${c.what}`, async () => {
      const name = c.name ?? unique("rejected");
      const before = (await allWorkflows()).length;
      const res = await upsert({ name, nodes: c.nodes });
      const body = await expectProblem(res, "/v1/workflows", "post", 400, "invalid_argument");
      expect(Array.isArray(body.issues)).toBe(true);
      const got = body.issues.map((i: any) => [i.path, i.code]);
      expect(got).toEqual(expect.arrayContaining(c.issues));
      for (const i of body.issues) {
        expect(i.path === "" || i.path.startsWith("/"), `issue path ${i.path} is a JSON pointer`).toBe(true);
        expect(i.message).toBeTruthy();
      }
      expect(body.detail).toBeTruthy();
      // Nothing stored.
      expect((await allWorkflows()).length).toBe(before);
      if (name) expect(await allWorkflows(`&name=${encodeURIComponent(name)}`)).toEqual([]);

      // /validate agrees with upsert on the same spec.
      const v = await expectValid(await validate({ name, nodes: c.nodes }), "/v1/workflows/validate", "post");
      expect(v.data.valid).toBe(false);
      expect(v.data.issues.map((i: any) => [i.path, i.code])).toEqual(expect.arrayContaining(c.issues));
    });
  }

  it("rejects unknown fields in the body, at any level", async () => {
    const before = (await allWorkflows()).length;
    const name = unique("unknown-field");
    const bodies: [unknown, string][] = [
      [{ ...simpleSpec(name), colour: "blue" }, "/colour"],
      [{ name, nodes: [{ key: "a", operation: "workflow.noop", retries: 3 }] }, "/nodes/0/retries"],
      [{ name, nodes: [{ key: "a", operation: "workflow.noop", policy: { max_attempts: 2, retry: true } }] }, "/nodes/0/policy/retry"],
      [{ name, nodes: [{ key: "a", operation: "workflow.noop", policy: { backoff: { initial: 1 } } }] }, "/nodes/0/policy/backoff/initial"],
    ];
    for (const [body, path] of bodies) {
      const problem = await expectProblem(await upsert(body), "/v1/workflows", "post", 400, "invalid_argument");
      expect(problem.issues.map((i: any) => i.path)).toContain(path);
    }
    expect((await allWorkflows()).length).toBe(before);
  });

  it("rejects wrong types", async () => {
    const before = (await allWorkflows()).length;
    const name = unique("types");
    const bodies: unknown[] = [
      { name: 42, nodes: [{ key: "a", operation: "workflow.noop" }] },
      { name, nodes: "not-an-array" },
      { name, nodes: [{ key: 1, operation: "workflow.noop" }] },
      { name, nodes: [{ key: "a", operation: "workflow.noop", depends_on: "b" }] },
      { name, nodes: [{ key: "a", operation: "workflow.noop", config: [] }] },
      { name, nodes: [{ key: "a", operation: "workflow.noop", inputs: "x" }] },
      { name, nodes: [{ key: "a", operation: "workflow.noop", outputs: { x: 1 } }] },
      { name, nodes: [{ key: "a", operation: "workflow.noop", merge: "overwrite" }] },
      { name, nodes: [{ key: "a", operation: "workflow.noop", runtime: "gpu" }] },
      { name, nodes: [{ key: "a", operation: "workflow.noop", policy: { max_attempts: "3" } }] },
      { name, nodes: [{ key: "a", operation: "workflow.noop", policy: { max_attempts: 2.5 } }] },
      { name, nodes: [{ key: "a", operation: "workflow.noop", policy: { retry_on: ["sometimes"] } }] },
      { name, nodes: [{ key: "a", operation: "workflow.noop" }], run_timeout_ms: "soon" },
      { name, nodes: [{ key: "a", operation: "workflow.noop" }], run_timeout_ms: 2 ** 40 },
      { name, nodes: [null] },
      { nodes: [{ key: "a", operation: "workflow.noop" }] },
      { name, nodes: [{ operation: "workflow.noop" }] },
      [],
      "a string",
      42,
      null,
    ];
    for (const body of bodies) {
      const res = await upsert(body);
      const problem = await expectProblem(res, "/v1/workflows", "post", 400, "invalid_argument");
      expect(problem.issues?.length ?? 0, JSON.stringify(body)).toBeGreaterThan(0);
    }
    expect((await allWorkflows()).length).toBe(before);
  });

  it("rejects run_timeout_ms out of range", async () => {
    const name = unique("timeout");
    const body = await expectProblem(await upsert({ ...simpleSpec(name), run_timeout_ms: 0 }), "/v1/workflows", "post", 400, "invalid_argument");
    expect(body.issues.map((i: any) => [i.path, i.code])).toContainEqual(["/run_timeout_ms", "invalid_value"]);
    expect(await allWorkflows(`&name=${name}`)).toEqual([]);
  });

  it("an empty body is a 400 (the spec is required)", async () => {
    const res = await fabric.rest("/v1/workflows", { method: "POST", headers: { "content-type": "application/json" }, body: "" });
    await expectProblem(res, "/v1/workflows", "post", 400, "invalid_argument");
  });
});
