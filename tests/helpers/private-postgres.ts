/**
 * A private Postgres cluster for fault tests: `initdb` into a temporary directory, then
 * `pg_ctl start` on a free loopback port. The tests stop it (`-m immediate`), restart it
 * and terminate its backends — never the shared server on 5432, which other work uses.
 *
 * Postgres refuses to run as root: when the test runs as root, the binaries run as the
 * `postgres` OS user (`runuser -u postgres --`), which owns the temporary directory.
 * The binaries are those of Postgres 15 (`FABRIC_PG_BIN`, default
 * /usr/lib/postgresql/15/bin).
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, chownSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";

const run = promisify(execFile);
export const pgBin = process.env.FABRIC_PG_BIN ?? "/usr/lib/postgresql/15/bin";

/** Whether a private cluster can be started here (the binaries exist). */
export const privatePostgresAvailable = existsSync(join(pgBin, "initdb")) && existsSync(join(pgBin, "pg_ctl"));

export interface PrivatePostgres {
  readonly port: number;
  /** postgres:// URL of `database` on this cluster. */
  url(database?: string): string;
  /** Creates a database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** pg_ctl stop with the given mode (`immediate` = like a crash: no checkpoint, clients cut). */
  stop(mode?: "immediate" | "fast"): Promise<void>;
  start(): Promise<void>;
  /** Terminates every backend of `database` but the caller's; resolves with how many. */
  terminateBackends(database: string): Promise<number>;
  /** Stops the cluster and removes its directory. */
  destroy(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), "fabric-faults-pg-"));
  if (asRoot) {
    const pg = statSync("/var/lib/postgresql", { throwIfNoEntry: false });
    const uid = pg?.uid ?? 101;
    const gid = pg?.gid ?? 104;
    chownSync(dir, uid, gid);
  }
  const data = join(dir, "data");
  const logFile = join(dir, "postgres.log");
  const port = await freePort();
  const exec = (bin: string, args: string[]) => (asRoot ? run("runuser", ["-u", "postgres", "--", join(pgBin, bin), ...args]) : run(join(pgBin, bin), args));

  await exec("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
  // Fast and throwaway: no fsync; small shared memory; the socket directory is ours.
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB`;
  const start = async () => {
    await exec("pg_ctl", ["-D", data, "-l", logFile, "-o", options, "-w", "-t", "60", "start"]);
  };
  await start();

  const url = (database = "postgres") => `postgres://postgres@127.0.0.1:${port}/${database}`;
  const admin = () => postgres(url(), { max: 1, onnotice: () => {}, connect_timeout: 5 });
  let running = true;

  return {
    port,
    url,
    async createDatabase(name) {
      const sql = admin();
      try {
        await sql.unsafe(`CREATE DATABASE ${name}`);
      } finally {
        await sql.end({ timeout: 1 });
      }
      return url(name);
    },
    async stop(mode = "immediate") {
      await exec("pg_ctl", ["-D", data, "-m", mode, "-w", "-t", "60", "stop"]);
      running = false;
    },
    async start() {
      await start();
      running = true;
    },
    async terminateBackends(database) {
      const sql = admin();
      try {
        const rows = await sql`SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = ${database} AND pid <> pg_backend_pid()`;
        return rows[0]!.n as number;
      } finally {
        await sql.end({ timeout: 1 });
      }
    },
    async destroy() {
      if (running) await exec("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
