/**
 * `npm run build:server`: bundles the server and CLI (`src/cli/main.ts`, everything it
 * imports, the generated contracts) with esbuild into `dist/fabric.js` plus one chunk per
 * lazily loaded command (`dist/chunks/`). npm packages stay external: they are installed
 * beside the package — except the patched database driver (see `bundlePatchedDriver`). `bin/fabric.js` runs `dist/fabric.js`.
 *
 * Why a bundle and not `tsc` output: a process loads a few chunks instead of ~150
 * modules, and `npm run bench:startup` measured it starting faster (docs/deploy.md has
 * the figures). Type checking stays `npm run typecheck`.
 *
 * `isBuildStale()` compares every input of the last build (esbuild's metafile, kept in
 * `dist/build-meta.json`) with the output's age: tests that spawn `bin/fabric.js` build
 * first when it is stale (tests/global-setup.ts), so they never run old code.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const entry = join(dist, "fabric.js");
const metaPath = join(dist, "build-meta.json");

/**
 * postgres.js is patched on install (patches/postgres+3.4.9.patch, applied by patch-package
 * in this checkout). An installed package or an image does not run that step (npm does not
 * run a dependency's install scripts here, and the image installs with --ignore-scripts), so
 * the driver is bundled from this checkout's patched copy instead of staying external.
 */
const bundlePatchedDriver: Plugin = {
  name: "bundle-patched-postgres",
  setup(b) {
    const driverEntry = join(dirname(createRequire(import.meta.url).resolve("postgres")), "../../src/index.js");
    b.onResolve({ filter: /^postgres$/ }, () => ({ path: driverEntry }));
  },
};

export async function buildServer(): Promise<{ outputs: string[]; ms: number }> {
  const t0 = performance.now();
  const result = await build({
    absWorkingDir: root,
    entryPoints: { fabric: "src/cli/main.ts" },
    outdir: "dist",
    chunkNames: "chunks/[name]-[hash]",
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    plugins: [bundlePatchedDriver],
    sourcemap: "linked",
    metafile: true,
    logLevel: "warning",
    legalComments: "none",
  });
  const outputs = Object.keys(result.metafile.outputs);
  // Chunks of earlier builds are never referenced again (their names carry a hash).
  const keep = new Set(outputs.map((o) => join(root, o)));
  const chunks = join(dist, "chunks");
  for (const f of existsSync(chunks) ? readdirSync(chunks) : []) if (!keep.has(join(chunks, f))) rmSync(join(chunks, f), { force: true });
  writeFileSync(metaPath, JSON.stringify({ inputs: Object.keys(result.metafile.inputs) }) + "\n");
  return { outputs, ms: Math.round(performance.now() - t0) };
}

/** True when there is no build, or a file it was built from (or package.json) changed since. */
export function isBuildStale(): boolean {
  if (!existsSync(entry) || !existsSync(metaPath)) return true;
  const builtAt = statSync(entry).mtimeMs;
  const { inputs } = JSON.parse(readFileSync(metaPath, "utf8")) as { inputs: string[] };
  return [...inputs, "package.json"].some((f) => {
    const file = join(root, f);
    return !existsSync(file) || statSync(file).mtimeMs > builtAt;
  });
}

/**
 * The SDK package (`sdk/`, the npm workspace `@fabric-ai/sdk`): `src/sdk` and the
 * generated contract it uses bundled into `sdk/dist/index.js` (its npm dependencies
 * external), and declarations from tsc into `sdk/dist/types` — plus the generated
 * `schema.d.ts`, which tsc does not copy.
 */
export async function buildSdk(): Promise<{ ms: number }> {
  const t0 = performance.now();
  const out = join(root, "sdk/dist");
  rmSync(out, { recursive: true, force: true });
  await build({
    absWorkingDir: root,
    entryPoints: ["src/sdk/index.ts"],
    outfile: "sdk/dist/index.js",
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    sourcemap: "linked",
    logLevel: "warning",
    legalComments: "none",
  });
  const tsc = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "sdk/tsconfig.json")], { encoding: "utf8" });
  if (tsc.status !== 0) throw new Error(`tsc (SDK declarations) failed:\n${tsc.stdout}${tsc.stderr}`);
  mkdirSync(join(out, "types/gen/openapi"), { recursive: true });
  copyFileSync(join(root, "gen/openapi/schema.d.ts"), join(out, "types/gen/openapi/schema.d.ts"));
  return { ms: Math.round(performance.now() - t0) };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes("--sdk")) {
    const { ms } = await buildSdk();
    console.log(`built the SDK package into sdk/dist/ in ${ms} ms`);
  } else {
    const { outputs, ms } = await buildServer();
    console.log(`built ${outputs.filter((o) => o.endsWith(".js")).length} files into ${relative(process.cwd(), dist) || "dist"}/ in ${ms} ms`);
  }
}
