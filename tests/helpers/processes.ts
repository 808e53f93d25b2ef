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
