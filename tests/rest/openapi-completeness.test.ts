/**
 * The OpenAPI document is complete enough for generated clients and readers (issue 15,
 * item 6): every operation has a description, every schema a description, every request
 * body that a request cannot do without is marked required, and the response headers
 * Fabric sends are documented. Walks the served (generated) document.
 */
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
