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

/** True when one path is a prefix of the other: a write at one can change what is read at the other. */
export function pathsOverlap(a: readonly string[], b: readonly string[]): boolean {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The context paths a node's outputs write (its `outputs` targets). */
export function outputTargets(outputs: Record<string, string>): string[][] {
  return Object.values(outputs)
    .map(parseBinding)
    .filter((p): p is string[] => p !== null);
}

/** The context paths a node's input bindings read. */
export function inputPaths(inputs: JsonObject | undefined): string[][] {
  const paths: string[][] = [];
  for (const value of Object.values(inputs ?? {})) {
    if (!isBindingLike(value)) continue;
    const path = parseBinding(value as string);
    if (path) paths.push(path);
  }
  return paths;
}

/** A bound output, in the order it was bound: the node's output and how the node binds it. */
export interface BoundOutput {
  output: JsonObject;
  outputs: Record<string, string>;
  merge: MergePolicy;
}

/**
 * The context after `bound` (in binding order) on top of `base`: what the completions
 * bound one after the other, computed at once.
 */
export function foldOutputs(base: JsonObject, bound: readonly BoundOutput[]): JsonObject {
  let ctx = base;
  for (const b of bound) ctx = applyOutputs(ctx, b.output, b.outputs, b.merge);
  return ctx;
}

/**
 * A context holding, of `full`, only what is at `paths` (each written at its own place):
 * reading any of `paths` from it gives what reading it from `full` gives.
 */
export function pickPaths(values: readonly (Json | undefined)[], paths: readonly (readonly string[])[]): JsonObject {
  let ctx: JsonObject = {};
  paths.forEach((path, i) => {
    const v = values[i];
    if (v === undefined) return;
    if (path.length === 0) {
      if (isObject(v)) ctx = copyObject(v);
      return;
    }
    ctx = writePath(ctx, path, () => v);
  });
  return ctx;
}

/** Bytes a node's outputs add to its run's context bound (size-limits.ts): each bound value's JSON and its target. */
export function boundBytes(output: JsonObject, outputs: Record<string, string>): number {
  let bytes = 0;
  for (const [field, target] of Object.entries(outputs)) {
    const value = field === "*" ? output : Object.hasOwn(output, field) ? output[field] : undefined;
    if (value === undefined) continue;
    bytes += Buffer.byteLength(JSON.stringify(value), "utf8") + Buffer.byteLength(target, "utf8");
  }
  return bytes;
}

/**
 * What to read to know the values at `reads` without reading the whole context: the base
 * context at `basePaths` (each read path, or the shortest writer target above it — so that
 * a merge there applies to the same value as on the whole context) and the outputs of
 * `writers`, the nodes whose targets overlap what is read. Computed to a fixed point: a
 * writer above a read path widens the base read, which may bring in further writers.
 */
export function readPlan(reads: readonly (readonly string[])[], nodes: ReadonlyMap<string, readonly (readonly string[])[]>): { basePaths: string[][]; writers: string[] } {
  let paths = reads.map((p) => [...p]);
  let writers: string[];
  for (;;) {
    writers = [];
    const above = paths.map((p) => p);
    for (const [key, targets] of nodes) {
      if (!targets.some((t) => paths.some((p) => pathsOverlap(t, p)))) continue;
      writers.push(key);
      for (const t of targets) paths.forEach((p, i) => {
        if (t.length < above[i]!.length && pathsOverlap(t, p)) above[i] = [...t];
      });
    }
    if (above.every((p, i) => p.length === paths[i]!.length)) break;
    paths = above;
  }
  // Drop a path another one covers (a prefix of it, or an equal one listed earlier).
  const basePaths = paths.filter((p, i) => !paths.some((q, j) => (q.length < p.length || (q.length === p.length && j < i)) && pathsOverlap(q, p)));
  return { basePaths, writers };
}
