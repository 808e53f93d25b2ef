/**
 * #14 item 10 — a separate owner role for migrations. Two roles of our own: the owner (owns
 * the database, runs `fabric migrate` via MIGRATION_DATABASE_URL, and grants with
 * FABRIC_RUNTIME_ROLE) and the runtime role (DATABASE_URL of `serve --no-migrate` and
 * `admin bootstrap`). The runtime role does its job — boots, bootstraps, writes audited
 * changes — but cannot ALTER/DISABLE the audit_log trigger, nor UPDATE, DELETE or TRUNCATE
 * audit_log, nor change the schema. Positive control: the owner can disable the trigger
 * (inside a rolled-back transaction), so the refusals are the role's, not the statements'.
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminUrl, engine } from "../helpers/database.js";
import { spawnFabric, waitForOutput, type FabricProcess } from "../helpers/processes.js";

describe.skipIf(engine !== "postgres")("migrations as the owner, the runtime with data rights only (real Postgres)", () => {
  const suffix = randomBytes(5).toString("hex");
  const name = `fabric_test_roles_${suffix}`;
  const ownerRole = `fabric_owner_${suffix}`;
  const runtimeRole = `fabric_rt_${suffix}`;
  const urlAs = (role: string) => Object.assign(new URL(adminUrl), { pathname: `/${name}`, username: role, password: "" }).toString();
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  let asOwner: postgres.Sql;
  let asRuntime: postgres.Sql;
  const started: FabricProcess[] = [];
  const secret = "runtime-role-secret-0123456789-abcdefghijkl";

  beforeAll(async () => {
    await admin.unsafe(`CREATE ROLE ${ownerRole} LOGIN`);
    await admin.unsafe(`CREATE ROLE ${runtimeRole} LOGIN`);
    await admin.unsafe(`CREATE DATABASE ${name} OWNER ${ownerRole}`);
    asOwner = postgres(urlAs(ownerRole), { max: 1, onnotice: () => {} });
    asRuntime = postgres(urlAs(runtimeRole), { max: 1, onnotice: () => {} });
  });

  afterAll(async () => {
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    await Promise.all(started.map((p) => p.exited));
    await asOwner?.end();
    await asRuntime?.end();
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.unsafe(`DROP ROLE IF EXISTS ${runtimeRole}`);
    await admin.unsafe(`DROP ROLE IF EXISTS ${ownerRole}`);
    await admin.end();
  });

  const fabric = (args: string[], env: Record<string, string>) => {
    const p = spawnFabric(args, { JWT_SECRET: secret, DATABASE_POOL_MAX: "3", LOG_LEVEL: "info", ...env });
    started.push(p);
    return p;
  };
  const refusal = (q: Promise<unknown>) =>
    q.then(
      () => "succeeded",
      (err: { code?: string }) => err.code ?? "error",
    );

  it("migrate as the owner, serve as the runtime role; the runtime role cannot touch the audit trail or the schema", async () => {
    // DATABASE_URL names the runtime role: migrate must use MIGRATION_DATABASE_URL instead.
    const migrate = await fabric(["migrate"], { DATABASE_URL: urlAs(runtimeRole), MIGRATION_DATABASE_URL: urlAs(ownerRole), FABRIC_RUNTIME_ROLE: runtimeRole }).exited;
    expect(migrate.code, migrate.stderr).toBe(0);
    expect(migrate.stdout).toContain(`runtime role ${runtimeRole} granted data rights only`);
    const [t] = await asOwner<{ owner: string }[]>`SELECT tableowner AS owner FROM pg_tables WHERE tablename = 'audit_log'`;
    expect(t!.owner).toBe(ownerRole);

    // The runtime works: serve without migrating, bootstrap an owner, make an audited change.
    const serve = fabric(["serve", "--no-migrate", "--port", "0", "--grpc-port", "0"], { DATABASE_URL: urlAs(runtimeRole) });
    const rest = (await waitForOutput(serve, /"rest":"(http:\/\/[^"]+)"/, 120_000))[1]!;
    expect((await fetch(`${rest}/readyz`)).status).toBe(200);
    const boot = await fabric(["admin", "bootstrap", "--email", "ops@example.com", "--organization", "Ops", "--json"], { DATABASE_URL: urlAs(runtimeRole) }).exited;
    expect(boot.code, boot.stderr).toBe(0);
    const { api_key: key, organization_id: org } = JSON.parse(boot.stdout);
    const team = await fetch(`${rest}/v1/organizations/${org}/teams`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify({ slug: "roles", name: "Roles" }) });
    expect(team.status, await team.clone().text()).toBe(201);
    const [audited] = await asRuntime<{ n: number }[]>`SELECT count(*)::int AS n FROM audit_log WHERE action = 'team.create'`;
    expect(audited!.n).toBe(1);

    // What the runtime role cannot do (42501 insufficient_privilege: not the owner / no privilege).
    expect(await refusal(asRuntime.unsafe("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete"))).toBe("42501");
    expect(await refusal(asRuntime.unsafe("ALTER TABLE audit_log DISABLE TRIGGER ALL"))).toBe("42501");
    expect(await refusal(asRuntime.unsafe("DROP TRIGGER audit_log_no_truncate ON audit_log"))).toBe("42501");
    expect(await refusal(asRuntime.unsafe("UPDATE audit_log SET action = 'forged'"))).toBe("42501");
    expect(await refusal(asRuntime.unsafe("DELETE FROM audit_log"))).toBe("42501");
    expect(await refusal(asRuntime.unsafe("TRUNCATE audit_log"))).toBe("42501");
    expect(await refusal(asRuntime.unsafe("DROP TABLE audit_log"))).toBe("42501");
    expect(await refusal(asRuntime.unsafe("CREATE TABLE sneaky (id int)"))).toBe("42501");
    expect(await refusal(asRuntime.unsafe("ALTER TABLE organizations ADD COLUMN sneaky int"))).toBe("42501");
    const [still] = await asOwner<{ n: number }[]>`SELECT count(*)::int AS n FROM audit_log WHERE action = 'team.create'`;
    expect(still!.n).toBe(1);

    // Positive control: the owner can disable the trigger (rolled back), so the statements are sound.
    await asOwner
      .begin(async (tx) => {
        await tx.unsafe("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete");
        throw new Error("rollback");
      })
      .catch((err: Error) => expect(err.message).toBe("rollback"));
  });
});
