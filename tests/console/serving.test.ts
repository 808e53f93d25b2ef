/**
 * The console's files on the REST port: hashed assets cached for a year, the page itself
 * uncached with a strict CSP, deep links answered with the page, and API paths never
 * swallowed by the fallback (an unknown one is still a problem+json 404).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engine } from "../helpers/database.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";

let fabric: TestFabric;
const dir = mkdtempSync(join(tmpdir(), "fabric-console-"));
const page = '<!doctype html><html lang="en"><head><script type="module" src="/assets/index-Ab12Cd34.js"></script></head><body><div id="app"></div></body></html>';

beforeAll(async () => {
  mkdirSync(join(dir, "assets"));
  writeFileSync(join(dir, "index.html"), page);
  writeFileSync(join(dir, "assets", "index-Ab12Cd34.js"), "console.log('console')");
  writeFileSync(join(dir, "assets", "index-Ef56Gh78.css"), "body{}");
  fabric = await startTestFabric({ engine, worker: false, consoleDir: dir });
});
afterAll(async () => {
  await fabric?.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, init: RequestInit = {}) => fetch(fabric.restUrl + path, init);

describe("console assets", () => {
  it("serves the page at / and at every console deep link, uncached, with a CSP", async () => {
    for (const path of ["/", "/runs", "/runs/0b6f8c9e-1111-4222-8333-944445555666", "/access/api-keys?x=1"]) {
      const res = await get(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(res.headers.get("cache-control")).toBe("no-cache");
      expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
      expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
      expect(await res.text()).toBe(page);
    }
    const head = await get("/runs", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("serves hashed assets with a year-long immutable cache and their content type", async () => {
    const js = await get("/assets/index-Ab12Cd34.js");
    expect(js.status).toBe(200);
    expect(js.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(await js.text()).toBe("console.log('console')");
    expect((await get("/assets/index-Ef56Gh78.css")).headers.get("content-type")).toBe("text/css; charset=utf-8");
  });

  it("answers a missing or ill-named asset with a problem, never with the page or a file outside", async () => {
    for (const path of ["/assets/nope-123.js", "/assets/..%2Findex.html", "/assets/%2e%2e%2f%2e%2e%2fpackage.json", "/assets/.hidden.js"]) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-type"), path).toBe("application/problem+json");
    }
  });

  it("never answers an API path with the console: unknown ones stay problem+json 404s", async () => {
    for (const path of ["/v1/nope", "/v1", "/v1/workflow-runs/x/unknown"]) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-type"), path).toBe("application/problem+json");
      expect(((await res.json()) as { code: string }).code).toBe("route_not_found");
    }
    // A known API path with a wrong method is still a 405, not the page.
    expect((await get("/v1/workflow-runs", { method: "DELETE" })).status).toBe(405);
    // Other methods outside the API are not console routes either.
    expect((await get("/runs", { method: "POST" })).status).toBe(404);
  });

  it("says how to build the console when it is not built", async () => {
    const bare = await startTestFabric({ engine, worker: false, consoleDir: join(dir, "missing") });
    try {
      const res = await fetch(`${bare.restUrl}/`);
      expect(res.status).toBe(503);
      expect(await res.text()).toContain("npm run build:console");
    } finally {
      await bare.close();
    }
  });
});
