/**
 * JobService on the wire, over REST and gRPC (HTTP/2): a real Fabric with an in-process
 * worker and the echo provider. Create (202 / idempotent 200), read, list, usage and watch;
 * request validation with nothing written; not_found for anything that is not a visible
 * job; team visibility; the built-in definitions (lazy, race-safe, reserved name).
 */
import { randomUUID } from "node:crypto";
import { fromJson, type JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { and, count, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobService, type Job } from "../../gen/proto/fabric/v1/jobs_pb.js";
import { ValidationIssueSchema, WorkflowService, WorkflowSpecSchema } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { apiKeys, auditLog, policies, workflowDefinitions, workflowRuns } from "../../src/db/schema.js";
import { parseApiKey } from "../../src/services/identity/authenticator.js";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { expectValid } from "../helpers/openapi.js";
import { insertKey, insertMembership, insertTeam, insertUser } from "../helpers/fixtures.js";
import { openSse, readAll } from "../rest/sse.js";

let fabric: TestFabric;
let jobs: Client<typeof JobService>;
let workflowsClient: Client<typeof WorkflowService>;
const sessions: Http2SessionManager[] = [];
const terminalStatuses = ["completed", "failed", "cancelled"];
const terminalKinds = ["workflow.run.completed", "workflow.run.failed", "workflow.run.cancelled"];

const bearer =
  (key: string): Interceptor =>
  (next) =>
  (req) => {
    req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };

function grpcClients(key: string) {
  const sessionManager = new Http2SessionManager(fabric.grpcUrl);
  sessions.push(sessionManager);
  const transport = createGrpcTransport({ baseUrl: fabric.grpcUrl, sessionManager, interceptors: [bearer(key)] });
  return { jobs: createClient(JobService, transport), workflows: createClient(WorkflowService, transport) };
}

beforeAll(async () => {
  fabric = await startTestFabric();
  ({ jobs, workflows: workflowsClient } = grpcClients(fabric.apiKey));
});

afterAll(async () => {
  for (const s of sessions) s.abort();
  await fabric?.close();
});

// ─── helpers ────────────────────────────────────────────────────────────────────────────

const createJob = (json: unknown, key?: string) => fabric.rest("/v1/jobs", { method: "POST", json, ...(key ? { key } : {}) });

async function createdJob(json: unknown, key?: string): Promise<any> {
  const res = await createJob(json, key);
  const body = await expectValid(res, "/v1/jobs", "post");
  expect(res.status, JSON.stringify(body)).toBe(202);
  return body.data;
}

async function getJob(id: string, key?: string): Promise<any> {
  const res = await fabric.rest(`/v1/jobs/${id}`, key ? { key } : {});
  const body = await expectValid(res, "/v1/jobs/{id}", "get");
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.data;
}

const finished = (id: string, key?: string) =>
  eventually(
    async () => {
      const j = await getJob(id, key);
      return terminalStatuses.includes(j.status) ? j : undefined;
    },
    15_000,
    `job ${id} to finish`,
  );

async function finishedGrpc(id: string): Promise<Job> {
  return eventually(
    async () => {
      const { job } = await jobs.getJob({ id });
      return job && terminalStatuses.includes(job.status) ? job : undefined;
    },
    15_000,
    `job ${id} to finish`,
  );
}

async function expectProblem(res: Response, path: string, method: string, status: number, code: string): Promise<any> {
  const body = await expectValid(res, path, method);
  expect(res.status, JSON.stringify(body)).toBe(status);
  expect(body.code).toBe(code);
  return body;
}

async function connectError(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected the call to fail");
}

const runCount = async (organizationId = fabric.organizationId) =>
  (await fabric.database.db.select({ n: count() }).from(workflowRuns).where(eq(workflowRuns.organizationId, organizationId)))[0]!.n;
const definitionCount = async (organizationId: string) =>
  (await fabric.database.db.select({ n: count() }).from(workflowDefinitions).where(eq(workflowDefinitions.organizationId, organizationId)))[0]!.n;

/** A user with only a team membership (team role `member`) and an API key. */
async function teamMember(teamId: string): Promise<{ principalId: string; key: string }> {
  const { principalId } = await insertUser(fabric, `${randomUUID()}@jobs.test`);
  await insertMembership(fabric, fabric.organizationId, principalId, "member", teamId);
  const { key } = await insertKey(fabric, fabric.organizationId, principalId, { name: "team key" });
  return { principalId, key };
}

async function startNormalRun(): Promise<string> {
  const name = `not-a-job-${randomUUID().slice(0, 8)}`;
  const wf = await fabric.rest("/v1/workflows", { method: "POST", json: { name, nodes: [{ key: "a", operation: "workflow.noop" }] } });
  expect(wf.status).toBe(201);
  const res = await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_name: name } });
  expect(res.status).toBe(202);
  return ((await res.json()) as any).data.id;
}

// ─── create, read ───────────────────────────────────────────────────────────────────────

describe("CreateJob / GetJob", () => {
  it("REST: a text job is queued (202) and completes with the echo output, usage, cost and routing", async () => {
    const job = await createdJob({ modality: "text", input: { prompt: "hello jobs" } });
    expect(job).toMatchObject({ modality: "text", organization_id: fabric.organizationId, team_id: "", input: { prompt: "hello jobs" }, params: {}, tier: "", idempotency_key: "" });
    expect(job.id).toBe(job.workflow_run_id);
    expect(["pending", "running", "completed"]).toContain(job.status);

    const done = await finished(job.id);
    expect(done.status).toBe("completed");
    expect(done.result).toMatchObject({ text: "hello jobs", provider: "echo", model: "echo-1", usage: { input_tokens: "3", output_tokens: "3" } });
    expect(done.result.cost).toMatchObject({ actual_usd: "0", estimated_usd: "0" });
    expect(done.result.routing).toMatchObject({ provider: "echo", model: "echo-1" });
    expect(typeof done.result.routing.why).toBe("string");
    expect(done.error).toBeUndefined();
    expect(done.create_time).toBeTruthy();
    expect(done.start_time).toBeTruthy();
    expect(done.finish_time).toBeTruthy();

    // The job is a run of the built-in definition, with one node `call`.
    const run: any = ((await (await fabric.rest(`/v1/workflow-runs/${job.id}`)).json()) as any).data;
    expect(run).toMatchObject({ workflow_name: "fabric.job.text", status: "completed", input: { prompt: "hello jobs", params: {} } });
    expect(run.nodes.map((n: any) => [n.key, n.operation, n.max_attempts])).toEqual([["call", "ai.generate", 3]]);

    // One audit entry, named after CreateJob's declared action, in the run's transaction.
    const audit = await fabric.database.db.select().from(auditLog).where(eq(auditLog.resource, `job:${job.id}`));
    expect(audit.map((a) => a.action)).toEqual(["job.create"]);
    expect(audit[0]!.summary).toMatchObject({ modality: "text", workflow_name: "fabric.job.text", team_id: null });
  });

  it("REST: messages, system, params and a top-level tier reach the call", async () => {
    const job = await createdJob({
      modality: "text",
      tier: "basic",
      input: { system: "be brief", messages: [{ role: "system", content: "sys" }, { role: "user", content: "first" }, { role: "assistant", content: "ok" }, { role: "user", content: "last turn" }] },
      params: { provider: "echo", model: "echo-1", strategy: "cheapest", max_tokens: 64, temperature: 0.5, stream: false },
      priority: 90,
      timeout_ms: 60_000,
    });
    expect(job.tier).toBe("basic");
    expect(job.params).toEqual({ provider: "echo", model: "echo-1", strategy: "cheapest", max_tokens: 64, temperature: 0.5, stream: false, tier: "basic" });
    expect(Object.keys(job.input).sort()).toEqual(["messages", "system"]);
    const done = await finished(job.id);
    expect(done.status).toBe("completed");
    expect(done.result.text).toBe("last turn");
    expect(done.result.routing.strategy).toBe("cheapest");
  });

  it("REST: an embedding job (a list of texts) completes with one embedding per text", async () => {
    const job = await createdJob({ modality: "embedding", input: { input: ["alpha", "beta"] } });
    expect(job.modality).toBe("embedding");
    const done = await finished(job.id);
    expect(done.status).toBe("completed");
    expect(done.result.embeddings).toHaveLength(2);
    expect(done.result.embeddings[0].length).toBeGreaterThan(0);
    expect(done.result.provider).toBe("echo");
    const single = await finished((await createdJob({ modality: "embedding", input: { input: "one" } })).id);
    expect(single.result.embeddings).toHaveLength(1);
  });

  it("gRPC: CreateJob then GetJob until completed", async () => {
    const res = await jobs.createJob({ modality: "text", input: { prompt: "over grpc" } });
    expect(res.created).toBe(true);
    expect(res.job).toMatchObject({ modality: "text", organizationId: fabric.organizationId, input: { prompt: "over grpc" } });
    const done = await finishedGrpc(res.job!.id);
    expect(done.status).toBe("completed");
    expect(done.result).toMatchObject({ text: "over grpc", provider: "echo" });
    expect(done.result!["usage"]).toBeTruthy();
    expect(done.result!["cost"]).toBeTruthy();
    expect(done.result!["routing"]).toBeTruthy();
    expect(done.finishTime).toBeDefined();

    const emb = await jobs.createJob({ modality: "embedding", input: { input: "vector me" } });
    const embDone = await finishedGrpc(emb.job!.id);
    expect(embDone.status).toBe("completed");
    expect((embDone.result!["embeddings"] as unknown[]).length).toBe(1);
  });

  it("a call the runtime refuses fails the job with the run's error and no result", async () => {
    const job = await createdJob({ modality: "text", input: { prompt: "x" }, params: { provider: "no-such-provider" } });
    const done = await finished(job.id);
    expect(done.status).toBe("failed");
    expect(done.result).toBeUndefined();
    expect(done.error).toMatchObject({ node_key: "call" });
    expect(done.error.code).toBeTruthy();
  });

  it("the job's team is the run's team; a job with team_id is billed to it", async () => {
    const teamId = await insertTeam(fabric, fabric.organizationId, { slugPrefix: "billing", name: "billing" });
    const job = await createdJob({ modality: "text", input: { prompt: "team call" }, team_id: teamId });
    expect(job.team_id).toBe(teamId);
    await finished(job.id);
    const [run] = await fabric.database.db.select().from(workflowRuns).where(eq(workflowRuns.id, job.id));
    expect(run!.teamId).toBe(teamId);
    const usage = (await expectValid(await fabric.rest(`/v1/jobs/${job.id}/usage`), "/v1/jobs/{id}/usage", "get")).data;
    expect(usage.records.map((r: any) => r.team_id)).toEqual([teamId]);
  });
});

// ─── idempotency ────────────────────────────────────────────────────────────────────────

describe("idempotency", () => {
  it("a repeated key answers the original job: REST 200 created=false, gRPC created=false", async () => {
    const key = `job-${randomUUID()}`;
    const first = await createJob({ modality: "text", input: { prompt: "once" }, idempotency_key: key });
    expect(first.status).toBe(202);
    const a = (await expectValid(first, "/v1/jobs", "post")).data;
    expect(a.idempotency_key).toBe(key);
    const before = await runCount();

    const again = await createJob({ modality: "text", input: { prompt: "different body, same key" }, idempotency_key: key });
    const b = (await expectValid(again, "/v1/jobs", "post")).data;
    expect(again.status).toBe(200);
    expect(b.id).toBe(a.id);
    expect(b.input).toEqual({ prompt: "once" });

    const g = await jobs.createJob({ modality: "text", input: { prompt: "once" }, idempotencyKey: key });
    expect(g.created).toBe(false);
    expect(g.job!.id).toBe(a.id);
    expect(await runCount()).toBe(before);
  });

  it("concurrent creates with one key make one job", async () => {
    const key = `race-${randomUUID()}`;
    const before = await runCount();
    const results = await Promise.all(Array.from({ length: 5 }, () => createJob({ modality: "text", input: { prompt: "race" }, idempotency_key: key })));
    const bodies = await Promise.all(results.map((r) => r.json() as Promise<any>));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 202]);
    expect(new Set(bodies.map((b) => b.data.id)).size).toBe(1);
    expect(await runCount()).toBe(before + 1);
  });

  it("a key used by a workflow run that is not a job is a conflict", async () => {
    const key = `run-${randomUUID()}`;
    const name = `keyed-${randomUUID().slice(0, 8)}`;
    expect((await fabric.rest("/v1/workflows", { method: "POST", json: { name, nodes: [{ key: "a", operation: "workflow.noop" }] } })).status).toBe(201);
    expect((await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_name: name, idempotency_key: key } })).status).toBe(202);
    await expectProblem(await createJob({ modality: "text", input: { prompt: "x" }, idempotency_key: key }), "/v1/jobs", "post", 409, "idempotency_key_conflict");
  });
});

// ─── validation ─────────────────────────────────────────────────────────────────────────

describe("validation: every bad field is a 400 naming its path, and nothing is written", () => {
  const ok = { modality: "text", input: { prompt: "hi" } };
  const cases: [string, Record<string, unknown>, string[]][] = [
    ["modality missing", { input: { prompt: "hi" } }, ["/modality"]],
    ["modality unknown", { modality: "image", input: { prompt: "hi" } }, ["/modality"]],
    ["input missing", { modality: "text" }, ["/input"]],
    ["prompt and messages missing", { modality: "text", input: {} }, ["/input/prompt"]],
    ["prompt not a string", { modality: "text", input: { prompt: 5 } }, ["/input/prompt"]],
    ["prompt empty", { modality: "text", input: { prompt: "" } }, ["/input/prompt"]],
    ["prompt and messages", { modality: "text", input: { prompt: "a", messages: [{ role: "user", content: "b" }] } }, ["/input/messages"]],
    ["messages not a list", { modality: "text", input: { messages: "hi" } }, ["/input/messages"]],
    ["messages empty", { modality: "text", input: { messages: [] } }, ["/input/messages"]],
    ["message role", { modality: "text", input: { messages: [{ role: "robot", content: "b" }, { role: "user", content: "c" }] } }, ["/input/messages/0/role"]],
    ["message content", { modality: "text", input: { messages: [{ role: "user", content: 3 }] } }, ["/input/messages/0/content"]],
    ["message extra field", { modality: "text", input: { messages: [{ role: "user", content: "c", name: "x" }] } }, ["/input/messages/0/name"]],
    ["only system messages", { modality: "text", input: { messages: [{ role: "system", content: "c" }] } }, ["/input/messages"]],
    ["system not a string", { modality: "text", input: { prompt: "a", system: ["x"] } }, ["/input/system"]],
    ["unknown text input", { modality: "text", input: { prompt: "a", input: "b" } }, ["/input/input"]],
    ["embedding input missing", { modality: "embedding", input: {} }, ["/input/input"]],
    ["embedding input empty list", { modality: "embedding", input: { input: [] } }, ["/input/input"]],
    ["embedding input not strings", { modality: "embedding", input: { input: ["a", 2] } }, ["/input/input/1"]],
    ["embedding input object", { modality: "embedding", input: { input: { a: 1 } } }, ["/input/input"]],
    ["embedding takes no prompt", { modality: "embedding", input: { input: "a", prompt: "b" } }, ["/input/prompt"]],
    ["embedding cannot stream", { modality: "embedding", input: { input: "a" }, params: { stream: true } }, ["/params/stream"]],
    ["max_tokens zero", { ...ok, params: { max_tokens: 0 } }, ["/params/max_tokens"]],
    ["max_tokens too large", { ...ok, params: { max_tokens: 200_001 } }, ["/params/max_tokens"]],
    ["max_tokens fractional", { ...ok, params: { max_tokens: 1.5 } }, ["/params/max_tokens"]],
    ["temperature", { ...ok, params: { temperature: 2.5 } }, ["/params/temperature"]],
    ["strategy", { ...ok, params: { strategy: "random" } }, ["/params/strategy"]],
    ["params tier", { ...ok, params: { tier: "gold" } }, ["/params/tier"]],
    ["params tier contradicts tier", { ...ok, tier: "basic", params: { tier: "premium" } }, ["/params/tier"]],
    ["stream not a bool", { ...ok, params: { stream: "yes" } }, ["/params/stream"]],
    ["provider empty", { ...ok, params: { provider: "" } }, ["/params/provider"]],
    ["model not a string", { ...ok, params: { model: 4 } }, ["/params/model"]],
    ["unknown param", { ...ok, params: { top_p: 0.9 } }, ["/params/top_p"]],
    ["tier", { ...ok, tier: "gold" }, ["/tier"]],
    ["priority", { ...ok, priority: 101 }, ["/priority"]],
    ["timeout_ms", { ...ok, timeout_ms: 0 }, ["/timeout_ms"]],
    ["idempotency_key empty", { ...ok, idempotency_key: "" }, ["/idempotency_key"]],
    ["idempotency_key too long", { ...ok, idempotency_key: "k".repeat(256) }, ["/idempotency_key"]],
    ["several at once", { modality: "text", input: { prompt: 1, system: 2 }, params: { max_tokens: -1, temperature: "hot" }, priority: -1 }, ["/input/prompt", "/input/system", "/params/max_tokens", "/params/temperature", "/priority"]],
  ];

  it.each(cases)("%s", async (_name, body, paths) => {
    const before = await runCount();
    const res = await createJob(body);
    const problem = await expectProblem(res, "/v1/jobs", "post", 400, "invalid_argument");
    expect(problem.issues.map((i: any) => i.path).sort()).toEqual([...paths].sort());
    expect(await runCount()).toBe(before);
  });

  it("an invalid job of a new organization writes nothing: no run, no definition, no audit entry", async () => {
    const other = await fabric.otherOrg();
    for (const [, body] of cases) expect((await createJob(body, other.apiKey)).status).toBe(400);
    expect(await runCount(other.organizationId)).toBe(0);
    expect(await definitionCount(other.organizationId)).toBe(0);
    expect(await fabric.database.db.select().from(auditLog).where(eq(auditLog.organizationId, other.organizationId))).toEqual([]);
  });

  it("gRPC reports the same issues as InvalidArgument details", async () => {
    const before = await runCount();
    const err = await connectError(jobs.createJob({ modality: "text", input: { prompt: "" }, params: { max_tokens: 0, colour: "red" }, priority: 200 }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(
      err
        .findDetails(ValidationIssueSchema)
        .map((i) => i.path)
        .sort(),
    ).toEqual(["/input/prompt", "/params/colour", "/params/max_tokens", "/priority"]);
    const missing = await connectError(jobs.createJob({ input: { prompt: "x" } }));
    expect(missing.findDetails(ValidationIssueSchema).map((i) => [i.path, i.code])).toEqual([["/modality", "required"]]);
    expect(await runCount()).toBe(before);
  });

  it("team_id must name a team of the caller's organization (404), checked before anything is written", async () => {
    const before = await runCount();
    const other = await fabric.otherOrg();
    const foreignTeam = await insertTeam(fabric, other.organizationId, { slugPrefix: "foreign", name: "foreign" });
    for (const team_id of [randomUUID(), "not-a-uuid", foreignTeam]) {
      await expectProblem(await createJob({ ...ok, team_id }), "/v1/jobs", "post", 404, "not_found");
    }
    const err = await connectError(jobs.createJob({ modality: "text", input: { prompt: "x" }, teamId: foreignTeam }));
    expect(err.code).toBe(Code.NotFound);
    expect(await runCount()).toBe(before);
  });
});

// ─── not found ──────────────────────────────────────────────────────────────────────────

describe("anything but a visible job is not_found", () => {
  let otherOrgJob: string;
  let normalRun: string;

  beforeAll(async () => {
    const other = await fabric.otherOrg();
    otherOrgJob = (await createdJob({ modality: "text", input: { prompt: "theirs" } }, other.apiKey)).id;
    normalRun = await startNormalRun();
  });

  const ids = () => [
    ["an unknown id", randomUUID()],
    ["a malformed id", "not-a-uuid"],
    ["another organization's job", otherOrgJob],
    ["a workflow run that is not a job", normalRun],
  ];

  it("REST: GET /v1/jobs/{id}, /usage and /events answer 404 not_found", async () => {
    for (const [what, id] of ids()) {
      const body = await expectProblem(await fabric.rest(`/v1/jobs/${id}`), "/v1/jobs/{id}", "get", 404, "not_found");
      expect(body.detail, what).toContain("job");
      await expectProblem(await fabric.rest(`/v1/jobs/${id}/usage`), "/v1/jobs/{id}/usage", "get", 404, "not_found");
      const sse = await fabric.rest(`/v1/jobs/${id}/events`, { headers: { accept: "text/event-stream" } });
      await expectProblem(sse, "/v1/jobs/{id}/events", "get", 404, "not_found");
    }
  });

  it("gRPC: GetJob, GetJobUsage and WatchJob answer NotFound", async () => {
    for (const [, id] of ids()) {
      expect((await connectError(jobs.getJob({ id: id! }))).code).toBe(Code.NotFound);
      expect((await connectError(jobs.getJobUsage({ id: id! }))).code).toBe(Code.NotFound);
      const err = await connectError(
        (async () => {
          for await (const _ of jobs.watchJob({ id: id! })) {
            // nothing should arrive
          }
        })(),
      );
      expect(err.code).toBe(Code.NotFound);
    }
  });

  it("a normal run is not listed among jobs", async () => {
    const all: any[] = [];
    let token = "";
    do {
      const body = await expectValid(await fabric.rest(`/v1/jobs?page_size=200${token ? `&page_token=${encodeURIComponent(token)}` : ""}`), "/v1/jobs", "get");
      all.push(...body.data);
      token = body.next_page_token;
    } while (token);
    expect(all.some((j) => j.id === normalRun)).toBe(false);
    expect(all.some((j) => j.id === otherOrgJob)).toBe(false);
    expect(all.every((j) => j.modality === "text" || j.modality === "embedding")).toBe(true);
  });
});

// ─── list ───────────────────────────────────────────────────────────────────────────────

describe("ListJobs", () => {
  it("newest first with keyset pagination, filtered by team and status, the same over gRPC", async () => {
    const teamId = await insertTeam(fabric, fabric.organizationId, { slugPrefix: "listing", name: "listing" });
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await createdJob({ modality: i % 2 ? "embedding" : "text", input: i % 2 ? { input: `e${i}` } : { prompt: `p${i}` }, team_id: teamId })).id);
    for (const id of created) await finished(id);
    const newestFirst = [...created].reverse();

    const pages: string[][] = [];
    let token = "";
    do {
      const res = await fabric.rest(`/v1/jobs?team_id=${teamId}&page_size=2${token ? `&page_token=${encodeURIComponent(token)}` : ""}`);
      const body = await expectValid(res, "/v1/jobs", "get");
      pages.push(body.data.map((j: any) => j.id));
      for (const j of body.data) expect(j).toMatchObject({ team_id: teamId, status: "completed" });
      expect(body.data.every((j: any) => j.result)).toBe(true);
      token = body.next_page_token;
    } while (token);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat()).toEqual(newestFirst);

    const completed = await expectValid(await fabric.rest(`/v1/jobs?team_id=${teamId}&status=completed`), "/v1/jobs", "get");
    expect(completed.data.map((j: any) => j.id)).toEqual(newestFirst);
    const failed = await expectValid(await fabric.rest(`/v1/jobs?team_id=${teamId}&status=failed`), "/v1/jobs", "get");
    expect(failed.data).toEqual([]);

    const g1 = await jobs.listJobs({ teamId, pageSize: 3 });
    const g2 = await jobs.listJobs({ teamId, pageSize: 3, pageToken: g1.nextPageToken });
    expect([...g1.jobs, ...g2.jobs].map((j) => j.id)).toEqual(newestFirst);
    expect(g2.nextPageToken).toBe("");
    expect(g1.jobs.map((j) => j.modality)).toEqual(["text", "embedding", "text"]);

    // The unfiltered list holds them too, in the same order.
    const all = await expectValid(await fabric.rest("/v1/jobs?page_size=200"), "/v1/jobs", "get");
    const ours = all.data.map((j: any) => j.id).filter((id: string) => created.includes(id));
    expect(ours).toEqual(newestFirst);
  });

  it("bad filters: an unknown status is 400, a bad page token is 400, a malformed team_id lists nothing", async () => {
    await expectProblem(await fabric.rest("/v1/jobs?status=done"), "/v1/jobs", "get", 400, "invalid_argument");
    await expectProblem(await fabric.rest("/v1/jobs?page_token=garbage"), "/v1/jobs", "get", 400, "invalid_argument");
    const none = await expectValid(await fabric.rest("/v1/jobs?team_id=nope"), "/v1/jobs", "get");
    expect(none.data).toEqual([]);
    expect((await connectError(jobs.listJobs({ status: "done" }))).code).toBe(Code.InvalidArgument);
  });
});

// ─── usage ──────────────────────────────────────────────────────────────────────────────

describe("GetJobUsage", () => {
  it("one succeeded record attributed to the organization, principal, API key, run and node `call`; the total matches", async () => {
    const job = await createdJob({ modality: "text", input: { prompt: "count me please" } });
    await finished(job.id);
    const [key] = await fabric.database.db.select().from(apiKeys).where(eq(apiKeys.prefix, parseApiKey(fabric.apiKey)!.prefix));

    const body = await expectValid(await fabric.rest(`/v1/jobs/${job.id}/usage`), "/v1/jobs/{id}/usage", "get");
    const { records, total } = body.data;
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      organization_id: fabric.organizationId,
      team_id: "",
      principal_id: fabric.principalId,
      api_key_id: key!.id,
      run_id: job.id,
      node_key: "call",
      provider: "echo",
      model: "echo-1",
      operation: "ai.generate",
      status: "succeeded",
      actual_usd: "0",
      error_code: "",
    });
    expect(records[0].id).toMatch(/^\d+$/);
    expect(records[0].usage).toMatchObject({ input_tokens: "4", output_tokens: "4" });
    expect(total).toMatchObject({ calls: "1", failed_calls: "0", cost_usd: "0", reserved_usd: "0", usage: { input_tokens: "4", output_tokens: "4" } });

    const g = await jobs.getJobUsage({ id: job.id });
    expect(g.records.map((r) => [r.runId, r.nodeKey, r.status])).toEqual([[job.id, "call", "succeeded"]]);
    expect(g.records[0]!.usage!.inputTokens).toBe(4n);
    expect(g.total!.calls).toBe(1n);
    expect(g.total!.usage!.outputTokens).toBe(4n);
  });

  it("a job refused before any provider call has no records and a zero total", async () => {
    const job = await createdJob({ modality: "text", input: { prompt: "x" }, params: { provider: "no-such-provider" } });
    await finished(job.id);
    const body = await expectValid(await fabric.rest(`/v1/jobs/${job.id}/usage`), "/v1/jobs/{id}/usage", "get");
    expect(body.data.records).toEqual([]);
    expect(body.data.total).toMatchObject({ calls: "0", failed_calls: "0", cost_usd: "0", reserved_usd: "0" });
  });
});

// ─── watch ──────────────────────────────────────────────────────────────────────────────

describe("WatchJob", () => {
  it("REST SSE: replays a finished job's events up to the terminal one and closes; Last-Event-ID resumes", async () => {
    const job = await createdJob({ modality: "text", input: { prompt: "watch me" } });
    await finished(job.id);
    const stream = await openSse(`${fabric.restUrl}/v1/jobs/${job.id}/events`, { authorization: `Bearer ${fabric.apiKey}` });
    expect(stream.response.status).toBe(200);
    expect(stream.response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const messages = await readAll(stream);
    const kinds = messages.map((m) => m.event);
    expect(kinds[0]).toBe("workflow.run.created");
    expect(kinds).toContain("workflow.node.completed");
    expect(kinds.at(-1)).toBe("workflow.run.completed");
    for (const m of messages) expect(JSON.parse(m.data).run_id).toBe(job.id);

    const resumed = await readAll(await openSse(`${fabric.restUrl}/v1/jobs/${job.id}/events`, { authorization: `Bearer ${fabric.apiKey}`, "last-event-id": messages[0]!.id! }));
    expect(resumed.map((m) => m.id)).toEqual(messages.slice(1).map((m) => m.id));
    const afterEnd = await readAll(await openSse(`${fabric.restUrl}/v1/jobs/${job.id}/events`, { authorization: `Bearer ${fabric.apiKey}`, "last-event-id": messages.at(-1)!.id! }));
    expect(afterEnd).toEqual([]);
  });

  it("REST SSE: follows a live job to its end", async () => {
    const job = await createdJob({ modality: "text", input: { prompt: "live one two three" } });
    const messages = await readAll(await openSse(`${fabric.restUrl}/v1/jobs/${job.id}/events`, { authorization: `Bearer ${fabric.apiKey}` }));
    expect(terminalKinds).toContain(messages.at(-1)!.event);
    expect(messages.at(-1)!.event).toBe("workflow.run.completed");
  });

  it("gRPC: the server stream ends after the terminal event; after_id resumes", async () => {
    const { job } = await jobs.createJob({ modality: "text", input: { prompt: "grpc watch" } });
    const kinds: string[] = [];
    const ids: bigint[] = [];
    for await (const res of jobs.watchJob({ id: job!.id }, { timeoutMs: 20_000 })) {
      kinds.push(res.event!.kind);
      ids.push(res.event!.id);
      expect(res.event!.runId).toBe(job!.id);
    }
    expect(kinds[0]).toBe("workflow.run.created");
    expect(kinds.at(-1)).toBe("workflow.run.completed");
    const resumed: bigint[] = [];
    for await (const res of jobs.watchJob({ id: job!.id, afterId: ids[1]! }, { timeoutMs: 10_000 })) resumed.push(res.event!.id);
    expect(resumed).toEqual(ids.slice(2));
  });
});

// ─── teams ──────────────────────────────────────────────────────────────────────────────

describe("team visibility", () => {
  it("a team job is visible to its team's members, not to another team's", async () => {
    const teamA = await insertTeam(fabric, fabric.organizationId, { slugPrefix: "team-a", name: "team-a" });
    const teamB = await insertTeam(fabric, fabric.organizationId, { slugPrefix: "team-b", name: "team-b" });
    const alice = await teamMember(teamA);
    const bob = await teamMember(teamB);

    // A team member may create jobs only in their team.
    const job = await createdJob({ modality: "text", input: { prompt: "team a only" }, team_id: teamA }, alice.key);
    await expectProblem(await createJob({ modality: "text", input: { prompt: "x" }, team_id: teamB }, alice.key), "/v1/jobs", "post", 403, "permission_denied");
    await expectProblem(await createJob({ modality: "text", input: { prompt: "x" } }, alice.key), "/v1/jobs", "post", 403, "permission_denied");

    const done = await finished(job.id, alice.key);
    expect(done).toMatchObject({ status: "completed", team_id: teamA });
    expect((await expectValid(await fabric.rest(`/v1/jobs/${job.id}/usage`, { key: alice.key }), "/v1/jobs/{id}/usage", "get")).data.records).toHaveLength(1);
    const aliceList = await expectValid(await fabric.rest("/v1/jobs?page_size=200", { key: alice.key }), "/v1/jobs", "get");
    expect(aliceList.data.map((j: any) => j.id)).toEqual([job.id]);

    // Bob (team B) neither reads nor lists it.
    await expectProblem(await fabric.rest(`/v1/jobs/${job.id}`, { key: bob.key }), "/v1/jobs/{id}", "get", 403, "permission_denied");
    await expectProblem(await fabric.rest(`/v1/jobs/${job.id}/usage`, { key: bob.key }), "/v1/jobs/{id}/usage", "get", 403, "permission_denied");
    await expectProblem(await fabric.rest(`/v1/jobs/${job.id}/events`, { key: bob.key }), "/v1/jobs/{id}/events", "get", 403, "permission_denied");
    const bobList = await expectValid(await fabric.rest("/v1/jobs?page_size=200", { key: bob.key }), "/v1/jobs", "get");
    expect(bobList.data).toEqual([]);
    const bobGrpc = grpcClients(bob.key).jobs;
    expect((await connectError(bobGrpc.getJob({ id: job.id }))).code).toBe(Code.PermissionDenied);
    expect((await bobGrpc.listJobs({})).jobs).toEqual([]);

    // The organization's owner sees it.
    expect((await getJob(job.id)).team_id).toBe(teamA);
  });
  it("rerunning a failed team job (RunService) keeps the job's team", async () => {
    const teamId = await insertTeam(fabric, fabric.organizationId, { slugPrefix: "rerun", name: "rerun" });
    const job = await createdJob({ modality: "text", input: { prompt: "x" }, params: { provider: "no-such-provider" }, team_id: teamId });
    expect((await finished(job.id)).status).toBe("failed");
    const res = await fabric.rest(`/v1/workflow-runs/${job.id}/rerun`, { method: "POST", json: {} });
    const rerun: any = ((await res.json()) as any).data;
    expect(res.status, JSON.stringify(rerun)).toBeLessThan(300);
    expect(rerun.team_id).toBe(teamId);
    const again = await getJob(rerun.id);
    expect(again).toMatchObject({ team_id: teamId, modality: "text", input: { prompt: "x" } });
  });
});

describe("rate limit", () => {
  it("job creations count against the API key's requests per minute; refusals and invalid requests write nothing", async () => {
    const other = await fabric.otherOrg();
    await fabric.database.db.insert(policies).values({ scopeKey: `org:${other.organizationId}`, organizationId: other.organizationId, requestsPerMinutePerKey: 2 });
    // An invalid request is refused before it is counted.
    expect((await createJob({ modality: "text", input: {} }, other.apiKey)).status).toBe(400);
    const statuses: number[] = [];
    let refusal: any;
    for (let i = 0; i < 5; i++) {
      const res = await createJob({ modality: "text", input: { prompt: `n${i}` } }, other.apiKey);
      statuses.push(res.status);
      if (res.status === 429 && !refusal) {
        expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
        refusal = await expectValid(res, "/v1/jobs", "post");
      } else await res.body?.cancel();
    }
    // Two per minute: at most one window reset can happen during the loop, so one of five is refused.
    expect(statuses.slice(0, 2)).toEqual([202, 202]);
    expect(refusal).toMatchObject({ code: "rate_limited", status: 429 });
    expect(await runCount(other.organizationId)).toBe(statuses.filter((s) => s === 202).length);
  });
});

// ─── built-in definitions ───────────────────────────────────────────────────────────────

describe("built-in job definitions", () => {
  it("are created lazily per organization, once, even by concurrent first jobs", async () => {
    const other = await fabric.otherOrg();
    expect(await definitionCount(other.organizationId)).toBe(0);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => createJob(i % 3 === 2 ? { modality: "embedding", input: { input: "e" } } : { modality: "text", input: { prompt: `first ${i}` } }, other.apiKey)));
    expect(results.map((r) => r.status)).toEqual([202, 202, 202, 202, 202, 202]);
    const defs = await fabric.database.db.select().from(workflowDefinitions).where(eq(workflowDefinitions.organizationId, other.organizationId));
    expect(defs.map((d) => [d.name, d.version, d.teamId]).sort()).toEqual([
      ["fabric.job.embedding", 1, null],
      ["fabric.job.text", 1, null],
    ]);
    const bodies = await Promise.all(results.map((r) => r.json() as Promise<any>));
    for (const b of bodies) await finished(b.data.id, other.apiKey);
    // Later jobs reuse them.
    await createdJob({ modality: "text", input: { prompt: "again" } }, other.apiKey);
    expect(await definitionCount(other.organizationId)).toBe(2);
    const textDef = defs.find((d) => d.name === "fabric.job.text")!;
    expect(await fabric.database.db.select({ n: count() }).from(workflowRuns).where(and(eq(workflowRuns.organizationId, other.organizationId), eq(workflowRuns.workflowId, textDef.id)))).toEqual([{ n: 5 }]);
  });

  it("the fabric. prefix is reserved: UpsertWorkflow is refused and ValidateWorkflow reports it (REST and gRPC)", async () => {
    const spec = { name: "fabric.job.text", nodes: [{ key: "call", operation: "workflow.noop" }] };
    const refused = await fabric.rest("/v1/workflows", { method: "POST", json: spec });
    const body: any = await refused.json();
    expect(refused.status).toBe(400);
    expect(body.code).toBe("invalid_argument");
    expect(body.issues.map((i: any) => [i.path, i.code])).toEqual([["/name", "reserved_name"]]);
    const mixed = await fabric.rest("/v1/workflows", { method: "POST", json: { ...spec, name: "Fabric.mine" } });
    expect(mixed.status).toBe(400);
    await mixed.body?.cancel();

    const validated: any = await (await fabric.rest("/v1/workflows/validate", { method: "POST", json: spec })).json();
    expect(validated.data.valid).toBe(false);
    expect(validated.data.issues.map((i: any) => [i.path, i.code])).toEqual([["/name", "reserved_name"]]);

    const err = await connectError(workflowsClient.upsertWorkflow({ spec: fromJson(WorkflowSpecSchema, spec as unknown as JsonObject) }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.findDetails(ValidationIssueSchema).map((i) => [i.path, i.code])).toEqual([["/name", "reserved_name"]]);
    const v = await workflowsClient.validateWorkflow({ spec: fromJson(WorkflowSpecSchema, spec as unknown as JsonObject) });
    expect(v.valid).toBe(false);
    expect(v.issues.map((i) => [i.path, i.code])).toEqual([["/name", "reserved_name"]]);
  });

  it("a built-in job workflow cannot be started as a run (by name or id): jobs go through POST /v1/jobs", async () => {
    await createdJob({ modality: "text", input: { prompt: "makes the built-in exist" } });
    const [def] = await fabric.database.db.select().from(workflowDefinitions).where(and(eq(workflowDefinitions.organizationId, fabric.organizationId), eq(workflowDefinitions.name, "fabric.job.text")));
    const runsBefore = await fabric.database.db.select({ n: count() }).from(workflowRuns);
    for (const [body, path] of [
      [{ workflow_name: "fabric.job.text" }, "/workflow_name"],
      [{ workflow_id: def!.id, input: { prompt: "x" } }, "/workflow_id"],
    ] as const) {
      const res = await fabric.rest("/v1/workflow-runs", { method: "POST", json: body });
      const problem: any = await res.json();
      expect(res.status).toBe(400);
      expect(problem.issues).toEqual([expect.objectContaining({ path, code: "reserved_name" })]);
    }
    expect(await fabric.database.db.select({ n: count() }).from(workflowRuns)).toEqual(runsBefore);

    // Not the user's workflows: listed only when asked for by name.
    const listed: any = await (await fabric.rest("/v1/workflows?page_size=200")).json();
    expect(listed.data.map((w: any) => w.name)).not.toContain("fabric.job.text");
    const byName: any = await (await fabric.rest("/v1/workflows?name=fabric.job.text")).json();
    expect(byName.data.map((w: any) => w.id)).toEqual([def!.id]);
  });
});
