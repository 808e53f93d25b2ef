/**
 * No secret reaches the logs. A full scenario runs against a control plane and an executor
 * logging at debug level into a buffer: sign up, log in, refresh, create an API key,
 * register a webhook, run a workflow with a provider node (OpenAI's wire fake, behind a
 * provider key), call the provider directly, get the webhook delivered, and fail a few
 * authentications on purpose. Then every line is searched for every secret used.
 * The same lines show the access log: one line per REST and gRPC call.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { startReceiver } from "../webhooks/receiver.js";

const lines: string[] = [];
const log = createLogger("debug", { service: "redaction-test" }, { destination: { write: (s: string) => void lines.push(s) } });

let fabric: TestFabric;
let fake: FakeServer;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
const providerKey = `sk-test-${randomBytes(12).toString("hex")}`;
const secrets: Record<string, string> = { "provider key": providerKey };

/** Which of the secrets appear in `text`. */
const leaked = (text: string) => Object.entries(secrets).filter(([, v]) => text.includes(v)).map(([k]) => k);

beforeAll(async () => {
  fake = await startFakeOpenAI({ apiKey: providerKey });
  receiver = await startReceiver();
  fabric = await startTestFabric({ log, webhooksAllowPrivate: true, webhooks: { pollMs: 20 }, env: { OPENAI_API_KEY: providerKey, OPENAI_BASE_URL: fake.url } });
  secrets["dev API key"] = fabric.apiKey;
});

afterAll(async () => {
  await fabric?.close();
  await fake?.close();
  await receiver?.close();
});

describe("logs", () => {
  it("hold no secret after a full scenario, and one access-log line per call", async () => {
    const json = async (res: Response) => {
      const body = (await res.json()) as any;
      expect(res.status, JSON.stringify(body)).toBeLessThan(300);
      return body.data ?? body;
    };
    const post = (path: string, body: unknown, key?: string | null) => fabric.rest(path, { method: "POST", json: body, ...(key !== undefined ? { key } : {}) });

    // Identity: password, access JWT, refresh tokens.
    const password = `pw-${randomBytes(9).toString("hex")}`;
    secrets.password = password;
    const email = `redact-${randomBytes(4).toString("hex")}@example.test`;
    const signed = await json(await post("/v1/auth/signup", { email, password }, null));
    secrets["access token (sign-up)"] = signed.tokens.access_token;
    secrets["refresh token (sign-up)"] = signed.tokens.refresh_token;
    const logged = await json(await post("/v1/auth/login", { email, password }, null));
    secrets["access token"] = logged.tokens.access_token;
    secrets["refresh token"] = logged.tokens.refresh_token;
    const refreshed = await json(await post("/v1/auth/refresh", { refresh_token: logged.tokens.refresh_token }, null));
    secrets["refreshed token"] = (refreshed.tokens ?? refreshed).refresh_token;
    expect(secrets["refreshed token"]).toMatch(/^fabr_/);
    expect((await fabric.rest("/v1/me", { key: refreshed.tokens?.access_token ?? refreshed.access_token })).status).toBe(200);
    expect((await post("/v1/auth/refresh", { refresh_token: logged.tokens.refresh_token }, null)).status).toBe(401); // reuse: logged as a warning
    expect((await post("/v1/auth/login", { email, password: `${password}-wrong` }, null)).status).toBe(401);

    // A new API key, used once; a wrong key too.
    const created = await json(await post(`/v1/organizations/${fabric.organizationId}/api-keys`, { name: "redaction" }));
    secrets["new API key"] = created.key;
    expect((await fabric.rest("/v1/me", { key: created.key })).status).toBe(200);
    expect((await fabric.rest("/v1/me", { key: `${created.key.slice(0, -4)}XXXX` })).status).toBe(401);

    // A webhook (its signing secret) that receives the run's events.
    const hook = await json(await post(`/v1/organizations/${fabric.organizationId}/webhooks`, { url: receiver.url("/hook"), event_filter: "workflow.run.*" }));
    secrets["webhook secret"] = hook.secret;
    expect(hook.secret).toMatch(/^whsec_/);

    // A run with a provider node, and a direct provider call.
    const workflow = {
      name: "redaction",
      nodes: [{ key: "gen", operation: "ai.generate", config: { provider: "openai", model: "gpt-4o-mini" }, inputs: { prompt: "$context.topic" }, outputs: { text: "$context.answer" } }],
    };
    await json(await post("/v1/workflows", workflow));
    const run = await json(await post("/v1/workflow-runs", { workflow_name: "redaction", input: { topic: "hello" } }));
    await eventually(async () => {
      const r = await json(await fabric.rest(`/v1/workflow-runs/${run.id}`));
      return r.status === "completed" ? r : r.status === "failed" ? Promise.reject(new Error(JSON.stringify(r.error))) : undefined;
    }, 30_000, "the run to complete");
    await json(await post("/v1/providers/execute", { prompt: "hi", provider: "openai", model: "gpt-4o-mini", max_tokens: 16 }));
    expect(fake.requests.length).toBeGreaterThanOrEqual(2);
    await eventually(async () => (receiver.at("/hook").some((r) => r.body.includes("workflow.run.completed")) ? true : undefined), 30_000, "the webhook delivery");

    // gRPC (Connect protocol over HTTP/1.1), authenticated with the key, and refused without one.
    const grpc = (key?: string) => fetch(`${fabric.grpcUrl}/fabric.v1.IdentityService/GetMe`, { method: "POST", headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: "{}" });
    expect((await grpc(created.key)).status).toBe(200);
    expect((await grpc()).status).toBe(401);

    const output = lines.join("");
    expect(Object.keys(secrets).length).toBeGreaterThanOrEqual(10);
    expect(leaked(output)).toEqual([]);

    // The access log: one line per call, with ids and no secrets.
    const entries = lines.map((l) => JSON.parse(l) as Record<string, any>);
    const calls = entries.filter((e) => e.msg === "call");
    const signup = calls.find((e) => e.operation === "fabric.v1.IdentityService/SignUp");
    expect(signup).toMatchObject({ transport: "rest", status: 201, level: "info" });
    expect(signup?.request_id).toMatch(/./);
    expect(calls.find((e) => e.operation === "fabric.v1.RunService/StartRun")).toMatchObject({ status: 202, organization_id: fabric.organizationId, principal_id: fabric.principalId });
    expect(calls.filter((e) => e.transport === "grpc").map((e) => e.code)).toEqual(["OK", "UNAUTHENTICATED"]);
    expect(calls.find((e) => e.transport === "grpc" && e.code === "OK")?.api_key_id).toBe(created.api_key.id);
    // Executor lines carry what they are about.
    expect(entries.some((e) => e.run_id === run.id && e.node_key === "gen")).toBe(true);
    console.log(["access-log sample:", ...calls.slice(0, 3).map((e) => JSON.stringify(e)), ...calls.filter((e) => e.transport === "grpc").map((e) => JSON.stringify(e))].join("\n"));
  }, 120_000);

  it("the search finds a secret that is there (positive control), and the logger removes it", () => {
    const key = fabric.apiKey;
    expect(leaked(JSON.stringify({ note: `key ${key}` }))).toEqual(["dev API key"]);
    const captured: string[] = [];
    const probe = createLogger("info", {}, { destination: { write: (s: string) => void captured.push(s) } });
    probe.info("a careless line", { note: `key ${key}`, password: "hunter2-hunter2", headers: { authorization: `Bearer ${key}` }, error: new Error(`Failed query: select 1\nparams: ${key},hunter2-hunter2`) });
    expect(captured).toHaveLength(1);
    expect(captured[0]).not.toContain(key);
    expect(captured[0]).not.toContain("hunter2");
    expect(captured[0]).toContain("[REDACTED]");
  });
});
