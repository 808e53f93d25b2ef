/**
 * Issue 14, item 1: a small request cannot make the executor hold unbounded data. The
 * amplifying `replace` is refused at registration (empty find) or fails its node with
 * `output_too_large` before the text is built; node outputs, run contexts and run inputs
 * are bounded; the node is failed (not retried), the worker goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { defineWorkflow, nodeOf, runControl, waitForRun } from "../execution/harness.js";

let fabric: TestFabric;
beforeAll(async () => {
  fabric = await startTestFabric({ worker: { WORKER_POLL_INTERVAL: 20, FABRIC_MAX_NODE_OUTPUT_BYTES: 4096, FABRIC_MAX_RUN_CONTEXT_BYTES: 8192 } });
});
afterAll(async () => {
  await fabric?.close();
});

const start = async (workflowId: string, input: Record<string, unknown>) => (await runControl(fabric, "rest").start({ workflow_id: workflowId, input: input as any })).run;

describe("size limits on what a run produces", () => {
  it("refuses a replace with an empty find at registration", async () => {
    const res = await fabric.rest("/v1/workflows", {
      method: "POST",
      json: { name: "amplify-empty", nodes: [{ key: "r", operation: "text.transform_basic", config: { op: "replace", find: "", replace: "$'" }, inputs: { text: "$context.text" }, outputs: { text: "$context.out" } }] },
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as any;
    expect(JSON.stringify(body)).toContain("/nodes/0/config/find");
  });

  it("takes the replacement literally", async () => {
    const id = await defineWorkflow(fabric, { name: "literal", nodes: [{ key: "r", operation: "text.transform_basic", config: { op: "replace", find: "b", replace: "$'$&" }, inputs: { text: "$context.text" }, outputs: { text: "$context.out" } }] });
    const run = await waitForRun(fabric, (await start(id, { text: "abc" })).id);
    expect(run.status).toBe("completed");
    expect(run.context["out"]).toBe("a$'$&c");
  });

  it("fails an amplifying replace with output_too_large, once, and the worker goes on", async () => {
    const id = await defineWorkflow(fabric, {
      name: "amplify",
      nodes: [{ key: "r", operation: "text.transform_basic", config: { op: "replace", find: "a", replace: "b".repeat(10_000) }, inputs: { text: "$context.text" }, outputs: { text: "$context.out" }, policy: { max_attempts: 5 } }],
    });
    const run = await waitForRun(fabric, (await start(id, { text: "a".repeat(30_000) })).id);
    expect(run.status).toBe("failed");
    const node = nodeOf(run, "r");
    expect(node.status).toBe("failed");
    expect(node.attempt).toBe(1);
    expect(node.error.code).toBe("output_too_large");
    // The worker survived: the next run completes.
    const ok = await defineWorkflow(fabric, { name: "after", nodes: [{ key: "u", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.text" }, outputs: { text: "$context.out" } }] });
    expect((await waitForRun(fabric, (await start(ok, { text: "fine" })).id)).status).toBe("completed");
  });

  it("fails a node whose output is over FABRIC_MAX_NODE_OUTPUT_BYTES", async () => {
    const id = await defineWorkflow(fabric, { name: "big-output", nodes: [{ key: "n", operation: "workflow.noop", inputs: { v: "$context.v" }, outputs: { v: "$context.copy" } }] });
    const run = await waitForRun(fabric, (await start(id, { v: "x".repeat(5000) })).id);
    expect(nodeOf(run, "n").error?.code).toBe("output_too_large");
    expect(run.context["copy"]).toBeUndefined();
  });

  it("fails the node that would grow the context over FABRIC_MAX_RUN_CONTEXT_BYTES", async () => {
    const id = await defineWorkflow(fabric, {
      name: "big-context",
      nodes: [
        { key: "a", operation: "workflow.noop", inputs: { v: "$context.v" }, outputs: { v: "$context.a" } },
        { key: "b", operation: "workflow.noop", depends_on: ["a"], inputs: { v: "$context.v" }, outputs: { v: "$context.b" } },
      ],
    });
    const run = await waitForRun(fabric, (await start(id, { v: "x".repeat(3000) })).id);
    expect(nodeOf(run, "a").status).toBe("succeeded");
    expect(nodeOf(run, "b").status).toBe("failed");
    expect(nodeOf(run, "b").error?.code).toBe("output_too_large");
    expect(run.context["b"]).toBeUndefined();
  });

  it("refuses a run input over FABRIC_MAX_RUN_INPUT_BYTES with 400 and writes nothing", async () => {
    const id = await defineWorkflow(fabric, { name: "big-input", nodes: [{ key: "n", operation: "workflow.noop" }] });
    const res = await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: id, input: { v: "x".repeat(300_000) } } });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain("too_large");
    const list = (await (await fabric.rest(`/v1/workflow-runs?workflow_id=${id}`)).json()) as any;
    expect(list.data.length ?? list.data.runs?.length ?? 0).toBe(0);
  });
});
