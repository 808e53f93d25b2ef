/** A local webhook receiver for the webhook tests. */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** A receiver: records every request; `plan[path]` lists the statuses to answer in turn (then 200). */
export async function startReceiver() {
  const received: Received[] = [];
  const plan: Record<string, number[]> = {};
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const path = req.url ?? "/";
      received.push({ path, headers: req.headers, body, at: Date.now() });
      const status = plan[path]?.length ? plan[path]!.shift()! : path.startsWith("/always-fail") ? 500 : 200;
      res.writeHead(status, { "content-type": "text/plain" }).end(`answer ${status} for ${path}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    port,
    received,
    plan,
    at: (path: string) => received.filter((r) => r.path === path),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
