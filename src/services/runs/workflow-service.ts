/**
 * Workflow definitions: upsert by name (a new immutable version when the spec changes),
 * get, list, validate. Nothing is stored unless the whole spec is valid.
 *
 * A spec may name the team that owns the workflow (`team_id`); team roles then apply to
 * it and to its runs. Writing needs `workflow.write` on the team the new version goes to
 * and on the team of the latest version (so nobody takes over another team's workflow
 * name); reads need `workflow.read` on the workflow's team, and lists show only what the
 * caller may read. A new version is recorded in the audit log in its transaction.
 */
import { createHash, randomUUID } from "node:crypto";
import { and, desc, eq, sql } from "drizzle-orm";
import { create } from "@bufbuild/protobuf";
import {
  GetWorkflowResponseSchema,
  ListWorkflowsResponseSchema,
  UpsertWorkflowResponseSchema,
  ValidateWorkflowResponseSchema,
  ValidationIssueSchema,
  type GetWorkflowRequest,
  type GetWorkflowResponse,
  type ListWorkflowsRequest,
  type ListWorkflowsResponse,
  type UpsertWorkflowRequest,
  type UpsertWorkflowResponse,
  type ValidateWorkflowRequest,
  type ValidateWorkflowResponse,
  type WorkflowSpec,
} from "../../../gen/proto/fabric/v1/workflow_pb.js";
import type { Db } from "../../db/database.js";
import { emitEvents } from "../../db/events.js";
import { teams, workflowDefinitions } from "../../db/schema.js";
import { lockWorkflowName } from "../../db/workflow-versions.js";
import { invalidArgument, notFound } from "../../domain/errors.js";
import { nodeOperations } from "../../domain/node-operations.js";
import { reservedNamePrefix, validateWorkflowSpec } from "../../domain/workflow-spec.js";
import { expectedVersion, preconditionFailed } from "../../domain/etags.js";
import { recordAudit } from "../access/record-audit.js";
import { readableTeamsCondition, requirePermission } from "../access/permission-checks.js";
import { isUuid, type CallContext } from "../call-context.js";
import { specJson, workflowMessage } from "./run-messages.js";
import { decodeCursor, olderThan, pageOf, pageSize } from "../pagination.js";

export type WorkflowService = ReturnType<typeof createWorkflowService>;

/** The audit entries WorkflowService writes: one action per use case. */
export const workflowAuditActions = { upsert: "workflow.upsert" } as const;

export function createWorkflowService(db: Db) {
  return {
    async upsertWorkflow(ctx: CallContext, req: UpsertWorkflowRequest): Promise<UpsertWorkflowResponse> {
      const spec = requireValid(req.spec);
      const org = ctx.caller.organizationId;
      const teamId = spec.teamId ? spec.teamId.toLowerCase() : null;
      if (teamId) {
        const [team] = isUuid(teamId) ? await db.select({ id: teams.id }).from(teams).where(and(eq(teams.id, teamId), eq(teams.organizationId, org))) : [];
        if (!team) throw notFound("team", spec.teamId);
        spec.teamId = teamId;
      }
      requirePermission(ctx, "workflow.write", { teamId });
      const json = specJson(spec);
      const hash = specHash(json);
      return db.transaction(async (tx) => {
        // Serialise upserts of one name so two writers cannot both claim the next version.
        await lockWorkflowName(tx, org, spec.name);
        const [latest] = await tx
          .select()
          .from(workflowDefinitions)
          .where(and(eq(workflowDefinitions.organizationId, org), eq(workflowDefinitions.name, spec.name)))
          .orderBy(desc(workflowDefinitions.version))
          .limit(1);
        // The name's current owner must agree too: a new version may move it to another team.
        if (latest) requirePermission(ctx, "workflow.write", { teamId: latest.teamId });
        // The etag names the latest version the caller read; under the name's lock no other
        // writer can store a version between this check and the insert.
        const expected = expectedVersion("workflow", req.etag);
        if (expected !== undefined && (!latest || (expected !== "any" && expected !== latest.version))) throw preconditionFailed(`workflow ${JSON.stringify(spec.name)}`, req.etag!);
        if (latest && latest.specHash === hash) return create(UpsertWorkflowResponseSchema, { workflow: workflowMessage(latest), created: false });
        const [row] = await tx
          .insert(workflowDefinitions)
          .values({ id: randomUUID(), organizationId: org, teamId, name: spec.name, version: (latest?.version ?? 0) + 1, spec: json, specHash: hash, createdBy: ctx.caller.principalId })
          .returning();
        await emitEvents(tx, [{ organizationId: org, kind: "workflow.definition.created", payload: { workflow_id: row!.id, name: row!.name, version: row!.version, team_id: teamId, request_id: ctx.requestId } }]);
        await recordAudit(tx, ctx, {
          action: workflowAuditActions.upsert,
          resource: `workflow:${row!.id}`,
          summary: { name: row!.name, version: row!.version, team_id: teamId, spec_hash: hash, previous_version: latest?.version ?? null },
        });
        return create(UpsertWorkflowResponseSchema, { workflow: workflowMessage(row!), created: true });
      });
    },

    async getWorkflow(ctx: CallContext, req: GetWorkflowRequest): Promise<GetWorkflowResponse> {
      const row = isUuid(req.id)
        ? (await db.select().from(workflowDefinitions).where(and(eq(workflowDefinitions.id, req.id), eq(workflowDefinitions.organizationId, ctx.caller.organizationId))))[0]
        : undefined;
      if (!row) throw notFound("workflow", req.id);
      requirePermission(ctx, "workflow.read", { teamId: row.teamId });
      return create(GetWorkflowResponseSchema, { workflow: workflowMessage(row) });
    },

    async listWorkflows(ctx: CallContext, req: ListWorkflowsRequest): Promise<ListWorkflowsResponse> {
      const size = pageSize(req.pageSize);
      const cursor = decodeCursor(req.pageToken);
      const t = workflowDefinitions;
      const teamCondition = readableTeamsCondition(ctx, "workflow.read", t.teamId);
      if (teamCondition === null) return create(ListWorkflowsResponseSchema, {});
      const rows = await db
        .select()
        .from(t)
        .where(
          and(
            eq(t.organizationId, ctx.caller.organizationId),
            teamCondition,
            // Built-ins (jobs' definitions) only when asked for by name: they are not the user's workflows.
            req.name ? eq(t.name, req.name) : sql`lower(${t.name}) NOT LIKE ${`${reservedNamePrefix}%`}`,
            olderThan(t.createdAt, t.id, cursor),
          ),
        )
        .orderBy(desc(t.createdAt), desc(t.id))
        .limit(size + 1);
      const { page, nextPageToken } = pageOf(rows, size);
      return create(ListWorkflowsResponseSchema, { workflows: page.map(workflowMessage), nextPageToken });
    },

    async validateWorkflow(_ctx: CallContext, req: ValidateWorkflowRequest): Promise<ValidateWorkflowResponse> {
      if (!req.spec) throw invalidArgument("spec is required", [{ path: "", code: "required", message: "spec is required" }]);
      const issues = validateWorkflowSpec(req.spec);
      return create(ValidateWorkflowResponseSchema, { valid: issues.length === 0, issues: issues.map((i) => create(ValidationIssueSchema, i)) });
    },
  };
}

export function requireValid(spec: WorkflowSpec | undefined): WorkflowSpec {
  if (!spec) throw invalidArgument("spec is required", [{ path: "", code: "required", message: "spec is required" }]);
  const issues = validateWorkflowSpec(spec);
  if (issues.length) throw invalidArgument(`invalid workflow: ${issues.map((i) => i.message).join("; ")}`, issues);
  // Store defaults explicitly, so a stored spec says what runs (and equal specs hash equal).
  for (const node of spec.nodes) {
    node.runtime ||= nodeOperations[node.operation]!.runtime;
    node.merge ||= "replace";
    // Empty objects say nothing: drop them so they cannot make a "new" version.
    if (node.config && Object.keys(node.config).length === 0) node.config = undefined;
    if (node.inputs && Object.keys(node.inputs).length === 0) node.inputs = undefined;
    const p = node.policy;
    if (p?.backoff && [p.backoff.initialMs, p.backoff.factor, p.backoff.maxMs, p.backoff.jitter].every((v) => v === undefined)) p.backoff = undefined;
    if (p && p.timeoutMs === undefined && p.maxAttempts === undefined && !p.backoff && p.retryOn.length === 0) node.policy = undefined;
  }
  return spec;
}

/** The hash a definition version is stored with: equal specs hash equal whatever their key order. */
export function specHash(spec: unknown): string {
  return createHash("sha256").update(canonical(spec)).digest("hex");
}

/** JSON with object keys sorted, so equal specs hash equal whatever the key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}
