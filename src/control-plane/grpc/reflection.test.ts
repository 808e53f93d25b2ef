import { execFile } from "node:child_process";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { file_fabric_v1_run, RunService } from "../../../gen/proto/fabric/v1/run_pb.js";
import { file_fabric_v1_workflow, WorkflowService } from "../../../gen/proto/fabric/v1/workflow_pb.js";
import {
  ServerReflection,
  type ServerReflectionRequestSchema,
  type ServerReflectionResponse,
} from "../../../gen/proto/grpc/reflection/v1/reflection_pb.js";
import { addReflection } from "./reflection.js";

function routes(router: ConnectRouter): void {
  addReflection(router, [file_fabric_v1_run, file_fabric_v1_workflow]);
  // Unimplemented handlers: reflection only needs the services to exist.
  router.service(RunService, {});
  router.service(WorkflowService, {});
}

/** Sends all requests on one stream, so "already sent" tracking is exercised. */
async function reflect(
  ...requests: MessageInitShape<typeof ServerReflectionRequestSchema>["messageRequest"][]
): Promise<ServerReflectionResponse[]> {
  const client = createClient(ServerReflection, createRouterTransport(routes));
  const out: ServerReflectionResponse[] = [];
  async function* input() {
    for (const messageRequest of requests) yield { host: "test", messageRequest };
  }
  for await (const res of client.serverReflectionInfo(input())) out.push(res);
  return out;
}

function fileNames(res: ServerReflectionResponse | undefined): string[] {
  expect(res?.messageResponse.case).toBe("fileDescriptorResponse");
  if (res?.messageResponse.case !== "fileDescriptorResponse") return [];
  return res.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
}

describe("server reflection (in memory)", () => {
  it("lists our services and both reflection services", async () => {
    const [res] = await reflect({ case: "listServices", value: "" });
    expect(res?.validHost).toBe("test");
    expect(res?.originalRequest?.messageRequest.case).toBe("listServices");
    const names = res?.messageResponse.case === "listServicesResponse" ? res.messageResponse.value.service : [];
    expect(names.map((s) => s.name).sort()).toEqual([
      "fabric.v1.RunService",
      "fabric.v1.WorkflowService",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
    ]);
  });

  it("sends a file with its transitive dependencies, each once per stream", async () => {
    const [run, workflow, struct] = await reflect(
      { case: "fileByFilename", value: "fabric/v1/run.proto" },
      { case: "fileByFilename", value: "fabric/v1/workflow.proto" },
      { case: "fileContainingSymbol", value: "google.protobuf.Struct" },
    );
    expect(fileNames(run)).toEqual([
      "fabric/v1/run.proto",
      "google/protobuf/struct.proto",
      "google/protobuf/timestamp.proto",
    ]);
    // struct.proto and timestamp.proto already went out on this stream.
    expect(fileNames(workflow)).toEqual(["fabric/v1/workflow.proto"]);
    // An explicitly requested file is always sent, or the answer would be empty.
    expect(fileNames(struct)).toEqual(["google/protobuf/struct.proto"]);
  });

  it("finds the file declaring a message, a service, a method, a field and an enum value", async () => {
    const symbols = [
      "fabric.v1.StartRunRequest",
      "fabric.v1.WorkflowService",
      "fabric.v1.RunService.WatchRun",
      "fabric.v1.Run.id",
      "google.protobuf.NULL_VALUE",
    ];
    const responses = await reflect(...symbols.map((value) => ({ case: "fileContainingSymbol" as const, value })));
    expect(responses.map((r) => fileNames(r)[0])).toEqual([
      "fabric/v1/run.proto",
      "fabric/v1/workflow.proto",
      "fabric/v1/run.proto",
      "fabric/v1/run.proto",
      "google/protobuf/struct.proto",
    ]);
  });

  it("answers unknown names and extension queries with error_response, keeping the stream open", async () => {
    const responses = await reflect(
      { case: "fileContainingSymbol", value: "fabric.v1.Nope" },
      { case: "fileByFilename", value: "nope.proto" },
      { case: "fileContainingExtension", value: { containingType: "fabric.v1.Run", extensionNumber: 100 } },
      { case: "allExtensionNumbersOfType", value: "fabric.v1.Run" },
    );
    expect(responses.map((r) => r.messageResponse.case === "errorResponse" && r.messageResponse.value.errorCode))
      .toEqual([5, 5, 5, false]);
    expect(responses[3]?.messageResponse).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "fabric.v1.Run", extensionNumber: [] },
    });
  });
});

describe("server reflection (wire, buf curl)", () => {
  const server = http2.createServer(connectNodeAdapter({ routes }));
  let base = "";

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const bufCurl = (...args: string[]) =>
    promisify(execFile)("node_modules/.bin/buf", ["curl", "--http2-prior-knowledge", ...args], { timeout: 20_000 });

  it("lists services over grpc.reflection.v1", async () => {
    const { stdout } = await bufCurl("--list-services", base);
    expect(stdout).toContain("fabric.v1.RunService");
    expect(stdout).toContain("fabric.v1.WorkflowService");
  });

  it("lists methods over grpc.reflection.v1alpha", async () => {
    const { stdout } = await bufCurl("--reflect-protocol", "grpc-v1alpha", "--list-methods", base);
    expect(stdout).toContain("fabric.v1.RunService/StartRun");
    expect(stdout).toContain("fabric.v1.WorkflowService/ValidateWorkflow");
  });

  it("resolves a call's schema by reflection alone", async () => {
    // The handler is unimplemented; reaching it proves buf built the request from our descriptors.
    const call = bufCurl("--protocol", "grpc", "-d", '{"id":"r1"}', `${base}/fabric.v1.RunService/GetRun`);
    await expect(call).rejects.toMatchObject({ stderr: expect.stringContaining("GetRun is not implemented") });
  });
}, 30_000);
