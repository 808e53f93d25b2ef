/**
 * The one Drizzle schema, shared by the control plane and the executors. Migrations in
 * `drizzle/` are generated from it (`npm run db:generate`); CI fails when they are stale.
 * Nothing here may need a Postgres newer than 15 (PGlite is newer; CI's server is 15).
 */
import { sql } from "drizzle-orm";
import type { CatchUpPolicy, FireOutcome, OverlapPolicy } from "../domain/schedule-timing.js";
import { bigint, boolean, index, integer, jsonb, pgTable, primaryKey, smallint, text, timestamp, unique, uniqueIndex, uuid } from "drizzle-orm/pg-core";

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });
const createdAt = () => ts("created_at").notNull().defaultNow();

export const organizations = pgTable("organizations", {
  id: uuid("id").primaryKey(),
  slug: text("slug").notNull().unique(),
  name: text("name").notNull(),
  archivedAt: ts("archived_at"),
  /** How long finished runs are kept (prune-runs.ts); NULL: the server's FABRIC_RETENTION_SECONDS; 0: forever. */
  retentionSeconds: integer("retention_seconds"),
  createdAt: createdAt(),
});

/** Users (email + password) and service accounts (API keys only). */
export const principals = pgTable("principals", {
  id: uuid("id").primaryKey(),
  kind: text("kind").notNull().$type<"user" | "service_account">(),
  email: text("email").unique(),
  displayName: text("display_name").notNull(),
  passwordHash: text("password_hash"),
  createdAt: createdAt(),
});

export const teams = pgTable(
  "teams",
  {
    id: uuid("id").primaryKey(),
    organizationId: uuid("organization_id").notNull().references(() => organizations.id),
    slug: text("slug").notNull(),
    name: text("name").notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("teams_org_slug").on(t.organizationId, t.slug)],
);

export const memberships = pgTable(
  "memberships",
  {
    id: uuid("id").primaryKey(),
    organizationId: uuid("organization_id").notNull().references(() => organizations.id),
    principalId: uuid("principal_id").notNull().references(() => principals.id),
    teamId: uuid("team_id").references(() => teams.id),
    role: text("role").notNull(),
    createdAt: createdAt(),
  },
  (t) => [unique("memberships_unique").on(t.organizationId, t.principalId, t.teamId).nullsNotDistinct(), index("memberships_principal").on(t.principalId)],
);

export const invitations = pgTable("invitations", {
  id: uuid("id").primaryKey(),
  organizationId: uuid("organization_id").notNull().references(() => organizations.id),
  teamId: uuid("team_id").references(() => teams.id),
  email: text("email").notNull(),
  role: text("role").notNull(),
  tokenHash: text("token_hash").notNull().unique(),
  expiresAt: ts("expires_at").notNull(),
  acceptedAt: ts("accepted_at"),
  revokedAt: ts("revoked_at"),
  createdBy: uuid("created_by").references(() => principals.id),
  createdAt: createdAt(),
});

/** `fab_<prefix>_<secret>`: the prefix is the public lookup id; only a hash of the secret is kept. */
export const apiKeys = pgTable("api_keys", {
  id: uuid("id").primaryKey(),
  organizationId: uuid("organization_id").notNull().references(() => organizations.id),
  principalId: uuid("principal_id").notNull().references(() => principals.id),
  name: text("name").notNull(),
  prefix: text("prefix").notNull().unique(),
  secretHash: text("secret_hash").notNull(),
  scopes: text("scopes").array().notNull().default(sql`'{}'::text[]`),
  expiresAt: ts("expires_at"),
  revokedAt: ts("revoked_at"),
  lastUsedAt: ts("last_used_at"),
  createdAt: createdAt(),
});

/** Immutable per version; runs pin the version they start on. */
export const workflowDefinitions = pgTable(
  "workflow_definitions",
  {
    id: uuid("id").primaryKey(),
    organizationId: uuid("organization_id").notNull().references(() => organizations.id),
    teamId: uuid("team_id").references(() => teams.id),
    name: text("name").notNull(),
    version: integer("version").notNull(),
    spec: jsonb("spec").notNull(),
    specHash: text("spec_hash").notNull(),
    createdBy: uuid("created_by"),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("workflow_definitions_version").on(t.organizationId, t.name, t.version), index("workflow_definitions_org_created").on(t.organizationId, t.createdAt)],
);

export const runStatuses = ["pending", "running", "paused", "waiting", "completed", "failed", "cancelled"] as const;
export type RunStatus = (typeof runStatuses)[number];
export const terminalRunStatuses: readonly RunStatus[] = ["completed", "failed", "cancelled"];

export const workflowRuns = pgTable(
  "workflow_runs",
  {
    id: uuid("id").primaryKey(),
    organizationId: uuid("organization_id").notNull().references(() => organizations.id),
    teamId: uuid("team_id").references(() => teams.id),
    workflowId: uuid("workflow_id").notNull().references(() => workflowDefinitions.id),
    workflowName: text("workflow_name").notNull(),
    workflowVersion: integer("workflow_version").notNull(),
    status: text("status").notNull().$type<RunStatus>(),
    priority: smallint("priority").notNull().default(50),
    failFast: boolean("fail_fast").notNull().default(true),
    input: jsonb("input").notNull(),
    /**
     * The context as of `context_seq`: the starting context while the run is active, the
     * final one once it has finished; outputs numbered above it are bound in on read
     * (db/run-context.ts).
     */
    context: jsonb("context").notNull(),
    /** The last output number `context` includes. */
    contextSeq: integer("context_seq").notNull().default(0),
    /** The last output number given to a node of this run (`workflow_run_nodes.output_seq`). */
    outputSeq: integer("output_seq").notNull().default(0),
    /** The context's size as limited (FABRIC_MAX_RUN_CONTEXT_BYTES): the starting context's bytes plus every bound value's. */
    contextBytes: bigint("context_bytes", { mode: "number" }).notNull().default(0),
    state: jsonb("state"),
    metadata: jsonb("metadata").notNull(),
    idempotencyKey: text("idempotency_key"),
    error: jsonb("error"),
    rerunOf: uuid("rerun_of"),
    /** Nodes not yet terminal; the run is finished when it reaches zero. */
    nodesPending: integer("nodes_pending").notNull(),
    createdBy: uuid("created_by"),
    apiKeyId: uuid("api_key_id"),
    deadlineAt: ts("deadline_at"),
    /** W3C `traceparent` of the span that started the run (NULL without tracing); executors continue it. */
    traceContext: text("trace_context"),
    createdAt: createdAt(),
    startedAt: ts("started_at"),
    finishedAt: ts("finished_at"),
  },
  (t) => [
    uniqueIndex("workflow_runs_idempotency").on(t.organizationId, t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
    index("workflow_runs_org_created").on(t.organizationId, t.createdAt),
    index("workflow_runs_deadline").on(t.deadlineAt).where(sql`deadline_at IS NOT NULL AND status IN ('pending', 'running', 'paused', 'waiting')`),
    // The pruner's scan: finished runs, oldest first (prune-runs.ts).
    index("workflow_runs_finished").on(t.finishedAt).where(sql`status IN ('completed', 'failed', 'cancelled')`),
  ],
);

export const nodeStatuses = ["blocked", "ready", "running", "waiting", "succeeded", "failed", "skipped", "cancelled"] as const;
export type NodeStatus = (typeof nodeStatuses)[number];

/**
 * The claim table. Executors claim `ready` rows whose `available_at` is due, under a
 * lease (`lease_owner`, `lease_expires_at`); every later write is conditional on
 * (lease_owner, attempt). `workflow_run_nodes_claimable` covers only claimable rows, so
 * a claim costs the same however many finished rows pile up.
 *
 * While the run is paused its `ready` nodes are due never (`available_at = 'infinity'`)
 * and `resume_at` keeps when each would have been due (a retry's end of backoff, or the
 * moment it became ready); resume sets `available_at = greatest(now(), resume_at)` and
 * clears it. `resume_at` is NULL on every other row. The statements that hold and release
 * nodes are in paused-nodes.ts.
 */
export const workflowRunNodes = pgTable(
  "workflow_run_nodes",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    runId: uuid("run_id").notNull().references(() => workflowRuns.id, { onDelete: "cascade" }),
    organizationId: uuid("organization_id").notNull(),
    nodeKey: text("node_key").notNull(),
    /** Index of the node in the spec, to read nodes back in definition order. */
    position: integer("position").notNull(),
    operation: text("operation").notNull(),
    status: text("status").notNull().$type<NodeStatus>(),
    attempt: integer("attempt").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull(),
    priority: smallint("priority").notNull(),
    availableAt: ts("available_at").notNull().defaultNow(),
    /** When this `ready` node of a paused run is due once resumed; NULL unless paused. */
    resumeAt: ts("resume_at"),
    leaseOwner: text("lease_owner"),
    leaseExpiresAt: ts("lease_expires_at"),
    depsRemaining: integer("deps_remaining").notNull(),
    output: jsonb("output"),
    /** The order in which the output was bound into the run's context (db/run-context.ts); NULL when it was not. */
    outputSeq: integer("output_seq"),
    error: jsonb("error"),
    createdAt: createdAt(),
    startedAt: ts("started_at"),
    finishedAt: ts("finished_at"),
  },
  (t) => [
    uniqueIndex("workflow_run_nodes_run_key").on(t.runId, t.nodeKey),
    index("workflow_run_nodes_claimable").on(sql`priority DESC`, t.availableAt, t.id).where(sql`status = 'ready'`),
    index("workflow_run_nodes_leases").on(t.leaseExpiresAt).where(sql`status IN ('running', 'waiting')`),
  ],
);

/** Domain events; `id` only grows and is the SSE id. */
export const events = pgTable(
  "events",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    organizationId: uuid("organization_id").notNull(),
    runId: uuid("run_id"),
    nodeKey: text("node_key"),
    kind: text("kind").notNull(),
    payload: jsonb("payload").notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("events_run").on(t.runId, t.id), index("events_org").on(t.organizationId, t.id)],
);

/**
 * Refresh tokens: only a hash is kept; each is single use (rotation on refresh). A login
 * starts a session (`session_id`, also the access tokens' `sid` claim) that every token
 * rotated from it carries on; the session lives while one of its tokens is live (not
 * revoked, not expired), which `refresh_tokens_live_session` answers for each JWT request.
 * Tokens from before sessions have none.
 */
export const refreshTokens = pgTable(
  "refresh_tokens",
  {
    id: uuid("id").primaryKey(),
    principalId: uuid("principal_id").notNull().references(() => principals.id),
    tokenHash: text("token_hash").notNull().unique(),
    sessionId: uuid("session_id"),
    expiresAt: ts("expires_at").notNull(),
    revokedAt: ts("revoked_at"),
    createdAt: createdAt(),
  },
  (t) => [index("refresh_tokens_principal").on(t.principalId), index("refresh_tokens_live_session").on(t.sessionId).where(sql`revoked_at IS NULL`)],
);

/**
 * One-time sign-in tokens: the link `fabric dev` prints. Only the token's sha256 is
 * stored. Exchanging one sets `used_at` in the statement that checks it is unused and
 * unexpired, so of two concurrent exchanges exactly one wins.
 */
export const signInTokens = pgTable("sign_in_tokens", {
  id: uuid("id").primaryKey(),
  principalId: uuid("principal_id").notNull().references(() => principals.id),
  tokenHash: text("token_hash").notNull().unique(),
  expiresAt: ts("expires_at").notNull(),
  usedAt: ts("used_at"),
  createdAt: createdAt(),
});

/**
 * Append-only: a trigger (migration 0002) refuses UPDATE, DELETE and TRUNCATE. Every
 * mutation writes its entry in its own transaction; `summary` never holds a secret.
 */
export const auditLog = pgTable(
  "audit_log",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    organizationId: uuid("organization_id").notNull(),
    actorPrincipalId: uuid("actor_principal_id"),
    apiKeyId: uuid("api_key_id"),
    action: text("action").notNull(),
    resource: text("resource").notNull(),
    requestId: text("request_id").notNull(),
    clientAddress: text("client_address").notNull(),
    summary: jsonb("summary").notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("audit_log_org").on(t.organizationId, t.id), index("audit_log_org_actor").on(t.organizationId, t.actorPrincipalId, t.id)],
);

/**
 * Webhooks of an organization. `secret_ciphertext` is the signing secret encrypted with
 * AES-256-GCM under a key derived from FABRIC_SECRETS_KEY (or JWT_SECRET), because every
 * delivery must compute an HMAC with it: a hash would not do. `consecutive_failures`
 * counts deliveries that ended failed since the last success; at the configured limit
 * the webhook is disabled (`disabled_reason`).
 */
export const webhooks = pgTable(
  "webhooks",
  {
    id: uuid("id").primaryKey(),
    organizationId: uuid("organization_id").notNull().references(() => organizations.id),
    url: text("url").notNull(),
    eventFilter: text("event_filter").notNull(),
    maxRetries: integer("max_retries").notNull(),
    description: text("description").notNull().default(""),
    enabled: boolean("enabled").notNull().default(true),
    disabledReason: text("disabled_reason").notNull().default(""),
    secretCiphertext: text("secret_ciphertext").notNull(),
    consecutiveFailures: integer("consecutive_failures").notNull().default(0),
    createdAt: createdAt(),
    updatedAt: ts("updated_at").notNull().defaultNow(),
    /** +1 on every update through the API: the webhook's etag (domain/etags.ts). */
    version: integer("version").notNull().default(1),
  },
  (t) => [index("webhooks_org").on(t.organizationId)],
);

/**
 * One row per webhook × event (unique, so every control plane may insert it and only
 * one row exists). A dispatcher claims due rows by setting `lease_until` (FOR UPDATE
 * SKIP LOCKED); `pending` rows wait for `next_attempt_at`.
 */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: uuid("id").primaryKey(),
    webhookId: uuid("webhook_id")
      .notNull()
      .references(() => webhooks.id, { onDelete: "cascade" }),
    organizationId: uuid("organization_id").notNull(),
    eventId: bigint("event_id", { mode: "number" }).notNull(),
    eventKind: text("event_kind").notNull(),
    status: text("status").notNull().default("pending").$type<"pending" | "succeeded" | "failed">(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: ts("next_attempt_at"),
    leaseUntil: ts("lease_until"),
    lastAttemptAt: ts("last_attempt_at"),
    responseStatus: integer("response_status").notNull().default(0),
    responseBody: text("response_body").notNull().default(""),
    error: text("error").notNull().default(""),
    createdAt: createdAt(),
  },
  (t) => [
    unique("webhook_deliveries_once").on(t.webhookId, t.eventId),
    index("webhook_deliveries_webhook").on(t.webhookId, t.createdAt),
    index("webhook_deliveries_due").on(t.nextAttemptAt).where(sql`status = 'pending'`),
    // The pruner deletes the deliveries of the events it deletes (prune-runs.ts).
    index("webhook_deliveries_event").on(t.eventId),
  ],
);

/**
 * Routing and spending rules of an organization (`org:<id>`) or a team (`team:<id>`): one
 * row per scope holding both the policy (allow-lists, per-run cap, per-key rate limit,
 * price overrides) and the budget (daily and monthly hard caps), managed by separate
 * operations. Money is integer nano-dollars (see domain/pricing.ts).
 */
export const policies = pgTable("policies", {
  scopeKey: text("scope_key").primaryKey(),
  organizationId: uuid("organization_id")
    .notNull()
    .references(() => organizations.id),
  teamId: uuid("team_id"),
  allowedProviders: text("allowed_providers").array().notNull().default(sql`'{}'::text[]`),
  allowedModels: text("allowed_models").array().notNull().default(sql`'{}'::text[]`),
  maxRunCostNanoUsd: bigint("max_run_cost_nano_usd", { mode: "number" }),
  requestsPerMinutePerKey: integer("requests_per_minute_per_key"),
  priceOverrides: jsonb("price_overrides"),
  policyUpdatedAt: ts("policy_updated_at"),
  policyUpdatedBy: uuid("policy_updated_by"),
  dailyLimitNanoUsd: bigint("daily_limit_nano_usd", { mode: "number" }),
  monthlyLimitNanoUsd: bigint("monthly_limit_nano_usd", { mode: "number" }),
  budgetUpdatedAt: ts("budget_updated_at"),
  budgetUpdatedBy: uuid("budget_updated_by"),
  /** +1 on every SetPolicy / SetBudget of the scope (0: never set): their etags (domain/etags.ts). */
  policyVersion: integer("policy_version").notNull().default(0),
  budgetVersion: integer("budget_version").notNull().default(0),
});

/**
 * What each budget has committed in a period: settled costs plus the estimates of calls in
 * flight. A reservation adds its estimate only when the sum stays within the limit (a
 * conditional upsert, so concurrent reservations serialize on the row and never overshoot);
 * settling adds `actual − estimate`. `period`: `day` (`YYYY-MM-DD`), `month` (`YYYY-MM`) or
 * `run` (per-run cap, `period_start` empty). `exceeded_at` marks the first refusal, so
 * `budget.exceeded` is emitted once per budget and period.
 */
export const budgetLedger = pgTable(
  "budget_ledger",
  {
    scopeKey: text("scope_key").notNull(),
    period: text("period").notNull().$type<"day" | "month" | "run">(),
    periodStart: text("period_start").notNull(),
    committedNanoUsd: bigint("committed_nano_usd", { mode: "number" }).notNull().default(0),
    /** The limit the last reservation was checked against (it travels in the upsert's row, where its condition can read it). */
    limitNanoUsd: bigint("limit_nano_usd", { mode: "number" }),
    exceededAt: ts("exceeded_at"),
  },
  (t) => [unique("budget_ledger_key").on(t.scopeKey, t.period, t.periodStart)],
);

/**
 * Request counts per subject for the current minute (fixed window): `api_key:<id>`
 * (provider requests), `login:<email>`, `auth_address:<ip>` (sign-up and login attempts).
 * The count itself is db/rate-limits.ts; the refusal rule is domain/rate-limit.ts.
 */
export const requestCounters = pgTable("request_counters", {
  subject: text("subject").primaryKey(),
  windowStart: ts("window_start").notNull(),
  count: integer("count").notNull(),
});

export const usageStatuses = ["reserved", "succeeded", "failed"] as const;
export type UsageStatus = (typeof usageStatuses)[number];

/**
 * One row per provider call (direct, job or workflow node attempt), attributed to who and
 * what made it. A call under a budget is inserted `reserved` (its estimate charged to the
 * ledgers named in `charges`) before it starts and settled after; a call under no budget is
 * inserted once, settled.
 */
export const usageRecords = pgTable(
  "usage_records",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    organizationId: uuid("organization_id").notNull(),
    teamId: uuid("team_id"),
    principalId: uuid("principal_id"),
    apiKeyId: uuid("api_key_id"),
    runId: uuid("run_id"),
    nodeKey: text("node_key"),
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    operation: text("operation").notNull(),
    status: text("status").notNull().$type<UsageStatus>(),
    inputTokens: bigint("input_tokens", { mode: "number" }).notNull().default(0),
    outputTokens: bigint("output_tokens", { mode: "number" }).notNull().default(0),
    cachedInputTokens: bigint("cached_input_tokens", { mode: "number" }).notNull().default(0),
    cacheWriteTokens: bigint("cache_write_tokens", { mode: "number" }).notNull().default(0),
    estimatedNanoUsd: bigint("estimated_nano_usd", { mode: "number" }),
    actualNanoUsd: bigint("actual_nano_usd", { mode: "number" }),
    priceTable: text("price_table").notNull(),
    charges: jsonb("charges"),
    errorCode: text("error_code"),
    latencyMs: integer("latency_ms").notNull().default(0),
    createdAt: createdAt(),
    settledAt: ts("settled_at"),
  },
  (t) => [index("usage_records_org_created").on(t.organizationId, t.createdAt), index("usage_records_run").on(t.runId).where(sql`run_id IS NOT NULL`)],
);

/**
 * Durable progress of a consumer of the events table, shared by every control plane:
 * `last_event_id` only moves forward (`GREATEST`), and every event with id ≤ it has been
 * handled (for `webhooks`: its delivery rows exist). A consumer resumes after it, so
 * events committed while no control plane ran are not lost (see webhook-dispatcher.ts).
 */
export const dispatchCursors = pgTable("dispatch_cursors", {
  name: text("name").primaryKey(),
  lastEventId: bigint("last_event_id", { mode: "number" }).notNull(),
  updatedAt: ts("updated_at").notNull().defaultNow(),
});

/**
 * Schedules (services/schedules/schedule-service.ts): a workflow started by a cron
 * pattern (`cron` + `timezone`) or once at `start_at`. `next_fire_at` is the next fire
 * time (NULL: nothing left to fire); a control plane claims due rows FOR UPDATE SKIP
 * LOCKED and advances `next_fire_at` in the transaction that inserts the runs
 * (db/fire-schedules.ts). `queued_fires` counts fires with outcome `queued`.
 */
export const schedules = pgTable(
  "schedules",
  {
    id: uuid("id").primaryKey(),
    organizationId: uuid("organization_id").notNull().references(() => organizations.id),
    teamId: uuid("team_id"),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    workflowName: text("workflow_name").notNull(),
    workflowVersion: integer("workflow_version"),
    input: jsonb("input").notNull(),
    cron: text("cron").notNull().default(""),
    timezone: text("timezone").notNull().default("UTC"),
    startAt: ts("start_at"),
    enabled: boolean("enabled").notNull().default(true),
    overlapPolicy: text("overlap_policy").notNull().$type<OverlapPolicy>(),
    catchUpPolicy: text("catch_up_policy").notNull().$type<CatchUpPolicy>(),
    catchUpLimit: integer("catch_up_limit").notNull(),
    nextFireAt: ts("next_fire_at"),
    lastFireAt: ts("last_fire_at"),
    lastRunId: uuid("last_run_id"),
    queuedFires: integer("queued_fires").notNull().default(0),
    createdBy: uuid("created_by"),
    createdAt: createdAt(),
    updatedAt: ts("updated_at").notNull().defaultNow(),
  },
  (t) => [
    unique("schedules_name").on(t.organizationId, t.name),
    index("schedules_due").on(t.nextFireAt).where(sql`enabled AND next_fire_at IS NOT NULL`),
    index("schedules_queued").on(t.id).where(sql`queued_fires > 0`),
  ],
);

/** What each fire time of a schedule did: one row per (schedule, fire time), so a fire time is handled once. */
export const scheduleFires = pgTable(
  "schedule_fires",
  {
    scheduleId: uuid("schedule_id")
      .notNull()
      .references(() => schedules.id, { onDelete: "cascade" }),
    fireAt: ts("fire_at").notNull(),
    outcome: text("outcome").notNull().$type<FireOutcome>(),
    runId: uuid("run_id"),
    cancelledRunId: uuid("cancelled_run_id"),
    error: text("error").notNull().default(""),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.scheduleId, t.fireAt] })],
);
