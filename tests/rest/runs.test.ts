/**
 * Wire-level tests of the runs REST surface: start (by id, by name + version, idempotent),
 * get, list (status filter + pagination), cancel. Every response is checked against the
 * OpenAPI document.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { expectValid } from "../helpers/openapi.js";
import { openSse, readAll } from "./sse.js";

let fabric: TestFabric;
let seq = 0;
const unique = (base: string) => `${base}-${Date.now().toString(36)}-${++seq}`;

beforeAll(async () => {
  fabric = await startTestFabric();
});
afterAll(() => fabric?.close());

async function expectProblem(res: Response, path: string, method: string, status: number, code: string) {
  expect(res.status, `expected ${status} ${code}`).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  const body = await expectValid(res, path, method);
  expect(body.code).toBe(code);
  return body;
}

async function createWorkflow(spec: Record<string, unknown>) {
  const res = await fabric.rest("/v1/workflows", { method: "POST", json: spec });
  expect([200, 201]).toContain(res.status);
  return (await expectValid(res, "/v1/workflows", "post")).data;
}

const shoutSpec = (name: string) => ({
  name,
  nodes: [{ key: "shout", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.topic" }, outputs: { text: "$context.shouted" } }],
});
const waitSpec = (name: string) => ({ name, nodes: [{ key: "gate", operation: "workflow.wait_signal", outputs: { "*": "$context.signal" } }] });

const start = (body: unknown, key?: string | null) => fabric.rest("/v1/workflow-runs", { method: "POST", json: body, key });
const getRun = async (id: string) => (await expectValid(await fabric.rest(`/v1/workflow-runs/${id}`), "/v1/workflow-runs/{id}", "get")).data;
const waitForStatus = (id: string, statuses: string[]) =>
  eventually(async () => {
    const r = await getRun(id);
    return statuses.includes(r.status) ? r : undefined;
  }, 15_000, `run ${id} to reach ${statuses.join("|")}`);

async function listAllRuns(query: string, key?: string): Promise<any[]> {
  const out: any[] = [];
  let token = "";
  for (let i = 0; i < 100; i++) {
    const res = await fabric.rest(`/v1/workflow-runs?page_size=200&${query}${token ? `&page_token=${encodeURIComponent(token)}` : ""}`, { key });
    expect(res.status).toBe(200);
    const body = await expectValid(res, "/v1/workflow-runs", "get");
    out.push(...body.data);
    token = body.next_page_token;
    if (!token) return out;
  }
  throw new Error("pagination did not end");
}

describe("POST /v1/workflow-runs (start)", () => {
  it("starts by workflow_id: 202 with the queued run", async () => {
    const wf = await createWorkflow(shoutSpec(unique("by-id")));
    const res = await start({ workflow_id: wf.id, input: { topic: "hello" }, priority: 70, metadata: { team: "qa" }, state: { echo: [1, 2] }, fail_fast: false });
    expect(res.status).toBe(202);
    const { data: run } = await expectValid(res, "/v1/workflow-runs", "post");
    expect(run).toMatchObject({
      organization_id: fabric.organizationId,
      workflow_id: wf.id,
      workflow_name: wf.name,
      workflow_version: 1,
      priority: 70,
      fail_fast: false,
      input: { topic: "hello" },
      metadata: { team: "qa" },
      state: { echo: [1, 2] },
    });
    expect(["pending", "running", "completed"]).toContain(run.status);
    expect(run.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(run.nodes.map((n: any) => n.key)).toEqual(["shout"]);
    const done = await waitForStatus(run.id, ["completed", "failed"]);
    expect(done.status).toBe("completed");
    expect(done.context).toEqual({ topic: "hello", shouted: "HELLO" });
  });

  it("starts by workflow_name (latest version) and by workflow_name + workflow_version (pinned)", async () => {
    const name = unique("by-name");
    const v1 = await createWorkflow(shoutSpec(name));
    const v2 = await createWorkflow({ ...shoutSpec(name), description: "second" });
    expect(v2.version).toBe(2);

    const latest = await start({ workflow_name: name, input: { topic: "a" } });
    expect(latest.status).toBe(202);
    expect((await expectValid(latest, "/v1/workflow-runs", "post")).data).toMatchObject({ workflow_id: v2.id, workflow_version: 2, workflow_name: name });

    const pinned = await start({ workflow_name: name, workflow_version: 1, input: { topic: "a" } });
    expect(pinned.status).toBe(202);
    expect((await expectValid(pinned, "/v1/workflow-runs", "post")).data).toMatchObject({ workflow_id: v1.id, workflow_version: 1 });
  });

  it("404 not_found for an unknown workflow (id, non-UUID id, name, version)", async () => {
    const name = unique("exists");
    await createWorkflow(shoutSpec(name));
    const before = (await listAllRuns("")).length;
    for (const body of [
      { workflow_id: "00000000-0000-4000-8000-000000000000" },
      { workflow_id: "not-a-uuid" },
      { workflow_name: unique("ghost") },
      { workflow_name: name, workflow_version: 7 },
    ]) {
      await expectProblem(await start(body), "/v1/workflow-runs", "post", 404, "not_found");
    }
    expect((await listAllRuns("")).length).toBe(before);
  });

  it("400 when neither workflow_id nor workflow_name is given (also for an empty body)", async () => {
    await expectProblem(await start({ input: {} }), "/v1/workflow-runs", "post", 400, "invalid_argument");
    const empty = await fabric.rest("/v1/workflow-runs", { method: "POST", headers: { "content-type": "application/json" }, body: "" });
    await expectProblem(empty, "/v1/workflow-runs", "post", 400, "invalid_argument");
  });

  it("400 for priority out of range and other bad fields; nothing is started", async () => {
    const wf = await createWorkflow(shoutSpec(unique("bad-fields")));
    const bodies: unknown[] = [
      { workflow_id: wf.id, priority: 101 },
      { workflow_id: wf.id, priority: -1 },
      { workflow_id: wf.id, priority: 5.5 },
      { workflow_id: wf.id, priority: "high" },
      { workflow_id: wf.id, timeout_ms: 0 },
      { workflow_id: wf.id, timeout_ms: 24 * 3600 * 1000 + 1 },
      { workflow_id: wf.id, idempotency_key: "" },
      { workflow_id: wf.id, idempotency_key: "k".repeat(256) },
      { workflow_id: wf.id, input: [] },
      { workflow_id: wf.id, input: "text" },
      { workflow_id: wf.id, metadata: 3 },
      { workflow_id: wf.id, fail_fast: "yes" },
      { workflow_id: wf.id, surprise: true },
      { workflow_id: 12 },
    ];
    for (const body of bodies) {
      const problem = await expectProblem(await start(body), "/v1/workflow-runs", "post", 400, "invalid_argument");
      expect(problem.issues?.length ?? 0, JSON.stringify(body)).toBeGreaterThan(0);
    }
    const priority = await expectProblem(await start({ workflow_id: wf.id, priority: 101 }), "/v1/workflow-runs", "post", 400, "invalid_argument");
    expect(priority.issues.map((i: any) => i.path)).toContain("/priority");
    expect(await listAllRuns(`workflow_id=${wf.id}`)).toEqual([]);
  });

  it("accepts the priority bounds 0 and 100", async () => {
    const wf = await createWorkflow(shoutSpec(unique("bounds")));
    for (const priority of [0, 100]) {
      const res = await start({ workflow_id: wf.id, priority, input: { topic: "x" } });
      expect(res.status).toBe(202);
      expect((await expectValid(res, "/v1/workflow-runs", "post")).data.priority).toBe(priority);
    }
  });

  it("idempotency_key: a repeat returns 200 with the original run, whatever the rest of the body", async () => {
    const wf = await createWorkflow(shoutSpec(unique("idem")));
    const key = unique("key");
    const first = await start({ workflow_id: wf.id, idempotency_key: key, input: { topic: "one" } });
    expect(first.status).toBe(202);
    const run = (await expectValid(first, "/v1/workflow-runs", "post")).data;
    expect(run.idempotency_key).toBe(key);

    const again = await start({ workflow_id: wf.id, idempotency_key: key, input: { topic: "two" }, priority: 99 });
    expect(again.status).toBe(200);
    const same = (await expectValid(again, "/v1/workflow-runs", "post")).data;
    expect(same.id).toBe(run.id);
    expect(same.input).toEqual({ topic: "one" });
    expect(same.priority).toBe(50);
    expect(same.nodes.map((n: any) => n.key)).toEqual(["shout"]);

    expect((await listAllRuns(`workflow_id=${wf.id}`)).map((r) => r.id)).toEqual([run.id]);
  });

  it("idempotency keys are per organization", async () => {
    const key = unique("shared-key");
    const wf = await createWorkflow(shoutSpec(unique("idem-org")));
    const mine = (await expectValid(await start({ workflow_id: wf.id, idempotency_key: key, input: { topic: "x" } }), "/v1/workflow-runs", "post")).data;

    const other = await fabric.otherOrg();
    const otherWf = (await expectValid(await fabric.rest("/v1/workflows", { method: "POST", json: shoutSpec(unique("idem-org")), key: other.apiKey }), "/v1/workflows", "post")).data;
    const res = await start({ workflow_id: otherWf.id, idempotency_key: key, input: { topic: "x" } }, other.apiKey);
    expect(res.status).toBe(202);
    const theirs = (await expectValid(res, "/v1/workflow-runs", "post")).data;
    expect(theirs.id).not.toBe(mine.id);
    expect(theirs.organization_id).toBe(other.organizationId);
  });

  it("10 concurrent starts with the same idempotency_key create exactly one run", async () => {
    const wf = await createWorkflow(shoutSpec(unique("race")));
    const key = unique("race-key");
    const responses = await Promise.all(Array.from({ length: 10 }, () => start({ workflow_id: wf.id, idempotency_key: key, input: { topic: "race" } })));
    const bodies = await Promise.all(
      responses.map(async (r) => {
        expect([200, 202], `status ${r.status}`).toContain(r.status);
        return { status: r.status, run: (await expectValid(r, "/v1/workflow-runs", "post")).data };
      }),
    );
    expect(bodies.filter((b) => b.status === 202)).toHaveLength(1);
    expect(bodies.filter((b) => b.status === 200)).toHaveLength(9);
    const ids = new Set(bodies.map((b) => b.run.id));
    expect(ids.size).toBe(1);
    const runs = await listAllRuns(`workflow_id=${wf.id}`);
    expect(runs.map((r) => r.id)).toEqual([...ids]);
  });
});

describe("GET /v1/workflow-runs/{id}", () => {
  it("returns the run with its context and its nodes in definition order", async () => {
    // Definition order differs from both execution order and alphabetical order.
    const wf = await createWorkflow({
      name: unique("order"),
      nodes: [
        { key: "zeta", operation: "text.transform_basic", config: { op: "lower" }, depends_on: ["alpha"], inputs: { text: "$context.up" }, outputs: { text: "$context.down" } },
        { key: "mid", operation: "workflow.noop", inputs: { v: "$context.topic" }, outputs: { v: "$context.copy" } },
        { key: "alpha", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.topic" }, outputs: { text: "$context.up" } },
      ],
    });
    const started = (await expectValid(await start({ workflow_id: wf.id, input: { topic: "MiXeD" } }), "/v1/workflow-runs", "post")).data;
    expect(started.nodes.map((n: any) => n.key)).toEqual(["zeta", "mid", "alpha"]);
    const done = await waitForStatus(started.id, ["completed", "failed"]);
    expect(done.status).toBe("completed");
    expect(done.context).toEqual({ topic: "MiXeD", up: "MIXED", down: "mixed", copy: "MiXeD" });
    expect(done.nodes.map((n: any) => [n.key, n.operation, n.status])).toEqual([
      ["zeta", "text.transform_basic", "succeeded"],
      ["mid", "workflow.noop", "succeeded"],
      ["alpha", "text.transform_basic", "succeeded"],
    ]);
    expect(done.nodes[2].output).toEqual({ text: "MIXED" });
    for (const n of done.nodes) {
      expect(n.attempt).toBe(1);
      expect(Date.parse(n.start_time)).toBeLessThanOrEqual(Date.parse(n.finish_time));
    }
    expect(Date.parse(done.finish_time)).toBeGreaterThanOrEqual(Date.parse(done.create_time));
  });

  it("404 not_found for an unknown id and a non-UUID id", async () => {
    await expectProblem(await fabric.rest("/v1/workflow-runs/00000000-0000-4000-8000-000000000000"), "/v1/workflow-runs/{id}", "get", 404, "not_found");
    await expectProblem(await fabric.rest("/v1/workflow-runs/nope"), "/v1/workflow-runs/{id}", "get", 404, "not_found");
  });
});

describe("GET /v1/workflow-runs (list)", () => {
  it("filters by status, workflow_id and workflow_name, and paginates with page_size=1", async () => {
    const doneWf = await createWorkflow(shoutSpec(unique("list-done")));
    const waitWf = await createWorkflow(waitSpec(unique("list-wait")));
    const completed: string[] = [];
    for (let i = 0; i < 3; i++) completed.push((await expectValid(await start({ workflow_id: doneWf.id, input: { topic: `t${i}` } }), "/v1/workflow-runs", "post")).data.id);
    const waiting: string[] = [];
    for (let i = 0; i < 2; i++) waiting.push((await expectValid(await start({ workflow_id: waitWf.id }), "/v1/workflow-runs", "post")).data.id);
    for (const id of completed) await waitForStatus(id, ["completed"]);
    for (const id of waiting) await waitForStatus(id, ["waiting"]);

    // status filter: only that status, newest first.
    const byStatus = await listAllRuns(`status=completed&workflow_id=${doneWf.id}`);
    expect(byStatus.map((r) => r.id)).toEqual([...completed].reverse());
    for (const r of byStatus) {
      expect(r.status).toBe("completed");
      expect(r.nodes).toEqual([]);
    }
    expect(await listAllRuns(`status=waiting&workflow_id=${doneWf.id}`)).toEqual([]);
    expect((await listAllRuns(`status=waiting&workflow_name=${waitWf.name}`)).map((r) => r.id)).toEqual([...waiting].reverse());
    const allWaiting = await listAllRuns("status=waiting");
    expect(allWaiting.every((r) => r.status === "waiting")).toBe(true);
    expect(allWaiting.map((r) => r.id)).toEqual(expect.arrayContaining(waiting));
    expect(await listAllRuns(`workflow_id=not-a-uuid`)).toEqual([]);

    // page_size=1 walks every run of the filter exactly once, newest first.
    const walked: string[] = [];
    let token = "";
    for (let page = 0; page < 10; page++) {
      const res = await fabric.rest(`/v1/workflow-runs?status=completed&workflow_id=${doneWf.id}&page_size=1${token ? `&page_token=${encodeURIComponent(token)}` : ""}`);
      expect(res.status).toBe(200);
      const body = await expectValid(res, "/v1/workflow-runs", "get");
      expect(body.data.length).toBeLessThanOrEqual(1);
      walked.push(...body.data.map((r: any) => r.id));
      token = body.next_page_token;
      if (!token) break;
    }
    expect(token).toBe("");
    expect(walked).toEqual([...completed].reverse());

    // Without filters, page_size=2 pages concatenate to one big page.
    const big = await listAllRuns("");
    const paged: string[] = [];
    token = "";
    for (let page = 0; page < big.length; page++) {
      const body = await expectValid(await fabric.rest(`/v1/workflow-runs?page_size=2${token ? `&page_token=${encodeURIComponent(token)}` : ""}`), "/v1/workflow-runs", "get");
      paged.push(...body.data.map((r: any) => r.id));
      token = body.next_page_token;
      if (!token) break;
    }
    expect(paged).toEqual(big.map((r) => r.id));
    for (const id of waiting) await expectValid(await fabric.rest(`/v1/workflow-runs/${id}/cancel`, { method: "POST", json: {} }), "/v1/workflow-runs/{id}/cancel", "post");
  });

  it("400 for an unknown status, a garbage page_token, a bad page_size", async () => {
    for (const q of ["status=done", "page_token=garbage", "page_size=500", "page_size=x", "colour=red"]) {
      await expectProblem(await fabric.rest(`/v1/workflow-runs?${q}`), "/v1/workflow-runs", "get", 400, "invalid_argument");
    }
  });
});

describe("POST /v1/workflow-runs/{id}/cancel", () => {
  it("409 run_finished for a completed run, which stays completed", async () => {
    const wf = await createWorkflow(shoutSpec(unique("cancel-done")));
    const run = (await expectValid(await start({ workflow_id: wf.id, input: { topic: "x" } }), "/v1/workflow-runs", "post")).data;
    await waitForStatus(run.id, ["completed"]);
    const res = await fabric.rest(`/v1/workflow-runs/${run.id}/cancel`, { method: "POST", json: { reason: "too late" } });
    const problem = await expectProblem(res, "/v1/workflow-runs/{id}/cancel", "post", 409, "run_finished");
    expect(problem.status).toBe(409);
    expect((await getRun(run.id)).status).toBe("completed");
  });

  it("cancels a waiting run; cancelling again is idempotent (200, same run, one cancelled event)", async () => {
    const wf = await createWorkflow(waitSpec(unique("cancel-twice")));
    const run = (await expectValid(await start({ workflow_id: wf.id }), "/v1/workflow-runs", "post")).data;
    await waitForStatus(run.id, ["waiting"]);

    const first = await fabric.rest(`/v1/workflow-runs/${run.id}/cancel`, { method: "POST", json: { reason: "changed my mind" } });
    expect(first.status).toBe(200);
    const cancelled = (await expectValid(first, "/v1/workflow-runs/{id}/cancel", "post")).data;
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.error).toMatchObject({ code: "cancelled", message: "changed my mind" });
    expect(cancelled.finish_time).toBeTruthy();
    expect(cancelled.nodes.map((n: any) => n.status)).toEqual(["cancelled"]);

    // No body at all is accepted too (the body is optional).
    const second = await fabric.rest(`/v1/workflow-runs/${run.id}/cancel`, { method: "POST" });
    expect(second.status).toBe(200);
    const again = (await expectValid(second, "/v1/workflow-runs/{id}/cancel", "post")).data;
    expect(again).toEqual(cancelled);

    const events = await readAll(await openSse(`${fabric.restUrl}/v1/workflow-runs/${run.id}/events`, { authorization: `Bearer ${fabric.apiKey}` }));
    expect(events.filter((e) => e.event === "workflow.run.cancelled")).toHaveLength(1);
    expect(events.at(-1)?.event).toBe("workflow.run.cancelled");
  });

  it("404 for an unknown run; 400 for unknown body fields", async () => {
    await expectProblem(await fabric.rest("/v1/workflow-runs/00000000-0000-4000-8000-000000000000/cancel", { method: "POST", json: {} }), "/v1/workflow-runs/{id}/cancel", "post", 404, "not_found");
    await expectProblem(await fabric.rest("/v1/workflow-runs/x/cancel", { method: "POST", json: {} }), "/v1/workflow-runs/{id}/cancel", "post", 404, "not_found");
    const wf = await createWorkflow(waitSpec(unique("cancel-body")));
    const run = (await expectValid(await start({ workflow_id: wf.id }), "/v1/workflow-runs", "post")).data;
    await expectProblem(await fabric.rest(`/v1/workflow-runs/${run.id}/cancel`, { method: "POST", json: { reason: "x", force: true } }), "/v1/workflow-runs/{id}/cancel", "post", 400, "invalid_argument");
    await expectProblem(await fabric.rest(`/v1/workflow-runs/${run.id}/cancel`, { method: "POST", json: { id: "00000000-0000-4000-8000-000000000000" } }), "/v1/workflow-runs/{id}/cancel", "post", 400, "invalid_argument");
    expect((await getRun(run.id)).status).not.toBe("cancelled");
    await expectValid(await fabric.rest(`/v1/workflow-runs/${run.id}/cancel`, { method: "POST", json: {} }), "/v1/workflow-runs/{id}/cancel", "post");
  });
});
