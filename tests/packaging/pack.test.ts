/**
 * The packages as a user gets them: `npm pack` of `@fabric-ai/fabric` and of the SDK
 * workspace `@fabric-ai/sdk`, installed with production dependencies only into an empty
 * project (the npm registry supplies the rest). From there: `fabric --version`; the
 * README's SDK example against a `fabric dev` started from the install; and, on
 * Postgres, the container image's command sequence (deploy/Dockerfile and compose):
 * migrate, `serve --no-migrate`, an executor, `admin bootstrap`, and a run finished
 * through the SDK with the bootstrap's key.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildSdk } from "../../scripts/build.js";
import { adminUrl, engine } from "../helpers/database.js";
import { repoRoot, waitForOutput, type FabricProcess } from "../helpers/processes.js";
import { spawn } from "node:child_process";

const tmp = mkdtempSync(join(tmpdir(), "fabric-pack-"));
const project = join(tmp, "project");
const started: FabricProcess[] = [];
let serverTarball = "";
let sdkTarball = "";

/** npm with our environment minus the npm_* variables of the npm that started vitest. */
function npm(args: string[], cwd: string): string {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return execFileSync("npm", args, { cwd, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 600_000 });
}

/** The installed `fabric` command, as a child process of the temp project. */
function installedFabric(args: string[], env: Record<string, string>): FabricProcess {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|FABRIC_|WORKER_|PORT$|GRPC_PORT$|HOST$|JWT_SECRET$|LOG_LEVEL$|npm_)/i.test(k)));
  const child = spawn(join(project, "node_modules/.bin/fabric"), args, { cwd: project, env: { ...clean, LOG_LEVEL: "info", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out.stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out.stderr += d));
  const exited = new Promise<any>((resolve) => child.on("exit", (code, signal) => setImmediate(() => resolve({ code, signal, ...out }))));
  const p = { child, out, exited };
  started.push(p);
  return p;
}

/** The README's TypeScript example (plain JavaScript as written), pointed at `restUrl`. */
function readmeExample(restUrl: string): string {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const start = readme.indexOf("```ts", readme.indexOf("From TypeScript, with the SDK"));
  const code = readme.slice(start + "```ts".length, readme.indexOf("```", start + 5));
  expect(code).toContain('from "@fabric-ai/sdk"');
  return code.replaceAll("http://127.0.0.1:3001", restUrl);
}

beforeAll(async () => {
  // The server build is current (tests/global-setup.ts); the SDK package builds here.
  await buildSdk();
  const packed = (args: string[]) => JSON.parse(npm(["pack", "--json", "--ignore-scripts", "--pack-destination", tmp, ...args], repoRoot))[0];
  const server = packed([]);
  const sdk = packed(["-w", "sdk"]);
  serverTarball = join(tmp, server.filename);
  sdkTarball = join(tmp, sdk.filename);
  writeFileSync(join(tmp, "contents.json"), JSON.stringify({ server: server.files.map((f: any) => f.path), sdk: sdk.files.map((f: any) => f.path) }));
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "try-fabric", private: true, type: "module" }));
  npm(["install", "--omit=dev", "--no-audit", "--no-fund", serverTarball, sdkTarball], project);
}, 900_000);

afterAll(async () => {
  for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  await Promise.all(started.map((p) => p.exited));
  rmSync(tmp, { recursive: true, force: true }); // an installed node_modules: slow on a loaded machine
}, 300_000);

describe("npm pack → install into an empty project", () => {
  it("each tarball holds its built code and licence, and nothing of the sources or tests", () => {
    const { server, sdk } = JSON.parse(readFileSync(join(tmp, "contents.json"), "utf8")) as { server: string[]; sdk: string[] };
    for (const f of ["package.json", "LICENSE", "README.md", "bin/fabric.js", "dist/fabric.js", "drizzle/meta/_journal.json", "gen/openapi/openapi.json", "dist/console/index.html"]) expect(server).toContain(f);
    expect(server.filter((f) => /^(src|tests|scripts|proto|openapi|sdk)\//.test(f))).toEqual([]);
    for (const f of ["package.json", "LICENSE", "README.md", "dist/index.js", "dist/types/src/sdk/index.d.ts", "dist/types/gen/openapi/schema.d.ts"]) expect(sdk).toContain(f);
    const manifest = JSON.parse(readFileSync(join(project, "node_modules/@fabric-ai/sdk/package.json"), "utf8"));
    expect(Object.keys(manifest.dependencies).sort()).toEqual(["@bufbuild/protobuf", "@connectrpc/connect", "@connectrpc/connect-node"]);
    // Production dependencies only: no tsx, esbuild or vitest came along.
    for (const dev of ["tsx", "esbuild", "vitest", "typescript"]) expect(() => readFileSync(join(project, "node_modules", dev, "package.json"))).toThrow();
  });

  it("`fabric --version` runs from the install", async () => {
    const r = await installedFabric(["--version"], {}).exited;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version);
  });

  it("the README's SDK example runs against `fabric dev` started from the install", async () => {
    const dev = installedFabric(["dev", "--port", "0", "--grpc-port", "0"], { LOG_LEVEL: "warn" });
    const restUrl = (await waitForOutput(dev, /REST \+ SSE\s+(http:\/\/\S+)/, 180_000))[1]!;
    mkdirSync(join(project, "examples"), { recursive: true });
    copyFileSync(join(repoRoot, "examples/smoke.json"), join(project, "examples/smoke.json"));
    writeFileSync(join(project, "example.mjs"), readmeExample(restUrl));
    const r = spawnSync(process.execPath, ["example.mjs"], { cwd: project, encoding: "utf8", timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/workflow\.run\.completed/);
    expect(r.stdout).toMatch(/answer: 'HELLO WORLD'/);
    dev.child.kill("SIGTERM");
    expect((await dev.exited).code).toBe(0);
  }, 240_000);
});

describe.skipIf(engine !== "postgres")("the container image's command sequence, from the install, on Postgres", () => {
  const name = `fabric_test_${randomBytes(6).toString("hex")}`;
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  beforeAll(async () => void (await admin.unsafe(`CREATE DATABASE ${name}`)));
  afterAll(async () => {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });

  it("migrate, serve --no-migrate, executor, admin bootstrap, then a run finishes through the SDK", async () => {
    // deploy/Dockerfile's environment: production, all interfaces.
    const env = { DATABASE_URL: url, FABRIC_ENV: "production", JWT_SECRET: "pack-test-secret-0123456789-abcdefghijklmnop", HOST: "0.0.0.0" };
    const migrate = await installedFabric(["migrate"], env).exited;
    expect(migrate.code, migrate.stderr).toBe(0);
    const serve = installedFabric(["serve", "--no-migrate", "--port", "0", "--grpc-port", "0"], env);
    const executor = installedFabric(["executor"], env);
    const restUrl = (await waitForOutput(serve, /"rest":"(http:\/\/[^"]+)"/, 120_000))[1]!;
    await waitForOutput(executor, /executor started/, 120_000);
    const boot = await installedFabric(["admin", "bootstrap", "--email", "ops@example.com", "--organization", "Ops", "--json"], env).exited;
    expect(boot.code, boot.stderr).toBe(0);
    const apiKey = JSON.parse(boot.stdout).api_key as string;

    writeFileSync(
      join(project, "image-run.mjs"),
      `import { FabricClient } from "@fabric-ai/sdk";
const fabric = new FabricClient({ baseUrl: ${JSON.stringify(restUrl)}, apiKey: ${JSON.stringify(apiKey)} });
const wf = await fabric.workflows.upsert(${readFileSync(join(repoRoot, "examples/smoke.json"), "utf8")});
const run = await fabric.runs.wait((await fabric.runs.start({ workflow_id: wf.id, input: { topic: "from the image" } })).id, { timeoutMs: 60000 });
console.log(run.status, run.context.answer);`,
    );
    const r = spawnSync(process.execPath, ["image-run.mjs"], { cwd: project, encoding: "utf8", timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("completed FROM THE IMAGE");
    const list = await installedFabric(["runs", "list", "--url", restUrl, "--api-key", apiKey], {}).exited;
    expect(list.stdout).toMatch(/smoke v1\s+completed/);
    serve.child.kill("SIGTERM");
    executor.child.kill("SIGTERM");
    expect((await serve.exited).code).toBe(0);
    expect((await executor.exited).code).toBe(0);
  }, 300_000);
});
