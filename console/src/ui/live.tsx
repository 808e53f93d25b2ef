import { useEffect, useRef, useState } from "preact/hooks";
import { followEventStream, type StreamProblem, type StreamState } from "../api/event-stream.js";
import { session } from "../api/session.js";
import type { FabricEvent } from "../api/client.js";
import { ApiError } from "../api/problem.js";

/**
 * Follows an SSE endpoint of the API while the component is mounted (and `url` is set),
 * with the session's credentials on every reconnection. `onEvent` is read through a ref,
 * so a re-render never restarts the stream.
 */
export function useEventStream(url: string | undefined, onEvent: (e: FabricEvent) => void, opts: { isFinished?: () => boolean; afterId?: number } = {}) {
  const [state, setState] = useState<{ state: StreamState; problem?: StreamProblem }>({ state: "connecting" });
  const handler = useRef(onEvent);
  handler.current = onEvent;
  const finished = useRef(opts.isFinished);
  finished.current = opts.isFinished;
  useEffect(() => {
    if (!url) return;
    const controller = new AbortController();
    void followEventStream<FabricEvent>({
      url,
      afterId: opts.afterId,
      headers: () => session.headers(),
      onEvent: (e) => handler.current(e),
      onState: (s, problem) => setState({ state: s, problem }),
      isFinished: () => finished.current?.() ?? false,
      signal: controller.signal,
    });
    return () => controller.abort();
  }, [url]);
  const error = state.problem ? new ApiError(state.problem.status, state.problem.title, state.problem.detail, state.problem.code ?? "stream_failed", state.problem.request_id) : undefined;
  return { state: state.state, error };
}

export function StreamStatus({ state }: { state: StreamState }) {
  const text: Record<StreamState, string> = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", ended: "complete", failed: "stopped" };
  return (
    <span class={`stream stream-${state}`} role="status" data-stream-state={state}>
      {text[state]}
    </span>
  );
}
