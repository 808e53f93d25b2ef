/**
 * The installed postgres.js carries patches/postgres+3.4.9.patch (applied by patch-package
 * on install): without it a connection cut at the wrong moment crashes the process
 * (docs/resilience.md). tests/faults proves the behaviour; this says quickly when the
 * patch did not apply (an upgrade, an install without scripts).
 */
import { readFileSync } from "node:fs";
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
  }
  it("is the version the patch was made for", () => {
    expect(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version).toBe("3.4.9");
  });
});
