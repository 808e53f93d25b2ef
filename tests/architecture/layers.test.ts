/**
 * The folder tree tells the architecture, and this test keeps it true: no import cycle in
 * `src/`, no import from a lower layer to a higher one (import-layers.ts has the table),
 * no RPC name in the use-case layer, and no raw SQL outside `src/db` (raw-sql.ts has the
 * rules). The checkers are proved to fail on violating examples first, so a green run means
 * something.
 */
import { describe, expect, it } from "vitest";
import { checkImports, importSpecifiers, layerOf, repositoryRoot, sourceModules } from "./import-layers.js";
import { rawSqlOutsideDb } from "./raw-sql.js";

const modules = (files: Record<string, string>) => new Map(Object.entries(files));

describe("the import checker", () => {
  it("reads static, re-exported, type-only and dynamic imports, and nothing else", () => {
    const source = [
      `import { a } from "./a.js";`,
      `import type { B } from "../b.js";`,
      `export { c } from "./c.js";`,
      `export * from "./d.js";`,
      `const e = await import("./e.js");`,
      `import { z } from "zod";`,
      `// import { f } from "./f.js";`,
      `const text = 'import { g } from "./g.js"';`,
    ].join("\n");
    expect(importSpecifiers(source)).toEqual(["./a.js", "../b.js", "./c.js", "./d.js", "./e.js"]);
  });

  it("fails an import from a lower layer to a higher one", () => {
    const report = checkImports(modules({ "src/domain/routing.ts": `import type { Provider } from "../providers/provider.js";`, "src/providers/provider.ts": "" }));
    expect(report.violations.map((v) => v.reason)).toEqual(["src/domain/routing.ts (domain) imports src/providers/provider.ts (providers), a higher layer"]);
  });

  it("fails the rules that ranks alone do not say", () => {
    const report = checkImports(
      modules({
        "src/executor/worker.ts": `import { x } from "../services/runs/run-service.js";`,
        "src/control-plane/grpc/routes.ts": `import type { S } from "../rest/app.js";`,
        "src/sdk/client.ts": `import { y } from "../domain/errors.js";`,
        "src/services/z.ts": `import { FabricClient } from "../sdk/index.js";`,
        "src/gateway/provider-gateway.ts": `import { hub } from "../delivery/event-hub.js";`,
        "src/services/x.ts": `import { h } from "../../tests/helpers/database.js";`,
        "src/stray.ts": "",
      }),
    );
    expect(report.violations.map((v) => v.reason)).toEqual([
      "src/executor/worker.ts (executor) imports src/services/runs/run-service.ts: executor never imports services",
      "src/control-plane/grpc/routes.ts (control-plane/grpc) imports src/control-plane/rest/app.ts (control-plane/rest), a layer of the same rank",
      "src/sdk/client.ts (sdk) imports src/domain/errors.ts (domain): the SDK shares only gen/ with the server",
      "src/services/z.ts (services) imports src/sdk/index.ts: only the CLI, a client, uses the SDK",
      "src/gateway/provider-gateway.ts (gateway) imports src/delivery/event-hub.ts (delivery), a layer of the same rank",
      "src/services/x.ts imports ../../tests/helpers/database.js, which is outside src/ and gen/",
      "src/stray.ts belongs to no layer: add it to the layer table",
    ]);
  });

  it("allows its own layer, lower layers and the generated contracts", () => {
    const report = checkImports(
      modules({
        "src/services/runs/run-service.ts": `import { a } from "../access/permission-checks.js"; import { b } from "../../db/schema.js"; import { c } from "../../../gen/proto/fabric/v1/run_pb.js";`,
        "src/services/access/permission-checks.ts": `import { d } from "../../domain/permissions.js";`,
        "src/db/schema.ts": "",
        "src/domain/permissions.ts": "",
      }),
    );
    expect(report.violations).toEqual([]);
    expect(report.cycles).toEqual([]);
  });

  it("fails an import cycle, naming the modules on it", () => {
    const report = checkImports(
      modules({
        "src/services/a.ts": `import { b } from "./b.js";`,
        "src/services/b.ts": `import { c } from "./c.js";`,
        "src/services/c.ts": `import { a } from "./a.js"; import { d } from "./d.js";`,
        "src/services/d.ts": "",
        "src/domain/self.ts": `import { me } from "./self.js";`,
      }),
    );
    expect(report.violations).toEqual([]);
    expect(report.cycles.sort()).toEqual([["src/domain/self.ts", "src/domain/self.ts"], ["src/services/a.ts", "src/services/b.ts", "src/services/c.ts", "src/services/a.ts"]]);
  });

  it("files a sub-folder's module under the sub-folder's layer", () => {
    expect(layerOf("src/control-plane/rest/app.ts")?.name).toBe("control-plane/rest");
    expect(layerOf("src/control-plane/call-step.ts")?.name).toBe("control-plane");
    expect(layerOf("src/config.ts")?.name).toBe("platform");
    expect(checkImports(modules({ "src/cli/run-command.ts": `import { FabricClient } from "../sdk/index.js";`, "src/sdk/index.ts": "" })).violations).toEqual([]);
  });
});

describe("the raw SQL checker", () => {
  it("fails each kind of raw SQL outside src/db", () => {
    const found = rawSqlOutsideDb(
      modules({
        "src/services/a.ts": "const rows = await query(db, sql`SELECT 1`);",
        "src/services/b.ts": "await tx.execute(sql`SELECT pg_advisory_xact_lock(${k})`);",
        "src/control-plane/c.ts": 'import { query, type Db } from "../db/database.js";',
        "src/executor/d.ts": "await client.unsafe(text);",
        "src/delivery/e.ts": "const col = sql.raw(`g${i}`);",
        "src/gateway/f.ts": "const sub = sql`(select name from workflow_runs)`;",
        "src/services/g.ts": "db.insert(t).values(x); await db.execute(statement);",
      }),
    );
    expect(found).toEqual([
      "src/control-plane/c.ts: the raw-statement helper query",
      "src/delivery/e.ts: sql.raw",
      "src/executor/d.ts: unsafe",
      "src/gateway/f.ts: a SQL statement in a sql template",
      "src/services/a.ts: a SQL statement in a sql template",
      "src/services/b.ts: a SQL statement in a sql template",
      "src/services/b.ts: a raw execute",
      "src/services/b.ts: an advisory lock",
      "src/services/g.ts: a raw execute",
    ]);
  });

  it("allows query-builder calls with sql values and predicates, a node runtime's execute, and any SQL in src/db", () => {
    const found = rawSqlOutsideDb(
      modules({
        "src/services/a.ts": "await tx.update(keys).set({ revokedAt: sql`now()` }).where(and(eq(t.id, id), gt(t.expiresAt, sql`now()`)));",
        "src/executor/worker.ts": "result = await raceAbort(runtime.execute(step), signal);",
        "src/db/claim-nodes.ts": 'import { query } from "./database.js"; await tx.execute(sql`SELECT pg_advisory_xact_lock(1)`);',
      }),
    );
    expect(found).toEqual([]);
  });
});

describe("src/", () => {
  const sources = sourceModules(repositoryRoot);
  const report = checkImports(sources);

  it("reads every module", () => {
    expect(report.modules).toBeGreaterThan(50);
    expect(report.edges.length).toBeGreaterThan(report.modules);
  });

  it("imports nothing from a higher layer (nor across layers of one rank)", () => {
    expect(report.violations.map((v) => v.reason)).toEqual([]);
  });

  it("has no import cycle", () => {
    expect(report.cycles).toEqual([]);
  });

  it("has no RPC name in the use-case layer: the operations table at the edge maps operations to actions", () => {
    const rpcName = /fabric\.v1\.\w+Service\/\w+/;
    const knowing = [...sources].filter(([path, text]) => path.startsWith("src/services/") && rpcName.test(text)).map(([path]) => path);
    expect(knowing).toEqual([]);
  });

  it("writes raw SQL only in src/db", () => {
    expect(rawSqlOutsideDb(sources)).toEqual([]);
  });
});
