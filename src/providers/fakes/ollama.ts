import { echoEmbedding, estimateTokens, splitIntoWordChunks } from "../echo/index.js";
import { contentText, startFakeServer, type FakeBehaviour, type FakeServer } from "./fake-server.js";

export interface FakeOllamaOptions {
  /** Models listed by /api/tags. Default: llama3.2:latest and nomic-embed-text:latest. */
  models?: string[];
}

function ollamaError(status: number, b: FakeBehaviour) {
  const message =
    b.message ??
    (status === 404 ? "model not found, try pulling it first"
    : status === 503 ? "server busy, please try again.  maximum pending requests exceeded"
    : status === 400 ? "invalid request"
    : status === 500 ? "llama runner process has terminated: exit status 2"
    : `HTTP ${status}`);
  return { body: { error: message } };
}

function answer(body: any, b: FakeBehaviour) {
  const messages: { role: string; content: unknown }[] = Array.isArray(body?.messages) ? body.messages : [];
  const lastUser = [...messages].reverse().find((m) => m.role === "user");
  const text = b.reply ?? (lastUser ? contentText(lastUser.content) : "");
  return {
    text,
    promptEvalCount: b.reportInputTokens ?? estimateTokens(messages.reduce((n, m) => n + contentText(m.content).length, 0)),
    evalCount: b.reportOutputTokens ?? estimateTokens(text.length),
  };
}

/**
 * A fake Ollama server on 127.0.0.1 speaking its wire format:
 * - POST /api/chat — streams NDJSON by default (as Ollama does when `stream` is omitted);
 *   `stream: false` gives one JSON object. Usage (`prompt_eval_count`, `eval_count`) appears
 *   only on the final `done: true` object.
 * - POST /api/embed — `{ embeddings: number[][] }`.
 * - GET /api/tags — the installed models.
 * Errors are `{ "error": "..." }`.
 */
export function startFakeOllama(opts: FakeOllamaOptions = {}): Promise<FakeServer> {
  const models = opts.models ?? ["llama3.2:latest", "nomic-embed-text:latest"];
  return startFakeServer({
    errorResponse: (status, b) => ollamaError(status, b),
    routes: [
      {
        method: "GET",
        path: "/api/tags",
        scripted: false,
        handle(x) {
          x.json(200, {
            models: models.map((name, i) => ({
              name,
              model: name,
              modified_at: "2025-01-01T00:00:00Z",
              size: 2_000_000_000,
              digest: `sha256:${String(i).padStart(64, "0")}`,
              details: { parent_model: "", format: "gguf", family: name.split(/[:.\d]/)[0], families: null, parameter_size: "3B", quantization_level: "Q4_K_M" },
            })),
          });
        },
      },
      {
        method: "POST",
        path: "/api/chat",
        scripted: true,
        streams: (body) => body?.stream !== false,
        async handle(x) {
          const { body, behaviour } = x;
          if (typeof body?.model !== "string" || body.model === "") return x.json(400, { error: "model is required" });
          const { text, promptEvalCount, evalCount } = answer(body, behaviour);
          const createdAt = new Date().toISOString();
          const final = {
            model: body.model,
            created_at: createdAt,
            message: { role: "assistant", content: "" },
            done_reason: "stop",
            done: true,
            total_duration: 1_000_000,
            load_duration: 100_000,
            prompt_eval_count: promptEvalCount,
            prompt_eval_duration: 200_000,
            eval_count: evalCount,
            eval_duration: 700_000,
          };
          if (body.stream === false) return x.json(200, { ...final, message: { role: "assistant", content: text } });

          const line = (o: unknown) => `${JSON.stringify(o)}\n`;
          const chunks = [
            ...splitIntoWordChunks(text).map((t) =>
              line({ model: body.model, created_at: createdAt, message: { role: "assistant", content: t }, done: false }),
            ),
            line(final),
          ];
          x.res.writeHead(200, { "content-type": "application/x-ndjson" });
          if (await x.writeChunks(chunks, line({ error: behaviour.message ?? "an error was encountered while running the model" }))) x.res.end();
        },
      },
      {
        method: "POST",
        path: "/api/embed",
        scripted: true,
        handle(x) {
          const { body } = x;
          const inputs: string[] = typeof body?.input === "string" ? [body.input] : Array.isArray(body?.input) ? body.input.map(String) : [];
          if (typeof body?.model !== "string") return x.json(400, { error: "model is required" });
          x.json(200, {
            model: body.model,
            embeddings: inputs.map(echoEmbedding),
            total_duration: 1_000_000,
            load_duration: 100_000,
            prompt_eval_count: estimateTokens(inputs.reduce((n, s) => n + s.length, 0)),
          });
        },
      },
    ],
  });
}
