/**
 * Adds a scaffold to `openapi/examples.yaml` for every operation that has no example yet:
 * a request body (when the operation takes one), path parameters, and the first success
 * response, built from the generated document's schemas with plausible values chosen by
 * field name. Edit what it writes — the file is source, read by gen-openapi.ts, and
 * `tests/rest/openapi-completeness.test.ts` validates every example against its schema, so a
 * contract change that an example no longer fits fails there.
 *
 * Usage: tsx scripts/scaffold-openapi-examples.ts   (after npm run codegen)
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";

type Json = Record<string, any>;
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const doc = JSON.parse(readFileSync(join(root, "gen/openapi/openapi.json"), "utf8")) as Json;
const file = join(root, "openapi/examples.yaml");
const examples: Json = existsSync(file) ? ((parse(readFileSync(file, "utf8")) as Json | null) ?? {}) : {};

const uuid = (seed: string) => {
  const h = createHash("sha256").update(seed).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

function resolve(s: Json): Json {
  if (s.$ref) return resolve(s.$ref.split("/").slice(1).reduce((n: Json, k: string) => n[k.replaceAll("~1", "/").replaceAll("~0", "~")], doc));
  if (s.allOf?.length === 1) return { ...resolve(s.allOf[0]), ...s, allOf: undefined };
  return s;
}

function value(schemaIn: Json, name: string, depth: number, output: boolean): unknown {
  const s = resolve(schemaIn);
  if (s.oneOf || s.anyOf) return value((s.oneOf ?? s.anyOf)[0], name, depth, output);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  if (s.enum) return s.enum[0];
  if (type === "object" || s.properties) {
    if (!s.properties) return name === "input" || name === "context" ? { topic: "release notes" } : name === "metadata" ? { source: "ci" } : {};
    const out: Json = {};
    for (const [k, v] of Object.entries<Json>(s.properties)) {
      const required = (s.required ?? []).includes(k);
      if (!required && depth > 1) continue;
      out[k] = value(v, k, depth + 1, output);
    }
    return out;
  }
  if (type === "array") return depth > 3 ? [] : [value(s.items ?? {}, name.replace(/s$/, ""), depth + 1, output)];
  if (type === "boolean") return true;
  if (type === "integer") return Math.max(s.minimum ?? 1, Math.min(s.maximum ?? 3, 3));
  if (type === "number") return 0.25;
  if (type === "string") {
    if (s.format === "date-time") return "2026-12-05T09:30:00Z";
    if (s.format === "int64") return "42";
    if (s.contentEncoding === "base64") return "AAEC";
    if (name === "id" || name.endsWith("_id")) return uuid(name);
    if (name.includes("email")) return "ada@example.com";
    if (name === "url") return "https://hooks.example.com/fabric";
    if (name.endsWith("_usd")) return "0.0125";
    if (name === "etag") return "";
    if (name.includes("token")) return "tok_3q2Vb8cE";
    return name ? `example ${name.replaceAll("_", " ")}` : "example";
  }
  return null;
}

let added = 0;
for (const [path, item] of Object.entries<Json>(doc.paths)) {
  for (const [, op] of Object.entries<Json>(item)) {
    if (examples[op.operationId]) continue;
    const ex: Json = {};
    const pathParams = (op.parameters ?? []).filter((p: Json) => p.in === "path");
    if (pathParams.length) ex.params = Object.fromEntries(pathParams.map((p: Json) => [p.name, value(p.schema, p.name, 0, false)]));
    const body = op.requestBody?.content?.["application/json"]?.schema;
    if (body) ex.request = value(body, "", 0, false);
    const ok = Object.entries<Json>(op.responses).find(([status]) => /^2/.test(status));
    const media = ok && Object.entries<Json>(ok[1].content ?? {})[0];
    if (media) ex.response = media[0] === "application/json" ? value(media[1].schema, "", 0, true) : "";
    examples[op.operationId] = ex;
    added++;
    void path;
  }
}
writeFileSync(file, "# Examples of every operation, by operationId (see scripts/scaffold-openapi-examples.ts): request\n# body, path parameters and the first success response. gen-openapi.ts puts them in the document.\n" + stringify(examples, { lineWidth: 0, aliasDuplicateObjects: false }));
console.log(`added ${added} operation scaffold(s) to ${file}`);
