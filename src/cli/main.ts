/**
 * `fabric` — the command's entry point. It loads only the module of the command asked
 * for (a `--help` loads none), so `fabric --help` and an executor's start do not pay for
 * the control plane. Commands throw; this file turns errors into one line on stderr and
 * an exit code (usage.ts: 1 failure, 2 usage), with the stack only when LOG_LEVEL=debug.
 */
import { readFileSync } from "node:fs";
import { packagePath } from "../package-files.js";
import { commandUsage, mainUsage } from "./usage.js";

type Command = (args: string[]) => Promise<number>;

/** Each command's module, imported on use. */
const commands: Record<string, () => Promise<Command>> = {
  dev: async () => (await import("./dev-command.js")).devCommand,
  serve: async () => (await import("./serve-command.js")).serveCommand,
  executor: async () => (await import("./executor-command.js")).executorCommand,
  migrate: async () => (await import("./migrate-command.js")).migrateCommand,
  admin: async () => (await import("./admin-command.js")).adminCommand,
  run: async () => (await import("./run-command.js")).runCommand,
  runs: async () => (await import("./runs-command.js")).runsCommand,
  workflows: async () => (await import("./workflows-command.js")).workflowsCommand,
  keys: async () => (await import("./keys-command.js")).keysCommand,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "--version" || command === "-v" || command === "version") {
    console.log(JSON.parse(readFileSync(packagePath("package.json"), "utf8")).version);
    return 0;
  }
  if (!command || command === "help" || command === "--help" || command === "-h") {
    const topic = command === "help" ? rest[0] : undefined;
    if (topic && commandUsage[topic]) console.log(commandUsage[topic]);
    else console.log(mainUsage);
    return command ? 0 : 2;
  }
  const load = commands[command];
  if (!load) {
    console.error(`fabric: unknown command ${JSON.stringify(command)} (see fabric --help)`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(commandUsage[command]);
    return 0;
  }
  return (await load())(rest);
}

/** One line for a person, and the exit code, for whatever a command threw. */
function explain(err: unknown): { line: string; code: number } {
  const e = err as Error & { code?: string; status?: number; address?: string; port?: number; syscall?: string; detail?: string; issues?: { path: string; message: string }[] };
  const firstLine = (s: string) => s.split("\n")[0]!;
  switch (e?.name) {
    case "UsageError":
      return { line: e.message, code: 2 };
    case "ConfigError": // config.ts: one line per offending variable
      return { line: e.message.replace(/:\n\s+/, ": ").replace(/\n\s+/g, "; "), code: 2 };
    case "CommandFailure":
    case "SchemaBehindError":
      return { line: e.message, code: 1 };
    case "DomainError": // a use case run in-process (admin bootstrap)
      return { line: e.message, code: (e as unknown as { kind: string }).kind === "invalid_argument" ? 2 : 1 };
    case "FabricError": {
      // The SDK's error: the server answered with a problem document (or could not be reached).
      const issues = e.issues?.length ? `: ${e.issues.map((i) => `${i.path} ${i.message}`).join("; ")}` : "";
      return { line: `${e.status ? `${e.status} ` : ""}${e.code} — ${e.detail ?? e.message}${issues}`, code: e.status === 400 ? 2 : 1 };
    }
  }
  if (e?.code === "EADDRINUSE") return { line: `${e.address ?? "the address"}:${e.port ?? "?"} is already in use: stop what listens there, or pick another port (--port/PORT, --grpc-port/GRPC_PORT)`, code: 1 };
  if (e?.code === "ECONNREFUSED") return { line: `cannot connect to ${e.address ?? "the server"}:${e.port ?? "?"} (connection refused)`, code: 1 };
  return { line: firstLine(e instanceof Error ? e.message : String(err)), code: 1 };
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    const { line, code } = explain(err);
    console.error(`fabric: ${line}`);
    if (process.env.LOG_LEVEL === "debug") console.error(err);
    process.exit(code);
  },
);
