/**
 * google.rpc error details on the wire (status-details.ts): a real Fabric, read back by
 * Connect-ES's own detail decoder on gRPC (grpc-status-details-bin), Connect and gRPC-Web.
 */
import { randomUUID } from "node:crypto";
import { fromJson, type JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema, RequestInfoSchema, RetryInfoSchema } from "../../gen/proto/google/rpc/error_details_pb.js";
import { RunService } from "../../gen/proto/fabric/v1/run_pb.js";
import { ProviderService } from "../../gen/proto/fabric/v1/providers_pb.js";
import { PolicyService } from "../../gen/proto/fabric/v1/usage_pb.js";
import { ValidationIssueSchema, WorkflowService, WorkflowSpecSchema } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";

const sessionManagers: Http2SessionManager[] = [];
const transports: { name: string; make(baseUrl: string, interceptors: Interceptor[]): Transport }[] = [
  {
    name: "gRPC",
    make(baseUrl, interceptors) {
      const sessionManager = new Http2SessionManager(baseUrl);
      sessionManagers.push(sessionManager);
      return createGrpcTransport({ baseUrl, sessionManager, interceptors });
    },
  },
  { name: "Connect", make: (baseUrl, interceptors) => createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors }) },
  { name: "gRPC-Web", make: (baseUrl, interceptors) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors }) },
];

async function connectError(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected the call to fail");
}

let fabric: TestFabric;
beforeAll(async () => {
  fabric = await startTestFabric();
});
afterAll(async () => {
  for (const m of sessionManagers) m.abort();
  await fabric?.close();
});

describe.each(transports)("$name", (tc) => {
  const client = <S extends Parameters<typeof createClient>[0]>(service: S, key = fabric.apiKey) =>
    createClient(service, tc.make(fabric.grpcUrl, [(next) => (req) => (req.header.set("authorization", `Bearer ${key}`), next(req))]));

  it("a not-found error carries ErrorInfo (reason = stable code, domain) and RequestInfo (the request id)", async () => {
    const requestId = `req-${randomUUID()}`;
    const err = await connectError(client(RunService).getRun({ id: randomUUID() }, { headers: { "x-request-id": requestId } }));
    expect(err.code).toBe(Code.NotFound);
    const [info] = err.findDetails(ErrorInfoSchema);
    expect(info).toMatchObject({ reason: "not_found", domain: "fabric.dev", metadata: { kind: "not_found" } });
    expect(err.findDetails(RequestInfoSchema)[0]?.requestId).toBe(requestId);
    expect(err.findDetails(BadRequestSchema)).toEqual([]);
    expect(err.findDetails(RetryInfoSchema)).toEqual([]);
    // Compatibility: the header of before is still sent.
    expect(err.metadata.get("fabric-error-code")).toBe("not_found");
  });

  it("an unauthenticated call carries ErrorInfo too", async () => {
    const err = await connectError(client(RunService, "fab_abcdefgh_000000000000000000000000").getRun({ id: randomUUID() }));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.findDetails(ErrorInfoSchema)[0]?.reason).toBe("unauthenticated");
    expect(err.findDetails(RequestInfoSchema)[0]?.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("an invalid workflow carries BadRequest with proto field paths, beside the ValidationIssue details", async () => {
    const spec = fromJson(WorkflowSpecSchema, { name: `bad-${randomUUID()}`, nodes: [{ key: "a", operation: "no.such.op", depends_on: ["ghost"] }] } as JsonObject);
    const err = await connectError(client(WorkflowService).upsertWorkflow({ spec }));
    expect(err.code).toBe(Code.InvalidArgument);
    const [bad] = err.findDetails(BadRequestSchema);
    const violations = bad!.fieldViolations.map((v) => [v.field, v.reason]).sort();
    expect(violations).toEqual([
      ["nodes[0].depends_on[0]", "unknown_dependency"],
      ["nodes[0].operation", "unknown_operation"],
    ]);
    for (const v of bad!.fieldViolations) expect(v.description).not.toBe("");
    const issues = err.findDetails(ValidationIssueSchema).map((i) => [i.path, i.code]).sort();
    expect(issues).toEqual([
      ["/nodes/0/depends_on/0", "unknown_dependency"],
      ["/nodes/0/operation", "unknown_operation"],
    ]);
    expect(err.findDetails(ErrorInfoSchema)[0]?.reason).toBe("invalid_argument");
  });

  it("a rate-limited call carries RetryInfo with the wait, the same as retry-after", async () => {
    const other = await fabric.otherOrg();
    await client(PolicyService, other.apiKey).setPolicy({ organizationId: other.organizationId, requestsPerMinutePerKey: 1 });
    const providers = client(ProviderService, other.apiKey);
    const err = await connectError(
      (async () => {
        for (let i = 0; i < 2; i++) await providers.execute({ call: { prompt: "hello" } });
      })(),
    );
    expect(err.code).toBe(Code.ResourceExhausted);
    const [info] = err.findDetails(ErrorInfoSchema);
    expect(info?.reason).toBe("rate_limited");
    const [retry] = err.findDetails(RetryInfoSchema);
    const seconds = Number(retry!.retryDelay!.seconds) + retry!.retryDelay!.nanos / 1e9;
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThanOrEqual(60);
    expect(String(seconds)).toBe(err.metadata.get("retry-after"));
    expect(info?.metadata["retry_after_seconds"]).toBe(String(seconds));
  });
});
