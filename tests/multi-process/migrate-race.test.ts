/**
 * A first deploy with N replicas: four `fabric migrate` and two `fabric serve` started at
 * once on a fresh Postgres database all succeed, and every migration is applied exactly
 * once (the advisory lock of db/database.ts). Then `serve --no-migrate` and `executor`
 * on a schema older than their code refuse to start with one line, and start once the
 * schema is current (the positive control).
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shippedMigrations } from "../../src/db/migrations.js";
import { adminUrl, engine } from "../helpers/database.js";
import { spawnFabric, waitForOutput, type FabricProcess } from "../helpers/processes.js";

describe.skipIf(engine !== "postgres")("migrations with N replicas (real processes, real Postgres)", () => {
  const name = `fabric_test_${randomBytes(6).toString("hex")}`;
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  let sql: postgres.Sql;
  const started: FabricProcess[] = [];
  const env = { DATABASE_URL: url, DATABASE_POOL_MAX: "3", JWT_SECRET: "migrate-race-secret-0123456789-abcdefghijkl", LOG_LEVEL: "info" };
  const fabric = (args: string[], extra: Record<string, string> = {}) => {
    const p = spawnFabric(args, { ...env, ...extra });
    started.push(p);
    return p;
  };
  /** A serve is up when its /readyz answers 200 at the address it logged. */
  const readyUrl = async (p: FabricProcess) => {
    const rest = (await waitForOutput(p, /"rest":"(http:\/\/[^"]+)"/))[1]!;
    const res = await fetch(`${rest}/readyz`);
    expect(res.status).toBe(200);
    return rest;
  };

  beforeAll(async () => {
    await admin.unsafe(`CREATE DATABASE ${name}`);
    sql = postgres(url, { max: 1, onnotice: () => {} });
  });

  afterAll(async () => {
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    await Promise.all(started.map((p) => p.exited));
    await sql?.end();
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });

  it("four `fabric migrate` and two `fabric serve` at once: all succeed, each migration applied once", async () => {
    const migrates = Array.from({ length: 4 }, () => fabric(["migrate"]));
    const serves = Array.from({ length: 2 }, () => fabric(["serve", "--port", "0", "--grpc-port", "0"]));
    const results = await Promise.all(migrates.map((p) => p.exited));
    for (const r of results) {
      expect(r.stderr).not.toMatch(/23505|duplicate key|at .*\.js:\d+/);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain("migrations applied (postgres)");
    }
    await Promise.all(serves.map(readyUrl));

    const shipped = shippedMigrations();
    const [row] = await sql<{ n: number; hashes: number; latest: string }[]>`select count(*)::int as n, count(distinct hash)::int as hashes, max(created_at)::text as latest from drizzle.__drizzle_migrations`;
    expect(row).toEqual({ n: shipped.length, hashes: shipped.length, latest: String(shipped.at(-1)!.when) });

    for (const p of serves) p.child.kill("SIGTERM");
    for (const r of await Promise.all(serves.map((p) => p.exited))) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/"level":"error"/);
    }
  }, 180_000);

  it("`serve --no-migrate` and `executor` refuse a schema older than their code with one line, and start on the current one", async () => {
    const shipped = shippedMigrations();
    const newest = shipped.at(-1)!;
    // Pretend the newest migration was never applied: the schema is one release behind.
    const [removed] = await sql<{ hash: string; created_at: string }[]>`delete from drizzle.__drizzle_migrations where created_at = ${newest.when} returning hash, created_at::text`;
    expect(removed).toBeDefined();

    const [serve, executor] = await Promise.all([fabric(["serve", "--no-migrate", "--port", "0", "--grpc-port", "0"]).exited, fabric(["executor"]).exited]);
    for (const r of [serve, executor]) {
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toBe(`fabric: the database schema is older than this fabric: 1 migration(s) not applied (${newest.tag}); run \`fabric migrate\` first`);
    }

    // Positive control: the same commands start once the schema is current again.
    await sql`insert into drizzle.__drizzle_migrations (hash, created_at) values (${removed!.hash}, ${removed!.created_at})`;
    const serveOk = fabric(["serve", "--no-migrate", "--port", "0", "--grpc-port", "0"]);
    const executorOk = fabric(["executor"]);
    await readyUrl(serveOk);
    await waitForOutput(executorOk, /executor started/);
    serveOk.child.kill("SIGTERM");
    executorOk.child.kill("SIGTERM");
    expect((await serveOk.exited).code).toBe(0);
    expect((await executorOk.exited).code).toBe(0);
  }, 180_000);
});
