/**
 * The SDK against the contract and the rest of the repository, read from the source:
 * it covers every REST operation of the OpenAPI document, and it imports nothing of the
 * server — only itself, the generated contract and a fixed set of npm packages — so that
 * it can be packaged on its own.
 */
import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const sdkDir = join(root, "src/sdk");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [join(dir, e.name)] : []));
}

/** Every module specifier a file imports or re-exports (static and dynamic). */
function specifiers(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"|\bimport\(\s*"([^"]+)"\s*\)|^\s*import\s+"([^"]+)"/gm)].map((m) => (m[1] ?? m[2] ?? m[3])!);
}

describe("the SDK and the contract", () => {
  it("every REST operation of the OpenAPI document is called by a resource of the SDK", () => {
    const doc = JSON.parse(readFileSync(join(root, "gen/openapi/openapi.json"), "utf8")) as { paths: Record<string, Record<string, { "x-fabric-rpc"?: string }>> };
    const operations = Object.entries(doc.paths)
      .flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, rpc: op["x-fabric-rpc"], stream: (op as { "x-fabric-stream"?: string })["x-fabric-stream"] })))
      .filter((o) => o.rpc) // health, readiness and the docs are not API operations
      // The WebSocket twins of the event streams: the SDK follows the same streams over SSE
      // (Node 20 has no WebSocket client built in, and the SDK takes no dependency for one).
      .filter((o) => o.stream !== "websocket")
      .map((o) => o.key);
    const called = new Set(
      sourceFiles(join(sdkDir, "resources")).flatMap((f) => {
        const text = readFileSync(f, "utf8");
        const calls = [...text.matchAll(/\.(?:call|open)\(\s*"(\w+)",\s*"([^"]+)"/g)].map((m) => `${m[1]!.toUpperCase()} ${m[2]}`);
        // Event streams hand their path to followEvents, which always GETs it.
        const streams = [...text.matchAll(/\bpath: "(\/v1\/[^"]+)"/g)].map((m) => `GET ${m[1]}`);
        return [...calls, ...streams];
      }),
    );
    expect(operations.length).toBeGreaterThan(50);
    expect(operations.filter((o) => !called.has(o))).toEqual([]);
  });
});

describe("the SDK stands alone", () => {
  it("imports only src/sdk, gen/, node built-ins and its npm packages", () => {
    const npm = new Set<string>();
    const outside: string[] = [];
    for (const file of sourceFiles(sdkDir)) {
      for (const spec of specifiers(file)) {
        if (spec.startsWith(".")) {
          const target = relative(root, resolve(dirname(file), spec));
          if (!target.startsWith("src/sdk/") && !target.startsWith("gen/")) outside.push(`${relative(root, file)} → ${spec}`);
        } else if (spec.startsWith("node:") || builtinModules.includes(spec)) {
          continue;
        } else {
          npm.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!);
        }
      }
    }
    expect(outside).toEqual([]);
    // What a separate SDK package would depend on; a new one should be a decision.
    expect([...npm].sort()).toEqual(["@bufbuild/protobuf", "@connectrpc/connect", "@connectrpc/connect-node"]);
  });

  it("the import scan sees imports (positive control)", () => {
    const client = specifiers(join(sdkDir, "client.ts"));
    expect(client).toContain("./core/rest-transport.js");
    expect(client).toContain("../../gen/openapi/schema.js");
    expect(specifiers(join(sdkDir, "grpc.ts"))).toContain("@connectrpc/connect-node");
  });
});
