/**
 * Issue 14, item 4: every event kind the code can emit has a read permission, checked per
 * event as the corresponding GET checks it; payloads carry ids, not webhook URLs (which
 * may hold a token) or invitee emails.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventKinds, eventReadRule } from "../../src/domain/event-kinds.js";
import { apiKeys, memberships, principals } from "../../src/db/schema.js";
import { newApiKey } from "../../src/services/identity/authenticator.js";
import { smokeWorkflow, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { repoRoot } from "../helpers/processes.js";
import { openSse, readUntil, type SseMessage } from "../rest/sse.js";

/** Every event kind written in src/: `kind: "…"`, the emit helpers' first argument, and kinds in SQL. */
function kindsInSource(): Set<string> {
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith(".ts") && !path.endsWith(".test.ts") && !path.includes("/sdk/")) {
        const text = readFileSync(path, "utf8");
        for (const m of text.matchAll(/\bkind: "([a-z_]+\.[a-z_.]+)"/g)) found.add(m[1]!);
        for (const m of text.matchAll(/\b(?:ev|nodeEvent|runEvent\([a-z]+,)\s*\(?\s*"([a-z_]+\.[a-z_.]+)"/g)) found.add(m[1]!);
        for (const m of text.matchAll(/'((?:workflow|organization|team|member|invitation|api_key|webhook|policy|budget)\.[a-z_.]+)'/g)) found.add(m[1]!);
        if (text.includes("`workflow.run.${status}`")) for (const s of ["completed", "failed", "cancelled"]) found.add(`workflow.run.${s}`);
      }
    }
  };
  walk(join(repoRoot, "src"));
  return found;
}

describe("the event kind catalogue", () => {
  it("covers every kind the code emits", () => {
    const emitted = kindsInSource();
    expect(emitted.size).toBeGreaterThan(30);
    expect([...emitted].filter((k) => !eventReadRule(k))).toEqual([]);
  });

  it("gives each kind the permission of its GET", () => {
    const expected: Record<string, string> = {};
    for (const k of Object.keys(eventKinds)) {
      const [area] = k.split(".");
      expected[k] =
        area === "workflow" && k !== "workflow.definition.created"
          ? "run.read@run"
          : ({
              workflow: "workflow.read@payload_team",
              organization: "organization.read@organization",
              team: k === "team.deleted" ? "team.read@organization" : "team.read@payload_team",
              member: "member.read@payload_team",
              service_account: "member.read@organization",
              invitation: "invitation.read@payload_team",
              api_key: "api_key.read@owner_or_organization",
              webhook: "webhook.read@organization",
              policy: "policy.read@payload_team",
              budget: "budget.read@payload_team",
              schedule: "schedule.read@payload_team",
            } as Record<string, string>)[area!]!;
    }
    const actual = Object.fromEntries(Object.entries(eventKinds).map(([k, r]) => [k, `${r.action}@${r.on}`]));
    expect(actual).toEqual(expected);
    expect(eventReadRule("no.such.kind")).toBeUndefined();
    expect(eventReadRule("__proto__")).toBeUndefined();
  });
});

describe("the event stream shows each kind only to who may GET it", () => {
  let fabric: TestFabric;
  let viewerKey: string;
  let adminKey: string;
  let workflowId: string;

  const member = async (role: string) => {
    const db = fabric.database.db;
    const principalId = randomUUID();
    await db.insert(principals).values({ id: principalId, kind: "user", email: `${principalId}@perm.test`, displayName: role });
    await db.insert(memberships).values({ id: randomUUID(), organizationId: fabric.organizationId, principalId, role });
    const k = newApiKey();
    await db.insert(apiKeys).values({ id: randomUUID(), organizationId: fabric.organizationId, principalId, name: role, prefix: k.prefix, secretHash: k.secretHash });
    return k.raw;
  };

  beforeAll(async () => {
    fabric = await startTestFabric({ webhooksAllowPrivate: true });
    viewerKey = await member("viewer");
    adminKey = await member("admin");
    workflowId = ((await (await fabric.rest("/v1/workflows", { method: "POST", json: { ...smokeWorkflow, name: "perm-sentinel" } })).json()) as any).data.id;
  });
  afterAll(() => fabric?.close());

  it("hides webhooks, invitations and other members' keys from a viewer; ids only in payloads", async () => {
    const org = fabric.organizationId;
    const open = (key: string) => openSse(`${fabric.restUrl}/v1/events/stream`, { authorization: `Bearer ${key}` });
    const viewer = await open(viewerKey);
    const admin = await open(adminKey);
    const created = async (path: string, json: unknown) => {
      const res = await fabric.rest(path, { method: "POST", json });
      expect(res.status, await res.clone().text()).toBeLessThan(300);
    };
    await created(`/v1/organizations/${org}/webhooks`, { url: "http://127.0.0.1:9/hook?token=s3cret-token", event_filter: "team.*" });
    await created(`/v1/organizations/${org}/invitations`, { email: "invitee@private.test", role: "member" });
    await created(`/v1/organizations/${org}/api-keys`, { name: "owner-ci-key" });
    const runId = ((await (await fabric.rest("/v1/workflow-runs", { method: "POST", json: { workflow_id: workflowId, input: { topic: "x" } } })).json()) as any).data.id;
    const done = (m: SseMessage) => m.event === "workflow.run.completed" && JSON.parse(m.data).run_id === runId;
    const [v, a] = await Promise.all([readUntil(viewer, done), readUntil(admin, done)]);
    viewer.close();
    admin.close();
    const kinds = (ms: SseMessage[]) => ms.map((m) => m.event);

    // Positive control: the admin (who may GET all three) sees them; the viewer sees the run.
    expect(kinds(a)).toEqual(expect.arrayContaining(["webhook.created", "invitation.created", "api_key.created", "workflow.run.completed"]));
    expect(kinds(v)).toContain("workflow.run.completed");
    expect(kinds(v)).not.toContain("webhook.created");
    expect(kinds(v)).not.toContain("invitation.created");
    expect(kinds(v)).not.toContain("api_key.created");

    const text = a.map((m) => m.data).join("\n");
    expect(text).not.toContain("s3cret-token");
    expect(text).not.toContain("127.0.0.1:9/hook");
    expect(text).not.toContain("invitee@private.test");
    const hook = JSON.parse(a.find((m) => m.event === "webhook.created")!.data);
    expect(hook.payload.webhook_id).toBeTruthy();
    const inv = JSON.parse(a.find((m) => m.event === "invitation.created")!.data);
    expect(inv.payload.invitation_id).toBeTruthy();
  });
});
