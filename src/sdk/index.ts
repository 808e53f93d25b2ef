/**
 * Fabric's TypeScript SDK: `FabricClient` (./client.ts) for usage and conventions.
 * Imports nothing of the server: only the generated contract (`gen/`) and npm packages.
 */
export { FabricClient } from "./client.js";
export type { FabricClientOptions } from "./client.js";
export { FabricError, parseRetryAfter } from "./core/fabric-error.js";
export type { ClientErrorCode, FabricErrorInit } from "./core/fabric-error.js";
export type { RetryOptions } from "./core/follow-events.js";
export type { Page } from "./core/paging.js";
export { readSse, type SseMessage } from "./core/read-sse.js";
export { sdkVersion } from "./core/rest-transport.js";
export type { FetchLike, RequestOptions } from "./core/rest-transport.js";
export { grpcServices, type FabricGrpc } from "./grpc.js";
export { ApiKeysResource } from "./resources/api-keys.js";
export { AuditResource } from "./resources/audit.js";
export { AuthzResource } from "./resources/authz.js";
export { EventsResource, type EventStreamOptions } from "./resources/events.js";
export { AuthResource, MeResource } from "./resources/identity.js";
export { JobsResource } from "./resources/jobs.js";
export { ProvidersResource } from "./resources/providers.js";
export { RunsResource, terminalEventKinds, terminalRunStatuses, type WaitOptions, type WatchOptions } from "./resources/runs.js";
export { InvitationsResource, MembersResource, OrganizationsResource, TeamsResource } from "./resources/tenancy.js";
export { PoliciesResource, UsageResource } from "./resources/usage.js";
export { WebhooksResource } from "./resources/webhooks.js";
export { SchedulesResource } from "./resources/schedules.js";
export { RetentionResource } from "./resources/retention.js";
export { WorkflowsResource } from "./resources/workflows.js";
export type {
  AddMemberRequest,
  ApiKey,
  AuditEntry,
  Budget,
  BudgetCheck,
  BudgetPeriod,
  CallCost,
  CheckRequest,
  CheckResponse,
  CreateApiKeyRequest,
  CreateApiKeyResponse,
  CreateInvitationRequest,
  CreateInvitationResponse,
  CreateJobRequest,
  CreateOrganizationRequest,
  CreateServiceAccountRequest,
  CreateTeamRequest,
  CreateWebhookRequest,
  CreateWebhookResponse,
  Embedding,
  EstimateCostResponse,
  ExecuteResponse,
  FabricEvent,
  GetMeResponse,
  Invitation,
  Job,
  JobStatus,
  JobUsage,
  ListAuditParams,
  ListJobsParams,
  ListMembersParams,
  ListProvidersResponse,
  ListRunsParams,
  ListUsageRecordsParams,
  ListWebhookDeliveriesParams,
  ListWorkflowsParams,
  LoginRequest,
  LoginResponse,
  MeScopeParams,
  Membership,
  ModelInfo,
  MyOrganization,
  MyPermissions,
  MyTeam,
  NodeSpec,
  Organization,
  Policy,
  PolicyScopeParams,
  PriceOverride,
  Principal,
  Problem,
  ProviderCall,
  ProviderInfo,
  ProviderOperation,
  ProviderStreamChunk,
  QueryUsageParams,
  QueryUsageResponse,
  RotateApiKeyResponse,
  RoutingAttempt,
  RoutingCandidate,
  RoutingDecision,
  Run,
  RunError,
  RunEvent,
  RunNode,
  RunNodeStatus,
  RunStatus,
  SetBudgetRequest,
  SetPolicyRequest,
  SignalRunRequest,
  SignUpRequest,
  SignUpResponse,
  StartRunRequest,
  Team,
  TeamPermissions,
  TextDelta,
  TokenUsage,
  Tokens,
  UpdateMemberRequest,
  UpdateOrganizationRequest,
  UpdateTeamRequest,
  UpdateWebhookRequest,
  UsageGroup,
  UsageGroupKey,
  UsageRecord,
  ValidateWorkflowResult,
  ValidationIssue,
  Webhook,
  WebhookDelivery,
  WorkflowDefinition,
  WorkflowSpec,
} from "./types.js";
export { standardWebhookSecret, verifyWebhook, verifyWebhookSignature, type VerifyWebhookInput, type VerifyWebhookSignatureInput } from "./webhook-signature.js";
