import { estimateTokens, splitIntoWordChunks } from "../echo/index.js";
import { contentText, startFakeServer, type FakeBehaviour, type FakeServer } from "./fake-server.js";

export interface FakeAnthropicOptions {
  /** When set, requests must carry this key (as `x-api-key` or `Authorization: Bearer`) or get a 401. */
  apiKey?: string;
}

const ERROR_TYPES: Record<number, { type: string; message: string }> = {
  400: { type: "invalid_request_error", message: "Invalid request." },
  401: { type: "authentication_error", message: "invalid x-api-key" },
  403: { type: "permission_error", message: "Your API key does not have permission to use the specified resource." },
  404: { type: "not_found_error", message: "The requested resource could not be found." },
  413: { type: "request_too_large", message: "Request exceeds the maximum allowed number of bytes." },
  429: { type: "rate_limit_error", message: "Number of request tokens has exceeded your per-minute rate limit." },
  500: { type: "api_error", message: "Internal server error" },
  503: { type: "api_error", message: "Service unavailable" },
  529: { type: "overloaded_error", message: "Overloaded" },
};

function anthropicErrorBody(status: number, b: FakeBehaviour) {
  const known = ERROR_TYPES[status] ?? { type: "api_error", message: `HTTP ${status}` };
  return { type: "error", error: { type: b.errorType ?? known.type, message: b.message ?? known.message }, request_id: `req_fake${Date.now()}` };
}

/**
 * Echo-like answer. `input_tokens` EXCLUDES cache reads and writes, as on the real API: the
 * echo-style total is split into uncached + cached + written.
 */
function answer(body: any, b: FakeBehaviour) {
  const messages: { role: string; content: unknown }[] = Array.isArray(body?.messages) ? body.messages : [];
  const systemChars = contentText(body?.system).length;
  const inputChars = messages.reduce((n, m) => n + contentText(m.content).length, systemChars);
  const lastUser = [...messages].reverse().find((m) => m.role === "user");
  const text = b.reply ?? (lastUser ? contentText(lastUser.content) : "");
  const cacheRead = b.cachedInputTokens ?? 0;
  const cacheWrite = b.cacheWriteTokens ?? 0;
  return {
    text,
    outputTokens: b.reportOutputTokens ?? estimateTokens(text.length),
    inputUsage: {
      input_tokens: Math.max(0, (b.reportInputTokens ?? estimateTokens(inputChars)) - cacheRead - cacheWrite),
      cache_creation_input_tokens: cacheWrite,
      cache_read_input_tokens: cacheRead,
    },
  };
}

function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * A fake of Anthropic's Messages API on 127.0.0.1 speaking its wire format:
 * POST /v1/messages as JSON, or (stream: true) the SSE sequence message_start,
 * content_block_start, ping, content_block_delta…, content_block_stop, message_delta (with
 * cumulative output usage), message_stop. Errors use `{type:"error", error:{type, message}}`,
 * in-stream errors an `event: error`. Requires an API key and an `anthropic-version` header.
 */
export function startFakeAnthropic(opts: FakeAnthropicOptions = {}): Promise<FakeServer> {
  return startFakeServer({
    errorResponse: (status, b) => ({ body: anthropicErrorBody(status, b), headers: { "request-id": `req_fake${Date.now()}` } }),
    check(req) {
      // Older SDKs send `x-api-key`; @anthropic-ai/sdk 1.x sends `Authorization: Bearer <key>`.
      const bearer = req.headers.authorization?.startsWith("Bearer ") ? req.headers.authorization.slice(7) : undefined;
      const key = req.headers["x-api-key"] ?? bearer;
      if (!key || (opts.apiKey !== undefined && key !== opts.apiKey)) return 401;
      if (!req.headers["anthropic-version"]) return 400;
      return undefined;
    },
    routes: [
      {
        method: "POST",
        path: "/v1/messages",
        scripted: true,
        streams: (body) => body?.stream === true,
        async handle(x) {
          const { body, behaviour } = x;
          const problem =
            typeof body?.model !== "string" ? "model: Field required"
            : typeof body?.max_tokens !== "number" ? "max_tokens: Field required"
            : !Array.isArray(body?.messages) || body.messages.length === 0 ? "messages: at least one message is required"
            : undefined;
          if (problem) return x.json(400, anthropicErrorBody(400, { message: problem }));

          const { text, outputTokens, inputUsage } = answer(body, behaviour);
          const id = `msg_fake${x.seq}`;
          if (body.stream !== true) {
            return x.json(200, {
              id,
              type: "message",
              role: "assistant",
              model: body.model,
              content: [{ type: "text", text }],
              stop_reason: "end_turn",
              stop_sequence: null,
              usage: { ...inputUsage, output_tokens: outputTokens, service_tier: "standard" },
            });
          }

          const chunks = [
            sse("message_start", {
              type: "message_start",
              message: {
                id, type: "message", role: "assistant", model: body.model, content: [], stop_reason: null, stop_sequence: null,
                // The real API reports a small placeholder output count here; the final count
                // arrives (cumulatively) in message_delta.
                usage: { ...inputUsage, output_tokens: 1, service_tier: "standard" },
              },
            }),
            sse("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
            sse("ping", { type: "ping" }),
            ...splitIntoWordChunks(text).map((t) =>
              sse("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: t } }),
            ),
            sse("content_block_stop", { type: "content_block_stop", index: 0 }),
            sse("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: outputTokens } }),
            sse("message_stop", { type: "message_stop" }),
          ];
          x.res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "request-id": `req_fake${x.seq}` });
          const errorChunk = sse("error", {
            type: "error",
            error: { type: behaviour.errorType ?? "overloaded_error", message: behaviour.message ?? "Overloaded" },
          });
          if (await x.writeChunks(chunks, errorChunk)) x.res.end();
        },
      },
    ],
  });
}
