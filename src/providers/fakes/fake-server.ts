import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * What the fake does with one request. An empty object is the default: a deterministic
 * echo of the last user message. Fields combine: `delayMs` first, then `status` (an error in
 * the provider's own format) or a normal reply shaped by the other fields.
 */
export interface FakeBehaviour {
  /** Reply with this HTTP status and the provider's error body (429, 500, 503, 529, 401, 400 …). */
  status?: number;
  /** `retry-after` header value: seconds ("1", "0.2") or an HTTP date. */
  retryAfter?: string;
  /** `retry-after-ms` header value (OpenAI's non-standard, millisecond form). */
  retryAfterMs?: string;
  /** `x-should-retry` header value ("true" | "false"). */
  shouldRetry?: string;
  /** Overrides the provider's error type in the body (e.g. "overloaded_error"). */
  errorType?: string;
  /** Overrides the error message in the body. */
  message?: string;
  /** Wait this long before answering; abandoned if the client disconnects first. */
  delayMs?: number;
  /** Wait this long between stream chunks. */
  chunkDelayMs?: number;
  /**
   * Streaming: send this many chunks (SSE events / NDJSON lines) then destroy the socket.
   * Non-streaming: destroy the socket without answering.
   */
  breakStreamAfterChunks?: number;
  /** Streaming: after this many chunks, send the provider's in-stream error and end cleanly. */
  streamErrorAfterChunks?: number;
  /** Reply text instead of the echo. */
  reply?: string;
  /** Misreport usage (a misbehaving provider): these token counts instead of the counted ones. */
  reportInputTokens?: number;
  reportOutputTokens?: number;
  /** Input tokens reported as read from the prompt cache (OpenAI, Anthropic). */
  cachedInputTokens?: number;
  /** Input tokens reported as written to the prompt cache (Anthropic). */
  cacheWriteTokens?: number;
}

export interface RecordedRequest {
  method: string;
  /** Path including the query string, e.g. "/v1/chat/completions". */
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body (undefined for bodiless or non-JSON requests). */
  body: any;
  /** The behaviour applied to this request. */
  behaviour: FakeBehaviour;
  /** True once the client closed the connection before the fake finished answering. */
  closedByClient: boolean;
  /** Resolves when the exchange is over (answered, broken by the fake, or closed by the client). */
  closed: Promise<void>;
}

export interface FakeServer {
  /** Pass this as the SDK's baseURL (OpenAI: includes /v1; Anthropic, Ollama: the origin). */
  readonly url: string;
  /** Every request received, in arrival order. */
  readonly requests: RecordedRequest[];
  /** Queues behaviours for the next scripted requests, in order; then the default resumes. */
  script(next: FakeBehaviour[]): void;
  /** Drops unconsumed scripted behaviours and the recorded requests (between tests). */
  reset(): void;
  close(): Promise<void>;
}

/** Per-request helpers handed to a route. */
export interface FakeExchange {
  req: IncomingMessage;
  res: ServerResponse;
  body: any;
  behaviour: FakeBehaviour;
  /** Sequence number of this request on this server, for ids. */
  seq: number;
  /** False once the client has gone away. */
  isOpen(): boolean;
  /** Sleeps; resolves false early if the client disconnects. */
  pause(ms: number): Promise<boolean>;
  /** Sends JSON with a status and extra headers. */
  json(status: number, body: unknown, headers?: Record<string, string>): void;
  /**
   * Writes stream chunks honouring `chunkDelayMs`, `breakStreamAfterChunks` and
   * `streamErrorAfterChunks`; returns false when the stream was cut and the route must stop.
   * `errorChunk` is what the provider sends for an in-stream error.
   */
  writeChunks(chunks: string[], errorChunk: string): Promise<boolean>;
}

export interface FakeRoute {
  method: "GET" | "POST";
  path: string;
  /** Whether this route consumes a scripted behaviour (model calls do; listings do not). */
  scripted: boolean;
  /** Whether a request body asks for a streamed answer. */
  streams?(body: any): boolean;
  handle(x: FakeExchange): Promise<void> | void;
}

export interface FakeServerOptions {
  /** Path prefix included in `url` (e.g. "/v1"). */
  urlPath?: string;
  routes: FakeRoute[];
  /** Renders an error in the provider's format; used for scripted statuses, 404s and bad JSON. */
  errorResponse(status: number, behaviour: FakeBehaviour): { body: unknown; headers?: Record<string, string> };
  /** Rejects a request before routing (e.g. missing auth); returns an error status or undefined. */
  check?(req: IncomingMessage): number | undefined;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}

function retryHeaders(b: FakeBehaviour): Record<string, string> {
  const h: Record<string, string> = {};
  if (b.retryAfter !== undefined) h["retry-after"] = b.retryAfter;
  if (b.retryAfterMs !== undefined) h["retry-after-ms"] = b.retryAfterMs;
  if (b.shouldRetry !== undefined) h["x-should-retry"] = b.shouldRetry;
  return h;
}

/** The node:http engine shared by the three fakes: scripting, recording, delays, cut streams. */
export async function startFakeServer(opts: FakeServerOptions): Promise<FakeServer> {
  const queue: FakeBehaviour[] = [];
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let seq = 0;

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(`fake server bug: ${String(err)}`);
      } else {
        res.destroy();
      }
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const url = new URL(req.url ?? "/", "http://fake");
    const route = opts.routes.find((r) => r.method === req.method && r.path === url.pathname);
    const behaviour = (route?.scripted ? queue.shift() : undefined) ?? {};

    let body: any;
    let badJson = false;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        badJson = true;
      }
    }

    let resolveClosed!: () => void;
    let destroyedByFake = false;
    const recorded: RecordedRequest = {
      method: req.method ?? "GET",
      path: req.url ?? "/",
      headers: req.headers,
      body,
      behaviour,
      closedByClient: false,
      closed: new Promise<void>((r) => (resolveClosed = r)),
    };
    requests.push(recorded);
    res.on("close", () => {
      if (!res.writableFinished && !destroyedByFake) recorded.closedByClient = true;
      resolveClosed();
    });

    const n = ++seq;
    const isOpen = () => !res.destroyed && !res.writableEnded;
    const pause = (ms: number) =>
      new Promise<boolean>((resolve) => {
        if (!isOpen()) return resolve(false);
        const onClose = () => {
          clearTimeout(timer);
          resolve(false);
        };
        const timer = setTimeout(() => {
          res.off("close", onClose);
          resolve(isOpen());
        }, ms);
        res.once("close", onClose);
      });
    const json = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      if (!isOpen()) return;
      const text = JSON.stringify(payload);
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
      res.end(text);
    };
    const destroy = async () => {
      destroyedByFake = true;
      // Let what was written reach the client before the reset, so it sees a partial stream.
      await new Promise((r) => setTimeout(r, 10));
      res.socket?.destroy();
      res.destroy();
    };
    const writeChunks = async (chunks: string[], errorChunk: string): Promise<boolean> => {
      for (let i = 0; i < chunks.length; i++) {
        if (behaviour.breakStreamAfterChunks !== undefined && i >= behaviour.breakStreamAfterChunks) {
          await destroy();
          return false;
        }
        if (behaviour.streamErrorAfterChunks !== undefined && i >= behaviour.streamErrorAfterChunks) {
          res.end(errorChunk);
          return false;
        }
        if (behaviour.chunkDelayMs && !(await pause(behaviour.chunkDelayMs))) return false;
        if (!isOpen()) return false;
        res.write(chunks[i]);
      }
      return true;
    };

    if (behaviour.delayMs && !(await pause(behaviour.delayMs))) return;

    const error = (status: number) => {
      const e = opts.errorResponse(status, behaviour);
      json(status, e.body, { ...(e.headers ?? {}), ...retryHeaders(behaviour) });
    };
    const rejected = opts.check?.(req);
    if (rejected !== undefined) return error(rejected);
    if (!route) return error(404);
    if (badJson) return error(400);
    if (behaviour.status !== undefined) return error(behaviour.status);
    if (behaviour.breakStreamAfterChunks !== undefined && !(route.streams?.(body) ?? false)) {
      await destroy();
      return;
    }
    await route.handle({ req, res, body, behaviour, seq: n, isOpen, pause, json, writeChunks });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}${opts.urlPath ?? ""}`,
    requests,
    script(next) {
      queue.push(...next);
    },
    reset() {
      queue.length = 0;
      requests.length = 0;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
    },
  };
}

/** Flattens message content that is a string or a list of `{type:"text", text}` parts. */
export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (p && typeof p === "object" && typeof (p as { text?: unknown }).text === "string" ? (p as { text: string }).text : ""))
      .join("");
  }
  return "";
}
