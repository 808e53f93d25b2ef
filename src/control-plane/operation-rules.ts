/**
 * Every operation of both transports: who may call it and which permission action it
 * needs. The REST router and the gRPC binding both pass each call through the call step
 * (call-step.ts), whose guard (guard.ts) reads this table — and a test fails if an
 * operation of either contract is missing here, so nothing ships unguarded. It is keyed by
 * RPC name, so it lives at the edge; the use cases name their audit entries themselves.
 *
 * `org` says which organization the call acts in: the caller's (an API key's, the
 * X-Organization-Id header's, or the principal's only one), a field of the request, or
 * none (calls about the caller themselves). Team-level checks on loaded resources are
 * made by the services with the permissions the guard computed.
 */
import type { Action } from "../domain/permissions.js";

export type OperationRule =
  | { anonymous: true }
  | { anonymous?: false; org: "none" }
  | { anonymous?: false; org: "caller" | { field: string } | { field: string; orCaller: true }; action: Action | null };

/** Health, the spec, docs and reflection: no credentials, no organization. */
export const anonymousOperations = ["healthz", "readyz", "getOpenApi", "getOpenApi30", "getDocs", "grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"] as const;

const org = { field: "organization_id" } as const;
const byId = { field: "id" } as const;

export const operationRules: Readonly<Record<string, OperationRule>> = {
  "fabric.v1.WorkflowService/UpsertWorkflow": { org: "caller", action: "workflow.write" },
  "fabric.v1.WorkflowService/GetWorkflow": { org: "caller", action: "workflow.read" },
  "fabric.v1.WorkflowService/ListWorkflows": { org: "caller", action: "workflow.read" },
  "fabric.v1.WorkflowService/ValidateWorkflow": { org: "caller", action: "workflow.read" },
  "fabric.v1.RunService/StartRun": { org: "caller", action: "run.create" },
  "fabric.v1.RunService/GetRun": { org: "caller", action: "run.read" },
  "fabric.v1.RunService/ListRuns": { org: "caller", action: "run.read" },
  "fabric.v1.RunService/CancelRun": { org: "caller", action: "run.cancel" },
  "fabric.v1.RunService/PauseRun": { org: "caller", action: "run.control" },
  "fabric.v1.RunService/ResumeRun": { org: "caller", action: "run.control" },
  "fabric.v1.RunService/SignalRun": { org: "caller", action: "run.control" },
  "fabric.v1.RunService/RerunRun": { org: "caller", action: "run.create" },
  "fabric.v1.RunService/WatchRun": { org: "caller", action: "run.read" },

  "fabric.v1.IdentityService/SignUp": { anonymous: true },
  "fabric.v1.IdentityService/Login": { anonymous: true },
  "fabric.v1.IdentityService/RefreshToken": { anonymous: true },
  "fabric.v1.IdentityService/ExchangeSignInToken": { anonymous: true },
  "fabric.v1.IdentityService/Logout": { org: "none" },
  "fabric.v1.IdentityService/GetMe": { org: "none" },
  "fabric.v1.IdentityService/ListMyOrganizations": { org: "none" },
  "fabric.v1.IdentityService/ListMyTeams": { org: "none" },
  "fabric.v1.IdentityService/GetMyPermissions": { org: { field: "organization_id", orCaller: true }, action: null },

  "fabric.v1.TenancyService/CreateOrganization": { org: "none" },
  "fabric.v1.TenancyService/GetOrganization": { org: byId, action: "organization.read" },
  "fabric.v1.TenancyService/UpdateOrganization": { org: byId, action: "organization.update" },
  "fabric.v1.TenancyService/ArchiveOrganization": { org: byId, action: "organization.archive" },
  "fabric.v1.TenancyService/CreateTeam": { org, action: "team.create" },
  "fabric.v1.TenancyService/GetTeam": { org, action: "team.read" },
  "fabric.v1.TenancyService/ListTeams": { org, action: "team.read" },
  "fabric.v1.TenancyService/UpdateTeam": { org, action: "team.update" },
  "fabric.v1.TenancyService/DeleteTeam": { org, action: "team.delete" },
  "fabric.v1.TenancyService/ListMembers": { org, action: "member.read" },
  "fabric.v1.TenancyService/AddMember": { org, action: "member.invite" },
  "fabric.v1.TenancyService/UpdateMember": { org, action: "member.update" },
  "fabric.v1.TenancyService/RemoveMember": { org, action: "member.remove" },
  "fabric.v1.TenancyService/CreateServiceAccount": { org, action: "member.invite" },
  "fabric.v1.TenancyService/CreateInvitation": { org, action: "member.invite" },
  "fabric.v1.TenancyService/ListInvitations": { org, action: "invitation.read" },
  "fabric.v1.TenancyService/RevokeInvitation": { org, action: "invitation.revoke" },
  "fabric.v1.TenancyService/AcceptInvitation": { org: "none" },

  "fabric.v1.ApiKeyService/CreateApiKey": { org, action: "api_key.create" },
  "fabric.v1.ApiKeyService/ListApiKeys": { org, action: "api_key.read" },
  "fabric.v1.ApiKeyService/RotateApiKey": { org, action: "api_key.rotate" },
  "fabric.v1.ApiKeyService/RevokeApiKey": { org, action: "api_key.revoke" },

  "fabric.v1.AuthzService/Check": { org: "none" },
  "fabric.v1.AuthzService/BatchCheck": { org: "none" },

  "fabric.v1.AuditService/ListAuditEntries": { org, action: "audit.read" },

  "fabric.v1.EventService/StreamEvents": { org: "caller", action: "event.read" },

  "fabric.v1.WebhookService/CreateWebhook": { org, action: "webhook.write" },
  "fabric.v1.WebhookService/ListWebhooks": { org, action: "webhook.read" },
  "fabric.v1.WebhookService/UpdateWebhook": { org, action: "webhook.write" },
  "fabric.v1.WebhookService/DeleteWebhook": { org, action: "webhook.write" },
  "fabric.v1.WebhookService/ListWebhookDeliveries": { org, action: "webhook.read" },
  "fabric.v1.WebhookService/RedeliverWebhookDelivery": { org, action: "webhook.write" },

  "fabric.v1.ProviderService/ListProviders": { org: "caller", action: "provider.read" },
  "fabric.v1.ProviderService/Execute": { org: "caller", action: "provider.execute" },
  "fabric.v1.ProviderService/ExecuteStream": { org: "caller", action: "provider.execute" },
  "fabric.v1.ProviderService/EstimateCost": { org: "caller", action: "provider.read" },

  "fabric.v1.JobService/CreateJob": { org: "caller", action: "job.create" },
  "fabric.v1.JobService/GetJob": { org: "caller", action: "job.read" },
  "fabric.v1.JobService/ListJobs": { org: "caller", action: "job.read" },
  "fabric.v1.JobService/GetJobUsage": { org: "caller", action: "job.read" },
  "fabric.v1.JobService/WatchJob": { org: "caller", action: "job.read" },

  "fabric.v1.UsageService/QueryUsage": { org, action: "usage.read" },
  "fabric.v1.UsageService/ListUsageRecords": { org, action: "usage.read" },

  "fabric.v1.PolicyService/GetPolicy": { org, action: "policy.read" },
  "fabric.v1.PolicyService/SetPolicy": { org, action: "policy.write" },
  "fabric.v1.PolicyService/GetBudget": { org, action: "budget.read" },
  "fabric.v1.PolicyService/SetBudget": { org, action: "budget.write" },

  "fabric.v1.RetentionService/GetRetention": { org, action: "organization.read" },
  "fabric.v1.RetentionService/SetRetention": { org, action: "organization.update" },

  "fabric.v1.ScheduleService/CreateSchedule": { org: "caller", action: "schedule.write" },
  "fabric.v1.ScheduleService/GetSchedule": { org: "caller", action: "schedule.read" },
  "fabric.v1.ScheduleService/ListSchedules": { org: "caller", action: "schedule.read" },
  "fabric.v1.ScheduleService/UpdateSchedule": { org: "caller", action: "schedule.write" },
  "fabric.v1.ScheduleService/DeleteSchedule": { org: "caller", action: "schedule.write" },
  "fabric.v1.ScheduleService/ListScheduleFires": { org: "caller", action: "schedule.read" },
};
