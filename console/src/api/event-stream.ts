/**
 * Follows one of the API's SSE endpoints over `fetch` (EventSource cannot send an
 * Authorization header), resuming after a dropped connection with `Last-Event-ID` set
 * to the last event received — the server replays everything after it, so no event is
 * lost and none is seen twice.
 *
 * Invariant: `onEvent` sees ids in strictly increasing order; a replayed id at or below
 * the last one delivered is dropped (a reconnect that races a late chunk cannot
 * duplicate an event).
 */
import { SseParser } from "./sse-parser.js";

export interface StreamProblem {
  status: number;
  title: string;
  detail?: string;
  code?: string;
  request_id?: string;
}

export type StreamState = "connecting" | "live" | "reconnecting" | "ended" | "failed";

export interface FollowOptions<E extends { id: number | string }> {
  /** Absolute or page-relative URL of the SSE endpoint. */
  url: string;
  /** Fresh request headers for every (re)connection, e.g. a renewed access token. */
  headers: () => Promise<Record<string, string>> | Record<string, string>;
  /** Resume after this event id (0 or absent: from the start of what the endpoint replays). */
  afterId?: number;
  onEvent: (event: E) => void;
  onState?: (state: StreamState, problem?: StreamProblem) => void;
  /** Whether a normal end of the stream is final (e.g. the run reached a terminal state). Default: never — reconnect. */
  isFinished?: () => boolean;
  signal: AbortSignal;
  /** Delay before the n-th consecutive reconnection (n ≥ 1). Default: 0.5 s doubling, at most 10 s. */
  backoffMs?: (attempt: number) => number;
  fetch?: typeof fetch;
}

const defaultBackoff = (n: number) => Math.min(10_000, 500 * 2 ** (n - 1));

/** Resolves when the stream is finished, failed for good, or aborted. Never rejects. */
export async function followEventStream<E extends { id: number | string }>(opts: FollowOptions<E>): Promise<void> {
  const doFetch = opts.fetch ?? fetch.bind(globalThis);
  let lastId = opts.afterId ?? 0;
  let failures = 0;
  const state = (s: StreamState, p?: StreamProblem) => opts.onState?.(s, p);
  while (!opts.signal.aborted) {
    state(failures ? "reconnecting" : "connecting");
    let response: Response;
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream", ...(await opts.headers()) };
      if (lastId > 0) headers["Last-Event-ID"] = String(lastId);
      response = await doFetch(opts.url, { headers, signal: opts.signal, cache: "no-store" });
    } catch {
      if (opts.signal.aborted) return;
      await pause(opts, ++failures);
      continue;
    }
    if (!response.ok || !response.body) {
      const problem = await readProblem(response);
      // 5xx and 429 are worth another try; any other refusal is final (not found, forbidden, signed out).
      if (response.status >= 500 || response.status === 429) {
        state("reconnecting", problem);
        await pause(opts, ++failures);
        continue;
      }
      state("failed", problem);
      return;
    }
    state("live");
    const parser = new SseParser();
    const decoder = new TextDecoder();
    const reader = response.body.getReader();
    let streamProblem: StreamProblem | undefined;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const message of parser.push(decoder.decode(value, { stream: true }))) {
          if (message.event === "error") {
            streamProblem = safeJson(message.data) as StreamProblem | undefined;
            continue;
          }
          const event = safeJson(message.data) as E | undefined;
          if (!event) continue;
          const id = Number(event.id ?? message.id);
          if (!(id > lastId)) continue;
          lastId = id;
          failures = 0;
          opts.onEvent(event);
        }
      }
    } catch {
      // The connection dropped mid-stream: resume from lastId.
    } finally {
      reader.releaseLock();
    }
    if (opts.signal.aborted) return;
    if (opts.isFinished?.()) {
      state("ended");
      return;
    }
    if (streamProblem && streamProblem.status && streamProblem.status < 500) {
      state("failed", streamProblem);
      return;
    }
    await pause(opts, ++failures);
  }
}

async function pause(opts: FollowOptions<never> | FollowOptions<any>, attempt: number): Promise<void> {
  const ms = (opts.backoffMs ?? defaultBackoff)(attempt);
  await new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      opts.signal.removeEventListener("abort", done);
      resolve();
    }
    opts.signal.addEventListener("abort", done, { once: true });
  });
}

async function readProblem(response: Response): Promise<StreamProblem> {
  const body = safeJson(await response.text().catch(() => "")) as Partial<StreamProblem> | undefined;
  return { status: response.status, title: body?.title ?? response.statusText ?? "request failed", detail: body?.detail, code: body?.code, request_id: body?.request_id ?? response.headers.get("x-request-id") ?? undefined };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
