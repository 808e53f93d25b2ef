/**
 * The OpenAPI 3.0 document derived from the 3.1 one, for tools limited to 3.0 (served at
 * `/openapi-3.0.json` beside `/openapi.json`; written by gen-openapi.ts to
 * gen/openapi/openapi-3.0.json). What 3.1 says that 3.0 cannot:
 *
 * - 64-bit integers, `type: [string, integer]` (proto3 JSON reads either, writes strings):
 *   `type: string, format: int64` with the digits pattern — the one representation Fabric
 *   writes everywhere; a client that sends a JSON number is still accepted.
 * - `contentEncoding: base64` (bytes): `format: byte`.
 * - `info.summary`: the first paragraph of the description; `info.license.identifier`: its
 *   SPDX URL; `webhooks`, `jsonSchemaDialect`: dropped.
 * - A schema `$ref` with siblings (a description): `allOf: [{ $ref }]` beside them.
 * - `type: [T, "null"]`: `type: T, nullable: true`.
 *
 * Anything else 3.1-only fails the conversion, so a new construct is noticed here.
 */
type Json = Record<string, any>;

export function toOpenApi30(doc31: Json): Json {
  const doc = structuredClone(doc31);
  doc.openapi = "3.0.3";
  delete doc.webhooks;
  delete doc.jsonSchemaDialect;
  if (doc.info?.summary) {
    doc.info.description = `${doc.info.summary}\n\n${doc.info.description ?? ""}`.trim();
    delete doc.info.summary;
  }
  if (doc.info?.license?.identifier) {
    doc.info.license.url ??= `https://spdx.org/licenses/${doc.info.license.identifier}.html`;
    delete doc.info.license.identifier;
  }
  walk(doc, "");
  return doc;
}

function walk(node: unknown, at: string): void {
  if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${at}/${i}`));
  if (!node || typeof node !== "object") return;
  const o = node as Json;
  if (Array.isArray(o.type)) {
    const types = o.type as string[];
    const nonNull = types.filter((t) => t !== "null");
    if (nonNull.length === 2 && nonNull.includes("string") && nonNull.includes("integer") && o.format === "int64") o.type = "string";
    else if (nonNull.length === 1) o.type = nonNull[0];
    else throw new Error(`${at}: type ${JSON.stringify(types)} has no OpenAPI 3.0 form`);
    if (types.includes("null")) o.nullable = true;
  }
  // 3.0 ignores the siblings of a $ref: keep them by wrapping the reference.
  if (typeof o.$ref === "string" && Object.keys(o).length > 1 && at.includes("/schema")) {
    o.allOf = [{ $ref: o.$ref }];
    delete o.$ref;
  }
  if (o.contentEncoding === "base64") {
    delete o.contentEncoding;
    o.format = "byte";
  }
  for (const k of ["const", "prefixItems", "unevaluatedProperties", "$schema", "examples", "contentMediaType"]) {
    if (k in o && typeof o[k] !== "object") throw new Error(`${at}: ${k} has no OpenAPI 3.0 form`);
  }
  if (typeof o.exclusiveMinimum === "number" || typeof o.exclusiveMaximum === "number") throw new Error(`${at}: numeric exclusive bounds have no OpenAPI 3.0 form`);
  for (const [k, v] of Object.entries(o)) walk(v, `${at}/${k}`);
}
