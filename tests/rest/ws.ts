/**
 * A small WebSocket reader for wire tests, on the `ws` client: what went over the wire,
 * including a refused handshake's HTTP answer and the close code the server chose.
 */
import WebSocket from "ws";

export interface WsStream {
  socket: WebSocket;
  /** The selected subprotocol ("" when none). */
  protocol: string;
  /** Parsed text messages in arrival order; the generator returns when the socket closes. */
  messages: AsyncGenerator<any, void, undefined>;
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export type WsOpen = { ok: true; stream: WsStream; requestId?: string } | { ok: false; status: number; headers: Record<string, string | string[] | undefined>; body: any };

export function openWs(url: string, headers: Record<string, string> = {}, opts: { protocols?: string[]; autoPong?: boolean } = {}): Promise<WsOpen> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, "ws"), opts.protocols ?? [], { headers, autoPong: opts.autoPong ?? true });
    const queue: any[] = [];
    let wake: (() => void) | null = null;
    let done = false;
    const closed = new Promise<{ code: number; reason: string }>((r) =>
      socket.once("close", (code, reason) => {
        done = true;
        wake?.();
        r({ code, reason: reason.toString() });
      }),
    );
    socket.on("message", (data) => {
      queue.push(JSON.parse(data.toString()));
      wake?.();
    });
    socket.on("error", () => {});
    async function* messages(): AsyncGenerator<any, void, undefined> {
      for (;;) {
        while (queue.length) yield queue.shift();
        if (done) return;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    }
    socket.once("upgrade", (res) => {
      socket.once("open", () => resolve({ ok: true, requestId: res.headers["x-request-id"] as string | undefined, stream: { socket, protocol: socket.protocol, messages: messages(), closed, close: () => socket.close() } }));
    });
    socket.once("unexpected-response", (_req, res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => {
        let body: any = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ ok: false, status: res.statusCode ?? 0, headers: res.headers, body });
        socket.terminate();
      });
    });
    socket.once("error", (err) => reject(err));
  });
}

export async function openedWs(url: string, headers: Record<string, string> = {}, opts: { protocols?: string[]; autoPong?: boolean } = {}): Promise<WsStream> {
  const r = await openWs(url, headers, opts);
  if (!r.ok) throw new Error(`WebSocket refused: ${r.status} ${JSON.stringify(r.body)}`);
  return r.stream;
}

/** Every message until the server closes; fails if it has not closed after `timeoutMs`. */
export async function readAllWs(s: WsStream, timeoutMs = 10_000): Promise<{ messages: any[]; code: number; reason: string }> {
  const out: any[] = [];
  const timer = setTimeout(() => s.socket.terminate(), timeoutMs);
  try {
    for await (const m of s.messages) out.push(m);
  } finally {
    clearTimeout(timer);
  }
  const { code, reason } = await s.closed;
  if (code === 1006) throw new Error(`the WebSocket did not close cleanly within ${timeoutMs} ms (got ${out.map((m) => m.event?.kind ?? "error").join(", ")})`);
  return { messages: out, code, reason };
}

/** Messages until `until` matches one (inclusive); the socket stays open. */
export async function readUntilWs(s: WsStream, until: (m: any) => boolean, timeoutMs = 10_000): Promise<any[]> {
  const out: any[] = [];
  const timer = setTimeout(() => s.socket.terminate(), timeoutMs);
  try {
    for (;;) {
      const r = await s.messages.next();
      if (r.done) throw new Error(`the WebSocket closed before the expected message (got ${out.map((m) => m.event?.kind ?? "error").join(", ")})`);
      out.push(r.value);
      if (until(r.value)) return out;
    }
  } finally {
    clearTimeout(timer);
  }
}
