/** Direct provider calls — plain, streamed, or only estimated — and the providers' catalogue. */
import { FabricError } from "../core/fabric-error.js";
import { streamProblem, type RetryOptions } from "../core/follow-events.js";
import { readSse } from "../core/read-sse.js";
import { unwrap, type RequestOptions, type RestTransport } from "../core/rest-transport.js";
import type { EstimateCostResponse, ExecuteResponse, ListProvidersResponse, ProviderCall, ProviderStreamChunk, TextDelta } from "../types.js";

export class ProvidersResource {
  constructor(
    private readonly transport: RestTransport,
    private readonly reconnect: Required<RetryOptions>,
  ) {}

  /** The enabled providers, their models with prices (of the caller's price table), breakers and latency, and the default routing strategy. */
  async list(options?: RequestOptions): Promise<ListProvidersResponse> {
    return unwrap(await this.transport.call("get", "/v1/providers", { options }), "listProviders");
  }

  /**
   * One provider call: routed (strategy, pins, tier, health), checked against the
   * organization's and `team_id`'s policy, reserved against every budget that applies,
   * made (with fallback), and settled in a usage record. Refusals are FabricErrors with
   * their code: `model_not_allowed` (403), `budget_exceeded` / `rate_limited` (429, with
   * `retryAfterSeconds` when waiting helps). Never retried by the SDK (a POST).
   */
  async execute(call: ProviderCall, options?: RequestOptions): Promise<ExecuteResponse> {
    return unwrap(await this.transport.call("post", "/v1/providers/execute", { body: call, options }), "executeProvider");
  }

  /**
   * An `ai.generate` call, streamed: `{ type: "delta", text }` as text arrives (the deltas
   * concatenate to the result's text), then one `{ type: "result", result }` (usage,
   * cost, routing), after which the iterator ends.
   *
   * A refusal or a failure before the first token is thrown as the call's FabricError
   * (as `execute` throws it); a failure after the stream began arrives as the server's
   * problem and is thrown the same way. A stream that ends (or, counting the server's
   * heartbeats, stays silent for the client's `retry.idleTimeoutMs`) before the result is
   * a `network_error`. Never retried: the call may have been made and billed.
   *
   * Breaking out of the loop, or aborting `options.signal` (its reason is rethrown),
   * aborts the request, and so the provider call.
   */
  async *stream(call: ProviderCall, options: RequestOptions = {}): AsyncGenerator<ProviderStreamChunk, void, undefined> {
    const what = "POST /v1/providers/execute/stream";
    const { signal } = options;
    signal?.throwIfAborted();
    const idleMs = this.reconnect.idleTimeoutMs;
    const connection = new AbortController();
    const onAbort = () => connection.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    let idle: ReturnType<typeof setTimeout> | undefined;
    const alive = () => {
      clearTimeout(idle);
      idle = setTimeout(() => connection.abort(new FabricError({ status: 0, code: "network_error", detail: `${what}: no data for ${idleMs} ms` })), idleMs);
    };
    try {
      alive();
      const res = await this.transport.open("post", "/v1/providers/execute/stream", {
        body: call,
        accept: "text/event-stream",
        extraHeaders: { "cache-control": "no-cache" },
        options: { headers: options.headers, signal: connection.signal },
      });
      if (!res.body) throw new FabricError({ status: res.status, code: "invalid_response", detail: `${what}: the event stream has no body` });
      for await (const msg of readSse(res.body, alive)) {
        if (msg.event === "error") throw streamProblem(msg.data, res);
        if (msg.event === "delta") {
          const delta = parseJsonObject(msg.data, res) as Partial<TextDelta>;
          if (typeof delta.text !== "string") throw invalidMessage(msg.data, res);
          // A slow consumer is not an idle connection: no watchdog while the chunk is out.
          clearTimeout(idle);
          yield { type: "delta", text: delta.text };
          alive();
        } else if (msg.event === "result") {
          const result = parseJsonObject(msg.data, res) as ExecuteResponse;
          if (typeof result.text !== "string") throw invalidMessage(msg.data, res);
          clearTimeout(idle);
          yield { type: "result", result };
          return;
        }
        // Other events (none today) are ignored: newer servers may add some.
      }
      throw new FabricError({ status: 0, code: "network_error", detail: `${what}: the stream ended before the result`, requestId: res.headers.get("x-request-id") ?? undefined });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (connection.signal.aborted && connection.signal.reason instanceof FabricError) throw connection.signal.reason; // the idle watchdog
      throw err instanceof FabricError ? err : FabricError.network(err, what);
    } finally {
      clearTimeout(idle);
      signal?.removeEventListener("abort", onAbort);
      connection.abort();
    }
  }

  /**
   * What a call would cost and where it would be routed, without calling anything: the
   * decision, the upper-bound estimate, every budget that applies, and whether the call
   * would be admitted now (`allowed`, else `refusal_code`; a refusal is not an error here).
   */
  async estimate(call: ProviderCall, options?: RequestOptions): Promise<EstimateCostResponse> {
    return unwrap(await this.transport.call("post", "/v1/providers/estimate", { body: call, options }), "estimateCost");
  }
}

function parseJsonObject(data: string, res: Response): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    v = undefined;
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw invalidMessage(data, res);
  return v as Record<string, unknown>;
}

function invalidMessage(data: string, res: Response): FabricError {
  return new FabricError({ status: 0, code: "invalid_response", detail: `not a stream message of the contract: ${data.slice(0, 200)}`, requestId: res.headers.get("x-request-id") ?? undefined });
}
