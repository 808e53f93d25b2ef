/**
 * An external client in another language (buf curl, Go / connect-go) against the real
 * gRPC port, resolving the schema by server reflection only (no --schema).
 */
import { services } from "../../src/control-plane/contract.js";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValidationIssueSchema } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { eventually, smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";

const buf = join(import.meta.dirname, "../../node_modules/.bin/buf");

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function bufCurl(args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = execFile(buf, ["curl", ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") return reject(err);
      resolve({ code: typeof err?.code === "number" ? err.code : 0, stdout, stderr });
    });
    child.stdin?.end();
  });
}

let fabric: TestFabric;
const auth = () => ["-H", `Authorization: Bearer ${fabric.apiKey}`];

beforeAll(async () => {
  fabric = await startTestFabric();
  const res = await fabric.rest("/v1/workflows", { method: "POST", json: smokeWorkflow });
  expect([200, 201]).toContain(res.status);
});
afterAll(() => fabric?.close());

const expectedServices = [...services.map((s) => s.typeName), "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"].sort();

describe("buf curl via server reflection", () => {
  it("--list-services over h2c lists every Fabric service, the health service and both reflection services", async () => {
    const r = await bufCurl(["--list-services", "--http2-prior-knowledge", fabric.grpcUrl]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split("\n").sort()).toEqual(expectedServices);
  });

  it("--list-services also works with the gRPC protocol and with Connect over HTTP/1.1", async () => {
    for (const args of [["--protocol", "grpc", "--http2-prior-knowledge"], ["--protocol", "connect"]]) {
      const r = await bufCurl(["--list-services", ...args, fabric.grpcUrl]);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
      expect(r.stdout.trim().split("\n").sort()).toEqual(expectedServices);
    }
  });

  it.each([
    { name: "default protocol (Connect) over h2c", args: ["--http2-prior-knowledge"] },
    { name: "gRPC over h2c", args: ["--protocol", "grpc", "--http2-prior-knowledge"] },
    { name: "gRPC-Web over h2c", args: ["--protocol", "grpcweb", "--http2-prior-knowledge"] },
    { name: "Connect over HTTP/1.1", args: ["--protocol", "connect"] },
  ])("StartRun with $name returns a run that completes", async ({ args }) => {
    const r = await bufCurl([...args, ...auth(), "-d", '{"workflow_name":"smoke","input":{"topic":"hi"}}', `${fabric.grpcUrl}/fabric.v1.RunService/StartRun`]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.created).toBe(true);
    expect(out.run).toMatchObject({ workflowName: "smoke", input: { topic: "hi" }, status: "pending" });
    expect(out.run.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(out.run.nodes.map((n: any) => n.key)).toEqual(["shout", "gen"]);

    const done = await eventually(async () => {
      const g = await bufCurl([...args, ...auth(), "-d", JSON.stringify({ id: out.run.id }), `${fabric.grpcUrl}/fabric.v1.RunService/GetRun`]);
      expect(g.code, g.stderr).toBe(0);
      const run = JSON.parse(g.stdout).run;
      return ["completed", "failed"].includes(run.status) ? run : undefined;
    }, 15_000);
    expect(done.status).toBe("completed");
    expect(done.context.answer).toBe("HI");
  });

  it("server streaming: WatchRun prints every event and ends after the terminal one", async () => {
    const s = await bufCurl(["--http2-prior-knowledge", ...auth(), "-d", '{"workflow_name":"smoke","input":{"topic":"stream"}}', `${fabric.grpcUrl}/fabric.v1.RunService/StartRun`]);
    expect(s.code, s.stderr).toBe(0);
    const id = JSON.parse(s.stdout).run.id;
    const w = await bufCurl(["--protocol", "grpc", "--http2-prior-knowledge", ...auth(), "-d", JSON.stringify({ id }), `${fabric.grpcUrl}/fabric.v1.RunService/WatchRun`]);
    expect(w.code, w.stderr).toBe(0);
    // buf curl prints one pretty JSON document per message.
    const kinds = [...w.stdout.matchAll(/"kind":\s*"([^"]+)"/g)].map((m) => m[1]);
    expect(kinds[0]).toBe("workflow.run.created");
    expect(kinds.at(-1)).toBe("workflow.run.completed");
  });

  it("errors: codes map to buf curl's exit codes (code × 8) with fabric details", async () => {
    const notFound = await bufCurl(["--protocol", "grpc", "--http2-prior-knowledge", ...auth(), "-d", '{"id":"00000000-0000-4000-8000-000000000000"}', `${fabric.grpcUrl}/fabric.v1.RunService/GetRun`]);
    expect(notFound.code).toBe(5 * 8);
    expect(notFound.stderr + notFound.stdout).toContain('"not_found"');

    const invalid = await bufCurl([
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      ...auth(),
      "-d",
      JSON.stringify({ spec: { name: "bad-buf", nodes: [{ key: "a", operation: "text.transform_basic", config: { op: "upper" }, depends_on: ["zz"] }] } }),
      `${fabric.grpcUrl}/fabric.v1.WorkflowService/UpsertWorkflow`,
    ]);
    expect(invalid.code).toBe(3 * 8);
    // buf curl prints the error as JSON; the detail is a fabric.v1.ValidationIssue (base64 binary).
    const text = invalid.stderr + invalid.stdout;
    const problem = JSON.parse(text.slice(text.indexOf("{")));
    expect(problem.code).toBe("invalid_argument");
    const details = (problem.details ?? []).filter((d: any) => d.type === "fabric.v1.ValidationIssue");
    expect(details).toHaveLength(1);
    const issue = fromBinary(ValidationIssueSchema, Buffer.from(details[0].value, "base64"));
    expect({ path: issue.path, code: issue.code }).toEqual({ path: "/nodes/0/depends_on/0", code: "unknown_dependency" });

    const anon = await bufCurl(["--http2-prior-knowledge", "-d", "{}", `${fabric.grpcUrl}/fabric.v1.RunService/ListRuns`]);
    expect(anon.code).toBe(16 * 8);
    expect(anon.stderr + anon.stdout).toContain('"unauthenticated"');
  });
});
