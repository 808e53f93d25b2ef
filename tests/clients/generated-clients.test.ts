/**
 * Two independent client generators read Fabric's OpenAPI documents, and what they generate
 * compiles and works (issue 15, item 7):
 *
 * - openapi-typescript + openapi-fetch, from the 3.1 document (gen/openapi/openapi.json);
 * - @hey-api/openapi-ts (0.95.0: the last release that runs on Node 20) with its fetch
 *   client, from the derived 3.0 document (gen/openapi/openapi-3.0.json).
 *
 * Each is generated into a temporary project, a small program is compiled with `tsc`
 * (strict) against it — it states at the type level that a token count is a `string`, the
 * one representation of 64-bit integers — and run against a live `fabric dev`: upsert a
 * workflow, list workflows, start a run, read it until it completes, and report the node
 * output's token counts, which must be strings as in every API response.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDev, type DevProcess } from "../console/browser.js";
import { repoRoot } from "../helpers/processes.js";

let dev: DevProcess;
let work: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "fabric-clients-"));
  dev = await startDev(join(work, "data"));
}, 180_000);
afterAll(async () => {
  await dev?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const bin = (name: string) => join(repoRoot, "node_modules/.bin", name);

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: 300_000, env: { ...process.env, NO_COLOR: "1" } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A project dir that resolves packages from this checkout's node_modules, with a strict tsconfig. */
function project(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  symlinkSync(join(repoRoot, "node_modules"), join(dir, "node_modules"), "dir");
  writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module", private: true }));
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2023", "DOM"], types: ["node"], strict: true, skipLibCheck: false, outDir: "out", rootDir: "." },
      include: ["*.ts", "**/*.ts"],
      exclude: ["node_modules", "out"],
    }),
  );
  return dir;
}

/** The workflow both programs register: a text step, then ai.generate on the echo provider (which reports token usage). */
const spec = `{
  name: workflowName,
  nodes: [
    { key: "shout", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.topic" }, outputs: { text: "$context.shouted" } },
    { key: "gen", operation: "ai.generate", config: { provider: "echo" }, depends_on: ["shout"], inputs: { prompt: "$context.shouted" }, outputs: { text: "$context.answer" } },
  ],
}`;

/** What each program prints: one JSON line. */
interface Report {
  listed: string[];
  runStatus: number;
  runId: string;
  finalStatus: string;
  usage: Record<string, unknown>;
  answer: unknown;
}

const common = `
const [baseUrl, apiKey, workflowName] = process.argv.slice(2) as [string, string, string];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function fail(what: string, detail: unknown): never {
  throw new Error(what + ": " + JSON.stringify(detail));
}
`;

const openapiFetchProgram = `
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";
${common}
// A token count is a string in every response: this line does not compile otherwise.
const tokenCountIsString: components["schemas"]["TokenUsage"]["input_tokens"] extends string ? true : false = true;
void tokenCountIsString;

const client = createClient<paths>({ baseUrl, headers: { authorization: "Bearer " + apiKey } });
const up = await client.POST("/v1/workflows", { body: ${spec} });
if (!up.data) fail("upsert", up.error);
const list = await client.GET("/v1/workflows", { params: { query: { name: workflowName } } });
if (!list.data) fail("list", list.error);
const started = await client.POST("/v1/workflow-runs", { body: { workflow_id: up.data.data.id, input: { topic: "generated" } } });
if (!started.data) fail("start", started.error);
const runId: string = started.data.data.id;
let run = started.data.data;
for (let i = 0; i < 1200 && !["completed", "failed", "cancelled"].includes(run.status); i++) {
  await sleep(100);
  const got = await client.GET("/v1/workflow-runs/{id}", { params: { path: { id: runId } } });
  if (!got.data) fail("get", got.error);
  run = got.data.data;
}
const gen = run.nodes.find((n) => n.key === "gen");
const output = (gen?.output ?? {}) as { usage?: Record<string, unknown> };
console.log(JSON.stringify({ listed: list.data.data.map((w) => w.name), runStatus: started.response.status, runId, finalStatus: run.status, usage: output.usage ?? {}, answer: run.context?.["answer"] }));
`;

const heyApiProgram = `
import { client } from "./client/client.gen.js";
import { getRun, listWorkflows, startRun, upsertWorkflow } from "./client/sdk.gen.js";
import type { TokenUsage } from "./client/types.gen.js";
${common}
// A token count is a string in every response: this line does not compile otherwise.
const tokenCountIsString: TokenUsage["input_tokens"] extends string ? true : false = true;
void tokenCountIsString;

client.setConfig({ baseUrl, headers: { Authorization: "Bearer " + apiKey } });
const up = await upsertWorkflow({ body: ${spec} });
if (!up.data) fail("upsert", up.error);
const list = await listWorkflows({ query: { name: workflowName } });
if (!list.data) fail("list", list.error);
const started = await startRun({ body: { workflow_id: up.data.data.id, input: { topic: "generated" } } });
if (!started.data) fail("start", started.error);
const runId: string = started.data.data.id;
let run = started.data.data;
for (let i = 0; i < 1200 && !["completed", "failed", "cancelled"].includes(run.status); i++) {
  await sleep(100);
  const got = await getRun({ path: { id: runId } });
  if (!got.data) fail("get", got.error);
  run = got.data.data;
}
const gen = run.nodes.find((n) => n.key === "gen");
const output = (gen?.output ?? {}) as { usage?: Record<string, unknown> };
console.log(JSON.stringify({ listed: list.data.data.map((w) => w.name), runStatus: started.response.status, runId, finalStatus: run.status, usage: output.usage ?? {}, answer: run.context?.["answer"] }));
`;

function compileAndRun(dir: string, program: string, workflowName: string): Report {
  writeFileSync(join(dir, "main.ts"), program);
  run(process.execPath, [bin("tsc"), "-p", "tsconfig.json"], dir);
  const out = run(process.execPath, [join(dir, "out/main.js"), dev.url, dev.apiKey, workflowName], dir);
  return JSON.parse(out.trim().split("\n").at(-1)!) as Report;
}

function expectWorked(r: Report, workflowName: string) {
  expect(r.listed).toContain(workflowName);
  expect(r.runStatus).toBe(202);
  expect(r.finalStatus).toBe("completed");
  expect(r.answer).toBe("GENERATED");
  // One representation: token counts in a node output are strings, as in every response.
  expect(Object.keys(r.usage)).toEqual(expect.arrayContaining(["input_tokens", "output_tokens"]));
  for (const [k, v] of Object.entries(r.usage)) expect(v, k).toMatch(/^\d+$/);
}

describe("generated clients against a live fabric dev", () => {
  it("openapi-typescript + openapi-fetch (OpenAPI 3.1): generates, compiles with tsc, lists workflows and starts a run", { timeout: 600_000 }, () => {
    const dir = project("openapi-fetch");
    run(process.execPath, [bin("openapi-typescript"), join(repoRoot, "gen/openapi/openapi.json"), "-o", join(dir, "schema.d.ts")], dir);
    const name = "generated-openapi-fetch";
    expectWorked(compileAndRun(dir, openapiFetchProgram, name), name);
  });

  it("@hey-api/openapi-ts (OpenAPI 3.0): generates, compiles with tsc, lists workflows and starts a run", { timeout: 600_000 }, () => {
    const dir = project("hey-api");
    run(process.execPath, [bin("openapi-ts"), "-i", join(repoRoot, "gen/openapi/openapi-3.0.json"), "-o", join(dir, "client"), "-c", "@hey-api/client-fetch"], dir);
    const name = "generated-hey-api";
    expectWorked(compileAndRun(dir, heyApiProgram, name), name);
  });

  it("a program that treats a token count as a number does not compile (the type-level check can fail)", { timeout: 600_000 }, () => {
    const dir = project("negative");
    run(process.execPath, [bin("openapi-typescript"), join(repoRoot, "gen/openapi/openapi.json"), "-o", join(dir, "schema.d.ts")], dir);
    writeFileSync(join(dir, "main.ts"), `import type { components } from "./schema.js";\nconst n: number = ("1" as components["schemas"]["TokenUsage"]["input_tokens"]);\nconsole.log(n);\n`);
    const r = spawnSync(process.execPath, [bin("tsc"), "-p", "tsconfig.json"], { cwd: dir, encoding: "utf8", timeout: 300_000 });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toMatch(/TS2322/);
  });
});
