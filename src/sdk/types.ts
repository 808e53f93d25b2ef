/**
 * The SDK's public types, all derived from the generated OpenAPI types
 * (`gen/openapi/schema.d.ts`, openapi-typescript output) so that a contract change
 * breaks the SDK at compile time instead of at run time.
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

// ---- typed plumbing over `paths` --------------------------------------------------

export type HttpMethod = "get" | "post" | "patch" | "delete";
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

/** One page of a list, exactly as the wire has it. `next_page_token` is empty on the last page. */
export interface Page<T> {
  data: T[];
  next_page_token: string;
}
