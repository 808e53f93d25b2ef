/**
 * Real `fabric serve` OS processes (control planes) for multi-process tests. `serve`
 * logs `{"msg":"control plane listening","rest":…,"grpc":…}` as JSON on stderr once both
 * servers listen; spawnServe resolves with those URLs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fabricBin, repoRoot } from "./processes.js";

export interface ServeProcess {
  child: ChildProcess;
  restUrl: string;
  grpcUrl: string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  stderr(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

export async function spawnServe(env: Record<string, string>, opts: { timeoutMs?: number } = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, [fabricBin, "serve", "--port", "0", "--grpc-port", "0", "--host", "127.0.0.1"], {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: "info", FABRIC_ENV: "development", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  let pending = "";
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  const urls = new Promise<{ rest: string; grpc: string }>((resolve, reject) => {
    // A ceiling for a process that never comes up (a loaded machine takes many seconds to
    // start one); on it the process is killed, so a failed start leaves nothing running.
    const ceiling = opts.timeoutMs ?? 150_000;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`fabric serve did not report its URLs within ${ceiling} ms:\n${err}`));
    }, ceiling);
    child.stderr!.on("data", (d: Buffer) => {
      const text = d.toString();
      err = (err + text).slice(-50_000);
      pending += text;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        try {
          const j = JSON.parse(line) as { msg?: string; rest?: string; grpc?: string };
          if (j.msg === "control plane listening" && j.rest && j.grpc) {
            clearTimeout(timer);
            resolve({ rest: j.rest, grpc: j.grpc });
          }
        } catch {
          /* not a JSON log line */
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`fabric serve exited (${code}) before listening:\n${err}`));
    });
  });
  const { rest, grpc } = await urls;
  return {
    child,
    restUrl: rest,
    grpcUrl: grpc,
    exited,
    stderr: () => err,
    async stop(graceMs = 3000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}
