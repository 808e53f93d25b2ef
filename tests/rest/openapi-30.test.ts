/**
 * The OpenAPI 3.0 document (scripts/openapi-30.ts), served beside the 3.1 one: no 3.1-only
 * construct left, 64-bit integers as strings (what Fabric writes), and openapi-typescript —
 * a generator that reads 3.0 — turns it into types.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import openapiTS, { astToString } from "openapi-typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toOpenApi30 } from "../../scripts/openapi-30.js";
import { openApiDocument, openApiPath } from "../../src/control-plane/contract.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";

const doc30 = JSON.parse(readFileSync(join(openApiPath, "../openapi-3.0.json"), "utf8"));

function walk(node: unknown, visit: (o: Record<string, any>, at: string) => void, at = ""): void {
  if (Array.isArray(node)) node.forEach((n, i) => walk(n, visit, `${at}/${i}`));
  else if (node && typeof node === "object") {
    visit(node as Record<string, any>, at);
    for (const [k, v] of Object.entries(node)) walk(v, visit, `${at}/${k}`);
  }
}

describe("the OpenAPI 3.0 document", () => {
  it("is the committed conversion of the 3.1 document", () => {
    expect(doc30).toEqual(toOpenApi30(openApiDocument));
    expect(doc30.openapi).toBe("3.0.3");
    expect(Object.keys(doc30.paths)).toEqual(Object.keys(openApiDocument.paths));
  });

  it("has no type lists (3.1 only); every int64 is a string with the digits pattern", () => {
    const int64: string[] = [];
    walk(doc30, (o, at) => {
      expect(Array.isArray(o.type), at).toBe(false);
      expect(o.contentEncoding, at).toBeUndefined();
      if (o.format === "int64") {
        int64.push(at);
        expect(o, at).toMatchObject({ type: "string", pattern: "^-?[0-9]+$" });
      }
    });
    expect(int64.length).toBeGreaterThan(5);
  });

  it("openapi-typescript generates types from it: int64 fields are strings", async () => {
    const ts = astToString(await openapiTS(doc30 as never));
    expect(ts).toContain("listWorkflows");
    // e.g. an event id (int64) in the Event schema
    expect(ts).toMatch(/id: string;/);
    expect(ts).not.toMatch(/string \| number/);
  }, 60_000);
});

describe("served", () => {
  let fabric: TestFabric;
  beforeAll(async () => {
    fabric = await startTestFabric();
  });
  afterAll(async () => fabric?.close());

  it("at /openapi-3.0.json, anonymously, beside /openapi.json", async () => {
    const res = await fabric.rest("/openapi-3.0.json", { key: null });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await res.json()).toEqual(doc30);
    expect(((await (await fabric.rest("/openapi.json", { key: null })).json()) as { openapi: string }).openapi).toBe("3.1.0");
  });
});
