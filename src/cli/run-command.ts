/**
 * `fabric run <file> --input k=v --follow`: registers the workflow, starts a run over
 * REST through the SDK, follows its event stream printing each node's progress, and
 * prints the final context. Exit code: 0 completed, 1 failed or cancelled (or the
 * server refused), 2 usage errors and input the server rejected as invalid.
 */
import type { RunEvent, StartRunRequest } from "../sdk/index.js";
import { integerFlag, parseCommandLine, UsageError } from "./command-line.js";
import { apiOptions, connectApi, readWorkflowFile } from "./api-access.js";

export async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    "run",
    args,
    {
      ...apiOptions,
      input: { type: "string", multiple: true },
      "input-json": { type: "string" },
      follow: { type: "boolean", short: "f" },
      "idempotency-key": { type: "string" },
      priority: { type: "string" },
    },
    { positionals: 1 },
  );
  const file = positionals[0];
  if (!file) throw new UsageError("missing argument: fabric run <file.json|yaml> (see fabric run --help)");
  const spec = readWorkflowFile(file);
  let input: Record<string, unknown> = {};
  if (values["input-json"]) {
    try {
      input = JSON.parse(values["input-json"]);
    } catch {
      throw new UsageError("--input-json is not valid JSON");
    }
    if (!input || typeof input !== "object" || Array.isArray(input)) throw new UsageError("--input-json expects a JSON object");
  }
  for (const pair of values.input ?? []) {
    const i = pair.indexOf("=");
    if (i < 1) throw new UsageError(`--input expects key=value, got ${JSON.stringify(pair)}`);
    const raw = pair.slice(i + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    input[pair.slice(0, i)] = value;
  }
  const priority = integerFlag("priority", values.priority, 0, 100);

  const fabric = connectApi(values);
  try {
    const wf = await fabric.workflows.upsert(spec);
    const start: StartRunRequest = { workflow_id: wf.id, input };
    if (values["idempotency-key"]) start.idempotency_key = values["idempotency-key"];
    if (priority !== undefined) start.priority = priority;
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
  } finally {
    fabric.close();
  }
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
