import { echoEmbedding, estimateTokens, splitIntoWordChunks } from "../echo/index.js";
import { contentText, startFakeServer, type FakeBehaviour, type FakeServer } from "./fake-server.js";

export interface FakeOpenAIOptions {
  /** When set, requests must carry `Authorization: Bearer <apiKey>` or get a 401. */
  apiKey?: string;
}

const ERROR_TYPES: Record<number, { type: string; code: string | null; message: string }> = {
  400: { type: "invalid_request_error", code: null, message: "Invalid request." },
  401: { type: "invalid_request_error", code: "invalid_api_key", message: "Incorrect API key provided." },
  403: { type: "invalid_request_error", code: "unsupported_country_region_territory", message: "Country, region, or territory not supported." },
  404: { type: "invalid_request_error", code: "model_not_found", message: "The model does not exist or you do not have access to it." },
  429: { type: "requests", code: "rate_limit_exceeded", message: "Rate limit reached for requests." },
  500: { type: "server_error", code: null, message: "The server had an error while processing your request. Sorry about that!" },
  503: { type: "server_error", code: null, message: "The engine is currently overloaded, please try again later." },
};

function openAIError(status: number, b: FakeBehaviour) {
  const known = ERROR_TYPES[status] ?? { type: "server_error", code: null, message: `HTTP ${status}` };
  return {
    body: { error: { message: b.message ?? known.message, type: b.errorType ?? known.type, param: null, code: known.code } },
    headers: { "x-request-id": `req_fake_${Date.now()}` },
  };
}

/** Echo-like answer and echo-compatible token counts for a chat request body. */
function answer(body: any, b: FakeBehaviour) {
  const messages: { role: string; content: unknown }[] = Array.isArray(body?.messages) ? body.messages : [];
  const texts = messages.map((m) => contentText(m.content));
  const lastUser = [...messages].reverse().find((m) => m.role === "user");
  const text = b.reply ?? (lastUser ? contentText(lastUser.content) : "");
  const promptTokens = b.reportInputTokens ?? estimateTokens(texts.reduce((n, t) => n + t.length, 0));
  const completionTokens = b.reportOutputTokens ?? estimateTokens(text.length);
  return {
    text,
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: b.cachedInputTokens ?? 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
  };
}

function float32Base64(v: number[]): string {
  return Buffer.from(new Float32Array(v).buffer).toString("base64");
}

/**
 * A fake of OpenAI's REST API on 127.0.0.1 speaking its wire format:
 * - POST /v1/chat/completions — JSON, or SSE `data: {chunk}` lines ending in `data: [DONE]`;
 *   with `stream_options.include_usage`, every chunk carries `usage: null` and a last chunk
 *   with empty `choices` carries the usage.
 * - POST /v1/embeddings — float or base64 (the SDK's default) encoding.
 * Errors use OpenAI's `{ error: { message, type, param, code } }` body.
 */
export function startFakeOpenAI(opts: FakeOpenAIOptions = {}): Promise<FakeServer> {
  return startFakeServer({
    urlPath: "/v1",
    errorResponse: openAIError,
    check(req) {
      const auth = req.headers.authorization;
      if (!auth?.startsWith("Bearer ")) return 401;
      if (opts.apiKey !== undefined && auth !== `Bearer ${opts.apiKey}`) return 401;
      return undefined;
    },
    routes: [
      {
        method: "POST",
        path: "/v1/chat/completions",
        scripted: true,
        streams: (body) => body?.stream === true,
        async handle(x) {
          const { body, behaviour } = x;
          if (typeof body?.model !== "string" || !Array.isArray(body.messages) || body.messages.length === 0) {
            return x.json(400, openAIError(400, { message: "'model' and a non-empty 'messages' are required." }).body);
          }
          const { text, usage } = answer(body, behaviour);
          const id = `chatcmpl-fake${x.seq}`;
          const created = Math.floor(Date.now() / 1000);
          const common = { id, created, model: body.model, system_fingerprint: "fp_fake", service_tier: "default" };

          if (body.stream !== true) {
            return x.json(200, {
              ...common,
              object: "chat.completion",
              choices: [
                { index: 0, message: { role: "assistant", content: text, refusal: null, annotations: [] }, logprobs: null, finish_reason: "stop" },
              ],
              usage,
            }, { "x-request-id": `req_fake${x.seq}` });
          }

          const includeUsage = body.stream_options?.include_usage === true;
          const chunk = (choices: unknown[], u?: unknown) =>
            `data: ${JSON.stringify({ ...common, object: "chat.completion.chunk", choices, ...(includeUsage ? { usage: u ?? null } : {}) })}\n\n`;
          const chunks = [
            chunk([{ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }]),
            ...splitIntoWordChunks(text).map((t) => chunk([{ index: 0, delta: { content: t }, logprobs: null, finish_reason: null }])),
            chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]),
            ...(includeUsage ? [chunk([], usage)] : []),
            "data: [DONE]\n\n",
          ];
          x.res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-request-id": `req_fake${x.seq}` });
          const errorChunk = `data: ${JSON.stringify({ error: { message: behaviour.message ?? "The server had an error while processing your request.", type: behaviour.errorType ?? "server_error", param: null, code: null } })}\n\n`;
          if (await x.writeChunks(chunks, errorChunk)) x.res.end();
        },
      },
      {
        method: "POST",
        path: "/v1/embeddings",
        scripted: true,
        handle(x) {
          const { body } = x;
          const inputs: string[] = typeof body?.input === "string" ? [body.input] : Array.isArray(body?.input) ? body.input.map(String) : [];
          if (typeof body?.model !== "string" || inputs.length === 0) {
            return x.json(400, openAIError(400, { message: "'model' and 'input' are required." }).body);
          }
          const base64 = body.encoding_format === "base64";
          const tokens = estimateTokens(inputs.reduce((n, s) => n + s.length, 0));
          x.json(200, {
            object: "list",
            data: inputs.map((s, index) => {
              const v = echoEmbedding(s);
              return { object: "embedding", index, embedding: base64 ? float32Base64(v) : v };
            }),
            model: body.model,
            usage: { prompt_tokens: tokens, total_tokens: tokens },
          });
        },
      },
    ],
  });
}
