/**
 * Every REST response a test sees can be checked against the OpenAPI document:
 * `expectValid(res, path, method)` validates status + body with the same Ajv-compiled
 * schemas the server validates requests with.
 */
import { expect } from "vitest";
import { openApiDocument } from "../../src/control-plane/contract.js";
import { createOpenApiValidator } from "../../src/control-plane/rest/openapi-validator.js";

const validator = createOpenApiValidator(openApiDocument);

/** Reads the body, validates it against the document for (path template, method, status), returns it. */
export async function expectValid(res: Response, pathTemplate: string, method: string): Promise<any> {
  const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
  const body: any = await res.json();
  const validate = validator.forResponse(pathTemplate, method, res.status, type);
  expect(validate, `the document lists no ${res.status} ${type} response for ${method} ${pathTemplate}`).toBeDefined();
  const ok = validate!(body);
  expect(ok, `response does not match the OpenAPI document: ${JSON.stringify(validate!.errors)}\n${JSON.stringify(body)}`).toBe(true);
  expect(res.headers.get("x-request-id")).toBeTruthy();
  if (res.status >= 400) expect(body.request_id).toBe(res.headers.get("x-request-id"));
  return body;
}
