import { fromJson, type JsonObject } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { WorkflowSpecSchema } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { compileWorkflow, transitiveDependents } from "./compiled-workflow.js";

const node = (key: string, depends_on: string[] = [], extra: JsonObject = {}): JsonObject => ({ key, operation: "workflow.noop", depends_on, ...extra });

//      a
//     / \
//    b   c
//     \ /
//      d — e        f (unrelated)
const diamond = compileWorkflow(
  fromJson(WorkflowSpecSchema, {
    name: "diamond",
    nodes: [node("a"), node("b", ["a"], { merge: "append" }), node("c", ["a"]), node("d", ["b", "c"]), node("e", ["d"]), node("f")],
  }),
);

describe("compileWorkflow", () => {
  it("indexes nodes by key with their position and spec", () => {
    expect([...diamond.nodes.keys()]).toEqual(["a", "b", "c", "d", "e", "f"]);
    expect(diamond.nodes.get("d")!.position).toBe(3);
    expect(diamond.nodes.get("d")!.spec.dependsOn).toEqual(["b", "c"]);
  });

  it("lists each node's direct dependents", () => {
    const dependents = Object.fromEntries([...diamond.nodes].map(([k, n]) => [k, [...n.dependents].sort()]));
    expect(dependents).toEqual({ a: ["b", "c"], b: ["d"], c: ["d"], d: ["e"], e: [], f: [] });
  });

  it("defaults the merge policy to replace", () => {
    expect(diamond.nodes.get("a")!.merge).toBe("replace");
    expect(diamond.nodes.get("b")!.merge).toBe("append");
  });
});

describe("transitiveDependents", () => {
  it("collects everything downstream once, without the node itself", () => {
    const down = transitiveDependents(diamond, "a");
    expect(down.sort()).toEqual(["b", "c", "d", "e"]);
    expect(transitiveDependents(diamond, "b").sort()).toEqual(["d", "e"]);
    expect(transitiveDependents(diamond, "d")).toEqual(["e"]);
  });

  it("is empty for leaves and unknown keys", () => {
    expect(transitiveDependents(diamond, "e")).toEqual([]);
    expect(transitiveDependents(diamond, "f")).toEqual([]);
    expect(transitiveDependents(diamond, "nope")).toEqual([]);
  });
});
