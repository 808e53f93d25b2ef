import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { findBreakingChanges } from "./check-openapi-breaking.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = mkdtempSync(join(tmpdir(), "openapi-breaking-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Json = Record<string, any>;
const json = (schema: Json) => ({ "application/json": { schema } });

/** A small OpenAPI 3.1 document: list, create and get "things". */
function baseline(): Json {
  return {
    openapi: "3.1.0",
    info: { title: "t", version: "1" },
    paths: {
      "/things": {
        get: {
          operationId: "listThings",
          parameters: [{ name: "kind", in: "query", required: false, schema: { type: "string", enum: ["x", "y"] } }],
          responses: { "200": { description: "ok", content: json({ type: "object", required: ["data"], properties: { data: { type: "array", items: { $ref: "#/components/schemas/Thing" } } } }) } },
        },
        post: {
          operationId: "createThing",
          requestBody: { required: true, content: json({ $ref: "#/components/schemas/NewThing" }) },
          responses: { "201": { description: "created", content: json({ $ref: "#/components/schemas/Thing" }) } },
        },
      },
      "/things/{id}": {
        get: {
          operationId: "getThing",
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
          responses: { "200": { description: "ok", content: json({ $ref: "#/components/schemas/Thing" }) } },
        },
      },
    },
    components: {
      schemas: {
        Thing: {
          type: "object",
          additionalProperties: false,
          required: ["id", "name", "kind"],
          properties: { id: { type: "string" }, name: { type: "string" }, kind: { type: "string", enum: ["x", "y"] }, note: { type: "string" } },
        },
        NewThing: {
          type: "object",
          additionalProperties: false,
          required: ["name"],
          properties: { name: { type: "string", maxLength: 100 }, kind: { type: "string", enum: ["x", "y"] }, note: { type: "string" } },
        },
      },
    },
  };
}

let n = 0;
/** Writes both documents to the temp dir and compares them as the CLI would read them. */
async function compare(change: (doc: Json) => void): Promise<string[]> {
  const current = baseline();
  change(current);
  const [a, b] = [join(dir, `base${++n}.json`), join(dir, `cur${n}.json`)];
  writeFileSync(a, JSON.stringify(baseline(), null, 2));
  writeFileSync(b, JSON.stringify(current, null, 2));
  return findBreakingChanges(JSON.parse(readFileSync(a, "utf8")), JSON.parse(readFileSync(b, "utf8")));
}

// A ceiling, not a speed claim: each case spawns tsx and tsc, slow on a loaded machine.
const T = 180_000;

describe("check-openapi-breaking", () => {
  it("identical documents → no breaking changes", async () => {
    expect(await compare(() => {})).toEqual([]);
  }, T);

  it("added optional fields and a new operation → no breaking changes", async () => {
    const problems = await compare((doc) => {
      doc.components.schemas.NewThing.properties.color = { type: "string" };
      doc.components.schemas.Thing.properties.color = { type: "string" };
      doc.paths["/things"].get.parameters.push({ name: "color", in: "query", required: false, schema: { type: "string" } });
      doc.paths["/things/{id}"].delete = { operationId: "deleteThing", parameters: doc.paths["/things/{id}"].get.parameters, responses: { "204": { description: "gone" } } };
      doc.paths["/widgets"] = { get: { operationId: "listWidgets", responses: { "200": { description: "ok", content: json({ type: "object" }) } } } };
    });
    expect(problems).toEqual([]);
  }, T);

  it("removed operation → breaking", async () => {
    const problems = await compare((doc) => delete doc.paths["/things/{id}"]);
    expect(problems).toEqual(["GET /things/{id}: operation removed"]);
  }, T);

  it("removed required response field → breaking (JSON walk and type check)", async () => {
    const problems = await compare((doc) => {
      const thing = doc.components.schemas.Thing;
      delete thing.properties.name;
      thing.required = ["id", "kind"];
    });
    expect(problems).toContain("GET /things response 200.data[]: required field name removed");
    expect(problems.some((p) => p.startsWith("GET /things/{id}: new response 200 application/json no longer fits old clients"))).toBe(true);
  }, T);

  it("new required request field → breaking (JSON walk and type check)", async () => {
    const problems = await compare((doc) => {
      const body = doc.components.schemas.NewThing;
      body.properties.owner = { type: "string" };
      body.required = ["name", "owner"];
    });
    expect(problems).toContain("POST /things request body application/json: field owner is now required");
    expect(problems.some((p) => p.startsWith("POST /things: old request body application/json no longer fits") && p.includes("owner"))).toBe(true);
  }, T);

  it("narrowed request enum → breaking", async () => {
    const problems = await compare((doc) => {
      doc.components.schemas.NewThing.properties.kind.enum = ["x"];
      doc.paths["/things"].get.parameters[0].schema.enum = ["x"];
    });
    expect(problems).toContain("POST /things request body application/json.kind: enum value(s) no longer accepted: y");
    expect(problems).toContain("GET /things query kind parameter: enum value(s) no longer accepted: y");
  }, T);

  it("narrowed bound on a request field → breaking (the types cannot see it)", async () => {
    const problems = await compare((doc) => (doc.components.schemas.NewThing.properties.name.maxLength = 50));
    expect(problems).toEqual(["POST /things request body application/json.name: maxLength lowered from 100 to 50"]);
  }, T);

  it("added response enum value and removed response status → breaking", async () => {
    const problems = await compare((doc) => {
      doc.components.schemas.Thing.properties.kind.enum = ["x", "y", "z"];
      doc.paths["/things"].post.responses = { "200": doc.paths["/things"].post.responses["201"] };
    });
    expect(problems).toContain("POST /things: response 201 removed");
    expect(problems.some((p) => p.startsWith("GET /things: new response 200 application/json no longer fits old clients") && p.includes('"z"'))).toBe(true);
  }, T);

  it("CLI: exit 0 with 'no breaking changes', exit 1 with the list", () => {
    const [a, b] = [join(dir, "cli-base.json"), join(dir, "cli-cur.json")];
    writeFileSync(a, JSON.stringify(baseline()));
    writeFileSync(b, JSON.stringify(baseline()));
    const run = () => execFileSync(join(root, "node_modules/.bin/tsx"), [join(root, "scripts/check-openapi-breaking.ts"), a, b], { encoding: "utf8", stdio: "pipe" });
    expect(run()).toContain("no breaking changes");
    const cur = baseline();
    delete cur.paths["/things"].post;
    writeFileSync(b, JSON.stringify(cur));
    try {
      run();
      expect.unreachable("should exit 1");
    } catch (e: any) {
      expect(e.status).toBe(1);
      expect(e.stderr).toContain("  - POST /things: operation removed");
    }
  }, T);
});
