/**
 * Builds the console into `dist/console/` (served by `fabric serve` / `fabric dev` at `/`).
 * Hashed file names under `assets/` are what lets the server cache them forever.
 *
 * The budget: the JavaScript a first visit downloads — the entry chunk and every chunk it
 * imports statically — must stay ≤ 300 KB gzipped. Route pages and the graph layout are
 * loaded on demand and are not part of the first load. The build prints the figure and
 * fails over budget.
 */
import { gzipSync } from "node:zlib";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";

const here = dirname(fileURLToPath(import.meta.url));
export const firstLoadBudgetBytes = 300 * 1024;

function firstLoadBudget(limit: number): Plugin {
  return {
    name: "fabric-console-first-load-budget",
    apply: "build",
    generateBundle(_options, bundle) {
      const chunks = new Map<string, { code: string; imports: string[] }>();
      let entry: string | undefined;
      for (const [name, item] of Object.entries(bundle)) {
        if (item.type !== "chunk") continue;
        chunks.set(name, { code: item.code, imports: item.imports });
        if (item.isEntry) entry = name;
      }
      if (!entry) this.error("no entry chunk");
      const seen = new Set<string>();
      const visit = (name: string) => {
        if (seen.has(name)) return;
        seen.add(name);
        for (const dep of chunks.get(name)?.imports ?? []) visit(dep);
      };
      visit(entry);
      let gzipped = 0;
      let raw = 0;
      for (const name of seen) {
        const code = chunks.get(name)!.code;
        raw += Buffer.byteLength(code);
        gzipped += gzipSync(code, { level: 9 }).length;
      }
      let lazy = 0;
      for (const [name, c] of chunks) if (!seen.has(name)) lazy += gzipSync(c.code, { level: 9 }).length;
      const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
      const line = `console first-load JavaScript: ${kb(gzipped)} gzipped (${kb(raw)} raw, ${seen.size} chunk${seen.size === 1 ? "" : "s"}); budget ${kb(limit)}; loaded on demand: ${kb(lazy)} gzipped`;
      if (gzipped > limit) this.error(`${line} — over budget`);
      // Printed on stdout so `npm run build:console` shows it whatever Vite's log level.
      console.log(line);
    },
  };
}

export default defineConfig({
  root: here,
  base: "/",
  publicDir: false,
  plugins: [firstLoadBudget(firstLoadBudgetBytes)],
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: resolve(here, "../dist/console"),
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    assetsDir: "assets",
  },
});
