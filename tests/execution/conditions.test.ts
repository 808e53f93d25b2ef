/**
 * Node conditions (`when`, a CEL expression over the context), on whichever engine
 * FABRIC_TEST_DB names: false skips the node (state + `workflow.node.skipped`), a
 * dependent whose dependencies were all skipped is skipped too, a dependent with a mix
 * runs with the skipped outputs absent; a condition that cannot be evaluated fails the
 * node without a retry; bad conditions are refused at upsert on both transports, at the
 * node's `when`. The workflow is `examples/conditions.json`.
 */
import { readFileSync } from "node:fs";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValidationIssueSchema, WorkflowService } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { defineWorkflow, kindsOf, nodeOf, ofKind, runControl, runEvents, statuses, transports, waitForRun } from "./harness.js";

const example = JSON.parse(readFileSync(new URL("../../examples/conditions.json", import.meta.url), "utf8")) as { name: string; nodes: any[] };

let fabric: TestFabric;
beforeAll(async () => {
  fabric = await startTestFabric({ worker: { WORKER_POLL_INTERVAL: 20 } });
});
afterAll(() => fabric?.close());

describe.each(transports)("conditions, runs started over %s", (via) => {
  let workflowId: string;
  beforeAll(async () => {
    workflowId = await defineWorkflow(fabric, { nodes: example.nodes });
  });

  it("gold: the standard branch is skipped by its condition, the join runs with its output absent", async () => {
    const { run: started } = await runControl(fabric, via).start({ workflow_id: workflowId, input: { customer: { name: "Ada", tier: "gold" } } });
    const run = await waitForRun(fabric, started.id);
    expect(run.status, JSON.stringify(run.error)).toBe("completed");
    expect(statuses(run)).toEqual({ classify: "succeeded", premium: "succeeded", gift: "succeeded", standard: "skipped", send: "succeeded" });
    expect(run.context.letter).toBe("Dear Ada, thank you for being a gold customer.");
    expect(run.context.sent).toBe("Dear Ada, thank you for being a gold customer. a voucher");

    const events = await runEvents(fabric, run.id);
    const skipped = ofKind(events, "workflow.node.skipped", "standard");
    expect(skipped).toHaveLength(1);
    expect(skipped[0]!.payload).toMatchObject({ reason: "condition", when: example.nodes.find((n) => n.key === "standard").when });
    // Made ready and claimed like any node, then skipped: never completed.
    expect(kindsOf(events, "standard")).toEqual(["workflow.node.ready", "workflow.node.started", "workflow.node.skipped"]);
    expect(kindsOf(events).at(-1)).toBe("workflow.run.completed");
  });

  it("silver: premium is skipped by its condition, gift (all dependencies skipped) is skipped too, the join runs", async () => {
    const { run: started } = await runControl(fabric, via).start({ workflow_id: workflowId, input: { customer: { name: "Bo", tier: "silver" } } });
    const run = await waitForRun(fabric, started.id);
    expect(run.status, JSON.stringify(run.error)).toBe("completed");
    expect(statuses(run)).toEqual({ classify: "succeeded", premium: "skipped", gift: "skipped", standard: "succeeded", send: "succeeded" });
    expect(run.context).not.toHaveProperty("gift");
    expect(run.context.sent).toBe("Hello Bo. ");

    const events = await runEvents(fabric, run.id);
    expect(ofKind(events, "workflow.node.skipped", "premium")[0]!.payload).toMatchObject({ reason: "condition" });
    expect(ofKind(events, "workflow.node.skipped", "gift")[0]!.payload).toEqual({ reason: "dependencies_skipped", because: "premium" });
    // gift was never claimed.
    expect(kindsOf(events, "gift")).toEqual(["workflow.node.skipped"]);
  });

  it("every branch skipped: the join is skipped and the run still completes", async () => {
    const { run: started } = await runControl(fabric, via).start({ workflow_id: workflowId, input: { customer: { name: "Cy", tier: "bronze", opted_out: true } } });
    const run = await waitForRun(fabric, started.id);
    expect(run.status, JSON.stringify(run.error)).toBe("completed");
    expect(statuses(run)).toEqual({ classify: "succeeded", premium: "skipped", gift: "skipped", standard: "skipped", send: "skipped" });
    const events = await runEvents(fabric, run.id);
    expect(ofKind(events, "workflow.node.skipped", "send")[0]!.payload).toMatchObject({ reason: "dependencies_skipped" });
    expect(kindsOf(events).filter((k) => k === "workflow.run.completed")).toHaveLength(1);
  });

  it("a condition that cannot be evaluated fails the node (condition_error), with no retry", async () => {
    const wf = await defineWorkflow(fabric, { nodes: [{ key: "a", operation: "workflow.noop" }, { key: "b", operation: "workflow.noop", depends_on: ["a"], when: "context.nope == 1", policy: { max_attempts: 3 } }] });
    const { run: started } = await runControl(fabric, via).start({ workflow_id: wf });
    const run = await waitForRun(fabric, started.id);
    expect(run.status).toBe("failed");
    const b = nodeOf(run, "b");
    expect(b.status).toBe("failed");
    expect(b.attempt).toBe(1);
    expect(b.error).toMatchObject({ code: "condition_error", message: expect.stringContaining("nope") });
  });
});

describe("conditions are validated at upsert, on both transports", () => {
  const spec = (when: string) => ({ name: "cond-bad", nodes: [{ key: "a", operation: "workflow.noop" }, { key: "b", operation: "workflow.noop", depends_on: ["a"], when }] });
  const cases = [
    { when: "context.tier ==", code: "malformed_condition" },
    { when: 'ctx.tier == "gold"', code: "invalid_condition" },
    { when: "size(context.items)", code: "invalid_condition" },
  ];

  it.each(cases)("REST: $when → 400 with the issue at /nodes/1/when ($code), nothing stored", async ({ when, code }) => {
    const res = await fabric.rest("/v1/workflows", { method: "POST", json: spec(when) });
    const body: any = await res.json();
    expect(res.status).toBe(400);
    expect(body.code).toBe("invalid_argument");
    expect(body.issues.map((i: any) => [i.path, i.code])).toEqual([["/nodes/1/when", code]]);
    expect(((await (await fabric.rest("/v1/workflows?name=cond-bad")).json()) as any).data).toEqual([]);
  });

  it.each(cases)("gRPC: $when → InvalidArgument with the same ValidationIssue", async ({ when, code }) => {
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${fabric.apiKey}`);
      return next(req);
    };
    const client = createClient(WorkflowService, createGrpcTransport({ baseUrl: fabric.grpcUrl, interceptors: [auth] }));
    const s = spec(when);
    const err = await client
      .upsertWorkflow({ spec: { name: s.name, nodes: s.nodes.map((n) => ({ key: n.key, operation: n.operation, dependsOn: n.depends_on ?? [], when: n.when ?? "" })) } })
      .then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(err?.code).toBe(Code.InvalidArgument);
    expect(err!.findDetails(ValidationIssueSchema).map((i) => [i.path, i.code])).toEqual([["/nodes/1/when", code]]);
  });

  it("positive control: a good condition is stored and comes back", async () => {
    const res = await fabric.rest("/v1/workflows", { method: "POST", json: spec('context.tier == "gold"') });
    expect(res.status).toBe(201);
    const body: any = await res.json();
    expect(body.data.spec.nodes[1].when).toBe('context.tier == "gold"');
  });
});
