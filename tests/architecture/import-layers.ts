/**
 * The layering of `src/`, checked: every import of every module (static, `export … from`,
 * `import type`, dynamic `import()`), parsed with the TypeScript compiler's own scanner.
 *
 * Layers, lowest first. A module may import its own layer and lower ones — never a higher
 * one, nor another layer of the same rank — plus the generated contracts (`gen/`) and npm
 * packages. Unit tests beside their modules (`*.test.ts`) are left out: they may reach up
 * to check a module against its neighbours (e.g. prices against the adapters' models).
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

export interface Layer {
  name: string;
  rank: number;
  /** Folders (ending in `/`) or files under the repository root. */
  paths: readonly string[];
  /** Layers it must not import although their rank is lower (none by default). */
  never?: readonly string[];
}

export const layers: readonly Layer[] = [
  { name: "domain", rank: 0, paths: ["src/domain/"] },
  // Locates the package's own files (migrations, contract, console build): fs only.
  { name: "package-files", rank: 0, paths: ["src/package-files.ts"] },
  { name: "db", rank: 1, paths: ["src/db/"] },
  { name: "platform", rank: 1, paths: ["src/config.ts", "src/logger.ts", "src/telemetry/"] },
  { name: "providers", rank: 2, paths: ["src/providers/"] },
  { name: "gateway", rank: 3, paths: ["src/gateway/"] },
  { name: "delivery", rank: 3, paths: ["src/delivery/"] },
  { name: "services", rank: 4, paths: ["src/services/"] },
  // The control plane: the call step both transports share, then the two transports
  // (which never import each other), then the wiring that starts them.
  { name: "control-plane/rest", rank: 6, paths: ["src/control-plane/rest/"] },
  { name: "control-plane/grpc", rank: 6, paths: ["src/control-plane/grpc/"] },
  { name: "control-plane/server", rank: 7, paths: ["src/control-plane/server.ts"] },
  { name: "control-plane", rank: 5, paths: ["src/control-plane/"] },
  { name: "executor", rank: 5, paths: ["src/executor/"], never: ["services"] },
  { name: "cli", rank: 8, paths: ["src/cli/"] },
  // The SDK is a client: it shares nothing with the server but the contracts, and only the
  // CLI (`fabric run`, another client) uses it.
  { name: "sdk", rank: 0, paths: ["src/sdk/"] },
];

/** Importable from anywhere. */
const contracts = "gen/";

export interface ImportEdge {
  from: string;
  to: string;
  specifier: string;
}

export interface Violation {
  edge: ImportEdge;
  reason: string;
}

export interface ImportGraphReport {
  modules: number;
  edges: ImportEdge[];
  violations: Violation[];
  /** Each cycle as the modules on it, in import order, first module repeated at the end. */
  cycles: string[][];
}

/** The first layer listing a folder or file that holds `file` (so a sub-folder is listed before its parent). */
export function layerOf(file: string, table: readonly Layer[] = layers): Layer | undefined {
  return table.find((l) => l.paths.some((p) => (p.endsWith("/") ? file.startsWith(p) : file === p)));
}

/** Relative import specifiers of a module's source, in order. */
export function importSpecifiers(source: string): string[] {
  return ts
    .preProcessFile(source, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((s) => s.startsWith("."));
}

/** `src/a/b.ts` importing `../c.js` → `src/c.ts` (the `.js` of an ESM specifier names the `.ts` source). */
export function resolveSpecifier(from: string, specifier: string): string {
  const target = normalize(join(dirname(from), specifier));
  return target.endsWith(".js") ? `${target.slice(0, -3)}.ts` : target;
}

/**
 * Checks a set of modules (path → source, paths relative to the repository root with `/`).
 * Pure, so that a test can feed it a violating example.
 */
export function checkImports(sources: ReadonlyMap<string, string>, table: readonly Layer[] = layers): ImportGraphReport {
  const edges: ImportEdge[] = [];
  const violations: Violation[] = [];
  for (const [from, source] of sources) {
    const own = layerOf(from, table);
    if (!own) {
      violations.push({ edge: { from, to: from, specifier: "" }, reason: `${from} belongs to no layer: add it to the layer table` });
      continue;
    }
    for (const specifier of importSpecifiers(source)) {
      const to = resolveSpecifier(from, specifier);
      const edge = { from, to, specifier };
      edges.push(edge);
      if (to.startsWith(contracts)) continue;
      const target = layerOf(to, table);
      if (!target) {
        violations.push({ edge, reason: `${from} imports ${specifier}, which is outside src/ and gen/` });
        continue;
      }
      if (target.name === own.name) continue;
      if (own.name === "sdk") violations.push({ edge, reason: `${from} (sdk) imports ${to} (${target.name}): the SDK shares only gen/ with the server` });
      else if (target.name === "sdk" && own.name !== "cli") violations.push({ edge, reason: `${from} (${own.name}) imports ${to}: only the CLI, a client, uses the SDK` });
      else if (target.rank > own.rank) violations.push({ edge, reason: `${from} (${own.name}) imports ${to} (${target.name}), a higher layer` });
      else if (target.rank === own.rank) violations.push({ edge, reason: `${from} (${own.name}) imports ${to} (${target.name}), a layer of the same rank` });
      else if (own.never?.includes(target.name)) violations.push({ edge, reason: `${from} (${own.name}) imports ${to}: ${own.name} never imports ${target.name}` });
    }
  }
  return { modules: sources.size, edges, violations, cycles: findCycles(edges.filter((e) => sources.has(e.to))) };
}

/** Every strongly connected component of more than one module (or a module importing itself), as one cycle through it. */
export function findCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  // Tarjan's algorithm, iterative bookkeeping kept simple: module graphs are small.
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string) => {
    indexOf.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!indexOf.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indexOf.get(w)!));
    }
    if (low.get(v) === indexOf.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || next.get(v)?.includes(v)) components.push(component);
    }
  };
  for (const v of next.keys()) if (!indexOf.has(v)) visit(v);
  return components.map((c) => cycleThrough(new Set(c), next));
}

/** A shortest cycle through the component's first module (by name), for the message. */
function cycleThrough(component: Set<string>, next: Map<string, string[]>): string[] {
  const start = [...component].sort()[0]!;
  // Breadth-first from `start` until an edge leads back to it; every module of a strongly
  // connected component reaches every other, so one does.
  const parent = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i]!;
    for (const w of next.get(v) ?? []) {
      if (w === start) {
        const path = [start];
        for (let u: string | undefined = v; u !== undefined && u !== start; u = parent.get(u)) path.splice(1, 0, u);
        return [...path, start];
      }
      if (component.has(w) && !parent.has(w) && w !== start) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** The non-test modules under `src/` of the repository at `root`. */
export function sourceModules(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) out.set(path, readFileSync(join(root, path), "utf8"));
    }
  };
  walk("src");
  return out;
}

export const repositoryRoot = fileURLToPath(new URL("../..", import.meta.url));
