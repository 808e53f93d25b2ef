/**
 * The `fabric` CLI as a user runs it: real child processes of bin/fabric.js.
 * `fabric dev` on an embedded database in a temp dir with ports 0 (it prints what it
 * bound), `fabric run` against it, start-up errors and their exit codes, SIGTERM.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const bin = join(root, "bin/fabric.js");
const devKey = "fab_abcd1234_Zx9Qw8Er7Ty6Ui5Op4As3Df2"; // 24 letters/digits after the prefix

const children = new Set<ChildProcess>();

/** Environment for children: ours minus anything that would change what is tested. */
function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (/^(DATABASE_URL|FABRIC_|WORKER_|PORT$|GRPC_PORT$|HOST$|RUN_ID$|JWT_SECRET$|LOG_LEVEL$)/.test(k)) delete env[k];
  env.LOG_LEVEL = "warn";
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const out = { stdout: "", stderr: "" };
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out.stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out.stderr += d));
  const exited = new Promise<Exit>((resolve) =>
    child.on("exit", (code, signal) => {
      // Let the pipes drain.
      setImmediate(() => {
        children.delete(child);
        resolve({ code, signal, ...out });
      });
    }),
  );
  return { child, out, exited };
}

/**
 * Runs a command to completion (killed after timeoutMs, a ceiling for a command that would
 * never end: several children start at once here, and each is slow on a loaded machine).
 */
async function fabric(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 150_000): Promise<Exit> {
  const p = start(args, env);
  const timer = setTimeout(() => p.child.kill("SIGKILL"), timeoutMs);
  try {
    return await p.exited;
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(out: { stdout: string; stderr: string }, exited: Promise<Exit>, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  let done: Exit | undefined;
  void exited.then((e) => (done = e));
  for (;;) {
    const m = out.stdout.match(pattern);
    if (m) return m;
    if (done) throw new Error(`exited (${done.code ?? done.signal}) before printing ${pattern}:\n${done.stdout}\n${done.stderr}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${out.stdout}\n${out.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const tmp = mkdtempSync(join(tmpdir(), "fabric-cli-"));
const dataDir = join(tmp, "data");
let dev: ReturnType<typeof start>;
let restUrl = "";
let grpcUrl = "";

/**
 * Each child pays some start-up (more on a loaded machine), so independent commands
 * run concurrently: the ones that need no server while `fabric dev` boots, the ones against
 * it as soon as it is up. The tests below assert on their outcomes.
 */
const pending: Record<string, Promise<Exit>> = {};

beforeAll(async () => {
  writeFileSync(join(tmp, "fails.json"), JSON.stringify({ name: "cli-fails", nodes: [{ key: "shout", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.missing" }, outputs: { text: "$context.out" } }] }));
  writeFileSync(join(tmp, "invalid.json"), JSON.stringify({ name: "cli-invalid", nodes: [{ key: "a", operation: "text.transform_basic", config: { op: "upper" }, depends_on: ["ghost"] }] }));

  dev = start(["dev", "--port", "0", "--grpc-port", "0", "--data-dir", dataDir], childEnv({ FABRIC_DEV_API_KEY: devKey }));
  pending.executorNoDb = fabric(["executor"], childEnv());
  pending.badConcurrency = fabric(["executor"], childEnv({ WORKER_CONCURRENCY: "abc", DATABASE_URL: "postgres://127.0.0.1:1/none" }));
  pending.productionNoSecret = fabric(["serve"], childEnv({ FABRIC_ENV: "production", DATABASE_URL: "postgres://127.0.0.1:1/none" }));
  pending.noKey = fabric(["run", "examples/smoke.json", "--url", "http://127.0.0.1:9"], childEnv({ FABRIC_DATA_DIR: join(tmp, "empty") }));

  await waitFor(dev.out, dev.exited, /API key\s+\S+/, 170_000);
  restUrl = dev.out.stdout.match(/REST \+ SSE\s+(http:\/\/127\.0\.0\.1:\d+)/)![1]!;
  grpcUrl = dev.out.stdout.match(/gRPC\s+(http:\/\/127\.0\.0\.1:\d+)/)![1]!;

  pending.secondDev = fabric(["dev", "--port", "0", "--grpc-port", "0", "--data-dir", dataDir], childEnv());
  pending.smoke = fabric(["run", "examples/smoke.json", "--input", "topic=hello world", "--follow", "--url", restUrl], childEnv({ FABRIC_DATA_DIR: dataDir }));
  pending.fails = fabric(["run", join(tmp, "fails.json"), "--follow", "--url", restUrl, "--api-key", devKey], childEnv());
  pending.invalid = fabric(["run", join(tmp, "invalid.json"), "--url", restUrl, "--api-key", devKey], childEnv());
}, 180_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.allSettled(Object.values(pending));
  rmSync(tmp, { recursive: true, force: true });
});

describe("fabric dev", () => {
  it("binds the ports it was given (0 = any free port), prints them and the pinned API key", async () => {
    const rest = new URL(restUrl);
    const grpc = new URL(grpcUrl);
    expect(Number(rest.port)).toBeGreaterThan(0);
    expect(Number(grpc.port)).toBeGreaterThan(0);
    expect(rest.port).not.toBe(grpc.port);
    expect(dev.out.stdout).toMatch(new RegExp(`API key\\s+${devKey}\\s*$`, "m"));
    expect(dev.out.stdout).toContain(`embedded Postgres in ${dataDir}`);
    expect(readFileSync(join(dataDir, "dev-api-key"), "utf8").trim()).toBe(devKey);
    // Both printed URLs really answer, and the key works on both.
    expect(await (await fetch(`${restUrl}/healthz`)).json()).toEqual({ status: "ok" });
    const list = await fetch(`${restUrl}/v1/workflows`, { headers: { authorization: `Bearer ${devKey}` } });
    expect(list.status).toBe(200);
    const rpc = await fetch(`${grpcUrl}/fabric.v1.WorkflowService/ListWorkflows`, { method: "POST", headers: { authorization: `Bearer ${devKey}`, "content-type": "application/json" }, body: "{}" });
    expect(rpc.status).toBe(200);
  });

  it("a second `fabric dev` on the same data dir exits non-zero: the embedded database is in use", async () => {
    const r = await pending.secondDev!;
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).toMatch(/embedded database .* is in use by process \d+/);
    expect(r.stderr).toContain(String(dev.child.pid));
    expect(r.stdout).not.toContain("Fabric is running");
    // The first one is unharmed.
    expect((await fetch(`${restUrl}/healthz`)).status).toBe(200);
  });
});

describe("fabric run", () => {
  it("runs examples/smoke.json with --follow: exit 0, the final context on stdout, progress on stderr", async () => {
    const r = await pending.smoke!;
    expect(r.code, r.stderr).toBe(0);
    const context = JSON.parse(r.stdout);
    expect(context).toMatchObject({ topic: "hello world", shouted: "HELLO WORLD", answer: "HELLO WORLD" });
    expect(r.stderr).toMatch(/workflow\.node\.completed shout → \{"text":"HELLO WORLD"\}/);
    expect(r.stderr).toMatch(/workflow\.node\.completed gen/);
    expect(r.stderr).toMatch(/workflow\.run\.completed/);
    expect(r.stderr).toMatch(/^run [0-9a-f-]{36} completed$/m);
  });

  it("a failing workflow exits 1 and says why", async () => {
    const r = await pending.fails!;
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/workflow\.node\.failed shout .*inputs\.text must be a string/);
    expect(r.stderr).toMatch(/^run [0-9a-f-]{36} failed/m);
  });

  it("an invalid workflow is a request error: exit 2 with the issues", async () => {
    const r = await pending.invalid!;
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/400 invalid_argument/);
    expect(r.stderr).toContain("/nodes/0/depends_on/0");
  });

  it("without any API key exits 2 and says how to get one", async () => {
    const r = await pending.noKey!;
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no API key/);
  });
});

describe("start-up errors", () => {
  it("`fabric executor` without DATABASE_URL exits 2 naming DATABASE_URL", async () => {
    const r = await pending.executorNoDb!;
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("DATABASE_URL");
    expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });

  it("`fabric serve` in production without JWT_SECRET refuses to start, naming it", async () => {
    const r = await pending.productionNoSecret!;
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("JWT_SECRET");
  });

  it("an invalid WORKER_CONCURRENCY exits 2 naming the variable", async () => {
    const r = await pending.badConcurrency!;
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("WORKER_CONCURRENCY");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("shutdown", () => {
  it("SIGTERM makes `fabric dev` exit 0 by itself and release the data dir", async () => {
    dev.child.kill("SIGTERM");
    // A shutdown that hangs is SIGKILLed at this ceiling, and then exits with a signal, not 0.
    const timer = setTimeout(() => dev.child.kill("SIGKILL"), 90_000);
    const r = await dev.exited;
    clearTimeout(timer);
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    expect(existsSync(join(dataDir, "fabric.lock"))).toBe(false);
    await expect(fetch(`${restUrl}/healthz`)).rejects.toThrow();
  });
});
