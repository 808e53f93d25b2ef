/**
 * Context bindings and merge policies. A binding is `$context` or `$context.a.b.0`:
 * inputs read from the shared run context, outputs write back into it. Pure functions;
 * values are plain JSON and never mutated in place.
 */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export const mergePolicies = ["replace", "deep_merge", "append"] as const;
export type MergePolicy = (typeof mergePolicies)[number];

const segment = /^[A-Za-z0-9_-]+$/;

/** Parses `$context.a.b` into `["a","b"]` (`$context` alone → `[]`); null when malformed. */
export function parseBinding(binding: string): string[] | null {
  if (binding === "$context") return [];
  if (!binding.startsWith("$context.")) return null;
  const parts = binding.slice("$context.".length).split(".");
  return parts.every((p) => segment.test(p)) ? parts : null;
}

/** A string input starting with `$` is a binding; `$$…` escapes a literal `$…`. */
export function isBindingLike(value: unknown): boolean {
  return typeof value === "string" && value.startsWith("$") && !value.startsWith("$$");
}

export function readPath(root: Json | undefined, path: readonly string[]): Json | undefined {
  let cur: Json | undefined = root;
  for (const p of path) {
    if (Array.isArray(cur) && /^\d+$/.test(p)) cur = cur[Number(p)];
    else if (cur && typeof cur === "object" && !Array.isArray(cur) && Object.hasOwn(cur, p)) cur = cur[p];
    else return undefined;
  }
  return cur;
}

/** Resolves a node's inputs against the context. Unresolvable bindings are left out. */
export function resolveInputs(inputs: JsonObject | undefined, context: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [name, value] of Object.entries(inputs ?? {})) {
    if (isBindingLike(value)) {
      const path = parseBinding(value as string);
      const v = path ? readPath(context, path) : undefined;
      if (v !== undefined) out[name] = v;
    } else if (typeof value === "string" && value.startsWith("$$")) {
      out[name] = value.slice(1);
    } else {
      out[name] = value;
    }
  }
  return out;
}

const isObject = (v: Json | undefined): v is JsonObject => !!v && typeof v === "object" && !Array.isArray(v);

export function deepMerge(base: Json | undefined, patch: Json): Json {
  if (!isObject(base) || !isObject(patch)) return patch;
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(patch)) out[k] = deepMerge(base[k], v);
  return out;
}

function writePath(root: JsonObject, path: readonly string[], update: (old: Json | undefined) => Json): JsonObject {
  if (path.length === 0) {
    const v = update(root);
    return isObject(v) ? v : root;
  }
  const [head, ...rest] = path as [string, ...string[]];
  const child = root[head];
  const next = rest.length === 0 ? update(child) : writePath(isObject(child) ? child : {}, rest, update);
  return { ...root, [head]: next };
}

/**
 * Writes a node's output into the context. `outputs` maps an output field (or `*`, the
 * whole output) to a binding target.
 */
export function applyOutputs(context: JsonObject, output: JsonObject, outputs: Record<string, string>, policy: MergePolicy = "replace"): JsonObject {
  let ctx = context;
  for (const [field, target] of Object.entries(outputs)) {
    const path = parseBinding(target);
    if (!path) continue; // validation rejects these before anything runs
    const value = field === "*" ? output : output[field];
    if (value === undefined) continue;
    ctx = writePath(ctx, path, (old) => {
      switch (policy) {
        case "replace":
          return value;
        case "deep_merge":
          return deepMerge(old, value);
        case "append":
          return [...(Array.isArray(old) ? old : old === undefined ? [] : [old]), ...(Array.isArray(value) ? value : [value])];
      }
    });
  }
  return ctx;
}
