/**
 * Which database failures are the infrastructure's, not the code's: the server is down,
 * restarting or shedding connections, a connection was cut, or a session timeout ended a
 * stuck transaction. They are expected during an outage — callers answer `unavailable`
 * (and may retry), log one line without a stack, and never treat them as bugs.
 *
 * Errors arrive wrapped (Drizzle's "Failed query" error holds the driver's error as
 * `cause`), so both functions walk the cause chain.
 */

/** SQLSTATEs of an unavailable server or a cut session. */
const transientSqlStates = new Set([
  "57P01", // admin_shutdown (pg_terminate_backend, a fast/immediate shutdown)
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (the database system is starting up / shutting down)
  "57P05", // idle_session_timeout
  "08000", // connection_exception
  "08001", // sqlclient_unable_to_establish_sqlconnection
  "08003", // connection_does_not_exist
  "08004", // sqlserver_rejected_establishment_of_sqlconnection
  "08006", // connection_failure
  "53300", // too_many_connections
  "25P03", // idle_in_transaction_session_timeout
  "57014", // query_canceled (statement_timeout: the server is too slow to answer now)
]);

/** Node socket errors and postgres.js's own connection errors. */
const transientCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "QUERY_DEADLINE",
  "ANSWER_TIMEOUT", // the driver patch's answer watchdog tore a connection down
]);

function* chain(err: unknown): Generator<any> {
  let e: any = err;
  for (let depth = 0; e && depth < 6; depth++, e = e.cause) {
    yield e;
    // AggregateError (a connection tried on several addresses) holds the real ones in `errors`.
    if (Array.isArray(e.errors)) for (const inner of e.errors) yield inner;
  }
}

/** The driver's code of a transient failure (`ECONNREFUSED`, `57P01`, …), or undefined. */
export function transientCode(err: unknown): string | undefined {
  for (const e of chain(err)) {
    const code = typeof e?.code === "string" ? e.code : undefined;
    if (code && (transientCodes.has(code) || transientSqlStates.has(code))) return code;
    if (e?.message === "write CONNECTION_CLOSED" || /^(read|write) (ECONNRESET|EPIPE)/.test(String(e?.message))) return "CONNECTION_CLOSED";
  }
  return undefined;
}

export function isTransientDbError(err: unknown): boolean {
  return transientCode(err) !== undefined;
}

/**
 * One short line for a log: the innermost cause's code and message (what went wrong —
 * `ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5432`), never the SQL text or its
 * parameters that a wrapping "Failed query" error carries.
 */
export function errorSummary(err: unknown): string {
  let last: any = err;
  for (const e of chain(err)) last = e;
  const code = transientCode(err) ?? (typeof last?.code === "string" ? last.code : undefined);
  const message = String(last?.message ?? last).split("\n")[0]!.slice(0, 300);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

/** A delay for retry `attempt` (0-based): exponential from `baseMs`, capped, with full jitter over its upper half. */
export function backoffMs(attempt: number, baseMs = 100, maxMs = 5000, random = Math.random): number {
  const d = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(d / 2 + (d / 2) * random());
}

/**
 * Runs `fn`, retrying it while it fails transiently (with backoff), until it succeeds,
 * fails otherwise, `signal` aborts, or `maxMs` passed — then the last error is thrown.
 * For work that must not be given up because of an outage but is safe to repeat.
 */
export async function retryWhileTransient<T>(fn: () => Promise<T>, opts: { signal?: AbortSignal; maxMs?: number; baseMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (opts.maxMs ?? Number.POSITIVE_INFINITY);
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransientDbError(err) || opts.signal?.aborted) throw err;
      const wait = backoffMs(attempt, opts.baseMs);
      if (Date.now() + wait > deadline) throw err;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, wait);
        function done() {
          clearTimeout(t);
          opts.signal?.removeEventListener("abort", done);
          resolve();
        }
        opts.signal?.addEventListener("abort", done, { once: true });
      });
    }
  }
}

/**
 * Logging for a background loop (claim, heartbeat, event reads, webhook pump) that fails
 * while the database is away: one warn line with the cause at the first failure, then at
 * most one per `everyMs` with the count left out, and one info line when it works again.
 * Never a stack, never the SQL.
 */
export function createOutageLog(log: { warn(msg: string, fields?: Record<string, unknown>): void; info(msg: string, fields?: Record<string, unknown>): void }, what: string, everyMs = 10_000) {
  let failingSince = 0;
  let lastLogged = 0;
  let suppressed = 0;
  return {
    failed(err: unknown, fields: Record<string, unknown> = {}) {
      const now = Date.now();
      if (!failingSince) failingSince = now;
      if (now - lastLogged < everyMs) {
        suppressed++;
        return;
      }
      lastLogged = now;
      log.warn(`${what} failed`, { ...fields, cause: errorSummary(err), transient: isTransientDbError(err), ...(suppressed ? { suppressed_since_last: suppressed } : {}) });
      suppressed = 0;
    },
    ok() {
      if (!failingSince) return;
      log.info(`${what} works again`, { failing_ms: Date.now() - failingSince, ...(suppressed ? { suppressed_since_last: suppressed } : {}) });
      failingSince = 0;
      lastLogged = 0;
      suppressed = 0;
    },
  };
}

const failureLogs = new Map<string, { last: number; suppressed: number }>();

/**
 * A warning for a database failure outside a request (settling usage, a metrics read, a
 * cache refresh): one line with the cause (`ECONNREFUSED …`, `57P01 …`), never a stack,
 * the SQL or its parameters. Transient failures are rate-limited per `what` — the first,
 * then at most one per `everyMs` with the count left out — so an outage does not flood
 * the log; other failures (bugs) are logged each time.
 */
export function warnDbFailure(log: { warn(msg: string, fields?: Record<string, unknown>): void }, what: string, err: unknown, fields: Record<string, unknown> = {}, everyMs = 10_000): void {
  const transient = isTransientDbError(err);
  if (transient) {
    const now = Date.now();
    const seen = failureLogs.get(what) ?? { last: 0, suppressed: 0 };
    if (now - seen.last < everyMs) {
      seen.suppressed++;
      failureLogs.set(what, seen);
      return;
    }
    failureLogs.set(what, { last: now, suppressed: 0 });
    log.warn(what, { ...fields, cause: errorSummary(err), transient, ...(seen.suppressed ? { suppressed_since_last: seen.suppressed } : {}) });
    return;
  }
  log.warn(what, { ...fields, cause: errorSummary(err), transient });
}

/**
 * `work`, or a transient `QUERY_DEADLINE` error after `ms`. postgres.js can lose a query
 * when its connection dies at the wrong moment (the promise never settles); a loop that
 * awaits one must not stop for good, so it gives up waiting and tries again later. The
 * lost query is abandoned, not cancelled: whatever it does on the server is guarded like
 * any other concurrent write (leases, cursors).
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`${what}: no answer within ${ms} ms`), { code: "QUERY_DEADLINE" })), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
