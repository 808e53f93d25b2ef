/**
 * Node conditions (`when`): CEL expressions over the run's context.
 *
 * CEL (the Common Expression Language of Kubernetes admission rules, Envoy and Firebase)
 * is not Turing complete — no loops, no recursion, no I/O, no access to the host — so an
 * expression always terminates, and its cost is bounded by its size (limited below) and
 * the context's. `@marcbachmann/cel-js` implements it with no dependency and no `eval`.
 *
 * The one variable is `context` (a map, the run's JSON context). JSON numbers are CEL
 * doubles; comparisons with int literals work (`context.n > 3`). A missing key is an
 * evaluation error — write `has(context.x)` for optional fields.
 */
import { Environment } from "@marcbachmann/cel-js";
import type { Issue } from "./errors.js";

export const conditionLimits = { maxLength: 2048, maxAstNodes: 256, maxDepth: 32 } as const;

const environment = new Environment({
  limits: { maxAstNodes: conditionLimits.maxAstNodes, maxDepth: conditionLimits.maxDepth, maxListElements: 256, maxMapEntries: 256, maxCallArguments: 8 },
}).registerVariable("context", "map");

export interface NodeCondition {
  readonly expression: string;
  /** True: run the node; false: skip it. Throws ConditionError when the expression cannot be evaluated. */
  evaluate(context: Record<string, unknown>): boolean;
}

export class ConditionError extends Error {
  override readonly name = "ConditionError";
}

/** The problems of an expression, for spec validation (empty: valid). */
export function conditionIssues(expression: string, at: string): Issue[] {
  if (expression.length > conditionLimits.maxLength) return [{ path: at, code: "too_large", message: `when: at most ${conditionLimits.maxLength} characters` }];
  let result: { valid: boolean; type?: string; error?: Error };
  try {
    result = environment.check(expression) as typeof result;
  } catch (err) {
    result = { valid: false, error: err as Error };
  }
  if (!result.valid) {
    const e = result.error;
    const code = e?.name === "ParseError" ? "malformed_condition" : "invalid_condition";
    return [{ path: at, code, message: `when: ${firstLine(e)}` }];
  }
  if (result.type !== "bool" && result.type !== "dyn") return [{ path: at, code: "invalid_condition", message: `when: the expression is a ${result.type}, not a bool` }];
  return [];
}

/** Compiles a valid expression (validated at upsert) for evaluation. */
export function compileCondition(expression: string): NodeCondition {
  const program = environment.parse(expression);
  return {
    expression,
    evaluate(context) {
      let v: unknown;
      try {
        v = program({ context });
      } catch (err) {
        throw new ConditionError(`when ${JSON.stringify(expression)}: ${firstLine(err)}`);
      }
      if (typeof v !== "boolean") throw new ConditionError(`when ${JSON.stringify(expression)}: evaluated to ${typeof v === "bigint" ? "an int" : typeof v}, not a bool`);
      return v;
    },
  };
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!.trim();
}
