/**
 * One port, both HTTP versions, no TLS. Plain-text HTTP/2 (h2c) servers refuse HTTP/1.1
 * and `allowHTTP1` needs TLS, so a small `net` server peeks at the first bytes of each
 * connection: the HTTP/2 preface goes to the HTTP/2 server, anything else to an
 * HTTP/1.1 server (Connect and gRPC-Web over 1.1, curl). Both share one handler.
 */
import { createServer as createHttp1Server, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttp2Server, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from "node:http2";
import { createServer as createNetServer, type Socket } from "node:net";
import { createConnectionGuard, type ConnectionGuard } from "../connection-guard.js";

const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface DualListener {
  readonly port: number;
  close(graceMs?: number): Promise<void>;
}

export async function listenHttp1And2(
  handler: (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void,
  port: number,
  host: string,
  guard: ConnectionGuard = createConnectionGuard(),
): Promise<DualListener> {
  const { limits } = guard;
  const h1 = createHttp1Server({ headersTimeout: limits.firstBytesTimeoutMs, requestTimeout: Math.max(limits.firstBytesTimeoutMs, 30_000), keepAliveTimeout: Math.min(limits.idleTimeoutMs, 5000) }, handler as any);
  const h2 = createHttp2Server({ settings: { maxConcurrentStreams: limits.maxStreamsPerConnection } }, handler as any);
  const sessions = new Set<Http2Session>();
  h2.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
    // An HTTP/2 session with no stream open for the idle timeout is closed; one with an
    // open stream (a long event stream) is not idle.
    let streams = 0;
    s.on("stream", (stream) => {
      streams++;
      stream.once("close", () => streams--);
    });
    s.setTimeout(limits.idleTimeoutMs, () => {
      if (streams === 0) s.close();
    });
  });
  const sockets = new Set<Socket>();

  const server = createNetServer((socket) => {
    if (!guard.admit(socket)) return;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, preface.length);
      const isH2 = head.subarray(0, n).equals(preface.subarray(0, n));
      if (isH2 && head.length < preface.length) return; // need more bytes to decide
      socket.off("data", onData);
      socket.pause();
      socket.unshift(head);
      // HTTP/2 reads what is buffered itself, then takes over the handle; resuming here
      // would flush the preface to no one. HTTP/1.1 needs the stream flowing again.
      (isH2 ? h2 : h1).emit("connection", socket);
      if (!isH2) socket.resume();
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : port,
    async close(graceMs = 5000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sessions) s.close();
      h1.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const s of sockets) s.destroy();
      }, graceMs);
      timer.unref();
      await closed;
      clearTimeout(timer);
    },
  };
}
