/**
 * `client.grpc` against a real Fabric on loopback: a typed Connect client for every
 * service of the contract (checked against the generated descriptors, so a new service
 * fails here until the SDK exposes it), one call of each, the server-streaming methods,
 * and errors as FabricErrors — unary and streaming alike — except the caller's own
 * cancellation.
 */
import { randomUUID } from "node:crypto";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { DescFile } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FabricClient, FabricError, grpcServices, type FabricGrpc } from "../../src/sdk/index.js";
import { smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { collect, rejection } from "./support.js";

let fabric: TestFabric;
let client: FabricClient;
let org: string;
/** A completed run (over REST), for the event streams to replay. */
let runId: string;
/** A team created over REST (an audited change). */
let teamId: string;

beforeAll(async () => {
  fabric = await startTestFabric();
  client = new FabricClient({ baseUrl: fabric.restUrl, apiKey: fabric.apiKey, grpcBaseUrl: fabric.grpcUrl });
  org = fabric.organizationId;
  const wf = await client.workflows.upsert({ ...smokeWorkflow, name: "grpc-sdk" });
  teamId = (await client.teams.create(org, { slug: `grpc-sdk-${randomUUID().slice(0, 8)}`, name: "gRPC SDK" })).id;
  runId = (await client.runs.wait((await client.runs.start({ workflow_id: wf.id, input: { topic: "grpc" } })).id, { timeoutMs: 20_000 })).id;
});

afterAll(async () => {
  client?.close();
  await fabric?.close();
});

/** Every service the generated code holds (every `file_*` descriptor of gen/proto/fabric/v1). */
async function contractServices(): Promise<string[]> {
  const dir = join(dirname(fileURLToPath(import.meta.url)), "../../gen/proto/fabric/v1");
  const names: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith("_pb.ts"))) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(mod)) if (name.startsWith("file_")) names.push(...(value as DescFile).services.map((s) => s.typeName));
  }
  return names.sort();
}

/** One call per service, by the name `client.grpc` gives it; the record's type makes a missing one a compile error. */
const oneCallPerService: { [K in keyof FabricGrpc]: (grpc: FabricGrpc) => Promise<void> } = {
  workflows: async (g) => expect((await g.workflows.listWorkflows({ name: "grpc-sdk" })).workflows.map((w) => w.name)).toEqual(["grpc-sdk"]),
  runs: async (g) => expect((await g.runs.getRun({ id: runId })).run?.context?.["answer"]).toBe("GRPC"),
  identity: async (g) => expect((await g.identity.getMe({})).principal?.id).toBe(fabric.principalId),
  tenancy: async (g) => expect((await g.tenancy.getOrganization({ id: org })).organization?.id).toBe(org),
  apiKeys: async (g) => expect((await g.apiKeys.listApiKeys({ organizationId: org })).apiKeys.length).toBeGreaterThan(0),
  authz: async (g) => expect((await g.authz.check({ resource: `organization:${org}`, action: "workflow.read" })).allowed).toBe(true),
  audit: async (g) => expect((await g.audit.listAuditEntries({ organizationId: org, pageSize: 200 })).entries.map((e) => e.resource)).toContain(`team:${teamId}`),
  // EventService has only a server-streaming method: replay the run's events to its end
  // (event ids start at 1, and the upsert before the run recorded one).
  events: async (g) => {
    const kinds: string[] = [];
    for await (const res of g.events.streamEvents({ runId, afterId: 1n }, { timeoutMs: 20_000 })) {
      kinds.push(res.event!.kind);
      if (res.event!.kind === "workflow.run.completed") break;
    }
    expect(kinds[0]).toBe("workflow.run.created");
  },
  webhooks: async (g) => expect(Array.isArray((await g.webhooks.listWebhooks({ organizationId: org })).webhooks)).toBe(true),
  providers: async (g) => expect((await g.providers.listProviders({})).providers.map((p) => p.name)).toContain("echo"),
  jobs: async (g) => expect(Array.isArray((await g.jobs.listJobs({})).jobs)).toBe(true),
  usage: async (g) => expect((await g.usage.queryUsage({ organizationId: org })).total).toBeDefined(),
  policies: async (g) => expect((await g.policies.getPolicy({ organizationId: org })).policy?.organizationId).toBe(org),
  schedules: async (g) => expect(Array.isArray((await g.schedules.listSchedules({})).schedules)).toBe(true),
  retention: async (g) => expect((await g.retention.getRetention({ organizationId: org })).retention?.organizationId).toBe(org),
};

describe("client.grpc covers every service", () => {
  it("grpcServices names exactly the services of the contract; client.grpc has a client for each", async () => {
    expect(Object.values(grpcServices).map((s) => s.typeName).sort()).toEqual(await contractServices());
    expect(Object.keys(client.grpc).sort()).toEqual(Object.keys(grpcServices).sort());
  });

  it.each(Object.keys(grpcServices) as (keyof FabricGrpc)[])("%s: one call over gRPC", async (name) => {
    await oneCallPerService[name](client.grpc);
  });
});

describe("server streaming", () => {
  it("jobs.watchJob follows a job to its terminal event; providers.executeStream yields deltas then the result", async () => {
    const job = await client.jobs.create({ modality: "text", input: { prompt: "streamed over grpc" } });
    const kinds: string[] = [];
    for await (const res of client.grpc.jobs.watchJob({ id: job.id }, { timeoutMs: 20_000 })) kinds.push(res.event!.kind);
    expect(kinds.at(-1)).toBe("workflow.run.completed");
    expect((await client.grpc.jobs.getJob({ id: job.id })).job?.status).toBe("completed");

    const chunks = await collect(client.grpc.providers.executeStream({ call: { prompt: "one two three four" } }));
    const deltas = chunks.filter((c) => c.chunk.case === "delta").map((c) => (c.chunk.case === "delta" ? c.chunk.value.text : ""));
    const last = chunks.at(-1)!.chunk;
    expect(last.case).toBe("result");
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join("")).toBe(last.case === "result" ? last.value.text : undefined);
  });
});

describe("errors", () => {
  it("unary errors of any service are FabricErrors with the Fabric code, status, issues and request id", async () => {
    const g = client.grpc;
    const missing = await rejection(g.tenancy.getTeam({ organizationId: org, id: randomUUID() }, { headers: { "x-request-id": "sdk-grpc-team" } }));
    expect(missing).toMatchObject({ status: 404, code: "not_found", requestId: "sdk-grpc-team" });
    expect(missing.cause).toBeInstanceOf(ConnectError);

    const refused = await rejection(g.webhooks.createWebhook({ organizationId: org, url: "ftp://example.com/hook" }));
    expect(refused).toMatchObject({ status: 400, code: "url_not_allowed" });
    expect(refused.issues).toEqual([expect.objectContaining({ path: "/url", code: "url_not_allowed" })]);

    const stranger = new FabricClient({ baseUrl: fabric.restUrl, grpcBaseUrl: fabric.grpcUrl, apiKey: "fab_aaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbb" });
    try {
      expect(await rejection(stranger.grpc.identity.getMe({}))).toMatchObject({ status: 401, code: "unauthenticated" });
    } finally {
      stranger.close();
    }
  });

  it("streaming errors are FabricErrors too, before the first message and after a refusal", async () => {
    const g = client.grpc;
    expect(await rejection(collect(g.jobs.watchJob({ id: randomUUID() })))).toMatchObject({ status: 404, code: "not_found" });

    const team = await client.teams.create(org, { slug: `grpc-${randomUUID().slice(0, 8)}`, name: "gRPC" });
    await client.policies.set(org, { team_id: team.id, allowed_models: ["gpt-4o"] });
    const refusal = await rejection(collect(g.providers.executeStream({ call: { prompt: "hi", teamId: team.id } })));
    expect(refusal).toMatchObject({ status: 403, code: "model_not_allowed" });
    // The same refusal over REST: one error vocabulary for both transports.
    expect(await rejection(client.providers.execute({ prompt: "hi", team_id: team.id }))).toMatchObject({ status: refusal.status, code: refusal.code });
  });

  it("the caller's own cancellation stays a ConnectError canceled; a deadline is a FabricError", async () => {
    const ac = new AbortController();
    let caught: unknown;
    try {
      for await (const res of client.grpc.events.streamEvents({ runId, afterId: 1n }, { signal: ac.signal })) {
        if (res.event) ac.abort();
      }
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConnectError);
    expect((caught as ConnectError).code).toBe(Code.Canceled);

    // An organization stream with nothing coming: the call's own deadline ends it.
    const deadline = await rejection(collect(client.grpc.events.streamEvents({ kinds: "no.such.kind" }, { timeoutMs: 300 })));
    expect(deadline).toMatchObject({ status: 504, code: "deadline_exceeded" });
    expect(deadline).toBeInstanceOf(FabricError);
  });
});
