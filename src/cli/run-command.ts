/**
 * `fabric run <file> --input k=v --follow`: registers the workflow, starts a run over
 * REST through the SDK, follows its event stream printing each node's progress, and
 * prints the final context. Exit code: 0 completed, 1 failed or cancelled, 2 usage/request errors.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { FabricClient, FabricError, type RunEvent, type StartRunRequest } from "../sdk/index.js";

export async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      input: { type: "string", multiple: true },
      "input-json": { type: "string" },
      follow: { type: "boolean", short: "f" },
      url: { type: "string" },
      "api-key": { type: "string" },
      "idempotency-key": { type: "string" },
      priority: { type: "string" },
    },
  });
  const file = positionals[0];
  if (!file) {
    console.error("usage: fabric run <file.json|yaml> [--input k=v ...] [--input-json '{…}'] [--follow]");
    return 2;
  }
  const text = readFileSync(file, "utf8");
  const spec = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  const input: Record<string, unknown> = values["input-json"] ? JSON.parse(values["input-json"]) : {};
  for (const pair of values.input ?? []) {
    const i = pair.indexOf("=");
    if (i < 1) {
      console.error(`--input expects key=value, got ${JSON.stringify(pair)}`);
      return 2;
    }
    const raw = pair.slice(i + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    input[pair.slice(0, i)] = value;
  }

  const base = (values.url ?? process.env.FABRIC_URL ?? "http://127.0.0.1:3001").replace(/\/$/, "");
  const apiKey = values["api-key"] ?? process.env.FABRIC_API_KEY ?? devKey();
  if (!apiKey) {
    console.error("no API key: pass --api-key, set FABRIC_API_KEY, or start `fabric dev` in this directory");
    return 2;
  }
  const fabric = new FabricClient({ baseUrl: base, apiKey });
  try {
    const wf = await fabric.workflows.upsert(spec);
    const start: StartRunRequest = { workflow_id: wf.id, input };
    if (values["idempotency-key"]) start.idempotency_key = values["idempotency-key"];
    if (values.priority) start.priority = Number(values.priority);
    let run = await fabric.runs.start(start);
    console.error(`run ${run.id} (${wf.name} v${wf.version}) ${run.status}`);
    if (!values.follow) {
      console.log(JSON.stringify(run, null, 2));
      return 0;
    }
    // watch() resumes with Last-Event-ID if the connection drops, and ends after the terminal event.
    for await (const ev of fabric.runs.watch(run.id)) printEvent(ev);
    run = await fabric.runs.get(run.id);
    console.error(`run ${run.id} ${run.status}${run.error ? `: ${run.error.message}` : ""}`);
    console.log(JSON.stringify(run.context, null, 2));
    return run.status === "completed" ? 0 : 1;
  } catch (err) {
    if (err instanceof FabricError) {
      const issues = err.issues?.length ? "\n" + err.issues.map((i) => `  ${i.path}: ${i.message}`).join("\n") : "";
      console.error(`fabric run: ${err.status} ${err.code} — ${err.detail ?? err.message}${issues}`);
    } else {
      console.error(`fabric run: ${(err as Error).message}`);
    }
    return 2;
  } finally {
    fabric.close();
  }
}

function devKey(): string | undefined {
  const path = join(process.env.FABRIC_DATA_DIR ?? ".fabric", "dev-api-key");
  return existsSync(path) ? readFileSync(path, "utf8").trim() : undefined;
}

function printEvent(ev: RunEvent) {
  const time = ev.create_time ? ev.create_time.slice(11, 23) : "";
  const who = ev.node_key ? ` ${ev.node_key}` : "";
  const payload = (ev.payload ?? {}) as { output?: unknown; error?: { message?: string }; delta?: string };
  let detail = "";
  if (ev.kind === "workflow.node.completed") detail = ` → ${JSON.stringify(payload.output).slice(0, 120)}`;
  if (ev.kind === "workflow.node.failed" || ev.kind === "workflow.node.retrying") detail = ` ${payload.error?.message ?? ""}`;
  if (ev.kind === "workflow.node.progress") detail = ` ${JSON.stringify(payload.delta ?? "")}`;
  console.error(`${time} ${ev.kind}${who}${detail}`);
}
