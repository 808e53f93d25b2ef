/**
 * `Location` of what a REST creation made (201 Created, 202 Accepted): the path of the GET
 * operation that reads the same resource — one whose `x-fabric-data` is the same response
 * field, whose path ends in `/{id}`, and whose other path parameters the creation's path
 * has too (POST /v1/workflow-runs and POST /v1/workflow-runs/{id}/rerun → GET
 * /v1/workflow-runs/{id}). Derived from the document, so gen-openapi.ts documents the
 * header exactly where the server sends it.
 */
export interface OperationShape {
  method: string;
  path: string;
  /** `x-fabric-data`: which response field is the resource. */
  data?: string;
}

/** The GET path template a creation's `Location` points at, if any. */
export function locationTemplate(create: OperationShape, all: readonly OperationShape[]): string | undefined {
  if (!create.data || create.data === "*") return undefined;
  const params = new Set([...create.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!));
  return all.find((op) => op.method.toUpperCase() === "GET" && op.data === create.data && op.path.endsWith("/{id}") && [...op.path.slice(0, -"/{id}".length).matchAll(/\{(\w+)\}/g)].every((m) => params.has(m[1]!)))?.path;
}

/** Fills a template from the creation's path parameters and the created resource's id. */
export function locationOf(template: string, params: Record<string, string>, id: string): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(name === "id" ? id : (params[name] ?? "")));
}
