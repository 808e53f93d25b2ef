/**
 * The native runtime: built-in operations that need no provider.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import { deepMerge, type Json, type JsonObject } from "../domain/context.js";
import { readNodeOutputs } from "../db/node-outputs.js";
import { invalidInput, StepError, type Runtime, type Step, type StepResult } from "./step.js";

const ajv = new Ajv2020({ allErrors: true, strict: false });
const schemaCache = new WeakMap<object, ReturnType<typeof ajv.compile>>();

export function createNativeRuntime(): Runtime {
  return {
    async execute(step) {
      const op = operations[step.node.spec.operation];
      if (!op) throw new StepError("unknown_operation", `no native operation ${step.node.spec.operation}`, "invalid_input");
      return op(step);
    },
  };
}

const operations: Record<string, (step: Step) => Promise<StepResult> | StepResult> = {
  "workflow.noop": (s) => ({ output: s.inputs }),

  "workflow.merge_context": (s) => {
    const values = s.config["values"];
    const base: Json = values && typeof values === "object" && !Array.isArray(values) ? values : {};
    return { output: deepMerge(base, s.inputs) as JsonObject };
  },

  "workflow.validate_context": (s) => {
    const schema = s.config["schema"];
    if (!schema || typeof schema !== "object") throw invalidInput("config.schema must be a JSON Schema object");
    let validate = schemaCache.get(schema);
    if (!validate) {
      try {
        validate = ajv.compile(schema);
      } catch (err) {
        throw invalidInput(`config.schema is not a valid JSON Schema: ${(err as Error).message}`);
      }
      schemaCache.set(schema, validate);
    }
    const value = "value" in s.inputs ? s.inputs["value"] : s.context;
    if (!validate(value)) {
      const detail = (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
      throw invalidInput(`context does not match the schema: ${detail}`);
    }
    return { output: { valid: true } };
  },

  "workflow.fan_in": async (s) => {
    const deps = s.node.spec.dependsOn;
    const byKey: JsonObject = Object.fromEntries(await readNodeOutputs(s.db, s.runId, deps));
    return { output: { items: deps.map((d) => byKey[d] ?? null), by_key: byKey } };
  },

  "workflow.wait_signal": (s) => {
    const t = s.config["timeout_ms"];
    return { wait: { timeoutMs: typeof t === "number" ? t : null } };
  },

  "text.transform_basic": (s): StepResult => {
    const op = s.config["op"];
    if (op === "template") {
      const template = s.config["template"];
      if (typeof template !== "string") throw invalidInput("config.template must be a string");
      const text = template.replace(/\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g, (_, name: string) => {
        const v = s.inputs[name];
        return v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
      });
      return { output: { text } };
    }
    const text = s.inputs["text"];
    if (typeof text !== "string") throw invalidInput(`inputs.text must be a string (got ${text === undefined ? "nothing — is the binding's context path set?" : typeof text})`);
    const str = (name: string) => {
      const v = s.config[name];
      if (typeof v !== "string") throw invalidInput(`config.${name} must be a string for op ${String(op)}`);
      return v;
    };
    switch (op) {
      case "upper":
        return { output: { text: text.toUpperCase() } };
      case "lower":
        return { output: { text: text.toLowerCase() } };
      case "trim":
        return { output: { text: text.trim() } };
      case "prefix":
        return { output: { text: str("value") + text } };
      case "suffix":
        return { output: { text: text + str("value") } };
      case "replace":
        return { output: { text: text.replaceAll(str("find"), str("replace")) } };
      case "length":
        return { output: { text, length: [...text].length } };
      default:
        throw invalidInput(`unknown text op ${String(op)}`);
    }
  },
};
