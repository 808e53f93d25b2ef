/**
 * Audit actions are named by the use cases that write them, each service declaring its
 * own; docs/access-control.md lists them for operators. This keeps the two equal, and the
 * names distinct and well formed.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { apiKeyAuditActions } from "../../src/services/access/api-key-service.js";
import { webhookAuditActions } from "../../src/services/events/webhook-service.js";
import { jobAuditActions } from "../../src/services/runs/job-service.js";
import { runAuditActions } from "../../src/services/runs/run-service.js";
import { workflowAuditActions } from "../../src/services/runs/workflow-service.js";
import { bootstrapAuditActions } from "../../src/services/tenancy/first-owner.js";
import { tenancyAuditActions } from "../../src/services/tenancy/tenancy-service.js";
import { policyAuditActions } from "../../src/services/usage/policy-service.js";

const declared = [workflowAuditActions, runAuditActions, jobAuditActions, tenancyAuditActions, bootstrapAuditActions, apiKeyAuditActions, webhookAuditActions, policyAuditActions].flatMap((t) => Object.values(t) as string[]);

describe("audit actions", () => {
  it("are distinct and shaped `<resource>.<verb>`", () => {
    expect(new Set(declared).size).toBe(declared.length);
    for (const a of declared) expect(a).toMatch(/^[a-z_]+\.[a-z_]+$/);
  });

  it("are the ones docs/access-control.md lists", () => {
    const doc = readFileSync(new URL("../../docs/access-control.md", import.meta.url), "utf8");
    const section = doc.slice(doc.indexOf("## Audit"), doc.indexOf("\n## ", doc.indexOf("## Audit") + 1));
    const table = section.split("\n").filter((l) => l.startsWith("|") && !l.startsWith("|---") && !l.startsWith("| area"));
    const listed = table.flatMap((l) => [...l.split("|")[2]!.matchAll(/`([a-z_.]+)`/g)].map((m) => m[1]!));
    expect([...listed].sort()).toEqual([...declared].sort());
  });
});
