/**
 * Detects breaking changes of the REST contract between a committed baseline OpenAPI 3.1
 * document and the current one. No npm diff tool handles 3.1 offline, so two checks:
 *
 * 1. A type-level check: openapi-typescript generates types from both documents and the
 *    TypeScript compiler (node_modules/typescript, noEmit) asserts, for every baseline
 *    operation, that old parameters and request bodies are assignable to the new ones and
 *    that new responses are assignable to the old ones (old clients still understand them).
 * 2. A JSON walk for what the types erase or cannot see: removed operations, parameters,
 *    media types and status codes; newly required request fields/parameters/bodies;
 *    request enums narrowed and bounds tightened (minimum, maxLength, pattern, …); request
 *    fields removed where `additionalProperties: false` now rejects them; integer vs number;
 *    required response fields removed or made optional; response enum values removed.
 *
 * Usage: tsx scripts/check-openapi-breaking.ts <baseline.json> <current.json>
 * Exit 0 "no breaking changes", exit 1 with the list, exit 2 on bad usage.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";

type Json = Record<string, any>;
type Dir = "request" | "response";
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

export async function findBreakingChanges(oldDoc: Json, newDoc: Json): Promise<string[]> {
  return [...jsonWalk(oldDoc, newDoc), ...(await typeCheck(oldDoc, newDoc))];
}

// ---------- 1. JSON walk ----------

function deref(doc: Json, node: any): any {
  for (let i = 0; node && typeof node === "object" && typeof node.$ref === "string" && i < 32; i++) {
    if (!node.$ref.startsWith("#/")) throw new Error(`only local $refs are supported: ${node.$ref}`);
    node = node.$ref.slice(2).split("/").reduce((n: any, k: string) => n?.[k.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
  }
  return node;
}

/** Operations of a document as "METHOD /path" → operation with path-level parameters merged in. */
function operations(doc: Json): Map<string, Json> {
  const out = new Map<string, Json>();
  for (const [path, rawItem] of Object.entries<Json>(doc.paths ?? {})) {
    const item = deref(doc, rawItem);
    for (const m of METHODS) {
      if (!item[m]) continue;
      const params = new Map<string, Json>();
      for (const p of [...(item.parameters ?? []), ...(item[m].parameters ?? [])].map((x) => deref(doc, x))) params.set(`${p.in} ${p.name}`, p);
      out.set(`${m.toUpperCase()} ${path}`, { ...item[m], parameters: params });
    }
  }
  return out;
}

function jsonWalk(oldDoc: Json, newDoc: Json): string[] {
  const out: string[] = [];
  const seen = new Set<string>(); // a schema shared by several operations is reported once
  const newOps = operations(newDoc);
  for (const [key, o] of operations(oldDoc)) {
    const n = newOps.get(key);
    if (!n) { out.push(`${key}: operation removed`); continue; }
    const cmp = (os: any, ns: any, dir: Dir, where: string) => compareSchema(oldDoc, newDoc, os, ns, dir, `${key} ${where}`, out, seen);
    for (const [id, op] of o.parameters as Map<string, Json>) {
      const np = n.parameters.get(id);
      if (!np) { out.push(`${key}: ${id} parameter removed`); continue; }
      if (np.required && !op.required) out.push(`${key}: ${id} parameter is now required`);
      cmp(op.schema, np.schema, "request", `${id} parameter`);
    }
    for (const [id, np] of n.parameters as Map<string, Json>) if (np.required && !o.parameters.has(id)) out.push(`${key}: new required ${id} parameter`);
    const ob = deref(oldDoc, o.requestBody), nb = deref(newDoc, n.requestBody);
    if (nb?.required && !ob?.required) out.push(`${key}: request body is now required`);
    for (const [mt, media] of Object.entries<Json>(ob?.content ?? {})) {
      if (!nb?.content?.[mt]) out.push(`${key}: request body ${mt} no longer accepted`);
      else cmp(media.schema, nb.content[mt].schema, "request", `request body ${mt}`);
    }
    for (const [status, rawResp] of Object.entries<Json>(o.responses ?? {})) {
      const or = deref(oldDoc, rawResp), nr = deref(newDoc, n.responses?.[status]);
      if (!nr) { out.push(`${key}: response ${status} removed`); continue; }
      for (const [mt, media] of Object.entries<Json>(or.content ?? {})) {
        if (!nr.content?.[mt]) out.push(`${key}: response ${status} ${mt} removed`);
        else cmp(media.schema, nr.content[mt].schema, "response", `response ${status}`);
      }
    }
  }
  return out;
}

const LOWER = ["minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"];
const UPPER = ["maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"];
const typesOf = (s: Json): string[] | undefined => (s.type === undefined ? undefined : [s.type].flat());
/** Every type in `from` is accepted by `to` (an integer is a number). */
const typesFit = (from: string[] | undefined, to: string[] | undefined) => !to || (!!from && from.every((t) => to.includes(t) || (t === "integer" && to.includes("number"))));

function compareSchema(oldDoc: Json, newDoc: Json, os: any, ns: any, dir: Dir, where: string, out: string[], seen: Set<string>) {
  const visit = `${dir} ${os?.$ref} ${ns?.$ref}`;
  if (os?.$ref || ns?.$ref) { if (seen.has(visit)) return; seen.add(visit); }
  const o = deref(oldDoc, os), n = deref(newDoc, ns);
  if (!o || !n || typeof o !== "object" || typeof n !== "object") return;
  const say = (msg: string) => out.push(`${where}: ${msg}`);
  const oEnum: unknown[] | undefined = o.enum ?? ("const" in o ? [o.const] : undefined);
  const nEnum: unknown[] | undefined = n.enum ?? ("const" in n ? [n.const] : undefined);
  const oReq: string[] = o.required ?? [], nReq: string[] = n.required ?? [];
  if (dir === "request") {
    if (!typesFit(typesOf(o), typesOf(n))) say(`type narrowed from ${JSON.stringify(o.type ?? "any")} to ${JSON.stringify(n.type)}`);
    if (nEnum && !oEnum) say(`enum restriction added (${nEnum.join(", ")})`);
    const gone = nEnum && oEnum ? oEnum.filter((v) => !nEnum.includes(v)) : [];
    if (gone.length) say(`enum value(s) no longer accepted: ${gone.join(", ")}`);
    for (const k of LOWER) if (n[k] !== undefined && (o[k] === undefined || n[k] > o[k])) say(`${k} raised from ${o[k] ?? "none"} to ${n[k]}`);
    for (const k of UPPER) if (n[k] !== undefined && (o[k] === undefined || n[k] < o[k])) say(`${k} lowered from ${o[k] ?? "none"} to ${n[k]}`);
    if (n.pattern !== undefined && n.pattern !== o.pattern) say(`pattern changed from ${o.pattern ?? "none"} to ${n.pattern}`);
    if (n.multipleOf !== undefined && n.multipleOf !== o.multipleOf) say(`multipleOf changed to ${n.multipleOf}`);
    for (const f of nReq) if (!oReq.includes(f)) say(`field ${f} is now required`);
    if (n.additionalProperties === false && o.additionalProperties !== false) say("additionalProperties: false added (unknown fields now rejected)");
    if (n.additionalProperties === false) for (const f of Object.keys(o.properties ?? {})) if (!n.properties?.[f]) say(`field ${f} removed (now rejected as unknown)`);
  } else {
    if (!typesFit(typesOf(n), typesOf(o))) say(`type widened from ${JSON.stringify(o.type)} to ${JSON.stringify(n.type ?? "any")}`);
    const gone = nEnum && oEnum ? oEnum.filter((v) => !nEnum.includes(v)) : [];
    if (gone.length) say(`enum value(s) no longer returned: ${gone.join(", ")}`);
    for (const f of oReq) if (!nReq.includes(f)) say(n.properties?.[f] ? `field ${f} is no longer required` : `required field ${f} removed`);
  }
  const sub = (a: any, b: any, w: string) => compareSchema(oldDoc, newDoc, a, b, dir, where + w, out, seen);
  for (const [f, s] of Object.entries<any>(o.properties ?? {})) if (n.properties?.[f]) sub(s, n.properties[f], `.${f}`);
  if (o.items && n.items) sub(o.items, n.items, "[]");
  if (typeof o.additionalProperties === "object" && typeof n.additionalProperties === "object") sub(o.additionalProperties, n.additionalProperties, "{}");
  for (const k of ["allOf", "anyOf", "oneOf"]) (o[k] ?? []).forEach((s: any, i: number) => n[k]?.[i] && sub(s, n[k][i], `(${k}[${i}])`));
}

// ---------- 2. Type-level check ----------

async function typeCheck(oldDoc: Json, newDoc: Json): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), "openapi-breaking-"));
  try {
    writeFileSync(join(dir, "old.ts"), astToString(await openapiTS(structuredClone(oldDoc) as any)));
    writeFileSync(join(dir, "new.ts"), astToString(await openapiTS(structuredClone(newDoc) as any)));
    const lines = [
      `import type { paths as O } from "./old";`,
      `import type { paths as N } from "./new";`,
      `type Params<Op> = Op extends { parameters: infer P } ? P : never;`,
      `type Body<Op, M> = Op extends { requestBody?: infer B } ? (NonNullable<B> extends { content: infer C } ? (M extends keyof C ? C[M] : never) : never) : never;`,
      `type Res<Op, S, M> = Op extends { responses: infer R } ? (S extends keyof R ? (R[S] extends { content: infer C } ? (M extends keyof C ? C[M] : never) : never) : never) : never;`,
    ];
    const labels: string[] = [];
    const check = (label: string, from: string, to: string) => {
      const i = lines.length;
      labels[i] = label;
      lines.push(`declare const a${i}: ${from}; const b${i}: ${to} = a${i};`);
    };
    const newOps = operations(newDoc);
    for (const [key, o] of operations(oldDoc)) {
      const n = newOps.get(key);
      if (!n) continue; // reported by the JSON walk
      const [method, path] = [key.split(" ")[0]!.toLowerCase(), key.slice(key.indexOf(" ") + 1)];
      const op = (side: string) => `${side}[${JSON.stringify(path)}][${JSON.stringify(method)}]`;
      check(`${key}: old parameters no longer fit`, `Params<${op("O")}>`, `Params<${op("N")}>`);
      const nb = deref(newDoc, n.requestBody);
      for (const mt of Object.keys(deref(oldDoc, o.requestBody)?.content ?? {}))
        if (nb?.content?.[mt]) check(`${key}: old request body ${mt} no longer fits`, `Body<${op("O")}, ${JSON.stringify(mt)}>`, `Body<${op("N")}, ${JSON.stringify(mt)}>`);
      for (const [status, resp] of Object.entries<Json>(o.responses ?? {})) {
        const s = /^\d+$/.test(status) ? status : JSON.stringify(status);
        for (const mt of Object.keys(deref(oldDoc, resp)?.content ?? {}))
          check(`${key}: new response ${status} ${mt} no longer fits old clients`, `Res<${op("N")}, ${s}, ${JSON.stringify(mt)}>`, `Res<${op("O")}, ${s}, ${JSON.stringify(mt)}>`);
      }
    }
    const file = join(dir, "check.ts");
    writeFileSync(file, lines.join("\n") + "\n");
    const program = ts.createProgram([file], {
      noEmit: true, strict: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, lib: ["lib.es2022.d.ts"], types: [],
    });
    return ts.getPreEmitDiagnostics(program).map((d) => {
      const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
      // The chain's last short lines name the offending property; long ones just print whole types.
      const chain = ts.flattenDiagnosticMessageText(d.messageText, "\n").split("\n").map((l) => l.trim());
      const short = chain.filter((l) => l.length <= 200);
      const why = short.length ? short.slice(-3) : [chain.at(-1)!.slice(0, 200) + "…"];
      const where = d.file?.fileName === file && labels[line] ? labels[line] : `type check (${d.file?.fileName ?? "?"}:${line + 1})`;
      return `${where}\n      ${why.join("\n      ")}`;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------- CLI ----------

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [baseline, current] = process.argv.slice(2);
  if (!baseline || !current) {
    console.error("usage: tsx scripts/check-openapi-breaking.ts <baseline.json> <current.json>");
    process.exit(2);
  }
  const read = (f: string) => JSON.parse(readFileSync(f, "utf8")) as Json;
  const problems = await findBreakingChanges(read(baseline), read(current));
  if (!problems.length) {
    console.log(`no breaking changes (${current} against ${baseline})`);
  } else {
    console.error(`${problems.length} breaking change(s) in ${current} against ${baseline}:`);
    for (const p of problems) console.error(`  - ${p}`);
    process.exit(1);
  }
}
