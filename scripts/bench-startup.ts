/**
 * Start-up benchmark (issue 11): the same commands started from the TypeScript sources
 * through tsx and from the build in dist/, side by side in one run, variants interleaved
 * so that load on the machine hits them alike. Figures are medians of --runs starts.
 *
 *   npm run bench:startup [-- --runs 5] [--baseline DIR] [--tsc]
 *
 * - `fabric --help`: spawn → exit, wall time and peak RSS (GNU time's %M).
 * - executor: spawn → its "executor started" log line (the worker loop runs, so a claim
 *   can happen), on the local Postgres.
 * - control plane: spawn `fabric serve` → first `/readyz` 200, on the local Postgres.
 *
 * --baseline DIR adds another checkout's `bin/fabric.js` (e.g. the release before, with
 * its own node_modules) as a column; --tsc adds plain `tsc` output (compiled into a temp
 * folder here) to compare the bundle with. Postgres: FABRIC_TEST_POSTGRES_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres); the benchmark creates and drops its own
 * database. On a shared machine absolute figures mean little: read the ratios.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, copyFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { openDatabase } from "../src/db/database.js";
import { buildServer, isBuildStale } from "./build.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: { runs: { type: "string", default: "5" }, baseline: { type: "string" }, tsc: { type: "boolean" } } });
const runs = Number(values.runs);

interface Variant {
  name: string;
  /** node arguments before the fabric arguments */
  argv: string[];
  cwd: string;
}

const variants: Variant[] = [
  { name: "tsx (src)", argv: ["--import", "tsx", join(root, "src/cli/main.ts")], cwd: root },
  { name: "dist (esbuild)", argv: [join(root, "bin/fabric.js")], cwd: root },
];
if (isBuildStale()) await buildServer();
if (values.tsc) variants.push(tscVariant());
if (values.baseline) variants.unshift({ name: "baseline", argv: [join(values.baseline, "bin/fabric.js")], cwd: values.baseline });

const adminUrl = process.env.FABRIC_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const dbName = `fabric_bench_${randomBytes(5).toString("hex")}`;
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
await admin.unsafe(`CREATE DATABASE ${dbName}`);
const url = Object.assign(new URL(adminUrl), { pathname: `/${dbName}` }).toString();
await (await openDatabase({ url, poolMax: 2 })).close();

const childEnv = (extra: Record<string, string>) => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (/^(DATABASE_URL|FABRIC_|WORKER_|PORT$|GRPC_PORT$|HOST$|RUN_ID$|JWT_SECRET$|LOG_LEVEL$|NODE_OPTIONS$)/.test(k)) delete env[k];
  return { ...env, FABRIC_ENV: "development", LOG_LEVEL: "info", ...extra };
};

const results = new Map<string, { help: number[]; rss: number[]; executor: number[]; serve: number[] }>();
for (const v of variants) results.set(v.name, { help: [], rss: [], executor: [], serve: [] });

try {
  for (let i = 0; i < runs; i++) {
    for (const v of variants) {
      const r = results.get(v.name)!;
      const help = timeHelp(v);
      r.help.push(help.ms);
      r.rss.push(help.rssMb);
      r.executor.push(await timeUntilLine(v, ["executor"], { DATABASE_URL: url, WORKER_POLL_INTERVAL: "60000" }, /executor started/));
      r.serve.push(await timeServeReady(v));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rows: [string, (r: typeof results extends Map<string, infer R> ? R : never) => number[], string][] = [
    ["fabric --help: wall", (r) => r.help, "ms"],
    ["fabric --help: peak RSS", (r) => r.rss, "MB"],
    ["executor spawn → started", (r) => r.executor, "ms"],
    ["serve spawn → /readyz 200", (r) => r.serve, "ms"],
  ];
  const ref = "tsx (src)";
  const width = 28;
  console.log(`\nstart-up, median of ${runs} (Node ${process.version}, ${(await import("node:os")).cpus().length} CPUs, load ${(await import("node:os")).loadavg()[0]!.toFixed(1)})`);
  console.log("".padEnd(width) + variants.map((v) => v.name.padStart(16)).join("") + "   ratio to tsx");
  for (const [label, pick, unit] of rows) {
    const meds = variants.map((v) => median(pick(results.get(v.name)!)));
    const refMed = median(pick(results.get(ref)!));
    console.log(
      label.padEnd(width) +
        meds.map((m) => `${Math.round(m)} ${unit}`.padStart(16)).join("") +
        "   " +
        variants
          .filter((v) => v.name !== ref)
          .map((v, _i) => `${v.name} ${(median(pick(results.get(v.name)!)) / refMed).toFixed(2)}×`)
          .join(", "),
    );
  }
} finally {
  await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
}

function timeHelp(v: Variant): { ms: number; rssMb: number } {
  const t0 = performance.now();
  const r = spawnSync("/usr/bin/time", ["-f", "%M", process.execPath, ...v.argv, "--help"], { cwd: v.cwd, env: childEnv({}), encoding: "utf8" });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${v.name} --help failed: ${r.stderr}`);
  const kb = Number(r.stderr.trim().split("\n").pop());
  return { ms, rssMb: kb / 1024 };
}

function timeUntilLine(v: Variant, args: string[], env: Record<string, string>, pattern: RegExp): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [...v.argv, ...args], { cwd: v.cwd, env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const onData = (d: Buffer) => {
      out += d.toString();
      if (pattern.test(out)) {
        const ms = performance.now() - t0;
        child.kill("SIGTERM");
        child.on("exit", () => resolve(ms));
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      if (!pattern.test(out)) reject(new Error(`${v.name} ${args.join(" ")} exited ${code}:\n${out}`));
    });
  });
}

async function timeServeReady(v: Variant): Promise<number> {
  const [port, grpcPort] = [await freePort(), await freePort()];
  const t0 = performance.now();
  const child = spawn(process.execPath, [...v.argv, "serve", "--port", String(port), "--grpc-port", String(grpcPort)], { cwd: v.cwd, env: childEnv({ DATABASE_URL: url, LOG_LEVEL: "warn" }), stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  let done = false;
  void exited.then(() => (done = true));
  try {
    for (;;) {
      if (done) throw new Error(`${v.name} serve exited:\n${err}`);
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false);
      if (ok) return performance.now() - t0;
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** Plain `tsc` output of src/ and gen/ in a temp package (same package files, linked). */
function tscVariant(): Variant {
  const dir = mkdtempSync(join(tmpdir(), "fabric-tsc-"));
  const config = join(dir, "tsconfig.json");
  writeFileSync(config, JSON.stringify({ extends: join(root, "tsconfig.json"), compilerOptions: { noEmit: false, outDir: join(dir, "dist"), rootDir: root, typeRoots: [join(root, "node_modules/@types")] }, include: [join(root, "src"), join(root, "gen")], exclude: [join(root, "src/**/*.test.ts")] }));
  const r = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", config], { encoding: "utf8" });
  if (!existsSync(join(dir, "dist/src/cli/main.js"))) throw new Error(`tsc failed: ${r.stdout}${r.stderr}`);
  copyFileSync(join(root, "package.json"), join(dir, "package.json"));
  for (const f of ["node_modules", "drizzle", "gen"]) symlinkSync(join(root, f), join(dir, f));
  mkdirSync(join(dir, "dist"), { recursive: true });
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return { name: "dist (tsc)", argv: [join(dir, "dist/src/cli/main.js")], cwd: root };
}
