/**
 * The SDK's public types. Every response, event and request shape is a generated
 * OpenAPI type (`gen/openapi/schema.d.ts`, openapi-typescript output) under a friendly
 * name, or derived from one where the SDK accepts more than the wire (a `Date` for a
 * time, an array for a comma-separated list) — never copied by hand — so that a
 * contract change breaks the SDK at compile time instead of at run time.
 *
 * Naming: every wire shape (request bodies, query parameters, responses, events) is
 * exposed exactly as the REST API speaks it — snake_case. See `FabricClient` for why.
 */
import type { components, operations, paths } from "../../gen/openapi/schema.js";

type Schemas = components["schemas"];

export type Run = Schemas["Run"];
export type RunStatus = Run["status"];
export type RunNode = Schemas["RunNode"];
export type RunNodeStatus = RunNode["status"];
export type RunError = Schemas["RunError"];
/** One domain event of a run, as the SSE `data:` carries it. `id` is an int64 in proto3 JSON, i.e. a decimal string. */
export type RunEvent = Schemas["Event"];
export type WorkflowDefinition = Schemas["WorkflowDefinition"];
/** The definition a client writes (every field optional on the wire; the server validates). */
export type WorkflowSpec = Schemas["WorkflowSpecInput"];
/** A node of a `WorkflowSpec`. */
export type NodeSpec = Schemas["NodeSpecInput"];
export type ValidationIssue = Schemas["ValidationIssue"];
export type ValidateWorkflowResult = Schemas["ValidateWorkflowResponse"];
/** RFC 9457 problem details, as every non-2xx REST answer carries them. */
export type Problem = Schemas["Problem"];

// identity
export type Principal = Schemas["Principal"];
export type Tokens = Schemas["Tokens"];
export type SignUpResponse = Schemas["SignUpResponse"];
export type LoginResponse = Schemas["LoginResponse"];
export type GetMeResponse = Schemas["GetMeResponse"];
export type MyOrganization = Schemas["MyOrganization"];
export type MyTeam = Schemas["MyTeam"];
export type TeamPermissions = Schemas["TeamPermissions"];
export type MyPermissions = Schemas["GetMyPermissionsResponse"];
// tenancy
export type Organization = Schemas["Organization"];
export type Team = Schemas["Team"];
export type Membership = Schemas["Membership"];
export type Invitation = Schemas["Invitation"];
export type CreateInvitationResponse = Schemas["CreateInvitationResponse"];
// api keys
export type ApiKey = Schemas["ApiKey"];
export type CreateApiKeyResponse = Schemas["CreateApiKeyResponse"];
export type RotateApiKeyResponse = Schemas["RotateApiKeyResponse"];
// authz, audit, events
export type CheckRequest = Schemas["CheckRequest"];
export type CheckResponse = Schemas["CheckResponse"];
export type AuditEntry = Schemas["AuditEntry"];
/** One event of the organization stream (`GET /v1/events/stream`): the same shape as a run's events. */
export type FabricEvent = Schemas["Event"];
// providers
export type ModelInfo = Schemas["ModelInfo"];
/** What a provider call does: generate text, or embed texts. */
export type ProviderOperation = ModelInfo["operation"];
export type ProviderInfo = Schemas["ProviderInfo"];
/** `GET /v1/providers`: the enabled providers, their models, prices and health. */
export type ListProvidersResponse = Schemas["ListProvidersResponse"];
/** What a direct provider call answers: text (or embeddings), usage, cost and the routing decision. */
export type ExecuteResponse = Schemas["ExecuteResponse"];
export type TokenUsage = Schemas["TokenUsage"];
export type CallCost = Schemas["CallCost"];
export type RoutingDecision = Schemas["RoutingDecision"];
export type RoutingCandidate = Schemas["RoutingCandidate"];
export type RoutingAttempt = Schemas["RoutingAttempt"];
export type Embedding = Schemas["Embedding"];
export type EstimateCostResponse = Schemas["EstimateCostResponse"];
export type BudgetCheck = Schemas["BudgetCheck"];
/** The `data` of an `event: delta` message of `POST /v1/providers/execute/stream`. */
export type TextDelta = Schemas["TextDelta"];
/**
 * One item of `providers.stream`: text as it arrives (an `event: delta` message), then
 * the whole result (`event: result`: usage, cost, routing).
 */
export type ProviderStreamChunk = ({ type: "delta" } & TextDelta) | { type: "result"; result: ExecuteResponse };
// jobs
export type Job = Schemas["Job"];
export type JobStatus = Job["status"];
/** A job's usage records and their total. */
export type JobUsage = Schemas["GetJobUsageResponse"];
// usage, policies, budgets
export type UsageRecord = Schemas["UsageRecord"];
export type UsageGroup = Schemas["UsageGroup"];
export type QueryUsageResponse = Schemas["QueryUsageResponse"];
export type Policy = Schemas["Policy"];
export type PriceOverride = Schemas["PriceOverride"];
export type Budget = Schemas["Budget"];
export type BudgetPeriod = Schemas["BudgetPeriod"];
// webhooks
export type Webhook = Schemas["Webhook"];
/** One event's delivery to one webhook, with the receiver's last answer. */
export type WebhookDelivery = Schemas["WebhookDelivery"];
export type Schedule = Schemas["Schedule"];
export type ScheduleFire = Schemas["ScheduleFire"];
export type RetentionSettings = Schemas["RetentionSettings"];
/** What `webhooks.create` answers: the webhook and its signing secret `whsec_…`, shown this once. */
export type CreateWebhookResponse = Schemas["CreateWebhookResponse"];

// ---- typed plumbing over `paths` --------------------------------------------------

export type HttpMethod = "get" | "post" | "put" | "patch" | "delete";
/** The operation object of `path` + `method` (never when the path has no such method). */
export type Operation<P extends keyof paths, M extends HttpMethod> = NonNullable<paths[P][M]>;
type SuccessStatus = 200 | 201 | 202;
/** The JSON body of any 2xx answer of an operation. */
export type SuccessJson<O> = O extends { responses: infer R }
  ? { [S in keyof R & SuccessStatus]: R[S] extends { content: { "application/json": infer J } } ? J : never }[keyof R & SuccessStatus]
  : never;
export type JsonBody<O> = O extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;
export type QueryParams<O> = O extends { parameters: { query?: infer Q } } ? Q : never;
export type PathParams<O> = O extends { parameters: { path: infer P } } ? P : never;

// ---- request shapes ---------------------------------------------------------------

type StartRunBody = JsonBody<operations["startRun"]>;
/** `POST /v1/workflow-runs`: exactly one of `workflow_id` (a version) and `workflow_name` (its latest, or `workflow_version`). */
export type StartRunRequest = Omit<StartRunBody, "workflow_id" | "workflow_name"> & ({ workflow_id: string; workflow_name?: never } | { workflow_name: string; workflow_id?: never });
export type ListWorkflowsParams = NonNullable<QueryParams<operations["listWorkflows"]>>;
export type ListRunsParams = NonNullable<QueryParams<operations["listRuns"]>>;
/** `POST /v1/workflow-runs/{id}/signal`. */
export type SignalRunRequest = NonNullable<JsonBody<operations["signalRun"]>>;

export type SignUpRequest = JsonBody<operations["signUp"]>;
export type LoginRequest = JsonBody<operations["login"]>;
export type MeScopeParams = NonNullable<QueryParams<operations["getMyPermissions"]>>;
export type CreateOrganizationRequest = JsonBody<operations["createOrganization"]>;
export type UpdateOrganizationRequest = NonNullable<JsonBody<operations["updateOrganization"]>>;
export type CreateTeamRequest = JsonBody<operations["createTeam"]>;
export type UpdateTeamRequest = NonNullable<JsonBody<operations["updateTeam"]>>;
export type ListMembersParams = NonNullable<QueryParams<operations["listMembers"]>>;
export type AddMemberRequest = JsonBody<operations["addMember"]>;
export type UpdateMemberRequest = JsonBody<operations["updateMember"]>;
export type CreateServiceAccountRequest = JsonBody<operations["createServiceAccount"]>;
export type CreateInvitationRequest = JsonBody<operations["createInvitation"]>;
export type CreateApiKeyRequest = JsonBody<operations["createApiKey"]>;
/** Filters of `GET /v1/organizations/{organization_id}/audit-log` (`since`/`until` are RFC 3339 timestamps). */
export type ListAuditParams = NonNullable<QueryParams<operations["listAuditEntries"]>>;

/**
 * One provider call (`POST /v1/providers/execute`, `…/execute/stream`, `…/estimate`).
 * `operation` is `ai.generate` (default) or `ai.embed`.
 */
export type ProviderCall = Schemas["ProviderCallInput"];
/** `POST /v1/jobs`. */
export type CreateJobRequest = JsonBody<operations["createJob"]>;
export type ListJobsParams = NonNullable<QueryParams<operations["listJobs"]>>;
/** The grouping keys of `usage.query` (the contract lists them in the prose of `group_by`; the server refuses others with `invalid_argument`). */
export type UsageGroupKey = "team" | "principal" | "api_key" | "run" | "provider" | "model" | "operation" | "day";
type UsageTimeRange = {
  /** Calls made at or after this time (RFC 3339, or a Date). */
  start_time?: string | Date;
  /** Calls made before this time (RFC 3339, or a Date). */
  end_time?: string | Date;
};
/**
 * Filters and grouping of `GET /v1/organizations/{organization_id}/usage`. `group_by` is
 * the wire's comma-separated list, or an array of keys; empty: one organization total.
 */
export type QueryUsageParams = Omit<NonNullable<QueryParams<operations["queryUsage"]>>, "group_by" | "start_time" | "end_time"> &
  UsageTimeRange & { group_by?: string | readonly UsageGroupKey[] };
/** Filters and pagination of `GET /v1/organizations/{organization_id}/usage/records`. */
export type ListUsageRecordsParams = Omit<NonNullable<QueryParams<operations["listUsageRecords"]>>, "start_time" | "end_time"> & UsageTimeRange;
/** Which policy or budget to read: the organization's, or `team_id`'s. */
export type PolicyScopeParams = NonNullable<QueryParams<operations["getPolicy"]>>;
/** `PUT /v1/organizations/{organization_id}/policy`: replaces the whole policy of the organization, or of `team_id`. */
export type SetPolicyRequest = NonNullable<JsonBody<operations["setPolicy"]>>;
/** `PUT /v1/organizations/{organization_id}/budget`: replaces the limits of the organization, or of `team_id` (an absent limit: none). */
export type SetBudgetRequest = NonNullable<JsonBody<operations["setBudget"]>>;

/** `POST /v1/organizations/{organization_id}/webhooks`: `url` (required), `event_filter` (default `*`), `max_retries` (0..20, default 8), `description`. */
export type CreateWebhookRequest = NonNullable<JsonBody<operations["createWebhook"]>>;
/** `PATCH /v1/organizations/{organization_id}/webhooks/{id}`: the fields to change. */
export type UpdateWebhookRequest = NonNullable<JsonBody<operations["updateWebhook"]>>;
/** `POST /v1/schedules`: `name`, `workflow_name` and `cron` or `start_time` (required); policies optional. */
export type CreateScheduleRequest = NonNullable<JsonBody<operations["createSchedule"]>>;
/** `PATCH /v1/schedules/{id}`: the fields to change. */
export type UpdateScheduleRequest = NonNullable<JsonBody<operations["updateSchedule"]>>;
/** `PUT /v1/organizations/{organization_id}/retention`: `retention_seconds`, or nothing to clear the setting. */
export type SetRetentionRequest = NonNullable<JsonBody<operations["setRetention"]>>;
/** Filter of `GET /v1/schedules`. */
export type ListSchedulesParams = NonNullable<QueryParams<operations["listSchedules"]>>;
/** Filter of `GET /v1/schedules/{schedule_id}/fires`. */
export type ListScheduleFiresParams = NonNullable<QueryParams<operations["listScheduleFires"]>>;
/** Filter of `GET …/webhooks/{webhook_id}/deliveries`. */
export type ListWebhookDeliveriesParams = NonNullable<QueryParams<operations["listWebhookDeliveries"]>>;
