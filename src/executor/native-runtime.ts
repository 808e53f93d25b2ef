/**
 * The native runtime: built-in operations that need no provider.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import { deepMerge, type Json, type JsonObject } from "../domain/context.js";
import { defaultSizeLimits, outputTooLargeCode, type SizeLimits } from "../domain/size-limits.js";
import { readNodeOutputs } from "../db/node-outputs.js";
import { invalidInput, StepError, type Runtime, type Step, type StepResult } from "./step.js";

const ajv = new Ajv2020({ allErrors: true, strict: false });
const schemaCache = new WeakMap<object, ReturnType<typeof ajv.compile>>();

export function createNativeRuntime(limits: Pick<SizeLimits, "textOutputBytes"> = defaultSizeLimits): Runtime {
  return {
    async execute(step) {
      const op = Object.hasOwn(operations, step.node.spec.operation) ? operations[step.node.spec.operation] : undefined;
      if (!op) throw new StepError("unknown_operation", `no native operation ${step.node.spec.operation}`, "invalid_input");
      return op(step, limits.textOutputBytes);
    },
  };
}

const tooLarge = (bytes: number, limit: number) =>
  new StepError(outputTooLargeCode, `the text operation would produce ${bytes} bytes, over the limit of ${limit} bytes (FABRIC_MAX_TEXT_OUTPUT_BYTES)`, "invalid_input");

const utf8 = (s: string) => Buffer.byteLength(s, "utf8");

/**
 * Literal replacement of every `find` in `text` (no `$&`, `$'`, `` $` `` patterns), its
 * size computed before the result is built: the output grows with occurrences × the
 * replacement, so the check must come first. `find` is never empty (validation).
 */
export function replaceLiteral(text: string, find: string, replacement: string, maxBytes: number): string {
  if (find === "") throw invalidInput("config.find must not be empty");
  let count = 0;
  for (let i = text.indexOf(find); i !== -1; i = text.indexOf(find, i + find.length)) count++;
  const bytes = utf8(text) + count * (utf8(replacement) - utf8(find));
  if (bytes > maxBytes) throw tooLarge(bytes, maxBytes);
  return text.split(find).join(replacement);
}

const operations: Record<string, (step: Step, maxTextBytes: number) => Promise<StepResult> | StepResult> = {
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

  "text.transform_basic": (s, maxBytes): StepResult => {
    const op = s.config["op"];
    if (op === "template") {
      const template = s.config["template"];
      if (typeof template !== "string") throw invalidInput("config.template must be a string");
      // Counted as it grows: a template may name one large input many times.
      let bytes = utf8(template);
      const text = template.replace(/\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g, (_, name: string) => {
        const v = Object.hasOwn(s.inputs, name) ? s.inputs[name] : undefined;
        const piece = v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
        bytes += utf8(piece);
        if (bytes > maxBytes) throw tooLarge(bytes, maxBytes);
        return piece;
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
    const bounded = (out: string) => {
      const bytes = utf8(out);
      if (bytes > maxBytes) throw tooLarge(bytes, maxBytes);
      return out;
    };
    const inputBytes = utf8(text);
    if (inputBytes > maxBytes) throw tooLarge(inputBytes, maxBytes);
    switch (op) {
      case "upper":
        return { output: { text: bounded(text.toUpperCase()) } };
      case "lower":
        return { output: { text: bounded(text.toLowerCase()) } };
      case "trim":
        return { output: { text: text.trim() } };
      case "prefix": {
        const value = str("value");
        if (utf8(value) + inputBytes > maxBytes) throw tooLarge(utf8(value) + inputBytes, maxBytes);
        return { output: { text: value + text } };
      }
      case "suffix": {
        const value = str("value");
        if (utf8(value) + inputBytes > maxBytes) throw tooLarge(utf8(value) + inputBytes, maxBytes);
        return { output: { text: text + value } };
      }
      case "replace":
        return { output: { text: replaceLiteral(text, str("find"), str("replace"), maxBytes) } };
      case "length":
        return { output: { text, length: [...text].length } };
      default:
        throw invalidInput(`unknown text op ${String(op)}`);
    }
  },
};
