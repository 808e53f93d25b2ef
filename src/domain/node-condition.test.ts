import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { WorkflowSpecSchema } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { compileCondition, conditionIssues, ConditionError } from "./node-condition.js";
import { validateWorkflowSpec } from "./workflow-spec.js";

describe("conditionIssues", () => {
  it("accepts boolean expressions over the context", () => {
    for (const e of ['context.tier == "gold"', "has(context.a) && context.a.b > 3", 'size(context.items) > 0 && "x" in context.items', "context.items.exists(i, i.n > 2)", "true", "context.flag"]) {
      expect(conditionIssues(e, "/w"), e).toEqual([]);
    }
  });

  it("points at the expression with a stable code: parse errors, unknown references, non-bool results, size", () => {
    expect(conditionIssues("context.tier ==", "/nodes/1/when")).toEqual([expect.objectContaining({ path: "/nodes/1/when", code: "malformed_condition" })]);
    expect(conditionIssues('ctx.tier == "gold"', "/w")[0]).toMatchObject({ code: "invalid_condition", message: expect.stringContaining("ctx") });
    expect(conditionIssues("tier == 1", "/w")[0]?.code).toBe("invalid_condition");
    expect(conditionIssues("eval(context.x)", "/w")[0]?.code).toBe("invalid_condition");
    expect(conditionIssues("1 + 2", "/w")[0]).toMatchObject({ code: "invalid_condition", message: expect.stringContaining("int") });
    expect(conditionIssues("true || ".repeat(400) + "true", "/w")[0]?.code).toBe("too_large");
    expect(conditionIssues("(".repeat(100) + "true" + ")".repeat(100), "/w").length).toBe(1);
  });
});

describe("compileCondition", () => {
  it("evaluates against the context", () => {
    const c = compileCondition('context.tier == "gold" && context.spend > 100');
    expect(c.evaluate({ tier: "gold", spend: 150 })).toBe(true);
    expect(c.evaluate({ tier: "gold", spend: 50 })).toBe(false);
    expect(c.evaluate({ tier: "silver", spend: 500 })).toBe(false);
  });

  it("a missing key is an evaluation error unless guarded with has()", () => {
    expect(() => compileCondition("context.missing == 1").evaluate({})).toThrow(ConditionError);
    expect(compileCondition("has(context.missing) && context.missing == 1").evaluate({})).toBe(false);
  });

  it("a dyn expression that is not a bool at run time is an error", () => {
    expect(() => compileCondition("context.flag").evaluate({ flag: "yes" })).toThrow(/not a bool/);
    expect(compileCondition("context.flag").evaluate({ flag: true })).toBe(true);
  });

  it("sees only the context's own data: no prototype members", () => {
    for (const e of ["has(context.constructor)", "has(context.__proto__)", "has(context.toString)"]) {
      let v: boolean | string;
      try {
        v = compileCondition(e).evaluate({});
      } catch (err) {
        v = (err as Error).name;
      }
      expect(v, e).not.toBe(true);
    }
  });
});

describe("validateWorkflowSpec with when", () => {
  it("reports a bad condition at the node's when, with every other issue", () => {
    const spec = create(WorkflowSpecSchema, {
      name: "w",
      nodes: [
        { key: "a", operation: "workflow.noop" },
        { key: "b", operation: "workflow.noop", dependsOn: ["a"], when: "context.x ==" },
        { key: "c", operation: "workflow.noop", dependsOn: ["nope"], when: "ctx.x" },
      ],
    });
    const issues = validateWorkflowSpec(spec).map((i) => [i.path, i.code]);
    expect(issues).toEqual(expect.arrayContaining([["/nodes/1/when", "malformed_condition"], ["/nodes/2/when", "invalid_condition"], ["/nodes/2/depends_on/0", "unknown_dependency"]]));
  });
});
