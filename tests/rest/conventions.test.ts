/**
 * REST conventions (issue 15, item 6, in part): `Location` on 201/202 pointing at the GET of
 * what was made, and the `Idempotency-Key` header on run and job creation, with the same
 * meaning as the body's `idempotency_key` (both given and different: 422). The document
 * says so too.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openApiDocument } from "../../src/control-plane/contract.js";
import { smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";

let fabric: TestFabric;
beforeAll(async () => {
  fabric = await startTestFabric();
});
afterAll(async () => fabric?.close());

const post = (path: string, json: unknown, headers: Record<string, string> = {}) => fabric.rest(path, { method: "POST", json, headers });
const data = async (res: Response) => ((await res.json()) as { data: { id: string } }).data;

describe("Location", () => {
  it("201/202 creations point at the GET of what they made, which answers it", async () => {
    const wfRes = await post("/v1/workflows", { ...smokeWorkflow, name: `loc-${randomUUID()}` });
    expect(wfRes.status).toBe(201);
    const wf = await data(wfRes);
    expect(wfRes.headers.get("location")).toBe(`/v1/workflows/${wf.id}`);

    const runRes = await post("/v1/workflow-runs", { workflow_id: wf.id, input: { topic: "x" } });
    expect(runRes.status).toBe(202);
    const run = await data(runRes);
    expect(runRes.headers.get("location")).toBe(`/v1/workflow-runs/${run.id}`);
    const read = await fabric.rest(runRes.headers.get("location")!);
    expect(read.status).toBe(200);
    expect((await data(read)).id).toBe(run.id);

    const jobRes = await post("/v1/jobs", { modality: "text", input: { prompt: "hello" } });
    expect(jobRes.status).toBe(202);
    expect(jobRes.headers.get("location")).toBe(`/v1/jobs/${(await data(jobRes)).id}`);

    const teamRes = await post(`/v1/organizations/${fabric.organizationId}/teams`, { slug: `t-${randomUUID().slice(0, 8)}`, name: "T" });
    expect(teamRes.status).toBe(201);
    expect(teamRes.headers.get("location")).toBe(`/v1/organizations/${fabric.organizationId}/teams/${(await data(teamRes)).id}`);
  });

  it("a 200 (nothing new) has no Location", async () => {
    const name = `loc-same-${randomUUID()}`;
    await post("/v1/workflows", { ...smokeWorkflow, name });
    const again = await post("/v1/workflows", { ...smokeWorkflow, name });
    expect(again.status).toBe(200);
    expect(again.headers.get("location")).toBeNull();
  });
});

describe("Idempotency-Key", () => {
  it("on run creation: a repeat with the same header returns the original run (200), as the body field does", async () => {
    const wf = await data(await post("/v1/workflows", { ...smokeWorkflow, name: `idem-${randomUUID()}` }));
    const key = `key-${randomUUID()}`;
    const first = await post("/v1/workflow-runs", { workflow_id: wf.id, input: { topic: "once" } }, { "idempotency-key": key });
    expect(first.status).toBe(202);
    const run = (await data(first)) as { id: string; idempotency_key?: string };
    expect(run.idempotency_key).toBe(key);
    const second = await post("/v1/workflow-runs", { workflow_id: wf.id, input: { topic: "twice" } }, { "idempotency-key": key });
    expect(second.status).toBe(200);
    expect((await data(second)).id).toBe(run.id);
    // The header and the body field are one key: the body field alone finds the same run.
    const third = await post("/v1/workflow-runs", { workflow_id: wf.id, idempotency_key: key });
    expect(third.status).toBe(200);
    expect((await data(third)).id).toBe(run.id);
  });

  it("on job creation too; header and body both given and different is 422, nothing created", async () => {
    const key = `job-${randomUUID()}`;
    const first = await post("/v1/jobs", { modality: "text", input: { prompt: "hi" } }, { "idempotency-key": key });
    expect(first.status).toBe(202);
    const same = await post("/v1/jobs", { modality: "text", input: { prompt: "hi" }, idempotency_key: key }, { "idempotency-key": key });
    expect(same.status).toBe(200);
    expect((await data(same)).id).toBe((await data(first)).id);
    const other = `job-${randomUUID()}`;
    const conflict = await post("/v1/jobs", { modality: "text", input: { prompt: "hi" }, idempotency_key: other }, { "idempotency-key": key });
    expect(conflict.status).toBe(422);
    expect(await conflict.json()).toMatchObject({ code: "idempotency_key_mismatch", status: 422 });
    const listed = await fabric.rest(`/v1/jobs?page_size=100`);
    expect(JSON.stringify(await listed.json())).not.toContain(other);
  });

  it("an over-long header is refused like the body field (400)", async () => {
    const res = await post("/v1/jobs", { modality: "text", input: { prompt: "hi" } }, { "idempotency-key": "k".repeat(256) });
    expect(res.status).toBe(400);
  });
});

describe("the document", () => {
  it("documents Idempotency-Key, Location, X-Request-Id and Retry-After", () => {
    const runs = openApiDocument.paths["/v1/workflow-runs"].post;
    expect(runs.parameters).toContainEqual({ $ref: "#/components/parameters/IdempotencyKey" });
    expect(runs.responses["202"].headers).toMatchObject({ Location: { $ref: "#/components/headers/Location" }, "X-Request-Id": { $ref: "#/components/headers/XRequestId" } });
    expect(openApiDocument.paths["/v1/jobs"].post.parameters).toContainEqual({ $ref: "#/components/parameters/IdempotencyKey" });
    expect(openApiDocument.components.responses.Problem.headers).toHaveProperty("Retry-After");
    for (const [path, item] of Object.entries<Record<string, any>>(openApiDocument.paths))
      for (const [method, op] of Object.entries<any>(item))
        for (const [status, resp] of Object.entries<any>(op.responses)) if (!resp.$ref) expect(resp.headers?.["X-Request-Id"], `${method} ${path} ${status}`).toBeDefined();
  });
});
