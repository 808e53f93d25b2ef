/**
 * The operator's CLI as a user runs it (real child processes of bin/fabric.js): version
 * and help, one-line errors with their exit codes (usage 2, failure 1), `admin
 * bootstrap` in production, then the API commands (runs, workflows, keys) with the key
 * it printed, against a production `fabric serve` on an embedded database.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:net";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot, spawnFabric, waitForOutput, type FabricProcess } from "./helpers/processes.js";

const tmp = mkdtempSync(join(tmpdir(), "fabric-cli-op-"));
const dataDir = join(tmp, "data");
/** A production secret as an operator would make one (a repeated character is refused). */
const jwtSecret = randomBytes(32).toString("base64url");
const production = { FABRIC_ENV: "production", JWT_SECRET: jwtSecret, FABRIC_DATA_DIR: dataDir };
const started: FabricProcess[] = [];
const fabric = (args: string[], env: Record<string, string | undefined> = {}) => {
  const p = spawnFabric(args, env);
  started.push(p);
  return p;
};
const run = (args: string[], env: Record<string, string | undefined> = {}) => fabric(args, env).exited;
/** A one-line error: a single line on stderr starting `fabric: `, no stack frame. */
const oneLine = (stderr: string) => {
  const lines = stderr.trim().split("\n");
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^fabric: /);
  expect(stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
};

afterAll(async () => {
  for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  await Promise.all(started.map((p) => p.exited));
  rmSync(tmp, { recursive: true, force: true });
});

describe("version, help and one-line errors", () => {
  it("--version prints the package's version", async () => {
    const r = await run(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version);
  });

  it("every command answers --help with its usage and exit 0; no command is exit 2 with the overview", async () => {
    const commands = ["dev", "serve", "executor", "migrate", "admin", "run", "runs", "workflows", "keys"];
    const results = await Promise.all(commands.map((c) => run([c, "--help"])));
    results.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^fabric ${commands[i]}`));
    });
    const sub = await run(["runs", "list", "--help"]);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain("fabric runs list");
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toContain("Exit codes");
  });

  it("an unknown flag, command or subcommand is a usage error: exit 2, one line", async () => {
    const [flag, command, sub, value] = await Promise.all([run(["serve", "--bogus"]), run(["serv"]), run(["runs", "lst"]), run(["runs", "list", "--limit", "many", "--api-key", "fab_x"])]);
    for (const r of [flag, command, sub, value]) expect(r.code, r.stderr).toBe(2);
    expect(oneLine(flag.stderr)).toBe("fabric: unknown option '--bogus' (see fabric serve --help)");
    expect(oneLine(command.stderr)).toBe('fabric: unknown command "serv" (see fabric --help)');
    expect(oneLine(sub.stderr)).toBe('fabric: unknown subcommand runs "lst" (see fabric runs --help)');
    expect(oneLine(value.stderr)).toContain("--limit expects a whole number");
  });

  it("a missing or malformed workflow file is a usage error: exit 2, one line", async () => {
    writeFileSync(join(tmp, "broken.json"), '{"name": "x", "nodes": [');
    writeFileSync(join(tmp, "broken.yaml"), "name: x\nnodes: [\n");
    const env = { FABRIC_API_KEY: "fab_abcd1234_Zx9Qw8Er7Ty6Ui5Op4As3Df2", FABRIC_URL: "http://127.0.0.1:9" };
    const [missing, json, yaml, apply] = await Promise.all([
      run(["run", join(tmp, "nope.json")], env),
      run(["run", join(tmp, "broken.json")], env),
      run(["run", join(tmp, "broken.yaml")], env),
      run(["workflows", "apply", join(tmp, "nope.yaml")], env),
    ]);
    for (const r of [missing, json, yaml, apply]) expect(r.code, r.stderr).toBe(2);
    expect(oneLine(missing.stderr)).toBe(`fabric: cannot read workflow file ${join(tmp, "nope.json")}: no such file`);
    expect(oneLine(json.stderr)).toMatch(/^fabric: workflow file .*broken\.json is not valid JSON: /);
    expect(oneLine(yaml.stderr)).toMatch(/^fabric: workflow file .*broken\.yaml is not valid YAML: /);
    expect(oneLine(apply.stderr)).toContain("no such file");
  });

  it("a server that is not there is a failure: exit 1, one line naming the address", async () => {
    const r = await run(["runs", "list", "--url", "http://127.0.0.1:9", "--api-key", "fab_abcd1234_Zx9Qw8Er7Ty6Ui5Op4As3Df2"]);
    expect(r.code, r.stderr).toBe(1);
    expect(oneLine(r.stderr)).toMatch(/127\.0\.0\.1:9|fetch failed|unavailable|network/i);
  });

  it("a busy port is a failure: exit 1, one line naming the address; the data dir is released", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const dir = join(tmp, "busy");
      const r = await run(["serve", "--port", String(port), "--grpc-port", "0", "--data-dir", dir], { JWT_SECRET: jwtSecret }); // serve is production by default
      expect(r.code, r.stderr).toBe(1);
      const line = r.stderr.trim().split("\n").filter((l) => !l.startsWith("{")).join("\n"); // the JSON log line warning about PGlite aside
      expect(oneLine(line)).toBe(`fabric: 127.0.0.1:${port} is already in use: stop what listens there, or pick another port (--port/PORT, --grpc-port/GRPC_PORT)`);
      expect(existsSync(join(dir, "fabric.lock"))).toBe(false);
    } finally {
      blocker.close();
    }
  }, 120_000); // a fresh embedded database migrates first: slow on a loaded machine

  it("with LOG_LEVEL=debug the stack follows the line", async () => {
    const r = await run(["run", join(tmp, "nope.json")], { LOG_LEVEL: "debug", FABRIC_API_KEY: "fab_abcd1234_Zx9Qw8Er7Ty6Ui5Op4As3Df2" });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^fabric: cannot read workflow file/);
    expect(r.stderr).toMatch(/\n\s+at /);
  });
});

describe("admin bootstrap in production, then the API commands with its key", () => {
  let key = "";
  let restUrl = "";
  let serve: FabricProcess;

  beforeAll(async () => {
    const first = await run(["admin", "bootstrap", "--email", "Ops@Example.com", "--organization", "Acme Corp"], production);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^owner ops@example\.com of organization acme-corp \([0-9a-f-]{36}\)$/m);
    key = first.stdout.trim().split("\n").pop()!;
    expect(key).toMatch(/^fab_[a-z0-9]{8}_[A-Za-z0-9]{20,}$/);
    serve = fabric(["serve", "--port", "0", "--grpc-port", "0"], { ...production, LOG_LEVEL: "info" });
    restUrl = (await waitForOutput(serve, /"rest":"(http:\/\/[^"]+)"/))[1]!;
  }, 120_000);

  it("the key it printed works: keys list shows it alone", async () => {
    // (A second bootstrap needs the embedded database, which serve holds: the last test runs it.) One key so far.
    const keys = await run(["keys", "list", "--json", "--url", restUrl, "--api-key", key]);
    expect(keys.code, keys.stderr).toBe(0);
    expect(JSON.parse(keys.stdout).map((k: { name: string }) => k.name)).toEqual(["bootstrap"]);
  });

  it("runs list with that key: an empty table at first, then the run `fabric run` started; get, cancel, events", async () => {
    const env = { FABRIC_URL: restUrl, FABRIC_API_KEY: key };
    const empty = await run(["runs", "list"], env);
    expect(empty.code, empty.stderr).toBe(0);
    expect(empty.stdout.trim()).toBe("no runs");

    const started = await run(["run", "examples/smoke.json", "--input", "topic=hi"], env);
    expect(started.code, started.stderr).toBe(0);
    const runId = JSON.parse(started.stdout).id as string;

    const list = await run(["runs", "list"], env);
    expect(list.stdout).toMatch(/^ID\s+WORKFLOW\s+STATUS\s+CREATED\s+FINISHED$/m);
    expect(list.stdout).toMatch(new RegExp(`^${runId}\\s+smoke v1\\s+(pending|running)\\s`, "m"));
    const asJson = await run(["runs", "list", "--json"], env);
    expect(JSON.parse(asJson.stdout).map((r: { id: string }) => r.id)).toEqual([runId]);

    const get = await run(["runs", "get", runId], env);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toMatch(/^workflow\s+smoke v1/m);
    expect(get.stdout).toMatch(/^shout\s+/m);

    // No executor runs here, so the run waits: cancel it, then its events end with the cancellation.
    const cancel = await run(["runs", "cancel", runId, "--reason", "test"], env);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout.trim()).toBe(`run ${runId} cancelled`);
    const events = await run(["runs", "events", runId], env);
    expect(events.code, events.stderr).toBe(0);
    expect(events.stdout).toMatch(/workflow\.run\.created/);
    expect(events.stdout.trim().split("\n").pop()).toMatch(/workflow\.run\.cancelled/);

    const missing = await run(["runs", "get", "00000000-0000-4000-8000-000000000000"], env);
    expect(missing.code).toBe(1);
    expect(oneLine(missing.stderr)).toMatch(/^fabric: 404 not_found/);
  });

  it("workflows apply, list and get", async () => {
    const env = { FABRIC_URL: restUrl, FABRIC_API_KEY: key };
    const apply = await run(["workflows", "apply", "examples/smoke.json"], env);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stdout).toMatch(/^workflow smoke v1 \([0-9a-f-]{36}\)$/m);
    const list = await run(["workflows", "list"], env);
    expect(list.stdout).toMatch(/^smoke|\ssmoke\s+1\s+2\s/m);
    const byName = await run(["workflows", "get", "smoke", "--json"], env);
    expect(JSON.parse(byName.stdout)).toMatchObject({ name: "smoke", version: 1 });
    const invalid = join(tmp, "invalid.json");
    writeFileSync(invalid, JSON.stringify({ name: "bad", nodes: [{ key: "a", operation: "workflow.noop", depends_on: ["ghost"] }] }));
    const refused = await run(["workflows", "apply", invalid], env);
    expect(refused.code).toBe(2);
    expect(oneLine(refused.stderr)).toMatch(/^fabric: 400 invalid_argument — .*\/nodes\/0\/depends_on\/0/);
  });

  it("keys create prints the key once, it works, list shows it, revoke stops it", async () => {
    const env = { FABRIC_URL: restUrl, FABRIC_API_KEY: key };
    const created = await run(["keys", "create", "--name", "ci", "--scopes", "workflows:read"], env);
    expect(created.code, created.stderr).toBe(0);
    const [info, raw] = created.stdout.trim().split("\n");
    expect(info).toMatch(/^key [0-9a-f-]{36} \(ci\) created; it is shown this once:$/);
    const id = info!.split(" ")[1]!;
    expect((await run(["workflows", "list"], { FABRIC_URL: restUrl, FABRIC_API_KEY: raw })).code).toBe(0);
    const list = await run(["keys", "list"], env);
    expect(list.stdout).toMatch(new RegExp(`^${id}\\s+ci\\s+\\S+\\s+workflows:read\\s`, "m"));
    expect(list.stdout).not.toContain(raw!.split("_")[2]!); // the secret is never listed
    const revoke = await run(["keys", "revoke", id], env);
    expect(revoke.stdout.trim()).toBe(`key ${id} (ci) revoked`);
    const refused = await run(["workflows", "list"], { FABRIC_URL: restUrl, FABRIC_API_KEY: raw });
    expect(refused.code).toBe(1);
    expect(oneLine(refused.stderr)).toMatch(/^fabric: 401 /);
  });

  it("a second bootstrap: same owner changes nothing; another owner is refused unless --force", async () => {
    serve.child.kill("SIGTERM");
    expect((await serve.exited).code).toBe(0);
    const again = await run(["admin", "bootstrap", "--email", "ops@example.com", "--organization", "Acme Corp"], production);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^already bootstrapped: ops@example\.com owns acme-corp/);
    expect(again.stdout).not.toMatch(/fab_/);
    const other = await run(["admin", "bootstrap", "--email", "eve@example.com", "--organization", "Other"], production);
    expect(other.code).toBe(1);
    expect(oneLine(other.stderr)).toBe("fabric: an owner exists already (ops@example.com owns acme-corp); pass --force to add this one");
    const forced = await run(["admin", "bootstrap", "--email", "eve@example.com", "--organization", "Other", "--force", "--json"], production);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ outcome: "created", slug: "other", api_key: expect.stringMatching(/^fab_/) });
    const badEmail = await run(["admin", "bootstrap", "--email", "nope", "--organization", "X"], production);
    expect(badEmail.code).toBe(2);
    expect(oneLine(badEmail.stderr)).toBe("fabric: email is not a valid email address");
  }, 60_000);
});
