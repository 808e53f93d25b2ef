/**
 * postgres.js (3.4.9, patches/postgres+3.4.9.patch) when a backend is terminated under it:
 * every query settles, none is answered with another query's result or error, and a
 * transaction whose connection died never runs a statement on the connection that
 * replaced it. Upstream, all three failed (docs/resilience.md, "The driver"): the fault
 * suite saw queries that never settled, an API-key lookup answered with another query's
 * rows (401 for a valid key), and event streams stalled for good.
 *
 * Postgres only (PGlite has no backends to terminate). Each test terminates only the
 * backend it got from its own connection.
 */
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engine, createTestDatabase, type TestDatabase } from "../helpers/database.js";

const NEVER = Symbol("never settled");
/** The promise's outcome, or NEVER if it has not settled within a generous ceiling. */
async function outcome<T>(p: Promise<T>, ceilingMs = 20_000): Promise<{ ok: T } | { err: any } | typeof NEVER> {
  let timer: NodeJS.Timeout | undefined;
  const never = new Promise<typeof NEVER>((r) => (timer = setTimeout(() => r(NEVER), ceilingMs)));
  try {
    return await Promise.race([p.then((ok) => ({ ok }), (err) => ({ err })), never]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `pid` is gone from pg_stat_activity (the termination took effect). */
async function untilGone(admin: postgres.Sql, pid: number) {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
    const rows = await admin`SELECT 1 FROM pg_stat_activity WHERE pid = ${pid}`;
    if (rows.length === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`backend ${pid} did not go away`);
}

describe.skipIf(engine !== "postgres")("postgres.js when its backend is terminated", () => {
  let database: TestDatabase;
  let admin: postgres.Sql;
  const clients: postgres.Sql[] = [];
  const client = (options: postgres.Options<{}> = {}) => {
    const sql = postgres(database.url!, { onnotice: () => {}, backoff: () => 0.05, ...options });
    clients.push(sql);
    return sql;
  };

  beforeAll(async () => {
    database = await createTestDatabase({ poolMax: 2 });
    admin = postgres(database.url!, { max: 1, onnotice: () => {} });
    await admin`CREATE TABLE lost (n int)`;
  });
  afterAll(async () => {
    for (const sql of clients) await sql.end({ timeout: 1 }).catch(() => {});
    await admin?.end({ timeout: 1 });
    await database?.close();
  });

  it("a query queued inside a transaction settles (rejected) when the transaction's connection dies", async () => {
    const sql = client({ max: 1 });
    let queued: Promise<unknown> | undefined;
    let running: Promise<unknown> | undefined;
    const begun = sql.begin(async (tx) => {
      const [{ pid }] = (await tx`SELECT pg_backend_pid() AS pid`) as unknown as [{ pid: number }];
      // A parameterised statement is described first, so the connection is "full" and the next one waits in the transaction's own queue.
      running = tx`SELECT pg_sleep(60) WHERE ${1}::int = 1`.then((r) => r);
      queued = tx`SELECT 2 AS two`.then((r) => r);
      await admin`SELECT pg_terminate_backend(${pid})`;
      await Promise.allSettled([running, queued]);
    });
    expect(await outcome(begun)).toMatchObject({ err: expect.anything() });
    expect(await outcome(running!)).toMatchObject({ err: expect.anything() });
    // Upstream: never settles (porsager/postgres#1186).
    const q = await outcome(queued!);
    expect(q).not.toBe(NEVER);
    expect(q).toMatchObject({ err: { code: "CONNECTION_CLOSED" } });
    // The pool works on.
    expect(await sql`SELECT 3 AS three`).toEqual([{ three: 3 }]);
  });

  it("a transaction whose connection died runs nothing on the connection that replaced it", async () => {
    const sql = client({ max: 1 });
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let pid = 0;
    let late: Promise<unknown> | undefined;
    const begun = sql.begin(async (tx) => {
      [{ pid }] = (await tx`SELECT pg_backend_pid() AS pid`) as unknown as [{ pid: number }];
      await gate; // the application awaits something else (a provider call, a timer) meanwhile
      late = tx`INSERT INTO lost VALUES (1)`.then((r) => r);
      await late;
    });
    const begunOutcome = outcome(begun);
    for (const deadline = Date.now() + 20_000; !pid && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    await admin`SELECT pg_terminate_backend(${pid})`;
    await untilGone(admin, pid);
    expect(await begunOutcome).toMatchObject({ err: expect.anything() });
    // The pool's only connection reconnects for another caller...
    const [{ other }] = (await sql`SELECT pg_backend_pid() AS other`) as unknown as [{ other: number }];
    expect(other).not.toBe(pid);
    // ...then the dead transaction goes on. Upstream its INSERT ran on the new connection, outside any transaction, and committed.
    open();
    for (const deadline = Date.now() + 20_000; !late && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    expect(await outcome(late!)).toMatchObject({ err: { code: "CONNECTION_CLOSED" } });
    expect(await admin`SELECT count(*)::int AS n FROM lost`).toEqual([{ n: 0 }]);
    // Positive control: the pool still writes.
    await sql`INSERT INTO lost VALUES (2)`;
    expect(await admin`SELECT n FROM lost`).toEqual([{ n: 2 }]);
    await admin`DELETE FROM lost`;
  });

  it("the first query after a busy connection was terminated is answered, not failed with the old backend's error", async () => {
    const sql = client({ max: 1 });
    const [{ pid }] = (await sql`SELECT pg_backend_pid() AS pid`) as unknown as [{ pid: number }];
    const busy = sql`SELECT pg_sleep(60)`.then((r) => r);
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
      const [r] = await admin`SELECT state FROM pg_stat_activity WHERE pid = ${pid}`;
      if (r?.state === "active") break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await admin`SELECT pg_terminate_backend(${pid})`;
    expect(await outcome(busy)).toMatchObject({ err: expect.anything() });
    // Upstream: rejected with the terminated backend's 57P01 (its ErrorResponse stayed on the connection).
    expect(await outcome(sql`SELECT 1 AS one`)).toEqual({ ok: [{ one: 1 }] });
  });

  it("after a burst of terminated backends every query settles, each with its own answer", async () => {
    const sql = client({ max: 3 });
    let stop = false;
    const killer = (async () => {
      let killed = 0;
      while (!stop) {
        const rows = await admin`SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`;
        killed += rows.length;
        await new Promise((r) => setTimeout(r, 30));
      }
      return killed;
    })();
    let answered = 0;
    let failed = 0;
    const wrong: string[] = [];
    // Plain queries and transactions that await across a kill, spread over the burst and after it.
    const work = Array.from({ length: 300 }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i * 10));
      if (i === 200) stop = true; // the burst ends; the last third runs on a recovering pool
      const p =
        i % 3 === 0
          ? sql.begin(async (tx) => {
              const [a] = await tx`SELECT ${i}::int AS i`;
              await new Promise((r) => setTimeout(r, 5));
              const [b] = await tx`SELECT ${i}::int + 1 AS j`;
              return [a!.i, b!.j];
            })
          : sql`SELECT ${i}::int AS i, ${`s${i}`}::text AS s`.then(([r]) => [r!.i, r!.s]);
      const o = await outcome(p as Promise<unknown[]>, 60_000);
      if (o === NEVER) return "never";
      if ("err" in o) return void failed++;
      answered++;
      const want = i % 3 === 0 ? [i, i + 1] : [i, `s${i}`];
      if (JSON.stringify(o.ok) !== JSON.stringify(want)) wrong.push(`${i}: ${JSON.stringify(o.ok)}`);
    });
    const results = await Promise.all(work);
    stop = true;
    const killed = await killer;
    expect(killed).toBeGreaterThan(0);
    expect(results.filter((r) => r === "never").length).toBe(0);
    expect(wrong).toEqual([]);
    expect(answered + failed).toBe(300);
    expect(answered).toBeGreaterThan(0); // positive control: the burst did not just fail everything
  });
});
