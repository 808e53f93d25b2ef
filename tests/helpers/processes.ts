/**
 * Real `fabric executor` OS processes for multi-process tests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../..");
export const fabricBin = join(repoRoot, "bin/fabric.js");

export interface ExecutorProcess {
  id: string;
  child: ChildProcess;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  stderr(): string;
}

export function spawnExecutor(env: Record<string, string>, id: string): ExecutorProcess {
  const child = spawn(process.execPath, [fabricBin, "executor"], {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: "warn", ...env, WORKER_ID: id },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err = (err + d.toString()).slice(-20_000);
  });
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  return { id, child, exited, stderr: () => err };
}

export interface FabricProcess {
  child: ChildProcess;
  /** Output so far. */
  out: { stdout: string; stderr: string };
  /** Resolves when the process has ended and its pipes have drained. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/**
 * Any `fabric …` command as a child process, with an environment that is ours minus
 * whatever would change what is tested (Fabric's own settings), plus `env`.
 */
export function spawnFabric(args: string[], env: Record<string, string | undefined> = {}, opts: { cwd?: string } = {}): FabricProcess {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(base)) if (/^(DATABASE_URL|DATABASE_POOL_MAX|FABRIC_|WORKER_|PORT$|GRPC_PORT$|HOST$|RUN_ID$|JWT_SECRET$|LOG_LEVEL$)/.test(k)) delete base[k];
  base.LOG_LEVEL = "warn";
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  const child = spawn(process.execPath, [fabricBin, ...args], { cwd: opts.cwd ?? repoRoot, env: base, stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out.stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out.stderr += d));
  const exited = new Promise<Awaited<FabricProcess["exited"]>>((resolve) => child.on("exit", (code, signal) => setImmediate(() => resolve({ code, signal, ...out }))));
  return { child, out, exited };
}

/** Waits until `pattern` appears in the process's stdout or stderr; fails if it exits first. */
export async function waitForOutput(p: FabricProcess, pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  void p.exited.then(() => (ended = true));
  for (;;) {
    const m = p.out.stdout.match(pattern) ?? p.out.stderr.match(pattern);
    if (m) return m;
    if (ended) throw new Error(`exited (${p.child.exitCode ?? p.child.signalCode}) before printing ${pattern}:\n${p.out.stdout}\n${p.out.stderr}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${p.out.stdout}\n${p.out.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
