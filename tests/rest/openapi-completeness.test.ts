/**
 * The OpenAPI document is complete enough for generated clients and readers (issue 15,
 * item 6): every operation has a description, every schema a description, every request
 * body that a request cannot do without is marked required, and the response headers
 * Fabric sends are documented; every operation has an example of its request (body or path
 * parameters) and of its success response, and every example fits its schema. Walks the
 * served (generated) document.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { describe, expect, it } from "vitest";
import { openApiDocument } from "../../src/control-plane/contract.js";

type Json = Record<string, any>;
const doc = openApiDocument as Json;
const operations = Object.entries<Json>(doc.paths).flatMap(([path, item]) => Object.entries<Json>(item).map(([method, op]) => ({ path, method, op, name: `${method.toUpperCase()} ${path}` })));

/** Request bodies that may be left out: actions whose fields are all in the path, PATCH (nothing given: nothing changes), PUT of replace semantics (empty: clear the rules). */
const optionalBodies = new Set([
  "cancelRun",
  "pauseRun",
  "resumeRun",
  "signalRun",
  "rerunRun",
  "updateOrganization",
  "archiveOrganization",
  "updateTeam",
  "revokeInvitation",
  "rotateApiKey",
  "revokeApiKey",
  "updateWebhook",
  "updateSchedule",
  "redeliverWebhookDelivery",
  "setPolicy",
  "setBudget",
  "setRetention",
]);

describe("the OpenAPI document", () => {
  it("walks a real document (positive control: it has the operations and schemas it should)", () => {
    expect(operations.length).toBeGreaterThan(70);
    expect(Object.keys(doc.components.schemas).length).toBeGreaterThan(60);
  });

  it("gives every operation a summary and a description", () => {
    const missing = operations.filter(({ op }) => !op.summary || !op.description || String(op.description).trim().length < 10).map((o) => o.name);
    expect(missing).toEqual([]);
  });

  it("gives every schema a description", () => {
    const missing = Object.entries<Json>(doc.components.schemas)
      .filter(([, s]) => !s.description)
      .map(([name]) => name);
    expect(missing).toEqual([]);
  });

  it("marks a request body required unless the operation does without one (a required field inside makes it required)", () => {
    const wrong = operations
      .filter(({ op }) => op.requestBody)
      .filter(({ op }) => op.requestBody.required !== !optionalBodies.has(op.operationId))
      .map((o) => `${o.op.operationId} required=${o.op.requestBody.required}`);
    expect(wrong).toEqual([]);
    const webhook = doc.paths["/v1/organizations/{organization_id}/webhooks"].post.requestBody;
    expect(webhook.required).toBe(true);
    expect(webhook.content["application/json"].schema.required).toContain("url");
  });

  it("documents the response headers Fabric sends: X-Request-Id everywhere, Retry-After on problems, Location on creations, ETag on reads of updatable resources", () => {
    for (const { name, op } of operations)
      for (const [status, resp] of Object.entries<Json>(op.responses)) if (!resp.$ref) expect(resp.headers?.["X-Request-Id"], `${name} ${status}`).toBeDefined();
    expect(doc.components.responses.Problem.headers).toHaveProperty("Retry-After");
    expect(doc.paths["/v1/workflow-runs"].post.responses["202"].headers).toHaveProperty("Location");
    for (const path of ["/v1/workflows/{id}", "/v1/organizations/{organization_id}/policy", "/v1/organizations/{organization_id}/budget"]) expect(doc.paths[path].get.responses["200"].headers, path).toHaveProperty("ETag");
    for (const h of ["XRequestId", "RetryAfter", "Location", "ETag"]) expect(doc.components.headers[h].description, h).toBeTruthy();
  });
});

/** Every keyword counts here (required, enums, bounds): an example must be a valid message. */
const ajv = new Ajv2020({ strict: false, allErrors: true, formats: { int32: true, int64: true } });
(addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
ajv.addSchema(doc, "openapi.json");
const pointer = (...parts: string[]) => "#/" + parts.map((p) => p.replaceAll("~", "~0").replaceAll("/", "~1")).join("/");
function errorsOf(ref: string, value: unknown): string[] {
  const validate = ajv.compile({ $ref: `openapi.json${ref}` });
  return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`);
}

const resolveRef = (ref: string): Json => ref.slice(2).split("/").reduce((n: Json, k) => n[k.replaceAll("~1", "/").replaceAll("~0", "~")], doc);

/** WebSocket streams answer 101 Switching Protocols, which OpenAPI cannot describe as a body. */
const webSockets = operations.filter(({ op }) => op["x-fabric-stream"] === "websocket").map(({ op }) => op.operationId);

describe("examples", () => {
  it("every operation has a request example (its body, or its path parameters) and a success response example", () => {
    expect(webSockets).toHaveLength(2);
    const missing: string[] = [];
    for (const { name, op } of operations) {
      if (webSockets.includes(op.operationId)) continue;
      const body = op.requestBody?.content?.["application/json"];
      if (body && body.example === undefined) missing.push(`${name}: request body`);
      for (const p of op.parameters ?? []) if (p.in === "path" && p.example === undefined) missing.push(`${name}: path parameter ${p.name}`);
      const ok = Object.entries<Json>(op.responses).find(([status]) => /^2\d\d$/.test(status));
      const media = ok && Object.values<Json>(ok[1].content ?? {})[0];
      if (!media || media.example === undefined) missing.push(`${name}: response`);
    }
    expect(missing).toEqual([]);
  });

  it("every example fits its schema (request bodies, path parameters, JSON responses; SSE examples are well-formed events)", () => {
    const bad: string[] = [];
    let checked = 0;
    for (const { name, path, method, op } of operations) {
      const body = op.requestBody?.content?.["application/json"];
      if (body?.example !== undefined) {
        checked++;
        for (const e of errorsOf(pointer("paths", path, method, "requestBody", "content", "application/json", "schema"), body.example)) bad.push(`${name} request: ${e}`);
      }
      (op.parameters ?? []).forEach((p: Json, i: number) => {
        if (p.example === undefined || p.$ref) return;
        checked++;
        for (const e of errorsOf(pointer("paths", path, method, "parameters", String(i), "schema"), p.example)) bad.push(`${name} ${p.name}: ${e}`);
      });
      for (const [status, resp] of Object.entries<Json>(op.responses)) {
        for (const [type, media] of Object.entries<Json>(resp.content ?? {})) {
          if (media.example === undefined) continue;
          checked++;
          if (type === "text/event-stream") {
            const eventSchema = media["x-fabric-event-schema"];
            for (const block of String(media.example).split("\n\n").filter(Boolean)) {
              const data = /^data: (.*)$/m.exec(block)?.[1];
              if (!/^event: \S+$/m.test(block) || data === undefined) bad.push(`${name}: not an SSE event: ${block}`);
              else if (eventSchema) {
                // A stream of a oneof (ExecuteStream) sends the case named by `event:` as data.
                const kind = /^event: (\S+)$/m.exec(block)![1]!;
                const target = resolveRef(eventSchema.$ref);
                const ref = target.properties?.[kind] ? `${eventSchema.$ref}/properties/${kind}` : eventSchema.$ref;
                for (const e of errorsOf(ref, JSON.parse(data))) bad.push(`${name} event: ${e}`);
              }
            }
          } else if (type === "application/json") {
            for (const e of errorsOf(pointer("paths", path, method, "responses", status, "content", type, "schema"), media.example)) bad.push(`${name} ${status}: ${e}`);
          }
        }
      }
    }
    expect(bad).toEqual([]);
    expect(checked).toBeGreaterThan(100);
  });

  it("the check can fail: an example missing a required field, or with a wrong type, is reported", () => {
    const runRef = pointer("paths", "/v1/workflow-runs/{id}", "get", "responses", "200", "content", "application/json", "schema");
    const good = doc.paths["/v1/workflow-runs/{id}"].get.responses["200"].content["application/json"].example;
    expect(errorsOf(runRef, good)).toEqual([]);
    const { status: _status, ...withoutStatus } = good.data;
    expect(errorsOf(runRef, { data: withoutStatus }).join()).toMatch(/status/);
    expect(errorsOf(runRef, { data: { ...good.data, priority: "high" } }).join()).toMatch(/priority/);
  });
});
