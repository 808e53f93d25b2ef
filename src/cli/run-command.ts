/**
 * `fabric run <file> --input k=v --follow`: registers the workflow, starts a run over
 * REST, follows its event stream printing each node's progress, and prints the final
 * context. Exit code: 0 completed, 1 failed or cancelled, 2 usage/request errors.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";

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
  const headers = { authorization: `Bearer ${apiKey}`, "content-type": "application/json" };
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const json: any = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${json.code ?? ""} — ${json.detail ?? res.statusText}${json.issues ? "\n" + json.issues.map((i: any) => `  ${i.path}: ${i.message}`).join("\n") : ""}`);
    return json.data;
  };

  try {
    const wf = await call("POST", "/v1/workflows", spec);
    const startBody: Record<string, unknown> = { workflow_id: wf.id, input };
    if (values["idempotency-key"]) startBody["idempotency_key"] = values["idempotency-key"];
    if (values.priority) startBody["priority"] = Number(values.priority);
    let run = await call("POST", "/v1/workflow-runs", startBody);
    console.error(`run ${run.id} (${wf.name} v${wf.version}) ${run.status}`);
    if (!values.follow) {
      console.log(JSON.stringify(run, null, 2));
      return 0;
    }
    await follow(base, headers, run.id);
    run = await call("GET", `/v1/workflow-runs/${run.id}`);
    console.error(`run ${run.id} ${run.status}${run.error ? `: ${run.error.message}` : ""}`);
    console.log(JSON.stringify(run.context, null, 2));
    return run.status === "completed" ? 0 : 1;
  } catch (err) {
    console.error(`fabric run: ${(err as Error).message}`);
    return 2;
  }
}

function devKey(): string | undefined {
  const path = join(process.env.FABRIC_DATA_DIR ?? ".fabric", "dev-api-key");
  return existsSync(path) ? readFileSync(path, "utf8").trim() : undefined;
}

/** Follows the run's SSE stream to its end, resuming with Last-Event-ID if the connection drops. */
async function follow(base: string, headers: Record<string, string>, runId: string): Promise<void> {
  let lastId: string | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    const res = await fetch(`${base}/v1/workflow-runs/${runId}/events`, { headers: { ...headers, accept: "text/event-stream", ...(lastId ? { "last-event-id": lastId } : {}) } });
    if (!res.ok || !res.body) throw new Error(`event stream: ${res.status}`);
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let i;
        while ((i = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const data = block
            .split("\n")
            .filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).trimStart())
            .join("\n");
          if (!data) continue;
          const ev = JSON.parse(data);
          lastId = ev.id;
          printEvent(ev);
          if (/^workflow\.run\.(completed|failed|cancelled)$/.test(ev.kind)) return;
        }
      }
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
    }
  }
}

function printEvent(ev: { kind: string; node_key?: string; payload?: any; create_time?: string }) {
  const time = ev.create_time ? ev.create_time.slice(11, 23) : "";
  const who = ev.node_key ? ` ${ev.node_key}` : "";
  let detail = "";
  if (ev.kind === "workflow.node.completed") detail = ` → ${JSON.stringify(ev.payload?.output).slice(0, 120)}`;
  if (ev.kind === "workflow.node.failed" || ev.kind === "workflow.node.retrying") detail = ` ${ev.payload?.error?.message ?? ""}`;
  console.error(`${time} ${ev.kind}${who}${detail}`);
}
