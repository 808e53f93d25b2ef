/**
 * Issue 14, item 5: `fabric serve` is production unless FABRIC_ENV says otherwise (so it
 * needs JWT_SECRET), an explicit FABRIC_ENV=development warns loudly at start-up, and
 * `X-Principal-Id` is honoured only by `fabric dev` on loopback — never by `serve`.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fabricBin, repoRoot } from "../helpers/processes.js";
import { spawnServe, type ServeProcess } from "../helpers/serve-process.js";

const tmp = mkdtempSync(join(tmpdir(), "fabric-prod-default-"));
const started: ServeProcess[] = [];
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

const secret = "a-test-jwt-secret-that-is-long-enough-0123456789";
/** A principal that exists (signed up), so a refusal is about the header, not an unknown id. */
async function signedUp(restUrl: string): Promise<string> {
  const res = await fetch(`${restUrl}/v1/auth/signup`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: `${Date.now()}@prod.test`, password: "a long enough password 1", display_name: "P" }) });
  expect(res.status).toBe(201);
  return ((await res.json()) as any).data.principal.id;
}

describe("fabric serve defaults to production", () => {
  it("refuses to start without JWT_SECRET when FABRIC_ENV is unset", async () => {
    const err = await spawnServe({ FABRIC_ENV: "", JWT_SECRET: "", FABRIC_DATA_DIR: join(tmp, "a") }, { timeoutMs: 90_000 }).then(
      (s) => (started.push(s), null),
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/JWT_SECRET: required when FABRIC_ENV=production/);
  }, 120_000);

  it("ignores X-Principal-Id when FABRIC_ENV is unset", async () => {
    const s = await spawnServe({ FABRIC_ENV: "", JWT_SECRET: secret, FABRIC_DATA_DIR: join(tmp, "b") }, { timeoutMs: 90_000 });
    started.push(s);
    const res = await fetch(`${s.restUrl}/v1/me`, { headers: { "x-principal-id": await signedUp(s.restUrl) } });
    expect(res.status).toBe(401);
    expect(s.stderr()).not.toMatch(/FABRIC_ENV=development/);
  }, 120_000);

  it("warns loudly with an explicit FABRIC_ENV=development, and still ignores X-Principal-Id", async () => {
    const s = await spawnServe({ FABRIC_ENV: "development", FABRIC_DATA_DIR: join(tmp, "c") }, { timeoutMs: 90_000 });
    started.push(s);
    expect(s.stderr()).toMatch(/!!! FABRIC_ENV=development/);
    const res = await fetch(`${s.restUrl}/v1/me`, { headers: { "x-principal-id": await signedUp(s.restUrl) } });
    expect(res.status).toBe(401);
  }, 120_000);
});

describe("fabric dev on loopback", () => {
  it("honours X-Principal-Id (positive control)", async () => {
    const child = spawn(process.execPath, [fabricBin, "dev", "--port", "0", "--grpc-port", "0", "--data-dir", join(tmp, "dev")], {
      cwd: repoRoot,
      env: { ...process.env, FABRIC_ENV: "", LOG_LEVEL: "warn", FABRIC_DEV_API_KEY: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      let out = "";
      let err = "";
      child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
      const deadline = Date.now() + 90_000;
      while (!/API key\s+\S+/.test(out)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`fabric dev did not start:\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const restUrl = out.match(/REST \+ SSE\s+(http:\/\/127\.0\.0\.1:\d+)/)![1]!;
      const key = out.match(/API key\s+(\S+)/)![1]!;
      const me = (await (await fetch(`${restUrl}/v1/me`, { headers: { authorization: `Bearer ${key}` } })).json()) as any;
      const res = await fetch(`${restUrl}/v1/me`, { headers: { "x-principal-id": me.data.principal.id } });
      expect(res.status).toBe(200);
      expect(err).toMatch(/development mode \(fabric dev\)/);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  }, 120_000);
});
