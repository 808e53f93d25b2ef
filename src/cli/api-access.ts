/**
 * What the commands that talk to a running Fabric share (run, runs, workflows, keys):
 * the SDK client from --url/FABRIC_URL and --api-key/FABRIC_API_KEY (or the key
 * `fabric dev` saved), reading a workflow file, and printing tables or JSON.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { FabricClient } from "../sdk/index.js";
import { UsageError } from "./command-line.js";

export const apiOptions = { url: { type: "string" }, "api-key": { type: "string" }, json: { type: "boolean" } } as const;

export const defaultUrl = "http://127.0.0.1:3001";

export function connectApi(values: { url?: string | boolean; "api-key"?: string | boolean }): FabricClient {
  const raw = (typeof values.url === "string" ? values.url : undefined) ?? process.env.FABRIC_URL ?? defaultUrl;
  let url: URL;
  try {
    url = new URL(raw);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error();
  } catch {
    throw new UsageError(`--url / FABRIC_URL expects an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  const apiKey = (typeof values["api-key"] === "string" ? values["api-key"] : undefined) ?? (process.env.FABRIC_API_KEY || undefined) ?? devKey();
  if (!apiKey) throw new UsageError("no API key: pass --api-key, set FABRIC_API_KEY, or start `fabric dev` in this directory");
  // A CLI call should fail fast rather than wait out the SDK's default of minutes.
  return new FabricClient({ baseUrl: url.toString().replace(/\/$/, ""), apiKey, timeoutMs: 60_000, maxRetries: 1 });
}

function devKey(): string | undefined {
  const path = join(process.env.FABRIC_DATA_DIR || ".fabric", "dev-api-key");
  return existsSync(path) ? readFileSync(path, "utf8").trim() : undefined;
}

/** A workflow file (.json, .yaml/.yml) as a spec; a missing or malformed file is a usage error. */
export function readWorkflowFile(file: string): any {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err: any) {
    throw new UsageError(`cannot read workflow file ${file}: ${err.code === "ENOENT" ? "no such file" : err.code === "EISDIR" ? "it is a directory" : err.message}`);
  }
  try {
    return /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (err: any) {
    throw new UsageError(`workflow file ${file} is not valid ${/\.ya?ml$/i.test(file) ? "YAML" : "JSON"}: ${String(err.message).split("\n")[0]}`);
  }
}

export const printJson = (value: unknown) => console.log(JSON.stringify(value, null, 2));

/** Columns padded to their widest cell; an empty list prints a line saying so. */
export function printTable(rows: Record<string, unknown>[], columns: string[], empty = "(none)"): void {
  if (rows.length === 0) {
    console.log(empty);
    return;
  }
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!))).join("  ");
  console.log(line(columns.map((c) => c.toUpperCase())));
  for (const row of cells) console.log(line(row));
}

function cell(v: unknown): string {
  if (v === undefined || v === null || v === "") return "-";
  if (Array.isArray(v)) return v.length ? v.join(",") : "-";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** `2026-12-04T21:33:01.123Z` → `2026-12-04 21:33:01` (UTC), for tables. */
export const shortTime = (iso: string | undefined | null) => (iso ? iso.slice(0, 19).replace("T", " ") : undefined);
