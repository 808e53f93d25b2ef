/** The organization's live event stream. */
import { followEvents, type RetryOptions } from "../core/follow-events.js";
import type { RestTransport } from "../core/rest-transport.js";
import type { FabricEvent } from "../types.js";

export interface EventStreamOptions {
  /** Event kinds to receive; a trailing `*` matches a prefix (`workflow.run.*`). Default: all. */
  kinds?: string | readonly string[];
  /** Only this run's events. */
  runId?: string;
  /** Only events of this team's runs. */
  teamId?: string;
  /** Start after this event id (replaying what followed it) instead of from now. */
  afterId?: string | number | bigint;
  /** Ends the stream (the iterator then finishes normally). */
  signal?: AbortSignal;
  /** Overrides the client's reconnection policy. */
  retry?: RetryOptions;
}

export class EventsResource {
  constructor(
    private readonly transport: RestTransport,
    private readonly reconnect: Required<RetryOptions>,
  ) {}

  /**
   * The organization's events the caller may see (run and node events of readable
   * teams, plus organization-wide events for callers with `event.read` across it), live,
   * in id order. Reconnects like `runs.watch` (`Last-Event-ID`, bounded backoff, no gap,
   * no duplicate); a 4xx — e.g. the key was revoked mid-stream — is thrown.
   *
   * It never ends by itself: abort `signal` (or break out of the loop) to stop; after an
   * abort the iterator simply finishes.
   */
  async *stream(opts: EventStreamOptions = {}): AsyncGenerator<FabricEvent, void, undefined> {
    const kinds = typeof opts.kinds === "string" ? opts.kinds : opts.kinds?.join(",");
    const { signal } = opts;
    if (signal?.aborted) return;
    try {
      yield* followEvents(this.transport, {
        what: "organization event stream",
        path: "/v1/events/stream",
        query: { kinds: kinds || undefined, run_id: opts.runId, team_id: opts.teamId },
        afterId: opts.afterId,
        signal,
        retry: { ...this.reconnect, ...opts.retry },
        endedEarly: "the organization event stream kept ending",
      });
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
  }
}
