import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { followEventStream, type StreamState } from "./event-stream.js";

type Handler = (req: IncomingMessage, res: ServerResponse, connection: number) => void;
let close: (() => Promise<void>) | undefined;

async function serve(handler: Handler): Promise<{ url: string; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    handler(req, res, requests.length);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`, requests };
}
afterEach(async () => {
  await close?.();
  close = undefined;
});

const sse = (id: number, kind = "workflow.node.completed") => `id: ${id}\nevent: ${kind}\ndata: ${JSON.stringify({ id: String(id), kind })}\n\n`;

describe("followEventStream", () => {
  it("resumes after a dropped connection from the last event, losing and repeating nothing", async () => {
    const { url, requests } = await serve((req, res, n) => {
      res.writeHead(200, { "Content-Type": "text/event-stream" });
      if (n === 1) {
        res.write(": ping\n\n" + sse(1) + sse(2) + sse(3));
        // Drop the connection mid-stream, as a proxy or a network change would.
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      // The server replays after Last-Event-ID; a sloppy one repeats the last event too.
      const after = Number(req.headers["last-event-id"]);
      for (let id = after; id <= 5; id++) res.write(sse(id, id === 5 ? "workflow.run.completed" : undefined));
      res.end();
    });
    const seen: string[] = [];
    const states: StreamState[] = [];
    let finished = false;
    await followEventStream<{ id: string; kind: string }>({
      url,
      headers: () => ({ Authorization: "Bearer t" }),
      onEvent: (e) => {
        seen.push(e.id);
        if (e.kind === "workflow.run.completed") finished = true;
      },
      onState: (s) => states.push(s),
      isFinished: () => finished,
      signal: new AbortController().signal,
      backoffMs: () => 10,
    });
    expect(seen).toEqual(["1", "2", "3", "4", "5"]);
    expect(requests).toHaveLength(2);
    expect(requests[0]!.headers["last-event-id"]).toBeUndefined();
    expect(requests[1]!.headers["last-event-id"]).toBe("3");
    expect(requests[1]!.headers.authorization).toBe("Bearer t");
    expect(states).toEqual(["connecting", "live", "reconnecting", "live", "ended"]);
  });

  it("stops at a refusal and reports the problem with its request id", async () => {
    const { url, requests } = await serve((_req, res) => {
      res.writeHead(404, { "Content-Type": "application/problem+json" });
      res.end(JSON.stringify({ title: "Not found", status: 404, detail: "run x not found", code: "not_found", request_id: "req-1" }));
    });
    const states: [StreamState, unknown][] = [];
    await followEventStream({ url, headers: () => ({}), onEvent: () => {}, onState: (s, p) => states.push([s, p]), signal: new AbortController().signal, backoffMs: () => 10 });
    expect(requests).toHaveLength(1);
    expect(states.at(-1)).toEqual(["failed", { status: 404, title: "Not found", detail: "run x not found", code: "not_found", request_id: "req-1" }]);
  });

  it("retries a server error, then ends when aborted", async () => {
    const controller = new AbortController();
    const { url, requests } = await serve((_req, res, n) => {
      if (n < 3) {
        res.writeHead(503, { "Content-Type": "application/problem+json" });
        res.end(JSON.stringify({ title: "Unavailable", status: 503, code: "unavailable", request_id: `r${n}` }));
        return;
      }
      res.writeHead(200, { "Content-Type": "text/event-stream" });
      res.write(sse(10));
    });
    const seen: string[] = [];
    await followEventStream<{ id: string }>({
      url,
      headers: () => ({}),
      onEvent: (e) => {
        seen.push(e.id);
        controller.abort();
      },
      signal: controller.signal,
      backoffMs: () => 10,
    });
    expect(requests).toHaveLength(3);
    expect(seen).toEqual(["10"]);
  });
});
