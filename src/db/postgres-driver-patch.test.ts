/**
 * The installed postgres.js carries patches/postgres+3.4.9.patch (applied by patch-package
 * on install): without it a connection cut at the wrong moment crashes the process
 * (docs/resilience.md). tests/faults proves the behaviour; this says quickly when the
 * patch did not apply (an upgrade, an install without scripts).
 */
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";

// `postgres` exports no package.json: find the package from its CommonJS entry (cjs/src/index.js).
const root = join(dirname(createRequire(import.meta.url).resolve("postgres")), "../..");

describe("postgres.js patch", () => {
  for (const file of ["src/connection.js", "cjs/src/connection.js"]) {
    it(`${file}: nextWrite survives a closed socket, teardown clears the write timer, the type fetch cannot reject unhandled`, () => {
      const text = readFileSync(join(root, file), "utf8");
      const nextWrite = text.slice(text.indexOf("function nextWrite(fn) {"), text.indexOf("function connectTimedOut"));
      expect(nextWrite).toMatch(/if \(!socket\) \{/);
      // nextWrite itself, then terminate() and closed() (upstream: only nextWrite).
      expect(text.match(/clearImmediate\(nextWriteTimer\)\n\s+chunk = nextWriteTimer = null/g)?.length).toBe(3);
      expect(text).toContain("return fetchArrayTypes().catch(");
    });
    it(`${file}: a dead connection's query state is reset, the answer watchdog exists, the connect timeout spans the type fetch`, () => {
      const text = readFileSync(join(root, file), "utf8");
      expect(text).toContain("function reset() {");
      expect(text).toContain("function answerTimedOut() {");
      expect(text).toContain("initial && needsTypes || connectTimer.cancel()");
    });
  }
  for (const file of ["src/index.js", "cjs/src/index.js"]) {
    it(`${file}: a transaction whose connection closed rejects its queued and later statements; answer_timeout is an option`, () => {
      const text = readFileSync(join(root, file), "utf8");
      expect(text).toContain("closedError = e");
      expect(text).toMatch(/if \(closedError\)\n\s+return q\.reject\(/);
      expect(text).toContain("answer_timeout  : null");
    });
  }
  for (const file of ["src/index.js", "cjs/src/index.js"]) {
    it(`${file}: the pool exposes its state (stats()) for the fabric_db_pool_* metrics`, () => {
      expect(readFileSync(join(root, file), "utf8")).toMatch(/\n    stats\(\) \{\n      return \{\n        max: options\.max,/);
    });
  }
  it("is the version the patch was made for", () => {
    expect(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version).toBe("3.4.9");
  });
});

describe("the built package", () => {
  // An installed package or an image runs no patch step: `npm run build` bundles the patched copy (scripts/build.ts).
  it("carries the patched driver in dist/ instead of importing the installed one", () => {
    const dist = join(dirname(createRequire(import.meta.url).resolve("../../package.json")), "dist");
    const files = [join(dist, "fabric.js"), ...readdirSync(join(dist, "chunks")).filter((f) => f.endsWith(".js")).map((f) => join(dist, "chunks", f))];
    const texts = files.map((f) => readFileSync(f, "utf8"));
    expect(texts.filter((t) => /from "postgres"|require\("postgres"\)/.test(t))).toEqual([]);
    const driver = texts.find((t) => t.includes("function nextWrite(fn) {"));
    expect(driver).toBeDefined();
    const nextWrite = driver!.slice(driver!.indexOf("function nextWrite(fn) {"), driver!.indexOf("function connectTimedOut"));
    expect(nextWrite).toMatch(/if \(!socket\) \{/);
  });
});
