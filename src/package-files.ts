/**
 * Where the package's own files are — `drizzle/` (migrations), `gen/openapi/` (the served
 * contract), `dist/console/` (the console build) — whether this code runs from the
 * TypeScript sources (`src/…`), from the build (`dist/…`, bundled into a few chunks) or
 * from an installed package (`node_modules/<name>/dist/…`). Module-relative paths such as
 * `../../drizzle` hold for only one of these layouts, so the root is found instead: the
 * nearest folder above this module that holds a `package.json`.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

/** The package's root folder (the one with its `package.json`). */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json"))) return (root = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** A path inside the package, e.g. `packagePath("drizzle")`. */
export const packagePath = (...parts: string[]): string => resolve(packageRoot(), ...parts);
