/**
 * Derives the full OpenAPI document from the hand-written `openapi/fabric.yaml` and
 * the protobuf contract, so the two cannot drift:
 *
 * - every message of `fabric.v1` becomes `components.schemas.<Message>` (proto3 JSON
 *   with the proto field names, which is what both transports speak);
 * - every operation carrying `x-fabric-rpc` gets its parameters, request body and
 *   success response bodies from the RPC's request and response messages.
 *
 * 64-bit integers: responses say `type: string` (what Fabric writes), requests
 * `[string, integer]` (what it reads).
 *
 * Conventions read from proto comments: `Values: a | b | c.` makes a string an enum;
 * `Required.` marks a request field required. Fields of non-request messages are
 * always emitted (`alwaysEmitImplicit`), so they are required unless `optional`.
 *
 * Usage: tsx scripts/gen-openapi.ts  → writes gen/openapi/openapi.json and its OpenAPI 3.0
 * form gen/openapi/openapi-3.0.json (scripts/openapi-30.ts)
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createFileRegistry, fromBinary, ScalarType, type DescField, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { parse } from "yaml";
import { locationTemplate } from "../src/control-plane/rest/location.js";
import { toOpenApi30 } from "./openapi-30.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
type Json = Record<string, any>;

export function loadRegistry() {
  const bin = execFileSync(join(root, "node_modules/.bin/buf"), ["build", "-o", "-#format=binpb", "--as-file-descriptor-set"], { cwd: root, maxBuffer: 64 << 20 });
  const set = fromBinary(FileDescriptorSetSchema, bin);
  return { set, registry: createFileRegistry(set) };
}

export function deriveDocument(): Json {
  const { set, registry } = loadRegistry();
  const comments = collectComments(set);
  const doc = parse(readFileSync(join(root, "openapi/fabric.yaml"), "utf8")) as Json;
  const schemas: Json = {};
  const messages: DescMessage[] = [];
  for (const file of registry.files) {
    if (!file.proto.package.startsWith("fabric.")) continue;
    messages.push(...file.messages);
  }
  // Request and response messages that carry no comment are described by their RPC.
  for (const file of registry.files) {
    if (!file.proto.package.startsWith("fabric.")) continue;
    for (const service of file.services) {
      for (const method of service.methods) {
        const rpc = `${service.typeName}/${method.name}`;
        if (!comments.has(method.input.typeName)) comments.set(method.input.typeName, `The request of \`${rpc}\`.`);
        if (!comments.has(method.output.typeName)) comments.set(method.output.typeName, `The answer of \`${rpc}\`.`);
      }
    }
  }
  for (const m of messages) {
    schemas[m.name] = messageSchema(m, comments, isRequestMessage(m) ? "input" : "output");
    // Messages a client also writes (inside requests) get an input variant: optional
    // fields stay optional there, while responses always carry every field.
    if (!isRequestMessage(m) && !m.name.endsWith("Response")) schemas[inputName(m)] = messageSchema(m, comments, "input");
  }
  doc.components.schemas = { ...schemas, ...doc.components.schemas };

  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    for (const [method, op] of Object.entries<Json>(item)) {
      const rpc: string | undefined = op["x-fabric-rpc"];
      if (!rpc) continue;
      const [serviceName, methodName] = rpc.split("/");
      const service = registry.getService(serviceName!) as DescService | undefined;
      const m = service?.methods.find((x) => x.name === methodName);
      if (!m) throw new Error(`${method.toUpperCase()} ${path}: x-fabric-rpc ${rpc} names no proto method`);
      // The RPC's comment in the proto describes the operation, unless fabric.yaml says more.
      op.description ??= comments.get(`${serviceName}/${methodName}`);
      deriveOperation(path, method, op, m.input, m.output, comments);
    }
  }
  documentHeaders(doc, registry);
  addExamples(doc);
  pruneUnreachable(doc);
  return doc;
}

/**
 * `openapi/examples.yaml` (by operationId: `request` body, path `params`, the first success
 * `response`) into the document as media-type and parameter `example`s. An example of an
 * operation that does not exist fails, so the file cannot drift silently; that they fit
 * their schemas is tested (tests/rest/openapi-completeness.test.ts).
 */
function addExamples(doc: Json) {
  const examples = (parse(readFileSync(join(root, "openapi/examples.yaml"), "utf8")) ?? {}) as Json;
  const byId = new Map<string, Json>();
  for (const item of Object.values<Json>(doc.paths)) for (const op of Object.values<Json>(item)) byId.set(op.operationId, op);
  for (const [id, ex] of Object.entries<Json>(examples)) {
    const op = byId.get(id);
    if (!op) throw new Error(`openapi/examples.yaml: no operation ${id}`);
    if (ex.request !== undefined) {
      const media = op.requestBody?.content?.["application/json"];
      if (!media) throw new Error(`openapi/examples.yaml: ${id} takes no request body`);
      media.example = ex.request;
    }
    for (const [name, value] of Object.entries<unknown>(ex.params ?? {})) {
      const param = (op.parameters ?? []).find((p: Json) => p.name === name && p.in === "path");
      if (!param) throw new Error(`openapi/examples.yaml: ${id} has no path parameter ${name}`);
      param.example = value;
    }
    if (ex.response !== undefined) {
      const ok = Object.entries<Json>(op.responses).find(([status]) => /^2\d\d$/.test(status));
      const media = ok && Object.values<Json>(ok[1].content ?? {})[0];
      if (!media) throw new Error(`openapi/examples.yaml: ${id} has no success response body`);
      media.example = ex.response;
    }
  }
}

/**
 * The headers the REST edge adds (src/control-plane/rest/app.ts): `X-Request-Id` on every
 * answer, `Location` on creations that have a GET of what they made (rest/location.ts), and
 * the `Idempotency-Key` request header where the request has an `idempotency_key`.
 */
function documentHeaders(doc: Json, registry: ReturnType<typeof loadRegistry>["registry"]) {
  const ops = Object.entries<Json>(doc.paths).flatMap(([path, item]) => Object.entries<Json>(item).map(([method, op]) => ({ method, path, op, data: op["x-fabric-data"] as string | undefined })));
  for (const { method, path, op, data } of ops) {
    const location = locationTemplate({ method, path, data }, ops);
    for (const [status, resp] of Object.entries<Json>(op.responses ?? {})) {
      if (resp.$ref) continue;
      resp.headers = { "X-Request-Id": { $ref: "#/components/headers/XRequestId" }, ...resp.headers };
      if (location && (status === "201" || status === "202")) resp.headers.Location = { $ref: "#/components/headers/Location" };
    }
    const rpc: string | undefined = op["x-fabric-rpc"];
    if (!rpc) continue;
    const [serviceName, methodName] = rpc.split("/");
    const m = (registry.getService(serviceName!) as DescService).methods.find((x) => x.name === methodName)!;
    if (method === "post" && m.input.fields.some((f) => f.name === "idempotency_key")) op.parameters = [...(op.parameters ?? []), { $ref: "#/components/parameters/IdempotencyKey" }];
    // Entity tags (domain/etags.ts): If-Match where the request takes an `etag`, ETag where the answer's data has one.
    if (m.input.fields.some((f) => f.name === "etag")) op.parameters = [...(op.parameters ?? []), { $ref: "#/components/parameters/IfMatch" }];
    const dataField = data && data !== "*" ? m.output.fields.find((f) => f.name === data) : undefined;
    const dataMessage = data === "*" ? m.output : dataField?.fieldKind === "message" ? dataField.message : undefined;
    if (method !== "delete" && dataMessage?.fields.some((f) => f.name === "etag")) {
      for (const [status, resp] of Object.entries<Json>(op.responses ?? {})) if (/^2\d\d$/.test(status) && !resp.$ref) resp.headers.ETag = { $ref: "#/components/headers/ETag" };
    }
  }
}

/** Keeps only the component schemas the paths reach, so the document has no dead weight. */
function pruneUnreachable(doc: Json) {
  const seen = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== "object") return;
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string" && v.startsWith("#/components/schemas/")) {
        const name = v.slice("#/components/schemas/".length);
        if (!seen.has(name)) {
          seen.add(name);
          visit(doc.components.schemas[name]);
        }
      } else visit(v);
    }
  };
  visit(doc.paths);
  visit(doc.components.responses);
  for (const name of Object.keys(doc.components.schemas)) if (!seen.has(name)) delete doc.components.schemas[name];
}

function deriveOperation(path: string, method: string, op: Json, input: DescMessage, output: DescMessage, comments: Map<string, string>) {
  const pathParams = [...path.matchAll(/\{(\w+)\}/g)].map((x) => x[1]!);
  const body: string | undefined = op["x-fabric-body"];
  const params: Json[] = op.parameters ?? [];
  for (const name of pathParams) {
    const f = fieldOf(input, name);
    params.push({ name, in: "path", required: true, description: comments.get(f.parent.typeName + "." + f.name)?.replace(/\s*Required[.:]\s*/, "") || undefined, schema: fieldSchema(f, comments, "input") });
  }
  if (!body) {
    // Everything else is a query parameter.
    for (const f of input.fields) {
      if (pathParams.includes(f.name)) continue;
      // Scalars, and timestamps (RFC 3339 strings, which proto3 JSON parses as they are).
      const timestamp = f.fieldKind === "message" && f.message.typeName === "google.protobuf.Timestamp";
      if (f.fieldKind !== "scalar" && !timestamp) throw new Error(`${rpc(op)}: field ${f.name} cannot be a query parameter`);
      params.push({ name: f.name, in: "query", required: false, description: comments.get(input.typeName + "." + f.name) || undefined, schema: fieldSchema(f, comments, "input") });
    }
  } else {
    let schema: Json;
    if (body === "*") {
      const s = messageSchema(input, comments, "input");
      for (const p of pathParams) {
        delete s.properties[p];
        s.required = (s.required ?? []).filter((r: string) => r !== p);
      }
      if (!s.required?.length) delete s.required;
      schema = s;
    } else {
      schema = fieldSchema(fieldOf(input, body), comments, "input");
    }
    // Required when a field of it is, or when the operation says so (`x-fabric-body-required`:
    // a requirement the use case checks, such as "one of workflow_id and workflow_name").
    op.requestBody = { required: body !== "*" || !!schema.required || op["x-fabric-body-required"] === true, content: { "application/json": { schema } } };
  }
  if (params.length) op.parameters = params;
  if (op["x-fabric-stream"]) return;

  const dataField: string = op["x-fabric-data"];
  let envelope: Json;
  if (dataField === "*") {
    envelope = { type: "object", required: ["data"], properties: { data: { $ref: `#/components/schemas/${output.name}` } } };
  } else {
    const f = fieldOf(output, dataField);
    envelope = { type: "object", required: ["data"], properties: { data: fieldSchema(f, comments) } };
    if (output.fields.some((x) => x.name === "next_page_token")) {
      envelope.properties.next_page_token = { type: "string", description: "Pass as `page_token` for the next page; empty on the last page." };
      envelope.required.push("next_page_token");
    }
  }
  for (const [status, resp] of Object.entries<Json>(op.responses)) {
    if (!/^2\d\d$/.test(status) || resp.content) continue;
    resp.content = { "application/json": { schema: envelope } };
  }
}

const rpc = (op: Json) => op["x-fabric-rpc"];

function fieldOf(m: DescMessage, name: string): DescField {
  const f = m.fields.find((x) => x.name === name);
  if (!f) throw new Error(`${m.typeName} has no field ${name}`);
  return f;
}

type Mode = "input" | "output";
const isRequestMessage = (m: DescMessage) => m.name.endsWith("Request");
const inputName = (m: DescMessage) => (isRequestMessage(m) ? m.name : `${m.name}Input`);

function messageSchema(m: DescMessage, comments: Map<string, string>, mode: Mode): Json {
  const isRequest = mode === "input";
  const properties: Json = {};
  const required: string[] = [];
  for (const f of m.fields) {
    const doc = comments.get(m.typeName + "." + f.name);
    const s = fieldSchema(f, comments, mode);
    if (doc) s.description = doc;
    properties[f.name] = s;
    const optional = f.proto.proto3Optional;
    if (isRequest ? /\bRequired[.:]/.test(doc ?? "") : !optional && f.fieldKind !== "message") required.push(f.name);
    // Message fields of responses are emitted only when set.
    if (!isRequest && f.fieldKind === "message" && !optional && !isWkt(f.message!) && m.name.endsWith("Response")) required.push(f.name);
  }
  const s: Json = { type: "object", additionalProperties: false, properties };
  const doc = comments.get(m.typeName);
  if (doc) s.description = doc;
  if (required.length) s.required = required;
  return s;
}

const isWkt = (m: DescMessage) => m.typeName.startsWith("google.protobuf.");

function fieldSchema(f: DescField, comments: Map<string, string>, mode: Mode = "output"): Json {
  switch (f.fieldKind) {
    case "list":
      return { type: "array", items: f.listKind === "scalar" ? scalarSchema(f.scalar!, comments.get(f.parent.typeName + "." + f.name), mode) : f.listKind === "message" ? messageRef(f.message!, mode) : { type: "string" } };
    case "map":
      return { type: "object", additionalProperties: f.mapKind === "scalar" ? scalarSchema(f.scalar!, undefined, mode) : f.mapKind === "message" ? messageRef(f.message!, mode) : { type: "string" } };
    case "message":
      return messageRef(f.message!, mode);
    case "enum":
      return { type: "string", enum: f.enum!.values.map((v) => v.name) };
    case "scalar":
      return scalarSchema(f.scalar!, comments.get(f.parent.typeName + "." + f.name), mode);
  }
}

function messageRef(m: DescMessage, mode: Mode = "output"): Json {
  switch (m.typeName) {
    case "google.protobuf.Struct":
      return { type: "object", additionalProperties: true };
    case "google.protobuf.Value":
      return { description: "Any JSON value." };
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time" };
  }
  if (isWkt(m)) throw new Error(`no JSON schema mapping for ${m.typeName}`);
  return { $ref: `#/components/schemas/${mode === "input" ? inputName(m) : m.name}` };
}

function scalarSchema(t: ScalarType, doc?: string, mode: Mode = "output"): Json {
  switch (t) {
    case ScalarType.STRING: {
      // Values may contain dots (`ai.generate`): the list ends at a dot followed by a space or the end.
      const values = /Values: (.+?)\.(?=\s|$)/.exec(doc ?? "")?.[1];
      return values ? { type: "string", enum: values.split("|").map((v) => v.trim()) } : { type: "string" };
    }
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32: {
      const range = /Range: (-?\d+)\.\.(-?\d+)\./.exec(doc ?? "");
      return { type: "integer", format: "int32", minimum: range ? Number(range[1]) : -2147483648, maximum: range ? Number(range[2]) : 2147483647 };
    }
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "int32", minimum: 0, maximum: 4294967295 };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { type: "number" };
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      // proto3 JSON writes 64-bit integers as strings and reads either: what Fabric
      // answers is a string (one representation, so generated clients type it `string`),
      // what it accepts is either.
      return mode === "output" ? { type: "string", pattern: "^-?[0-9]+$", format: "int64" } : { type: ["string", "integer"], pattern: "^-?[0-9]+$", format: "int64" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
  }
}

/** Leading comments by "pkg.Message" and "pkg.Message.field" (top-level messages only). */
export function collectComments(set: { file: any[] }): Map<string, string> {
  const out = new Map<string, string>();
  for (const file of set.file) {
    const byPath = new Map<string, string>();
    for (const loc of file.sourceCodeInfo?.location ?? []) {
      if (loc.leadingComments) byPath.set(loc.path.join("."), loc.leadingComments.trim().replace(/\s*\n\s*/g, " "));
    }
    // Services (path 6.<i>) and their methods (6.<i>.2.<j>): "pkg.Service" and "pkg.Service/Method".
    (file.service ?? []).forEach((svc: any, i: number) => {
      const c = byPath.get(`6.${i}`);
      if (c) out.set(`${file.package}.${svc.name}`, c);
      svc.method.forEach((m: any, j: number) => {
        const mc = byPath.get(`6.${i}.2.${j}`);
        if (mc) out.set(`${file.package}.${svc.name}/${m.name}`, mc);
      });
    });
    file.messageType.forEach((m: any, i: number) => {
      const name = `${file.package}.${m.name}`;
      const c = byPath.get(`4.${i}`);
      if (c) out.set(name, c);
      m.field.forEach((f: any, j: number) => {
        const fc = byPath.get(`4.${i}.2.${j}`);
        if (fc) out.set(`${name}.${f.name}`, fc);
      });
    });
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = join(root, "gen/openapi/openapi.json");
  mkdirSync(dirname(out), { recursive: true });
  const doc = deriveDocument();
  writeFileSync(out, JSON.stringify(doc, null, 2) + "\n");
  console.log(`wrote ${out}`);
  const out30 = join(root, "gen/openapi/openapi-3.0.json");
  writeFileSync(out30, JSON.stringify(toOpenApi30(doc), null, 2) + "\n");
  console.log(`wrote ${out30}`);
}
