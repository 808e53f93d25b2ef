#!/usr/bin/env node
// Runs the built CLI: `npm run build` bundles src/ into dist/ (scripts/build.ts), and
// `npm install` in a checkout runs it. The sources run directly only in development:
// `npx tsx src/cli/main.ts …`.
import { existsSync } from "node:fs";

const entry = new URL("../dist/fabric.js", import.meta.url);
if (!existsSync(entry)) {
  console.error("fabric: dist/fabric.js is missing: run `npm run build` (npm install builds it in a checkout)");
  process.exit(1);
}
await import(entry.href);
