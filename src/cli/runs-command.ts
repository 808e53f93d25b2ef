/** `fabric runs list | get | cancel | events` over the API (the SDK). */
import type { Run } from "../sdk/index.js";
import { integerFlag, parseCommandLine, UsageError } from "./command-line.js";
import { apiOptions, connectApi, printJson, printTable, shortTime } from "./api-access.js";

const runStatuses = ["pending", "running", "waiting", "paused", "completed", "failed", "cancelled"];

export async function runsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "list": {
      const { values } = parseCommandLine("runs", rest, { ...apiOptions, status: { type: "string" }, "workflow-id": { type: "string" }, "workflow-name": { type: "string" }, limit: { type: "string" } });
      if (values.status && !runStatuses.includes(values.status)) throw new UsageError(`--status expects one of ${runStatuses.join(", ")}, got ${JSON.stringify(values.status)}`);
      const limit = integerFlag("limit", values.limit, 1, 1000) ?? 20;
      const fabric = connectApi(values);
      try {
        const runs: Run[] = [];
        for await (const run of fabric.runs.listAll({ status: values.status as any, workflow_id: values["workflow-id"], workflow_name: values["workflow-name"], page_size: Math.min(limit, 100) })) {
          runs.push(run);
          if (runs.length >= limit) break;
        }
        if (values.json) printJson(runs);
        else printTable(runs.map(runRow), ["id", "workflow", "status", "created", "finished"], "no runs");
        return 0;
      } finally {
        fabric.close();
      }
    }
    case "get": {
      const { values, positionals } = parseCommandLine("runs", rest, apiOptions, { positionals: 1 });
      const fabric = connectApi(values);
      try {
        const run = await fabric.runs.get(requireId(positionals[0], "runs get RUN_ID"));
        if (values.json) printJson(run);
        else printRun(run);
        return 0;
      } finally {
        fabric.close();
      }
    }
    case "cancel": {
      const { values, positionals } = parseCommandLine("runs", rest, { ...apiOptions, reason: { type: "string" } }, { positionals: 1 });
      const fabric = connectApi(values);
      try {
        const run = await fabric.runs.cancel(requireId(positionals[0], "runs cancel RUN_ID"), values.reason);
        if (values.json) printJson(run);
        else console.log(`run ${run.id} ${run.status}`);
        return 0;
      } finally {
        fabric.close();
      }
    }
    case "events": {
      const { values, positionals } = parseCommandLine("runs", rest, apiOptions, { positionals: 1 });
      const fabric = connectApi(values);
      try {
        // History first, then live; the stream ends after the run's terminal event.
        for await (const ev of fabric.runs.watch(requireId(positionals[0], "runs events RUN_ID"))) {
          if (values.json) console.log(JSON.stringify(ev));
          else console.log([shortTime(ev.create_time) ?? "-", ev.kind, ev.node_key ?? "", ev.payload && Object.keys(ev.payload).length ? JSON.stringify(ev.payload).slice(0, 160) : ""].join("  ").trimEnd());
        }
        return 0;
      } finally {
        fabric.close();
      }
    }
    default:
      throw new UsageError(sub ? `unknown subcommand runs ${JSON.stringify(sub)} (see fabric runs --help)` : "missing subcommand: list, get, cancel or events (see fabric runs --help)");
  }
}

function requireId(id: string | undefined, usage: string): string {
  if (!id) throw new UsageError(`missing argument: fabric ${usage}`);
  return id;
}

const runRow = (r: Run) => ({ id: r.id, workflow: `${r.workflow_name} v${r.workflow_version}`, status: r.status, created: shortTime(r.create_time), finished: shortTime(r.finish_time) });

function printRun(run: Run) {
  console.log(`run       ${run.id}`);
  console.log(`workflow  ${run.workflow_name} v${run.workflow_version} (${run.workflow_id})`);
  console.log(`status    ${run.status}${run.error ? ` — ${run.error.message}` : ""}`);
  console.log(`created   ${shortTime(run.create_time) ?? "-"}   finished ${shortTime(run.finish_time) ?? "-"}`);
  console.log("");
  printTable(
    (run.nodes ?? []).map((n) => ({ node: n.key, status: n.status, attempt: n.attempt, error: n.error?.message })),
    ["node", "status", "attempt", "error"],
    "no nodes",
  );
  console.log("");
  console.log(`context   ${JSON.stringify(run.context)}`);
}
