/**
 * Per-organization retention through the API (both transports): read, set, clear, bounds,
 * permissions, audit; and the pruner using it — an organization's setting wins, the server
 * default (FABRIC_RETENTION_SECONDS) applies to organizations without one, 0 keeps runs
 * forever. Deletion itself (batches, what hangs off a run) is tests/db/prune-runs.test.ts.
 */
import { randomUUID } from "node:crypto";
import { eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { organizations, workflowRuns } from "../../src/db/schema.js";
import { startControlPlane, type ControlPlane } from "../../src/control-plane/server.js";
import { client, transports, type Actor } from "../helpers/calls.js";
import { eventually, startTestFabric, testLog, type TestFabric } from "../helpers/fabric.js";
import { eventsOfKind, expectNoAudit, expectOneAudit, member, newOrganization, setup } from "../helpers/fixtures.js";

let fabric: TestFabric;
let owner: Actor;
let viewer: Actor;
let other: { apiKey: string; organizationId: string };

beforeAll(async () => {
  fabric = await startTestFabric();
  owner = { key: fabric.apiKey };
  viewer = { key: (await member(fabric, fabric.organizationId, "viewer")).key };
  other = await fabric.otherOrg();
});
afterAll(async () => {
  await fabric?.close();
});

const own = async (orgId: string) => (await fabric.database.db.select({ r: organizations.retentionSeconds }).from(organizations).where(eq(organizations.id, orgId)))[0]!.r;

describe.each(transports)("retention settings over %s", (via) => {
  const c = () => client(fabric, via);
  const org = () => fabric.organizationId;

  it("reads the server default until the organization sets its own; set and clear are audited", async () => {
    await fabric.database.db.update(organizations).set({ retentionSeconds: null }).where(eq(organizations.id, org()));
    expect(await c().ok("RetentionService/GetRetention", { organization_id: org() }, viewer)).toEqual({ organization_id: org(), default_retention_seconds: "0", effective_retention_seconds: "0" });
    const setId = `ret-${randomUUID()}`;
    expect(await c().ok("RetentionService/SetRetention", { organization_id: org(), retention_seconds: "86400" }, owner, setId)).toEqual({ organization_id: org(), retention_seconds: "86400", default_retention_seconds: "0", effective_retention_seconds: "86400" });
    const audit = await expectOneAudit(fabric, setId, { action: "retention.set", resource: `organization:${org()}` });
    expect(audit.summary).toMatchObject({ changes: { retention_seconds: { from: null, to: 86400 } } });
    expect((await eventsOfKind(fabric, org(), "organization.updated")).some((e) => e.request_id === setId && e.changes.retention_seconds.to === 86400)).toBe(true);
    // The same value again changes nothing and records nothing.
    const again = `ret-${randomUUID()}`;
    await c().ok("RetentionService/SetRetention", { organization_id: org(), retention_seconds: "86400" }, owner, again);
    await expectNoAudit(fabric, again);
    // 0: forever; absent: back to the server default.
    expect((await c().ok("RetentionService/SetRetention", { organization_id: org(), retention_seconds: "0" }, owner)).effective_retention_seconds).toBe("0");
    expect(await own(org())).toBe(0);
    const cleared = await c().ok("RetentionService/SetRetention", { organization_id: org() }, owner);
    expect(cleared.retention_seconds).toBeUndefined();
    expect(await own(org())).toBeNull();
  });

  it("refuses out-of-range values, viewers and other organizations, and changes nothing", async () => {
    await c().ok("RetentionService/SetRetention", { organization_id: org(), retention_seconds: "3600" }, owner);
    for (const bad of ["59", "-1", "2000000001", "99999999999"]) {
      const f = await c().fails("RetentionService/SetRetention", { organization_id: org(), retention_seconds: bad }, owner, 400, "invalid_argument");
      expect(f.issues.map((i) => i.path)).toContain("/retention_seconds");
    }
    const requestId = `deny-${randomUUID()}`;
    expect(await c().call("RetentionService/SetRetention", { organization_id: org(), retention_seconds: "60" }, viewer, requestId)).toMatchObject({ ok: false, status: 403, code: "permission_denied" });
    await expectNoAudit(fabric, requestId);
    await c().fails("RetentionService/SetRetention", { organization_id: org(), retention_seconds: "60" }, { key: other.apiKey }, 404, "not_found");
    await c().fails("RetentionService/GetRetention", { organization_id: org() }, { key: other.apiKey }, 404, "not_found");
    await c().fails("RetentionService/GetRetention", { organization_id: org() }, { key: "fab_nope" }, 401);
    expect(await own(org())).toBe(3600);
  });
});

describe("the pruner uses the organization's setting, else the server default", () => {
  let second: ControlPlane | undefined;
  afterAll(async () => {
    await second?.close();
  });

  /** `n` completed runs of a one-node workflow in the organization of `key`, finished two minutes ago. */
  async function oldRuns(key: string, n: number): Promise<string[]> {
    const name = `ret-${randomUUID().slice(0, 8)}`;
    const wf = await setup(fabric, "POST", "/v1/workflows", { name, nodes: [{ key: "a", operation: "workflow.noop" }] }, 201, key);
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await setup(fabric, "POST", "/v1/workflow-runs", { workflow_id: wf.id }, 202, key)).id);
    await eventually(async () => {
      const rows = await fabric.database.db.select({ status: workflowRuns.status }).from(workflowRuns).where(inArray(workflowRuns.id, ids));
      return rows.every((r) => r.status === "completed") ? true : undefined;
    });
    await fabric.database.db.update(workflowRuns).set({ finishedAt: new Date(Date.now() - 120_000) }).where(inArray(workflowRuns.id, ids));
    return ids;
  }
  const remaining = async (ids: string[]) => (await fabric.database.db.select({ id: workflowRuns.id }).from(workflowRuns).where(inArray(workflowRuns.id, ids))).length;

  it("deletes only where the retention has passed", async () => {
    const a = await newOrganization(fabric); // sets 60 s through the API
    const b = await newOrganization(fabric); // no setting: the server default
    const forever = await newOrganization(fabric); // 0 through the API: kept even under a server default
    await client(fabric, "grpc").ok("RetentionService/SetRetention", { organization_id: a.id, retention_seconds: "60" }, { key: a.owner.key });
    await client(fabric, "rest").ok("RetentionService/SetRetention", { organization_id: forever.id, retention_seconds: "0" }, { key: forever.owner.key });
    const [runsA, runsB, runsF] = [await oldRuns(a.owner.key, 3), await oldRuns(b.owner.key, 3), await oldRuns(forever.owner.key, 2)];

    // This control plane's default is 0 (forever): only A's runs go.
    await fabric.controlPlane.retention.pruneNow();
    expect([await remaining(runsA), await remaining(runsB), await remaining(runsF)]).toEqual([0, 3, 2]);

    // A control plane whose server default is 60 s prunes B's (no setting) but not the forever one's.
    second = await startControlPlane({
      config: { HOST: "127.0.0.1", PORT: 0, GRPC_PORT: 0, FABRIC_ENV: "development", FABRIC_MAX_BODY_BYTES: 1 << 20, FABRIC_RETENTION_SECONDS: 60, FABRIC_RETENTION_INTERVAL_MS: 3_600_000 },
      database: fabric.database,
      log: testLog,
    });
    const answer = await fetch(`${second.restUrl}/v1/organizations/${b.id}/retention`, { headers: { authorization: `Bearer ${b.owner.key}` } });
    expect(((await answer.json()) as any).data).toEqual({ organization_id: b.id, default_retention_seconds: "60", effective_retention_seconds: "60" });
    await second.retention.pruneNow();
    expect([await remaining(runsB), await remaining(runsF)]).toEqual([0, 2]);
  });
});
