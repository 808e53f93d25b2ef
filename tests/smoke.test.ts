import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, smokeWorkflow, startTestFabric, type TestFabric } from "./helpers/fabric.js";
import { expectValid } from "./helpers/openapi.js";

describe("acceptance: the smoke workflow over REST", () => {
  let fabric: TestFabric;
  beforeAll(async () => {
    fabric = await startTestFabric();
  });
  afterAll(() => fabric?.close());

  it("completes with context.answer == HELLO WORLD", async () => {
    const wf = await expectValid(await fabric.rest("/v1/workflows", { method: "POST", json: smokeWorkflow }), "/v1/workflows", "post");
    const started = await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: wf.data.id, input: { topic: "hello world" } } });
    expect(started.status).toBe(202);
    const run = (await expectValid(started, "/v1/workflow-runs", "post")).data;
    const done = await eventually(async () => {
      const r = (await expectValid(await fabric.rest(`/v1/workflow-runs/${run.id}`), "/v1/workflow-runs/{id}", "get")).data;
      return ["completed", "failed"].includes(r.status) ? r : undefined;
    });
    expect(done.status).toBe("completed");
    expect(done.context.answer).toBe("HELLO WORLD");
    expect(done.nodes.map((n: any) => [n.key, n.status])).toEqual([
      ["shout", "succeeded"],
      ["gen", "succeeded"],
    ]);
  });
});
