import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

/** The ConfigError thrown for `env`, failing the test when none is. */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be rejected`);
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("loadConfig", () => {
  it("has defaults for everything", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      FABRIC_ENV: "production",
      HOST: "127.0.0.1",
      PORT: 3001,
      GRPC_PORT: 3002,
      DATABASE_POOL_MAX: 10,
      FABRIC_DATA_DIR: ".fabric",
      FABRIC_MAX_BODY_BYTES: 1 << 20,
      WORKER_CONCURRENCY: 4,
      WORKER_POLL_INTERVAL: 500,
      WORKER_LEASE_SECONDS: 30,
      WORKER_MAX_RETRIES: 3,
      WORKER_SHUTDOWN_GRACE: 10_000,
      LOG_LEVEL: "info",
    });
    expect(c.DATABASE_URL).toBeUndefined();
    expect(c.RUN_ID).toBeUndefined();
    expect(c.JWT_SECRET).toBeUndefined();
    expect(c.WORKER_ID).toMatch(uuid);
    expect(loadConfig({}).WORKER_ID).not.toBe(c.WORKER_ID);
  });

  it("FABRIC_ROUTING_STRATEGY: local_first by default, one of the router's strategies, anything else rejected", () => {
    expect(loadConfig({}).FABRIC_ROUTING_STRATEGY).toBe("local_first");
    for (const s of ["local_first", "cheapest", "fastest", "best_quality", "balanced"]) expect(loadConfig({ FABRIC_ROUTING_STRATEGY: s }).FABRIC_ROUTING_STRATEGY).toBe(s);
    expect(configError({ FABRIC_ROUTING_STRATEGY: "random" }).message).toContain("FABRIC_ROUTING_STRATEGY");
  });

  it("provider credentials and URLs: blank keys are unset, OLLAMA_ENABLED a boolean, base URLs http(s)", () => {
    const none = loadConfig({});
    expect([none.OPENAI_API_KEY, none.ANTHROPIC_API_KEY, none.OLLAMA_URL, none.OLLAMA_ENABLED]).toEqual([undefined, undefined, undefined, false]);
    const c = loadConfig({
      OPENAI_API_KEY: " sk-1 ",
      OPENAI_BASE_URL: "http://127.0.0.1:9999/v1",
      ANTHROPIC_API_KEY: "   ",
      ANTHROPIC_BASE_URL: "https://proxy.example/anthropic",
      OLLAMA_ENABLED: "TRUE",
      OLLAMA_URL: "http://gpu-box:11434",
    });
    expect(c).toMatchObject({ OPENAI_API_KEY: "sk-1", OPENAI_BASE_URL: "http://127.0.0.1:9999/v1", ANTHROPIC_BASE_URL: "https://proxy.example/anthropic", OLLAMA_ENABLED: true, OLLAMA_URL: "http://gpu-box:11434" });
    expect(c.ANTHROPIC_API_KEY).toBeUndefined();
    for (const [v, on] of [["1", true], ["0", false], ["false", false], [" true ", true]] as const) expect(loadConfig({ OLLAMA_ENABLED: v }).OLLAMA_ENABLED).toBe(on);
    expect(configError({ OLLAMA_ENABLED: "yes" }).message).toContain("OLLAMA_ENABLED");
    for (const name of ["OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "OLLAMA_URL"]) {
      expect(configError({ [name]: "localhost:11434" }).message).toContain(name);
      expect(configError({ [name]: "ftp://files.example" }).message).toContain(name);
    }
    // Never echoes a value: a URL may carry credentials.
    expect(configError({ OPENAI_BASE_URL: "not a url sk-secret" }).message).not.toContain("sk-secret");
  });

  it("FABRIC_CORS_ORIGINS: none by default, a comma-separated list of origins or *, anything else rejected", () => {
    expect(loadConfig({}).FABRIC_CORS_ORIGINS).toBeUndefined();
    expect(loadConfig({ FABRIC_CORS_ORIGINS: "https://app.example.com, http://localhost:5173" }).FABRIC_CORS_ORIGINS).toEqual(["https://app.example.com", "http://localhost:5173"]);
    expect(loadConfig({ FABRIC_CORS_ORIGINS: "*" }).FABRIC_CORS_ORIGINS).toEqual(["*"]);
    for (const bad of ["app.example.com", "https://app.example.com/path", "ftp://x"]) expect(() => loadConfig({ FABRIC_CORS_ORIGINS: bad }), bad).toThrow(/FABRIC_CORS_ORIGINS/);
  });

  it("does not read process.env when given an environment", () => {
    const saved = process.env.PORT;
    process.env.PORT = "4444";
    try {
      expect(loadConfig({}).PORT).toBe(3001);
      expect(loadConfig().PORT).toBe(4444);
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
    }
  });

  it("parses every WORKER_* variable", () => {
    const c = loadConfig({
      WORKER_ID: "worker-7",
      WORKER_CONCURRENCY: "16",
      WORKER_POLL_INTERVAL: "250ms",
      WORKER_LEASE_SECONDS: "60",
      WORKER_MAX_RETRIES: "5",
      WORKER_SHUTDOWN_GRACE: "3s",
    });
    expect(c).toMatchObject({
      WORKER_ID: "worker-7",
      WORKER_CONCURRENCY: 16,
      WORKER_POLL_INTERVAL: 250,
      WORKER_LEASE_SECONDS: 60,
      WORKER_MAX_RETRIES: 5,
      WORKER_SHUTDOWN_GRACE: 3000,
    });
  });

  it("parses the other variables", () => {
    const c = loadConfig({
      FABRIC_ENV: "production",
      HOST: "0.0.0.0",
      PORT: "8080",
      GRPC_PORT: "0",
      DATABASE_URL: "postgres://u:p@db:5432/fabric",
      DATABASE_POOL_MAX: "20",
      FABRIC_DATA_DIR: "/var/lib/fabric",
      FABRIC_MAX_BODY_BYTES: "2048",
      FABRIC_DEV_API_KEY: "fab_abcd1234_" + "A".repeat(20),
      JWT_SECRET: "a-test-secret-0123456789-abcdefghij",
      LOG_LEVEL: "silent",
    });
    expect(c).toMatchObject({ FABRIC_ENV: "production", HOST: "0.0.0.0", PORT: 8080, GRPC_PORT: 0, DATABASE_POOL_MAX: 20, FABRIC_MAX_BODY_BYTES: 2048, LOG_LEVEL: "silent" });
    expect(c.DATABASE_URL).toBe("postgres://u:p@db:5432/fabric");
  });

  it.each([
    ["500", 500],
    ["500ms", 500],
    ["2s", 2000],
    ["1.5s", 1500],
    [" 750ms ", 750],
    ["3600000", 3_600_000],
  ])("duration %j → %d ms", (raw, ms) => {
    expect(loadConfig({ WORKER_POLL_INTERVAL: raw }).WORKER_POLL_INTERVAL).toBe(ms);
    expect(loadConfig({ WORKER_SHUTDOWN_GRACE: raw }).WORKER_SHUTDOWN_GRACE).toBe(ms);
  });

  it.each([
    ["WORKER_POLL_INTERVAL", "fast"],
    ["WORKER_POLL_INTERVAL", "2m"],
    ["WORKER_POLL_INTERVAL", "-5"],
    ["WORKER_POLL_INTERVAL", "0"],
    ["WORKER_POLL_INTERVAL", "2 s"],
    ["WORKER_SHUTDOWN_GRACE", "3600001"],
    ["WORKER_SHUTDOWN_GRACE", "2h"],
    ["WORKER_CONCURRENCY", "0"],
    ["WORKER_CONCURRENCY", "1.5"],
    ["WORKER_CONCURRENCY", "four"],
    ["WORKER_LEASE_SECONDS", "3601"],
    ["WORKER_MAX_RETRIES", "21"],
    ["WORKER_ID", "x".repeat(201)],
    ["PORT", "65536"],
    ["PORT", "http"],
    ["GRPC_PORT", "-1"],
    ["DATABASE_URL", "not a url"],
    ["DATABASE_POOL_MAX", "0"],
    ["FABRIC_ENV", "staging"],
    ["FABRIC_MAX_BODY_BYTES", "10"],
    ["FABRIC_DEV_API_KEY", "fab_short_x"],
    ["LOG_LEVEL", "verbose"],
    ["RUN_ID", "run-1"],
    ["RUN_ID", "0123456789abcdef0123456789abcdef"],
  ])("%s=%j fails naming the variable", (name, value) => {
    const err = configError({ [name]: value });
    expect(err.name).toBe("ConfigError");
    expect(err.message).toMatch(new RegExp(`^  ${name}: `, "m"));
  });

  it("reports every invalid variable at once", () => {
    const err = configError({ PORT: "x", WORKER_CONCURRENCY: "0", RUN_ID: "nope" });
    for (const name of ["PORT", "WORKER_CONCURRENCY", "RUN_ID"]) expect(err.message).toContain(`${name}:`);
  });

  it("RUN_ID must be a UUID", () => {
    const id = randomUUID();
    expect(loadConfig({ RUN_ID: id }).RUN_ID).toBe(id);
    expect(configError({ RUN_ID: "not-a-uuid" }).message).toContain("RUN_ID");
  });

  it("treats an empty string as unset", () => {
    const c = loadConfig({ PORT: "", WORKER_POLL_INTERVAL: "", RUN_ID: "", DATABASE_URL: "", WORKER_ID: "", JWT_SECRET: "", HOST: undefined });
    expect(c.PORT).toBe(3001);
    expect(c.WORKER_POLL_INTERVAL).toBe(500);
    expect(c.RUN_ID).toBeUndefined();
    expect(c.DATABASE_URL).toBeUndefined();
    expect(c.JWT_SECRET).toBeUndefined();
    expect(c.WORKER_ID).toMatch(uuid);
    expect(c.HOST).toBe("127.0.0.1");
  });

  it("does not echo secret values in the error", () => {
    const secret = "tooShortButStillASecret";
    const jwt = configError({ JWT_SECRET: secret });
    expect(jwt.message).toContain("JWT_SECRET");
    expect(jwt.message).not.toContain(secret);

    const key = "fab_abcd1234_short-secret!";
    expect(configError({ FABRIC_DEV_API_KEY: key }).message).not.toContain("short-secret");
  });
});
