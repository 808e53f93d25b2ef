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
      if (v !== undefined) setOwn(out, name, v);
    } else if (typeof value === "string" && value.startsWith("$$")) {
      setOwn(out, name, value.slice(1));
    } else {
      setOwn(out, name, value);
    }
  }
  return out;
}

const isObject = (v: Json | undefined): v is JsonObject => !!v && typeof v === "object" && !Array.isArray(v);

/** Sets an own data property — also for keys like `__proto__`, which must stay plain data. */
function setOwn(obj: JsonObject, key: string, value: Json): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function copyObject(o: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(o)) setOwn(out, k, v);
  return out;
}

export function deepMerge(base: Json | undefined, patch: Json): Json {
  if (!isObject(base) || !isObject(patch)) return patch;
  const out = copyObject(base);
  for (const [k, v] of Object.entries(patch)) setOwn(out, k, deepMerge(Object.hasOwn(base, k) ? base[k] : undefined, v));
  return out;
}

type Container = JsonObject | Json[];

function writePath<T extends Container>(root: T, path: readonly string[], update: (old: Json | undefined) => Json): T {
  if (path.length === 0) {
    const v = update(root);
    return (isObject(v) ? v : root) as T;
  }
  const [head, ...rest] = path as [string, ...string[]];
  const index = Array.isArray(root) && /^\d+$/.test(head) ? Number(head) : undefined;
  const child = index !== undefined ? (root as Json[])[index] : Object.hasOwn(root, head) ? (root as JsonObject)[head] : undefined;
  const next = rest.length === 0 ? update(child) : writePath(isObject(child) || Array.isArray(child) ? child : {}, rest, update);
  if (index !== undefined) {
    // An index into an existing list writes that element (holes up to it become null).
    const copy = [...(root as Json[])];
    while (copy.length < index) copy.push(null);
    copy[index] = next;
    return copy as T;
  }
  const copy = Array.isArray(root) ? ({ ...root } as unknown as JsonObject) : copyObject(root as JsonObject);
  setOwn(copy, head, next);
  return copy as T;
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
    const value = field === "*" ? output : Object.hasOwn(output, field) ? output[field] : undefined;
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
