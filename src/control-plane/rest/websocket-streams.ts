/**
 * The event streams framed as WebSockets (`GET /v1/events/ws`,
 * `GET /v1/workflow-runs/{id}/events/ws`). Only the framing differs from SSE: the REST
 * route runs the same call step and the same use case (the same event-hub subscription,
 * replay, visibility and ending rules) and hands the resulting stream here; this module
 * upgrades the connection with `ws` and writes one text message per item.
 *
 * How a request gets here: Node's HTTP server emits every request carrying `Upgrade:` as
 * an `upgrade` event instead of a request. `attach` listens for it, runs the Hono app on
 * the request (so authentication, the guard, validation and problem+json refusals are the
 * same as on every other route), and then either completes the WebSocket handshake for a
 * stream the route accepted, or writes the app's answer (a 401, 404, 429…) as a plain
 * HTTP response and closes the connection.
 *
 * Bounds: client messages are ignored and limited to `maxClientMessageBytes` (ws closes
 * with 1009 past it); open streams per principal per process are limited; the server
 * pings every `heartbeatMs` and drops a client that did not answer the previous ping;
 * a slow reader is written to only as fast as it drains (`highWaterBytes`), and one that
 * falls too far behind gets the hub's overflow error like an SSE reader.
 */
import { STATUS_CODES, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, WebSocket } from "ws";
import { DomainError, type ErrorKind } from "../../domain/errors.js";
import type { Logger } from "../../logger.js";
import { problem, toDomainError } from "../error-mapping.js";

export interface WebSocketStreamOptions {
  log: Logger;
  /** Ping period; a client that has not answered the previous ping by the next one is dropped. Default 15 s. */
  heartbeatMs?: number;
  /** Open WebSocket streams per principal in this process; more are refused with 429 `too_many_streams`. Default 100. */
  maxPerPrincipal?: number;
  /** Largest client message accepted (clients have nothing to say). Default 4 KiB. */
  maxClientMessageBytes?: number;
  /** Buffered outgoing bytes above which the stream waits for the socket to drain. Default 1 MiB. */
  highWaterBytes?: number;
}

/** A stream a route accepted: what to send, and how to stop it. */
export interface AcceptedStream {
  items: AsyncIterator<unknown>;
  /** The text message of one item. */
  format(item: unknown): string;
  /** Aborts the use case's stream (its `ctx.signal`). */
  abort: AbortController;
  /** Frees the principal's slot; called exactly once. */
  release(): void;
  requestId: string;
}

export interface WebSocketStreams {
  /** Whether the route runs for an upgrade request that `attach` is handling. */
  isUpgrade(env: unknown): boolean;
  /** Refuses a handshake `ws` would refuse, before any work is done for it. */
  checkHandshake(header: (name: string) => string | undefined): void;
  /** Takes one of the principal's slots; throws `too_many_streams` when none is left. */
  reserve(principalId: string): () => void;
  /** Hands an accepted stream to the upgrade in progress; returns the route's (placeholder) answer. */
  accept(env: unknown, stream: AcceptedStream): Response;
  /** Handles the server's upgrade requests with `fetch` (the Hono app). */
  attach(server: Server, fetch: (request: Request, env: unknown) => Response | Promise<Response>): void;
  /** Closes every open stream with 1001 and stops the heartbeat. */
  close(): Promise<void>;
}

/** The subprotocol a client offers (and the server selects) to speak Fabric's framing. */
export const fabricSubprotocol = "fabric.v1";
const bearerSubprotocolPrefix = "fabric.bearer.";

/**
 * `Bearer <token>` from a `fabric.bearer.<token>` subprotocol, for browsers, which cannot
 * set headers on a WebSocket. The server never echoes this subprotocol back.
 */
export function bearerFromSubprotocols(header: string | null | undefined): string | undefined {
  for (const p of (header ?? "").split(",")) {
    const t = p.trim();
    if (t.startsWith(bearerSubprotocolPrefix) && t.length > bearerSubprotocolPrefix.length) return `Bearer ${t.slice(bearerSubprotocolPrefix.length)}`;
  }
  return undefined;
}

/** Close codes (RFC 6455 §7.4.1) for a stream that ended with an error. */
const closeCodes: Partial<Record<ErrorKind, number>> = {
  unauthenticated: 1008,
  permission_denied: 1008,
  unavailable: 1013,
  resource_exhausted: 1013,
};

const upgradeKey = Symbol("fabric.websocket-upgrade");

export function createWebSocketStreams(opts: WebSocketStreamOptions): WebSocketStreams {
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const maxPerPrincipal = opts.maxPerPrincipal ?? 100;
  const highWaterBytes = opts.highWaterBytes ?? 1 << 20;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxClientMessageBytes ?? 4096,
    perMessageDeflate: false,
    handleProtocols: (offered) => (offered.has(fabricSubprotocol) ? fabricSubprotocol : false),
  });
  const pending = new WeakMap<IncomingMessage, AcceptedStream>();
  const requestIds = new WeakMap<IncomingMessage, string>();
  const open = new Map<WebSocket, { alive: boolean }>();
  const perPrincipal = new Map<string, number>();
  let closing = false;

  wss.on("headers", (headers, req) => {
    const id = requestIds.get(req);
    if (id) headers.push(`X-Request-Id: ${id}`);
  });

  const heartbeat = setInterval(() => {
    for (const [ws, state] of open) {
      if (!state.alive) {
        ws.terminate();
        continue;
      }
      state.alive = false;
      ws.ping();
    }
  }, heartbeatMs);
  heartbeat.unref();

  function send(ws: WebSocket, text: string): Promise<void> {
    if (ws.bufferedAmount < highWaterBytes) {
      ws.send(text);
      return Promise.resolve();
    }
    return new Promise((resolve) => ws.send(text, () => resolve()));
  }

  async function pump(ws: WebSocket, s: AcceptedStream) {
    const state = { alive: true };
    open.set(ws, state);
    ws.on("pong", () => (state.alive = true));
    ws.on("message", () => {}); // nothing to say; bounded by maxPayload
    ws.on("error", () => {}); // e.g. an oversized client message: ws closes the socket itself
    ws.once("close", () => {
      s.abort.abort();
      s.release(); // at once, so a client that closed and reconnects finds its slot free
    });
    let code = 1000;
    let reason = "end of stream";
    try {
      for (;;) {
        const r = await s.items.next();
        if (r.done || ws.readyState !== WebSocket.OPEN) break;
        await send(ws, s.format(r.value));
      }
      if (closing) [code, reason] = [1001, "server shutting down"];
    } catch (err) {
      const domain = toDomainError(err);
      if (domain.kind === "internal") opts.log.error("websocket stream failed", { request_id: s.requestId, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      else opts.log.warn("websocket stream ended with an error", { request_id: s.requestId, error: String(err) });
      if (ws.readyState === WebSocket.OPEN) await send(ws, JSON.stringify({ error: problem(domain, s.requestId) }));
      code = closeCodes[domain.kind] ?? 1011;
      reason = domain.code.slice(0, 120);
    } finally {
      s.abort.abort();
      await s.items.return?.(undefined)?.catch(() => {});
      s.release();
      open.delete(ws);
      if (ws.readyState === WebSocket.OPEN) ws.close(code, reason);
    }
  }

  async function upgrade(fetch: (request: Request, env: unknown) => Response | Promise<Response>, req: IncomingMessage, socket: Duplex, head: Buffer) {
    socket.on("error", () => socket.destroy());
    const gone = new AbortController();
    const onGone = () => gone.abort();
    socket.once("close", onGone);
    let response: Response;
    try {
      if (closing) throw new Error("shutting down");
      // Other upgrades (h2c…) are answered as ordinary requests; only a body-less one can be.
      if (req.method !== "GET" && req.method !== "HEAD") return writeResponse(socket, new Response(null, { status: 400 }));
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (Array.isArray(v)) for (const x of v) headers.append(k, x);
        else if (v !== undefined) headers.set(k, v);
      }
      const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`);
      response = await fetch(new Request(url, { method: req.method, headers, signal: gone.signal }), { incoming: req, outgoing: undefined, [upgradeKey]: true });
    } catch (err) {
      if (!closing) opts.log.warn("websocket upgrade failed", { error: String(err) });
      socket.destroy();
      return;
    }
    const stream = pending.get(req);
    pending.delete(req);
    if (!stream) return writeResponse(socket, response);
    let started = false;
    // A handshake ws refuses (it answers 400 itself) or a client gone before it completes.
    socket.once("close", () => {
      if (started) return;
      stream.abort.abort();
      void stream.items.return?.(undefined)?.catch(() => {});
      stream.release();
    });
    if (socket.destroyed || closing) {
      socket.destroy();
      return;
    }
    socket.off("close", onGone);
    requestIds.set(req, stream.requestId);
    wss.handleUpgrade(req, socket, head, (ws) => {
      started = true;
      void pump(ws, stream);
    });
  }

  return {
    isUpgrade: (env) => !!env && typeof env === "object" && upgradeKey in env,

    checkHandshake(header) {
      const key = header("sec-websocket-key") ?? "";
      const version = header("sec-websocket-version");
      if ((header("upgrade") ?? "").toLowerCase() !== "websocket" || !/^[+/0-9A-Za-z]{22}==$/.test(key) || version !== "13") {
        throw new DomainError("invalid_argument", "not a WebSocket handshake: Upgrade: websocket, a Sec-WebSocket-Key and Sec-WebSocket-Version: 13 are required", { code: "invalid_websocket_handshake" });
      }
    },

    reserve(principalId) {
      const n = perPrincipal.get(principalId) ?? 0;
      if (n >= maxPerPrincipal) throw new DomainError("resource_exhausted", `at most ${maxPerPrincipal} WebSocket streams may be open per principal`, { code: "too_many_streams" });
      perPrincipal.set(principalId, n + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (perPrincipal.get(principalId) ?? 1) - 1;
        if (left > 0) perPrincipal.set(principalId, left);
        else perPrincipal.delete(principalId);
      };
    },

    accept(env, stream) {
      const req = (env as { incoming?: IncomingMessage }).incoming;
      if (!req) throw new Error("accept() outside an upgrade");
      pending.set(req, stream);
      return new Response(null, { status: 200 });
    },

    attach(server, fetch) {
      server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => void upgrade(fetch, req, socket, head));
    },

    async close() {
      closing = true;
      clearInterval(heartbeat);
      const closed = [...open.keys()].map(
        (ws) =>
          new Promise<void>((resolve) => {
            ws.once("close", () => resolve());
            ws.close(1001, "server shutting down");
            setTimeout(() => {
              ws.terminate();
              resolve();
            }, 2000).unref();
          }),
      );
      await Promise.all(closed);
      wss.close();
    },
  };
}

/** Writes a Fetch Response onto a raw socket as an HTTP/1.1 answer, then closes it. */
async function writeResponse(socket: Duplex, response: Response) {
  if (socket.destroyed) return;
  let head = `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ""}\r\n`;
  response.headers.forEach((v, k) => {
    if (k !== "connection" && k !== "transfer-encoding" && k !== "keep-alive") head += `${k}: ${v}\r\n`;
  });
  socket.write(`${head}Connection: close\r\n\r\n`);
  try {
    if (response.body) for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) if (!socket.destroyed) socket.write(chunk);
  } catch {
    // the client went away while the answer was being written
  }
  socket.end();
}
