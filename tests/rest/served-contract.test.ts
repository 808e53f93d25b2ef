/**
 * `/openapi.json` names the address the request came to (so `/docs`' "Try it out" calls
 * this server, whatever host or port), or FABRIC_PUBLIC_URL when configured; its
 * description names the gRPC address and carries no contributor notes.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startControlPlane, type ControlPlane } from "../../src/control-plane/server.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { testLog } from "../helpers/fabric.js";

const config = { HOST: "127.0.0.1", PORT: 0, GRPC_PORT: 0, FABRIC_ENV: "development", FABRIC_MAX_BODY_BYTES: 1 << 20 } as const;

/** GET with an explicit Host header (fetch does not allow setting it). */
function getJson(url: string, host: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d) => (body += d)).on("end", () => resolve(JSON.parse(body)));
    });
    req.on("error", reject).end();
  });
}

describe("the served OpenAPI document", () => {
  let database: TestDatabase;
  let local: ControlPlane;
  let configured: ControlPlane;

  beforeAll(async () => {
    database = await createTestDatabase();
    local = await startControlPlane({ config, database, log: testLog });
    configured = await startControlPlane({ config: { ...config, FABRIC_PUBLIC_URL: "https://fabric.example.com/", FABRIC_PUBLIC_GRPC_URL: "https://grpc.fabric.example.com" }, database, log: testLog });
  });
  afterAll(async () => {
    await local?.close();
    await configured?.close();
    await database?.close();
  });

  it("names the address the request came to, REST and gRPC", async () => {
    const grpcPort = new URL(local.grpcUrl).port;
    const restPort = new URL(local.restUrl).port;
    const direct = await (await fetch(`${local.restUrl}/openapi.json`)).json();
    expect(direct.servers).toEqual([{ url: local.restUrl, description: "this server" }]);
    expect(direct.info.description).toMatch(new RegExp(`^This server: REST \\+ SSE at ${local.restUrl}; gRPC, gRPC-Web and Connect at http://127\\.0\\.0\\.1:${grpcPort}\\.`));
    // The same server reached under another name (a DNS name, a proxy keeping the Host header).
    const named = await getJson(`${local.restUrl}/openapi.json`, `fabric.internal:${restPort}`);
    expect(named.servers[0].url).toBe(`http://fabric.internal:${restPort}`);
    expect(named.info.description).toContain(`gRPC, gRPC-Web and Connect at http://fabric.internal:${grpcPort}.`);
    // The other answer is unchanged (no shared mutable document).
    expect((await (await fetch(`${local.restUrl}/openapi.json`)).json()).servers[0].url).toBe(local.restUrl);
  });

  it("names FABRIC_PUBLIC_URL and FABRIC_PUBLIC_GRPC_URL when configured, whatever the Host", async () => {
    const doc = await getJson(`${configured.restUrl}/openapi.json`, "anything:1234");
    expect(doc.servers).toEqual([{ url: "https://fabric.example.com", description: "this server (FABRIC_PUBLIC_URL)" }]);
    expect(doc.info.description).toMatch(/^This server: REST \+ SSE at https:\/\/fabric\.example\.com; gRPC, gRPC-Web and Connect at https:\/\/grpc\.fabric\.example\.com\./);
  });

  it("carries no contributor notes, and /docs loads the document from the same origin", async () => {
    const doc = await (await fetch(`${local.restUrl}/openapi.json`)).json();
    expect(doc.info.description).not.toMatch(/npm run codegen|hand-written source|gen\/openapi/);
    expect(doc.info.description).not.toMatch(/port 3002/);
    const page = await (await fetch(`${local.restUrl}/docs`)).text();
    expect(page).toContain('url: "/openapi.json"');
  });
});
