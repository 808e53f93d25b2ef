/**
 * Jobs: one provider call run as a one-node workflow run. Creating a job validates the
 * request completely, then queues a run of a built-in definition — `fabric.job.text`
 * (`ai.generate`) or `fabric.job.embedding` (`ai.embed`), node `call` — and returns at
 * once; an executor makes the call with the provider runtime (same router, policy, budget
 * and usage path as any provider node). A job's id is its run's id.
 *
 * The built-in definitions are organization-level (no team) and created lazily, per
 * organization, on its first job of a modality: an insert that does nothing on the
 * definitions' unique key (organization, name, version), then a re-select by spec hash,
 * so concurrent first jobs agree on one row. A changed built-in spec (a newer Fabric)
 * becomes the next version the same way. Users cannot write `fabric.` names
 * (domain/workflow-spec.ts), so these names are Fabric's alone.
 *
 * The node binds `prompt`, `messages`, `system` (text) or `input` (embedding) and
 * `params` from the run context, which is the job's input plus `params`. A binding to
 * a key the context lacks resolves to nothing (domain/context.ts `resolveInputs` leaves
 * it out), so a prompt-only job simply has no `messages` input.
 *
 * A job belongs to the team it names (`team_id`, checked against the caller's
 * organization and `job.create`), else to the organization; reads check `job.read` on
 * that team like runs do. Anything that is not a job run of the caller's organization is
 * "job not found".
 */
import { and, desc, eq, inArray } from "drizzle-orm";
import { create, fromJson, type JsonObject } from "@bufbuild/protobuf";
import {
  CreateJobResponseSchema,
  GetJobResponseSchema,
  GetJobUsageResponseSchema,
  JobSchema,
  ListJobsResponseSchema,
  type CreateJobRequest,
  type GetJobRequest,
  type GetJobUsageRequest,
  type Job,
  type ListJobsRequest,
  type WatchJobRequest,
} from "../../../gen/proto/fabric/v1/jobs_pb.js";
import { RunErrorSchema, type Event } from "../../../gen/proto/fabric/v1/run_pb.js";
import { WorkflowSpecSchema } from "../../../gen/proto/fabric/v1/workflow_pb.js";
import type { Db } from "../../db/database.js";
import { runStatuses, teams, usageRecords, workflowDefinitions, workflowRunNodes, workflowRuns } from "../../db/schema.js";
import type { WorkflowCache } from "../../db/workflow-specs.js";
import { insertVersionUnlessPresent } from "../../db/workflow-versions.js";
import { DomainError, invalidArgument, notFound, type Issue } from "../../domain/errors.js";
import { limits, validateWorkflowSpec } from "../../domain/workflow-spec.js";
import { isProviderTier, parseProviderCallSettings, providerCallLimits, providerCallSettingNames } from "../../domain/provider-call.js";
import { recordAudit } from "../access/record-audit.js";
import { readableTeamsCondition, requirePermission } from "../access/permission-checks.js";
import { isUuid, type CallContext } from "../call-context.js";
import type { EventHub } from "../../delivery/event-hub.js";
import type { AccessWatch } from "../../delivery/access-watch.js";
import { runMessage, specJson } from "./run-messages.js";
import { decodeCursor, olderThan, pageOf, pageSize } from "../pagination.js";
import type { ProviderGateway } from "../../gateway/index.js";
import { insertRun, runEvents } from "./run-service.js";
import { specHash } from "./workflow-service.js";
import { usageGroupMessage, usageRecordMessage, usageTotals } from "../usage/usage-messages.js";

type RunRow = typeof workflowRuns.$inferSelect;
type NodeRow = typeof workflowRunNodes.$inferSelect;
type DefinitionRow = typeof workflowDefinitions.$inferSelect;

export type Modality = "text" | "embedding";
export const modalities: readonly Modality[] = ["text", "embedding"];

/** The node every job definition runs. */
export const jobNodeKey = "call";

/** A job's attempts: a provider failure after every candidate (`transient`), a timeout, or a lost executor is retried. */
const jobPolicy = { max_attempts: 3, retry_on: ["transient", "timeout", "lease_expired"] };

/** The built-in definitions, as stored (defaults explicit, like workflow-service.ts stores user specs). */
const builtInSpecs: Record<Modality, JsonObject> = {
  text: {
    name: "fabric.job.text",
    description: "Fabric's built-in definition of text jobs (JobService): one ai.generate call.",
    nodes: [
      {
        key: jobNodeKey,
        operation: "ai.generate",
        runtime: "provider",
        inputs: { prompt: "$context.prompt", messages: "$context.messages", system: "$context.system", params: "$context.params" },
        merge: "replace",
        policy: jobPolicy,
      },
    ],
  },
  embedding: {
    name: "fabric.job.embedding",
    description: "Fabric's built-in definition of embedding jobs (JobService): one ai.embed call.",
    nodes: [{ key: jobNodeKey, operation: "ai.embed", runtime: "provider", inputs: { input: "$context.input", params: "$context.params" }, merge: "replace", policy: jobPolicy }],
  },
};

interface BuiltIn {
  name: string;
  spec: JsonObject;
  hash: string;
}

const builtIns: Record<Modality, BuiltIn> = Object.fromEntries(
  modalities.map((m) => {
    const parsed = fromJson(WorkflowSpecSchema, builtInSpecs[m]);
    const issues = validateWorkflowSpec(parsed, { allowReservedName: true });
    if (issues.length) throw new Error(`the built-in ${m} job definition is invalid: ${JSON.stringify(issues)}`);
    const spec = specJson(parsed) as JsonObject;
    return [m, { name: parsed.name, spec, hash: specHash(spec) }];
  }),
) as Record<Modality, BuiltIn>;

const jobNames = modalities.map((m) => builtIns[m].name);
const modalityOf = (workflowName: string): Modality | "" => modalities.find((m) => builtIns[m].name === workflowName) ?? "";


export type JobService = ReturnType<typeof createJobService>;

/** The audit entries JobService writes: one action per use case. */
export const jobAuditActions = { create: "job.create" } as const;

export function createJobService(deps: { db: Db; workflows: WorkflowCache; hub: EventHub; gateway: Pick<ProviderGateway, "admit">; access?: AccessWatch; recheckMs?: number }) {
  const { db, workflows, hub } = deps;
  /** Definition rows by `org/modality`: immutable, so cached for the process's life (bounded). */
  const definitions = new Map<string, DefinitionRow>();

  /** The organization's current definition for `modality`, created on first use (race-safe). */
  async function jobDefinition(org: string, modality: Modality): Promise<DefinitionRow> {
    const cacheKey = `${org}/${modality}`;
    const cached = definitions.get(cacheKey);
    if (cached) return cached;
    const b = builtIns[modality];
    const t = workflowDefinitions;
    // Each round finds the row or inserts it as the next version; losing the race to an
    // identical insert finds it on the re-select, losing it to another spec (a rolling
    // upgrade writing its own built-in) tries the version after.
    for (let round = 0; round < 5; round++) {
      const [found] = await db
        .select()
        .from(t)
        .where(and(eq(t.organizationId, org), eq(t.name, b.name), eq(t.specHash, b.hash)))
        .orderBy(desc(t.version))
        .limit(1);
      if (found) {
        if (definitions.size >= 1000) definitions.delete(definitions.keys().next().value!);
        definitions.set(cacheKey, found);
        return found;
      }
      // The next version, unless a row with this spec exists by now (a concurrent first job
      // committed it since the select above); two inserts of one version meet on the unique key.
      await insertVersionUnlessPresent(db, { organizationId: org, name: b.name, spec: b.spec, specHash: b.hash });
    }
    throw new DomainError("unavailable", `could not create the ${b.name} definition; retry`);
  }

  /** A job (a run of a job definition) of the caller's organization, with `job.read` checked on its team. */
  async function loadJob(ctx: CallContext, id: string): Promise<RunRow> {
    const t = workflowRuns;
    const [row] = isUuid(id) ? await db.select().from(t).where(and(eq(t.id, id), eq(t.organizationId, ctx.caller.organizationId), inArray(t.workflowName, jobNames))) : [];
    if (!row) throw notFound("job", id);
    requirePermission(ctx, "job.read", { teamId: row.teamId });
    return row;
  }

  /** The `call` nodes of these runs, by run id. */
  async function callNodes(runIds: string[]): Promise<Map<string, NodeRow>> {
    if (runIds.length === 0) return new Map();
    const rows = await db
      .select()
      .from(workflowRunNodes)
      .where(and(inArray(workflowRunNodes.runId, runIds), eq(workflowRunNodes.nodeKey, jobNodeKey)));
    return new Map(rows.map((n) => [n.runId, n]));
  }

  async function fullJob(row: RunRow): Promise<Job> {
    return jobMessage(row, (await callNodes([row.id])).get(row.id));
  }


  return {
    async createJob(ctx: CallContext, req: CreateJobRequest) {
      const job = parseCreateJob(req);
      const org = ctx.caller.organizationId;
      const teamId = req.teamId ? req.teamId.toLowerCase() : null;
      if (teamId) {
        const [team] = isUuid(teamId) ? await db.select({ id: teams.id }).from(teams).where(and(eq(teams.id, teamId), eq(teams.organizationId, org))) : [];
        if (!team) throw notFound("team", req.teamId);
      }
      requirePermission(ctx, "job.create", { teamId });
      // Jobs count against the API key's per-minute limit of provider requests, like direct calls.
      await deps.gateway.admit(ctx.caller.apiKeyId, { organizationId: ctx.caller.organizationId, teamId, runId: null });

      const def = await jobDefinition(org, job.modality);
      const wf = await workflows.get(db, def.id);
      const timeout = req.timeoutMs ?? wf.spec.runTimeoutMs;
      const runReq = { priority: req.priority, idempotencyKey: req.idempotencyKey };
      const created = await db.transaction(async (tx) => {
        const run = await insertRun(tx, ctx, { def, wf, req: runReq, teamId, input: job.runInput, context: job.runInput, deadline: timeout ? new Date(Date.now() + timeout) : null });
        if (run) {
          await recordAudit(tx, ctx, {
            action: jobAuditActions.create,
            resource: `job:${run.id}`,
            summary: { operation: "create", modality: job.modality, workflow_id: def.id, workflow_name: def.name, workflow_version: def.version, team_id: teamId, idempotency_key: req.idempotencyKey ?? null },
          });
        }
        return run;
      });
      if (created) {
        const [row] = await db.select().from(workflowRuns).where(eq(workflowRuns.id, created.id));
        return create(CreateJobResponseSchema, { job: await fullJob(row!), created: true });
      }
      // The idempotency key names an existing run: a job, answered to those who may see it.
      const [row] = await db.select().from(workflowRuns).where(and(eq(workflowRuns.organizationId, org), eq(workflowRuns.idempotencyKey, req.idempotencyKey!)));
      if (!row || !jobNames.includes(row.workflowName)) {
        throw new DomainError("already_exists", "the idempotency_key was used by a workflow run that is not a job", { code: "idempotency_key_conflict" });
      }
      requirePermission(ctx, "job.read", { teamId: row.teamId });
      return create(CreateJobResponseSchema, { job: await fullJob(row), created: false });
    },

    async getJob(ctx: CallContext, req: GetJobRequest) {
      return create(GetJobResponseSchema, { job: await fullJob(await loadJob(ctx, req.id)) });
    },

    async listJobs(ctx: CallContext, req: ListJobsRequest) {
      if (req.status && !(runStatuses as readonly string[]).includes(req.status)) throw invalidArgument(`status must be one of ${runStatuses.join(", ")}`, [{ path: "/status", code: "invalid_value", message: "unknown status" }]);
      const size = pageSize(req.pageSize);
      const cursor = decodeCursor(req.pageToken);
      if (req.teamId && !isUuid(req.teamId)) return create(ListJobsResponseSchema, {});
      const teamCondition = readableTeamsCondition(ctx, "job.read", workflowRuns.teamId);
      if (teamCondition === null) return create(ListJobsResponseSchema, {});
      const t = workflowRuns;
      const rows = await db
        .select()
        .from(t)
        .where(
          and(
            eq(t.organizationId, ctx.caller.organizationId),
            inArray(t.workflowName, jobNames),
            teamCondition,
            req.status ? eq(t.status, req.status as RunRow["status"]) : undefined,
            req.teamId ? eq(t.teamId, req.teamId.toLowerCase()) : undefined,
            olderThan(t.createdAt, t.id, cursor),
          ),
        )
        .orderBy(desc(t.createdAt), desc(t.id))
        .limit(size + 1);
      const { page, nextPageToken } = pageOf(rows, size);
      const calls = await callNodes(page.map((r) => r.id));
      return create(ListJobsResponseSchema, { jobs: page.map((r) => jobMessage(r, calls.get(r.id))), nextPageToken });
    },

    async getJobUsage(ctx: CallContext, req: GetJobUsageRequest) {
      const run = await loadJob(ctx, req.id);
      const u = usageRecords;
      const rows = await db
        .select()
        .from(u)
        .where(and(eq(u.organizationId, run.organizationId), eq(u.runId, run.id)))
        .orderBy(desc(u.createdAt), desc(u.id));
      return create(GetJobUsageResponseSchema, { records: rows.map(usageRecordMessage), total: usageGroupMessage(usageTotals(rows)) });
    },

    /**
     * Replays the job run's events after `after_id`, then follows live; ends after the
     * terminal event. Resolves only once the job is known to be visible, so a missing
     * job is an error before any stream starts. (As RunService.watchRun.)
     */
    async watchJob(ctx: CallContext, req: WatchJobRequest): Promise<AsyncGenerator<Event>> {
      const run = await loadJob(ctx, req.id);
      return runEvents({ db, hub, access: deps.access, recheckMs: deps.recheckMs }, run.id, Number(req.afterId), ctx);
    },
  };
}

/** A run of a job definition as a `Job`: input and params from the run input, the result from the `call` node once it succeeded. */
export function jobMessage(row: RunRow, call: NodeRow | undefined): Job {
  const run = runMessage(row);
  const input: JsonObject = isObject(row.input) ? { ...row.input } : {};
  const params = isObject(input["params"]) ? input["params"] : {};
  delete input["params"];
  return create(JobSchema, {
    id: row.id,
    workflowRunId: row.id,
    organizationId: row.organizationId,
    teamId: row.teamId ?? "",
    modality: modalityOf(row.workflowName),
    tier: typeof params["tier"] === "string" ? params["tier"] : "",
    status: row.status,
    input,
    params,
    result: call?.status === "succeeded" && isObject(call.output) ? call.output : undefined,
    // A job is its one call: a failed call's own code (`budget_exceeded`, `provider_rate_limited`, …) says more than the run's `node_failed`.
    error: callError(call) ?? run.error,
    idempotencyKey: row.idempotencyKey ?? "",
    createTime: run.createTime,
    startTime: run.startTime,
    finishTime: run.finishTime,
  });
}

function callError(call: NodeRow | undefined) {
  const e = call?.status === "failed" && isObject(call.error) ? call.error : undefined;
  if (!e || typeof e["code"] !== "string") return undefined;
  return create(RunErrorSchema, { code: e["code"], message: typeof e["message"] === "string" ? e["message"] : "", nodeKey: "call" });
}

const isObject = (v: unknown): v is JsonObject => !!v && typeof v === "object" && !Array.isArray(v);

// ─── Request validation ─────────────────────────────────────────────────────────────────

const inputKeys: Record<Modality, readonly string[]> = { text: ["prompt", "messages", "system"], embedding: ["input"] };
const roles = ["system", "user", "assistant"];

/** JSON-pointer segment for an object key. */
const seg = (k: string) => k.replaceAll("~", "~0").replaceAll("/", "~1");

/**
 * The whole request checked at once (every problem reported, each at its JSON pointer),
 * before anything is read or written. Returns the modality and the run's input: the
 * job's input keys plus `params` (with a top-level `tier` folded in).
 */
export function parseCreateJob(req: CreateJobRequest): { modality: Modality; runInput: JsonObject } {
  const issues: Issue[] = [];
  const bad = (path: string, message: string, code = "invalid_value") => issues.push({ path, code, message });

  const modality = req.modality as Modality;
  if (!req.modality) bad("/modality", "modality is required (text or embedding)", "required");
  else if (!modalities.includes(modality)) bad("/modality", `modality must be one of ${modalities.join(", ")}`);
  if (req.tier && !isProviderTier(req.tier)) bad("/tier", "tier must be basic or premium");
  if (req.priority !== undefined && (req.priority < 0 || req.priority > 100)) bad("/priority", "priority must be within 0..100");
  if (req.timeoutMs !== undefined && (req.timeoutMs < 1 || req.timeoutMs > limits.maxTimeoutMs)) bad("/timeout_ms", `timeout_ms must be within 1..${limits.maxTimeoutMs}`);
  if (req.idempotencyKey !== undefined && (req.idempotencyKey.length < 1 || req.idempotencyKey.length > 255)) bad("/idempotency_key", "idempotency_key must be 1..255 characters");

  const runInput: JsonObject = {};
  const input = req.input;
  if (!input) bad("/input", "input is required", "required");
  else if (modalities.includes(modality)) {
    for (const k of Object.keys(input)) {
      if (!inputKeys[modality].includes(k)) bad(`/input/${seg(k)}`, `unknown field ${JSON.stringify(k)}; a ${modality} job's input takes ${inputKeys[modality].join(", ")}`);
    }
    if (modality === "text") checkTextInput(input, bad);
    else checkEmbeddingInput(input, bad);
    for (const k of inputKeys[modality]) if (input[k] !== undefined) runInput[k] = input[k]!;
  }

  // params are a call's settings (domain/provider-call.ts: the rule every call path shares), nothing else.
  const params: JsonObject = {};
  const given = req.params ?? {};
  for (const k of Object.keys(given)) {
    if (!(providerCallSettingNames as readonly string[]).includes(k)) bad(`/params/${seg(k)}`, `unknown field ${JSON.stringify(k)}; params takes ${providerCallSettingNames.join(", ")}`);
  }
  const { settings, issues: settingIssues } = parseProviderCallSettings(given, modality === "embedding" ? "ai.embed" : "ai.generate");
  for (const i of settingIssues) bad(`/params/${i.setting}`, i.message, i.code);
  if (req.tier && settings.tier && settings.tier !== req.tier) bad("/params/tier", `params.tier ${JSON.stringify(settings.tier)} contradicts tier ${JSON.stringify(req.tier)}`);
  for (const k of providerCallSettingNames) if (given[k] !== undefined) params[k] = given[k]!;
  if (req.tier) params["tier"] = req.tier;

  if (issues.length) throw invalidArgument(`invalid job: ${issues.map((i) => i.message).join("; ")}`, issues);
  runInput["params"] = params;
  return { modality, runInput };
}

type Bad = (path: string, message: string, code?: string) => void;

function checkTextInput(input: JsonObject, bad: Bad) {
  const { prompt, messages, system } = input;
  if (prompt !== undefined && (typeof prompt !== "string" || prompt === "")) bad("/input/prompt", "prompt must be a non-empty string");
  if (system !== undefined && typeof system !== "string") bad("/input/system", "system must be a string");
  if (prompt === undefined && messages === undefined) bad("/input/prompt", "a text job needs input.prompt or input.messages", "required");
  if (prompt !== undefined && messages !== undefined) bad("/input/messages", "give prompt or messages, not both");
  if (messages === undefined) return;
  if (!Array.isArray(messages)) return bad("/input/messages", "messages must be a list of {role, content}");
  if (messages.length === 0) return bad("/input/messages", "messages must not be empty", "required");
  if (messages.length > providerCallLimits.maxMessages) bad("/input/messages", `at most ${providerCallLimits.maxMessages} messages`);
  messages.forEach((m, i) => {
    const at = `/input/messages/${i}`;
    if (!isObject(m)) return bad(at, "a message is an object {role, content}");
    if (typeof m["role"] !== "string" || !roles.includes(m["role"])) bad(`${at}/role`, `role must be one of ${roles.join(", ")}`);
    if (typeof m["content"] !== "string") bad(`${at}/content`, "content must be a string");
    for (const k of Object.keys(m)) if (k !== "role" && k !== "content") bad(`${at}/${seg(k)}`, `unknown field ${JSON.stringify(k)}; a message has role and content`);
  });
  if (messages.every((m) => isObject(m) && m["role"] === "system")) bad("/input/messages", "messages need at least one user or assistant turn", "required");
}

function checkEmbeddingInput(input: JsonObject, bad: Bad) {
  const v = input["input"];
  if (v === undefined) return bad("/input/input", "an embedding job needs input.input (a string or a list of strings)", "required");
  if (typeof v === "string") {
    if (v === "") bad("/input/input", "input must not be empty");
    return;
  }
  if (!Array.isArray(v)) return bad("/input/input", "input must be a string or a list of strings");
  if (v.length === 0) return bad("/input/input", "input must hold at least one text", "required");
  if (v.length > providerCallLimits.maxInputs) bad("/input/input", `at most ${providerCallLimits.maxInputs} texts`);
  v.forEach((x, i) => {
    if (typeof x !== "string") bad(`/input/input/${i}`, "each input must be a string");
  });
}

/** For tests: the built-in definitions' names by modality. */
export const jobDefinitionNames: Readonly<Record<Modality, string>> = { text: builtIns.text.name, embedding: builtIns.embedding.name };
