/** `fabric workflows list | get | apply FILE` over the API (the SDK). */
import type { WorkflowDefinition } from "../sdk/index.js";
import { CommandFailure, integerFlag, parseCommandLine, UsageError } from "./command-line.js";
import { apiOptions, connectApi, printJson, printTable, readWorkflowFile, shortTime } from "./api-access.js";

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function workflowsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "list": {
      const { values } = parseCommandLine("workflows", rest, { ...apiOptions, name: { type: "string" }, limit: { type: "string" } });
      const limit = integerFlag("limit", values.limit, 1, 1000) ?? 50;
      const fabric = connectApi(values);
      try {
        const list: WorkflowDefinition[] = [];
        for await (const wf of fabric.workflows.listAll({ name: values.name, page_size: Math.min(limit, 100) })) {
          list.push(wf);
          if (list.length >= limit) break;
        }
        if (values.json) printJson(list);
        else printTable(list.map(row), ["id", "name", "version", "nodes", "created"], "no workflows");
        return 0;
      } finally {
        fabric.close();
      }
    }
    case "get": {
      const { values, positionals } = parseCommandLine("workflows", rest, apiOptions, { positionals: 1 });
      const which = positionals[0];
      if (!which) throw new UsageError("missing argument: fabric workflows get ID_OR_NAME");
      const fabric = connectApi(values);
      try {
        let wf: WorkflowDefinition | undefined;
        if (uuid.test(which)) wf = await fabric.workflows.get(which);
        else {
          // By name: the newest version.
          for await (const w of fabric.workflows.listAll({ name: which })) if (!wf || w.version > wf.version) wf = w;
          if (!wf) throw new CommandFailure(`no workflow named ${JSON.stringify(which)}`);
        }
        if (values.json) printJson(wf);
        else {
          console.log(`workflow  ${wf.name} v${wf.version} (${wf.id})   created ${shortTime(wf.create_time)}`);
          printJson(wf.spec);
        }
        return 0;
      } finally {
        fabric.close();
      }
    }
    case "apply": {
      const { values, positionals } = parseCommandLine("workflows", rest, apiOptions, { positionals: 1 });
      if (!positionals[0]) throw new UsageError("missing argument: fabric workflows apply FILE");
      const spec = readWorkflowFile(positionals[0]);
      const fabric = connectApi(values);
      try {
        const wf = await fabric.workflows.upsert(spec);
        if (values.json) printJson(wf);
        else console.log(`workflow ${wf.name} v${wf.version} (${wf.id})`);
        return 0;
      } finally {
        fabric.close();
      }
    }
    default:
      throw new UsageError(sub ? `unknown subcommand workflows ${JSON.stringify(sub)} (see fabric workflows --help)` : "missing subcommand: list, get or apply (see fabric workflows --help)");
  }
}

const row = (w: WorkflowDefinition) => ({ id: w.id, name: w.name, version: w.version, nodes: w.spec?.nodes?.length, created: shortTime(w.create_time) });
