/**
 * Following one of Fabric's SSE event streams (a run's, a job's, the organization's)
 * across dropped connections: resume with `Last-Event-ID`, bounded backoff, an idle
 * watchdog, never an event twice.
 */
import type { RunEvent } from "../types.js";
import { FabricError } from "./fabric-error.js";
import { readSse } from "./read-sse.js";
import { backoffMs, sleep, type RestTransport } from "./rest-transport.js";

export interface RetryOptions {
  /** Reconnection attempts in a row without receiving an event, before giving up. Default 5. */
  maxAttempts?: number;
  /** First delay; doubles per further attempt (with ±20 % jitter). Default 250 ms. */
  initialDelayMs?: number;
  /** Upper bound of one delay. Default 5000 ms. */
  maxDelayMs?: number;
  /**
   * Reconnect when a stream has carried nothing — not even the server's `: ping`
   * heartbeat (every 15 s) — for this long: a half-open connection otherwise hangs
   * forever. Default 45000 ms.
   */
  idleTimeoutMs?: number;
}

export const defaultRetry: Required<RetryOptions> = { maxAttempts: 5, initialDelayMs: 250, maxDelayMs: 5000, idleTimeoutMs: 45_000 };

export interface FollowInit {
  what: string;
  path: string;
  pathParams?: Record<string, string>;
  query?: Record<string, string | undefined>;
  afterId: string | number | bigint | undefined;
  signal: AbortSignal | undefined;
  retry: Required<RetryOptions>;
  /** The stream is over once this event was yielded. */
  isLast?: (ev: RunEvent) => boolean;
  /** After a clean end that carried nothing: may the stream be over? (confirmed by one more empty connection) */
  emptyEndMayBeFinal?: (signal: AbortSignal | undefined) => Promise<boolean>;
  endedEarly: string;
}

/**
 * Follows an SSE event stream of Fabric: reconnects with `Last-Event-ID` after dropped
 * connections, 5xx / 429 and server-side stream errors (bounded exponential backoff with
 * jitter; the attempt count resets whenever an event arrives), never yields an event
 * twice, and throws 4xx problems at once. Shared by `runs.watch`, `jobs.watch` and `events.stream`.
 */
export async function* followEvents(transport: RestTransport, init: FollowInit): AsyncGenerator<RunEvent, void, undefined> {
  const { retry, signal, what } = init;
  let lastId = init.afterId === undefined ? undefined : String(init.afterId);
  if (lastId !== undefined && !/^\d+$/.test(lastId)) throw new TypeError(`${what}: afterId must be an event id`);
  let failures = 0;
  let confirmingEnd = false;
  for (;;) {
    signal?.throwIfAborted();
    const connection = new AbortController();
    const onAbort = () => connection.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    let received = 0;
    let lastError: unknown;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const alive = () => {
      clearTimeout(idle);
      idle = setTimeout(() => connection.abort(new FabricError({ status: 0, code: "network_error", detail: `${what}: no data for ${retry.idleTimeoutMs} ms` })), retry.idleTimeoutMs);
    };
    try {
      alive();
      const res = await transport.open("get", init.path, {
        path: init.pathParams,
        query: init.query,
        accept: "text/event-stream",
        extraHeaders: { "cache-control": "no-cache", ...(lastId !== undefined ? { "last-event-id": lastId } : {}) },
        options: { signal: connection.signal },
      });
      if (!res.body) throw new FabricError({ status: res.status, code: "invalid_response", detail: "the event stream has no body" });
      for await (const msg of readSse(res.body, alive)) {
        if (msg.event === "error") throw streamProblem(msg.data, res);
        if (!msg.data) continue;
        const ev = parseEvent(msg.data, res);
        const evId = BigInt(ev.id);
        // Never hand out an event twice, whatever the server replays.
        if (lastId !== undefined && evId <= BigInt(lastId)) continue;
        lastId = String(evId);
        received++;
        failures = 0;
        confirmingEnd = false;
        if (init.isLast?.(ev)) {
          yield ev;
          return;
        }
        // A slow consumer is not an idle connection: no watchdog while the event is out.
        clearTimeout(idle);
        yield ev;
        alive();
      }
      // The server ended the stream without a last event (shutdown, restart, or we
      // resumed after the last event): find out which below.
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      const reason: unknown = connection.signal.aborted ? connection.signal.reason : err; // the idle watchdog's error
      const e = reason instanceof FabricError ? reason : FabricError.network(err, what);
      if (!e.retryable) throw e;
      lastError = e;
    } finally {
      clearTimeout(idle);
      signal?.removeEventListener("abort", onAbort);
      connection.abort();
    }
    if (lastError === undefined && received === 0 && init.emptyEndMayBeFinal && (await init.emptyEndMayBeFinal(signal))) {
      if (confirmingEnd) return;
      confirmingEnd = true;
      continue;
    }
    if (++failures > retry.maxAttempts) {
      throw lastError ?? new FabricError({ status: 0, code: "network_error", detail: init.endedEarly });
    }
    await sleep(backoffMs(failures, retry.initialDelayMs, retry.maxDelayMs), signal);
  }
}

function parseEvent(data: string, res: Response): RunEvent {
  let ev: unknown;
  try {
    ev = JSON.parse(data);
  } catch {
    ev = undefined;
  }
  const e = ev as RunEvent | undefined;
  if (!e || typeof e !== "object" || typeof e.kind !== "string" || !/^\d+$/.test(String(e.id))) {
    throw new FabricError({ status: 0, code: "invalid_response", detail: `not an event: ${data.slice(0, 200)}`, requestId: res.headers.get("x-request-id") ?? undefined });
  }
  return e;
}

/** An `event: error` message: the server's problem document for a stream that failed after it started. */
export function streamProblem(data: string, res: Response): FabricError {
  let p: unknown;
  try {
    p = JSON.parse(data);
  } catch {
    p = undefined;
  }
  return FabricError.fromProblem(p && typeof p === "object" ? p : { detail: data.slice(0, 200) }, { status: 500, requestId: res.headers.get("x-request-id") });
}
