/**
 * Request (and, in tests, response) validation derived from the OpenAPI document itself:
 * OpenAPI 3.1 schemas are JSON Schema 2020-12, so Ajv compiles them straight from the
 * document by JSON pointer — no second hand-written schema to drift.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import type { Issue } from "../../domain/errors.js";

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const docId = "openapi.json";

const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll("~", "~0").replaceAll("/", "~1")).join("/");

export interface OperationValidators {
  body?: ValidateFunction;
  params?: ValidateFunction;
}

export function createOpenApiValidator(doc: Record<string, any>) {
  const make = (coerceTypes: boolean) => {
    const ajv = new Ajv2020({ strict: false, allErrors: true, coerceTypes, formats: { int32: true, int64: true } });
    addFormats(ajv);
    ajv.addSchema(doc, docId);
    return ajv;
  };
  const strict = make(false);
  const coercing = make(true);
  const ref = (ajv: Ajv2020, ...parts: string[]) => ajv.compile({ $ref: `${docId}#/${pointer(...parts)}` });

  return {
    /**
     * Validators for one operation's body and its path + query parameters (coerced from
     * strings). Each is compiled on first use: compiling all of them up front was most of
     * a control plane's start-up time (npm run bench:startup).
     */
    forOperation(path: string, method: string): OperationValidators {
      const op = doc.paths[path][method.toLowerCase()];
      const params = (op.parameters ?? []).filter((p: any) => p.in === "path" || p.in === "query");
      const body = op.requestBody ? once(() => ref(strict, "paths", path, method.toLowerCase(), "requestBody", "content", "application/json", "schema")) : undefined;
      const query = params.length
        ? once(() =>
            coercing.compile({
              type: "object",
              properties: Object.fromEntries(params.map((p: any) => [p.name, p.schema])),
              required: params.filter((p: any) => p.required).map((p: any) => p.name),
              additionalProperties: false,
            }),
          )
        : undefined;
      return {
        get body() {
          return body?.();
        },
        get params() {
          return query?.();
        },
      };
    },
    /** Validator of a response body (tests use it as an oracle). */
    forResponse(path: string, method: string, status: number, contentType = "application/json"): ValidateFunction | undefined {
      const m = method.toLowerCase();
      const responses = doc.paths[path]?.[m]?.responses ?? {};
      const key = [String(status), `${String(status)[0]}XX`, "default"].find((k) => k in responses);
      if (!key) return undefined;
      const ref: string | undefined = responses[key].$ref;
      const base = ref ? ["components", "responses", ref.split("/").pop()!] : ["paths", path, m, "responses", key];
      const response = ref ? doc.components.responses[base[2]!] : responses[key];
      if (!response.content?.[contentType]?.schema) return undefined;
      return strict.compile({ $ref: `${docId}#/${pointer(...base, "content", contentType, "schema")}` });
    },
  };
}

function once<T>(make: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: make() }).v;
}

export function ajvIssues(errors: ErrorObject[] | null | undefined, prefix = ""): Issue[] {
  return (errors ?? []).map((e) => {
    const path = prefix + e.instancePath + (e.keyword === "required" ? `/${(e.params as any).missingProperty}` : e.keyword === "additionalProperties" ? `/${(e.params as any).additionalProperty}` : "");
    const message =
      e.keyword === "additionalProperties"
        ? `unknown field ${JSON.stringify((e.params as any).additionalProperty)}`
        : e.keyword === "required"
          ? `${JSON.stringify((e.params as any).missingProperty)} is required`
          : `${e.instancePath || "value"} ${e.message}`;
    return { path, code: e.keyword === "required" ? "required" : "invalid_value", message };
  });
}
