/**
 * CORS on both ports (FABRIC_CORS_ORIGINS; src/control-plane/cors.ts). In a real browser
 * (Debian's Chromium via playwright-core; skipped when it is missing): a page served from
 * another port makes a cross-origin Connect call to the gRPC port and a REST call, both
 * with an Authorization header (so both are preflighted). The same page under an origin
 * that is not configured is refused by the browser — the positive control. Without the
 * browser: the preflight answers themselves, and no CORS at all when nothing is configured.
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { hasChromium, launchBrowser, type Browser } from "./browser.js";

const page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>another origin</title></head><body>cross-origin caller</body></html>`;

let pages: Server;
let pagePort: number;
let fabric: TestFabric;

beforeAll(async () => {
  pages = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(page));
  await new Promise<void>((r) => pages.listen(0, "127.0.0.1", r));
  pagePort = (pages.address() as { port: number }).port;
  // Allowed: the page at 127.0.0.1; the same page at localhost is another origin, not allowed.
  fabric = await startTestFabric({ corsOrigins: [`http://127.0.0.1:${pagePort}`] });
}, 120_000);

afterAll(async () => {
  await fabric?.close();
  await new Promise<void>((r) => pages?.close(() => r()));
});

describe("preflights (no browser)", () => {
  it("an allowed origin's preflight is answered 204 with the methods and headers of each port", async () => {
    const origin = `http://127.0.0.1:${pagePort}`;
    const rest = await fetch(`${fabric.restUrl}/v1/workflows`, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type,idempotency-key" } });
    expect(rest.status).toBe(204);
    expect(rest.headers.get("access-control-allow-origin")).toBe(origin);
    expect(rest.headers.get("access-control-allow-headers")).toContain("idempotency-key");
    expect(rest.headers.get("vary")).toContain("Origin");
    const grpc = await fetch(`${fabric.grpcUrl}/fabric.v1.WorkflowService/ListWorkflows`, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,connect-protocol-version,content-type,x-grpc-web" } });
    expect(grpc.status).toBe(204);
    expect(grpc.headers.get("access-control-allow-origin")).toBe(origin);
    for (const h of ["connect-protocol-version", "x-grpc-web", "authorization", "grpc-timeout"]) expect(grpc.headers.get("access-control-allow-headers")?.toLowerCase()).toContain(h);
  });

  it("another origin gets no CORS headers (REST OPTIONS stays 405)", async () => {
    const origin = `http://localhost:${pagePort}`;
    const rest = await fetch(`${fabric.restUrl}/v1/workflows`, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST" } });
    expect(rest.status).toBe(405);
    expect(rest.headers.get("access-control-allow-origin")).toBeNull();
    const grpc = await fetch(`${fabric.grpcUrl}/fabric.v1.WorkflowService/ListWorkflows`, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST" } });
    expect(grpc.status).not.toBe(204);
    expect(grpc.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe.skipIf(!hasChromium)("in Chromium, from a page on another port", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => browser?.close());

  /** From a page at `pageUrl`: a REST call and a Connect call (fetch, as Connect-Web sends it), each as {ok, status, …} or {error}. */
  async function callsFrom(pageUrl: string) {
    const context = await browser.newContext();
    try {
      const { page } = await browser.newPage(context);
      await page.goto(pageUrl);
      return await page.evaluate(
        async ({ restUrl, grpcUrl, apiKey }) => {
          const attempt = async (f: () => Promise<Response>) => {
            try {
              const res = await f();
              return { status: res.status, requestId: res.headers.get("x-request-id"), body: await res.json() };
            } catch (err) {
              return { error: String(err) };
            }
          };
          const rest = await attempt(() => fetch(`${restUrl}/v1/workflows`, { headers: { authorization: `Bearer ${apiKey}` } }));
          const connect = await attempt(() =>
            fetch(`${grpcUrl}/fabric.v1.WorkflowService/ListWorkflows`, {
              method: "POST",
              headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", "connect-protocol-version": "1" },
              body: "{}",
            }),
          );
          const connectError = await attempt(() =>
            fetch(`${grpcUrl}/fabric.v1.RunService/GetRun`, {
              method: "POST",
              headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", "connect-protocol-version": "1" },
              body: JSON.stringify({ id: "00000000-0000-4000-8000-000000000000" }),
            }),
          );
          return { origin: location.origin, rest, connect, connectError };
        },
        { restUrl: fabric.restUrl, grpcUrl: fabric.grpcUrl, apiKey: fabric.apiKey },
      );
    } finally {
      await context.close();
    }
  }

  it("an allowed origin makes a REST call and a Connect call, and reads the answers and x-request-id", async () => {
    const r = await callsFrom(`http://127.0.0.1:${pagePort}/`);
    expect(r.origin).toBe(`http://127.0.0.1:${pagePort}`);
    expect(r.rest).toMatchObject({ status: 200, body: { data: [] } });
    expect(r.rest.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.connect).toMatchObject({ status: 200, body: { workflows: [] } });
    expect(r.connect.requestId).toMatch(/^[0-9a-f-]{36}$/);
    // An error is readable too: the Connect error JSON, with the google.rpc details.
    expect(r.connectError).toMatchObject({ status: 404, body: { code: "not_found" } });
    expect(JSON.stringify(r.connectError.body)).toContain("google.rpc.ErrorInfo");
  }, 120_000);

  it("an origin that is not configured is refused by the browser on both ports", async () => {
    const r = await callsFrom(`http://localhost:${pagePort}/`);
    expect(r.origin).toBe(`http://localhost:${pagePort}`);
    expect(r.rest).toMatchObject({ error: expect.stringContaining("Failed to fetch") });
    expect(r.connect).toMatchObject({ error: expect.stringContaining("Failed to fetch") });
  }, 120_000);
});
