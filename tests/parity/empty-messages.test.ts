/**
 * Required fields are checked at the edge (src/control-plane/required-fields.ts), the
 * same on both transports: every RPC sent an empty message answers INVALID_ARGUMENT
 * naming its first required field — never NOT_FOUND from a lookup of an empty id — and
 * every REST operation sent no body and no query answers 400 naming the first required
 * field the URL does not carry.
 */
import { randomUUID } from "node:crypto";
import { create, type DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/proto/google/rpc/error_details_pb.js";
import { methodsByRpc, restOperations, serviceDescriptors } from "../../src/control-plane/contract.js";
import { requiredFieldsOf } from "../../src/control-plane/required-fields.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";

let fabric: TestFabric;
let sessionManager: Http2SessionManager;
let transport: Transport;

beforeAll(async () => {
  fabric = await startTestFabric();
  sessionManager = new Http2SessionManager(fabric.grpcUrl);
  transport = createGrpcTransport({
    baseUrl: fabric.grpcUrl,
    sessionManager,
    interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${fabric.apiKey}`), next(req))],
  });
});

afterAll(async () => {
  sessionManager?.abort();
  await fabric?.close();
});

/** Calls `method` with an empty message: its error, or undefined when it answered (a stream: its first message). */
async function callEmpty(method: DescMethod): Promise<ConnectError | undefined> {
  const client = createClient(serviceDescriptors[method.parent.typeName as keyof typeof serviceDescriptors], transport) as Record<string, (req: unknown, opts: unknown) => any>;
  const abort = new AbortController();
  try {
    if (method.methodKind === "server_streaming") {
      const it = client[method.localName]!(create(method.input), { signal: abort.signal })[Symbol.asyncIterator]();
      // A stream that is valid when empty (every event) may stay silent: a first message or a quiet second is enough.
      const quiet = new Promise((resolve) => setTimeout(resolve, 1_000, "quiet"));
      await Promise.race([it.next(), quiet]);
      abort.abort();
    } else {
      await client[method.localName]!(create(method.input), {});
    }
    return undefined;
  } catch (err) {
    if (abort.signal.aborted) return undefined;
    return ConnectError.from(err);
  }
}

const rpcs = [...methodsByRpc.entries()].map(([rpc, method]) => ({ rpc, method, required: requiredFieldsOf(method.input) }));

describe("gRPC: every RPC with an empty message", () => {
  it("the table covers the RPCs the issue named (GetRun, CancelRun, GetWorkflow, GetJob, ListTeams)", () => {
    const of = (rpc: string) => rpcs.find((r) => r.rpc === rpc)!.required;
    expect(of("fabric.v1.RunService/GetRun")).toEqual(["id"]);
    expect(of("fabric.v1.RunService/CancelRun")).toEqual(["id"]);
    expect(of("fabric.v1.WorkflowService/GetWorkflow")).toEqual(["id"]);
    expect(of("fabric.v1.JobService/GetJob")).toEqual(["id"]);
    expect(of("fabric.v1.TenancyService/ListTeams")).toEqual(["organization_id"]);
    expect(rpcs.filter((r) => r.required.length).length).toBeGreaterThan(40);
  });

  it.each(rpcs.filter((r) => r.required.length))("$rpc → INVALID_ARGUMENT naming $required.0", async ({ method, required }) => {
    const err = await callEmpty(method);
    expect(err?.code, err?.message).toBe(Code.InvalidArgument);
    expect(err!.message).toContain(required[0]);
    const fields = err!.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => [v.field, v.reason]));
    expect(fields).toContainEqual([required[0], "required"]);
    for (const [field] of fields) expect(required).toContain(field);
  });

  it.each(rpcs.filter((r) => !r.required.length))("$rpc (nothing required) → no lookup of an empty id", async ({ method }) => {
    const err = await callEmpty(method);
    expect(err?.code).not.toBe(Code.NotFound);
    expect(err?.code).not.toBe(Code.Internal);
  });
});

describe("REST: every operation with no body and no query", () => {
  const ops = restOperations.filter((op) => op.protoMethod && !op.stream).map((op) => {
    const inPath = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
    // A body that fills one field (`x-fabric-body: spec`) is that field: sending `{}` sets it.
    const carried = [...inPath, ...(op.body && op.body !== "*" ? [op.body] : [])];
    return { name: `${op.method} ${op.path}`, op, inPath, missing: requiredFieldsOf(op.protoMethod!.input).filter((f) => !carried.includes(f)) };
  });

  it.each(ops.filter((o) => o.missing.length))("$name → 400 naming $missing.0", async ({ op, inPath, missing }) => {
    let path = op.path;
    for (const p of inPath) path = path.replace(`{${p}}`, p === "organization_id" ? fabric.organizationId : randomUUID());
    const res = await fabric.rest(path, { method: op.method, ...(op.body ? { headers: { "content-type": "application/json" }, body: "{}" } : {}) });
    const problem = (await res.json()) as { code: string; issues?: { path: string; code: string }[] };
    expect(res.status, JSON.stringify(problem)).toBe(400);
    expect(problem.code).toBe("invalid_argument");
    expect(problem.issues).toContainEqual(expect.objectContaining({ path: `/${missing[0]}`, code: "required" }));
  });
});
