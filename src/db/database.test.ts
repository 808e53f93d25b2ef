/**
 * The PGlite data-directory lock. The lock is per process (it holds a pid), so "already
 * in use" is checked from a second process: the real CLI.
 */
import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, query, type Database } from "./database.js";

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, "../..");
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "fabric-db-test-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A pid that certainly belonged to a process which has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", ""]);
  expect(r.status).toBe(0);
  return r.pid!;
}

describe("PGlite data directory lock", () => {
  let dataDir: string;
  let database: Database;

  beforeAll(async () => {
    dataDir = tempDir();
    database = await openDatabase({ dataDir, migrate: false });
  });
  afterAll(() => database?.close().catch(() => {}));

  it("holds a lock file with this process's pid while open", () => {
    expect(readFileSync(join(dataDir, "fabric.lock"), "utf8")).toBe(String(process.pid));
  });

  it("refuses a second process, saying the directory is in use and by whom", async () => {
    const child = run(process.execPath, ["bin/fabric.js", "migrate", "--data-dir", dataDir], {
      cwd: repo,
      env: { ...process.env, DATABASE_URL: "", FABRIC_DATA_DIR: "", LOG_LEVEL: "silent" },
      timeout: 15_000,
    });
    const err: any = await child.then(
      () => expect.fail("the second process opened a database that is in use"),
      (e) => e,
    );
    expect(err.code).not.toBe(0);
    expect(typeof err.code).toBe("number");
    expect(err.stderr).toContain("in use");
    expect(err.stderr).toContain(String(process.pid));
    // The refused process must not have taken (or removed) our lock.
    expect(readFileSync(join(dataDir, "fabric.lock"), "utf8")).toBe(String(process.pid));
  });

  it("releases the lock on close, and a stale lock (dead pid) is taken over", async () => {
    await database.close();
    expect(existsSync(join(dataDir, "fabric.lock"))).toBe(false);

    writeFileSync(join(dataDir, "fabric.lock"), String(deadPid()));
    database = await openDatabase({ dataDir, migrate: false });
    expect(readFileSync(join(dataDir, "fabric.lock"), "utf8")).toBe(String(process.pid));
    const [row] = await query<{ one: number }>(database.db, sql`SELECT 1 AS one`);
    expect(row?.one).toBe(1);
  });

  it("treats a lock file without a pid as stale", async () => {
    await database.close();
    writeFileSync(join(dataDir, "fabric.lock"), "");
    database = await openDatabase({ dataDir, migrate: false });
    expect(readFileSync(join(dataDir, "fabric.lock"), "utf8")).toBe(String(process.pid));
  });
});

describe("lock checks before the database is touched", () => {
  it("refuses a directory locked by another live process, leaving its lock alone", async () => {
    const dataDir = tempDir();
    const other = process.ppid; // the vitest main process: alive, and not us
    writeFileSync(join(dataDir, "fabric.lock"), String(other));
    await expect(openDatabase({ dataDir, migrate: false })).rejects.toThrow(new RegExp(`in use by process ${other}`));
    expect(readFileSync(join(dataDir, "fabric.lock"), "utf8")).toBe(String(other));
    expect(existsSync(join(dataDir, "pgdata"))).toBe(false);
  });
});
