/**
 * Issue 14, item 8: user strings used as keys never reach an object's prototype, and a
 * REST body nested 10,000 levels deep is a 400 (bounded at parse), as on gRPC.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UsageService } from "../../gen/proto/fabric/v1/usage_pb.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";

let fabric: TestFabric;
beforeAll(async () => {
  fabric = await startTestFabric({ worker: false });
});
afterAll(() => fabric?.close());

describe("prototype keys", () => {
  for (const key of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
    it(`group_by=${key} is invalid_argument on both transports`, async () => {
      const res = await fabric.rest(`/v1/organizations/${fabric.organizationId}/usage?group_by=${key}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).code).toBe("invalid_argument");
      const client = createClient(UsageService, createGrpcTransport({ baseUrl: fabric.grpcUrl, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${fabric.apiKey}`), next(req))] }));
      const err = await client.queryUsage({ organizationId: fabric.organizationId, groupBy: key }).catch((e) => ConnectError.from(e));
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    });
  }

  it("a workflow node with operation __proto__ is refused", async () => {
    const res = await fabric.rest("/v1/workflows", { method: "POST", json: { name: "proto-op", nodes: [{ key: "a", operation: "__proto__" }] } });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain("unknown_operation");
  });
});

describe("nesting depth", () => {
  it("answers 400 too_deep for a REST body nested 10,000 levels, and the server goes on", async () => {
    const deep = '{"name":"deep","nodes":[{"key":"a","operation":"workflow.noop","config":' + '{"x":'.repeat(10_000) + "1" + "}".repeat(10_000) + "}]}";
    const res = await fabric.rest("/v1/workflows", { method: "POST", body: deep, headers: { "content-type": "application/json" } });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain("too_deep");
    expect((await fetch(`${fabric.restUrl}/healthz`)).status).toBe(200);
  });

  it("still accepts ordinary nesting", async () => {
    const res = await fabric.rest("/v1/workflows", { method: "POST", json: { name: "shallow", nodes: [{ key: "a", operation: "workflow.noop", config: { a: { b: { c: [1, [2, [3]]] } } } }] } });
    expect(res.status).toBeLessThan(300);
  });
});
