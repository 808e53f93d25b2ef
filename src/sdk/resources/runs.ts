/**
 * Workflow runs: start, read, list, control (cancel, pause, resume, signal, rerun), and
 * follow (`watch`, `wait`). A job is a run of a built-in one-node workflow, so jobs
 * follow theirs with the same two functions, exported here.
 */
import { FabricError } from "../core/fabric-error.js";
import { followEvents, type RetryOptions } from "../core/follow-events.js";
import { listAll, type Page } from "../core/paging.js";
import { unwrap, type RequestOptions, type RestTransport } from "../core/rest-transport.js";
import type { ListRunsParams, Run, RunEvent, SignalRunRequest, StartRunRequest } from "../types.js";

/** Options of `runs.watch` and `jobs.watch`. */
export interface WatchOptions {
  /** Start after this event id (exclusive) instead of from the run's (job's) first event. */
  afterId?: string | number | bigint;
  signal?: AbortSignal;
  /** Overrides the client's reconnection policy. */
  retry?: RetryOptions;
}

/** Options of `runs.wait` and `jobs.wait`. */
export interface WaitOptions {
  /** Give up after this long with a FabricError `timeout` (the run or job keeps going). Default: no limit. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const terminalEventKinds: ReadonlySet<string> = new Set(["workflow.run.completed", "workflow.run.failed", "workflow.run.cancelled"]);
export const terminalRunStatuses: ReadonlySet<Run["status"]> = new Set(["completed", "failed", "cancelled"]);

export class RunsResource {
  constructor(
    private readonly transport: RestTransport,
    private readonly reconnect: Required<RetryOptions>,
  ) {}

  /** Starts a run (queued at once). With an `idempotency_key` already used, the original run. */
  async start(request: StartRunRequest, options?: RequestOptions): Promise<Run> {
    return unwrap(await this.transport.call("post", "/v1/workflow-runs", { body: request, options }), "startRun");
  }

  /** A run with its context and nodes. */
  async get(id: string, options?: RequestOptions): Promise<Run> {
    return unwrap(await this.transport.call("get", "/v1/workflow-runs/{id}", { path: { id }, options }), "getRun");
  }

  /** One page of runs, newest first (nodes are not filled in lists). */
  async list(params: ListRunsParams = {}, options?: RequestOptions): Promise<Page<Run>> {
    return this.transport.call("get", "/v1/workflow-runs", { query: params, options });
  }

  /** Every run matching `params`, page by page. */
  listAll(params: ListRunsParams = {}, options?: RequestOptions): AsyncGenerator<Run, void, undefined> {
    return listAll((page_token) => this.list({ ...params, page_token }, options), params.page_token);
  }

  /** Cancels a run, aborting in-flight steps. */
  async cancel(id: string, reason?: string, options?: RequestOptions): Promise<Run> {
    return unwrap(await this.transport.call("post", "/v1/workflow-runs/{id}/cancel", { path: { id }, body: reason === undefined ? {} : { reason }, options }), "cancelRun");
  }

  /** Pauses a run: in-flight steps finish, no new ones start. */
  async pause(id: string, options?: RequestOptions): Promise<Run> {
    return unwrap(await this.transport.call("post", "/v1/workflow-runs/{id}/pause", { path: { id }, body: {}, options }), "pauseRun");
  }

  /** Resumes a paused run. */
  async resume(id: string, options?: RequestOptions): Promise<Run> {
    return unwrap(await this.transport.call("post", "/v1/workflow-runs/{id}/resume", { path: { id }, body: {}, options }), "resumeRun");
  }

  /** Signals a run waiting in a `workflow.wait_signal` node; `payload` becomes that node's output. */
  async signal(id: string, request: SignalRunRequest = {}, options?: RequestOptions): Promise<Run> {
    return unwrap(await this.transport.call("post", "/v1/workflow-runs/{id}/signal", { path: { id }, body: request, options }), "signalRun");
  }

  /** Re-executes a failed run from the nodes that did not succeed; resolves with the new run. */
  async rerun(id: string, options?: RequestOptions): Promise<Run> {
    return unwrap(await this.transport.call("post", "/v1/workflow-runs/{id}/rerun", { path: { id }, body: {}, options }), "rerunRun");
  }

  /**
   * The run's events, in id order: the history (after `afterId`), then live ones; the
   * iterator ends after the terminal event (`workflow.run.completed|failed|cancelled`).
   *
   * A dropped connection, a 5xx / 429, or a server-side stream error is retried with
   * `Last-Event-ID` (bounded, exponential backoff with jitter; the attempt count resets
   * whenever an event arrives), so the consumer sees no gap and no duplicate. A 4xx
   * (`not_found`, `unauthenticated`, …) is thrown at once. Breaking out of the loop, or
   * aborting `signal`, closes the connection.
   */
  async *watch(id: string, opts: WatchOptions = {}): AsyncGenerator<RunEvent, void, undefined> {
    yield* watchUntilTerminal(this.transport, { ...this.reconnect, ...opts.retry }, { noun: "run", id, path: "/v1/workflow-runs/{id}/events", get: (signal) => this.get(id, { signal }) }, opts);
  }

  /**
   * Resolves with the run once it is terminal (completed, failed or cancelled — a
   * failed run resolves, it does not throw). Follows the event stream, no polling.
   * After `timeoutMs`, rejects with a FabricError `timeout` (the run is unaffected).
   */
  async wait(id: string, opts: WaitOptions = {}): Promise<Run> {
    return waitUntilTerminal({ noun: "run", id, watch: (signal) => this.watch(id, { signal }), get: (signal) => this.get(id, { signal }) }, opts);
  }
}

/** What runs and jobs share: a status that says whether it is over. */
interface RunLike {
  status: Run["status"];
}

/**
 * The event stream of a run (or of a job, i.e. its run): `followEvents` ending after the
 * terminal event, with the run's status telling a clean end past the last event apart
 * from an early close. Shared by `runs.watch` and `jobs.watch`.
 */
export function watchUntilTerminal(
  transport: RestTransport,
  retry: Required<RetryOptions>,
  target: { noun: string; id: string; path: string; get: (signal: AbortSignal | undefined) => Promise<RunLike> },
  opts: WatchOptions,
): AsyncGenerator<RunEvent, void, undefined> {
  const { noun, id } = target;
  return followEvents(transport, {
    what: `event stream of ${noun} ${id}`,
    path: target.path,
    pathParams: { id },
    afterId: opts.afterId,
    signal: opts.signal,
    retry,
    isLast: (ev) => terminalEventKinds.has(ev.kind),
    // An empty, clean end: if the run is over, either its terminal event is at or
    // before lastId (resumed past the end: done) or the server closed before
    // delivering it — one more connection tells them apart.
    emptyEndMayBeFinal: async (signal) => terminalRunStatuses.has((await target.get(signal)).status),
    endedEarly: `the event stream of ${noun} ${id} kept ending before the ${noun} did`,
  });
}

/**
 * Follows `watch` to the terminal event, then resolves with `get` (which must be
 * terminal by then). `timeoutMs` rejects with a FabricError `timeout`; `signal` rethrows
 * its reason. Shared by `runs.wait` and `jobs.wait`.
 */
export async function waitUntilTerminal<T extends RunLike>(
  target: { noun: string; id: string; watch: (signal: AbortSignal) => AsyncIterable<RunEvent>; get: (signal: AbortSignal) => Promise<T> },
  opts: WaitOptions,
): Promise<T> {
  const { noun, id } = target;
  const timeout = new AbortController();
  const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => timeout.abort(), opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout.signal]) : timeout.signal;
  try {
    for await (const ev of target.watch(signal)) {
      if (terminalEventKinds.has(ev.kind)) break;
    }
    const done = await target.get(signal);
    if (!terminalRunStatuses.has(done.status)) throw new FabricError({ status: 0, code: "invalid_response", detail: `the event stream of ${noun} ${id} ended but the ${noun} is ${done.status}` });
    return done;
  } catch (err) {
    if (timeout.signal.aborted && !opts.signal?.aborted) throw new FabricError({ status: 0, code: "timeout", detail: `${noun} ${id} did not finish within ${opts.timeoutMs} ms` });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
