/**
 * The contracts as the servers use them: the derived OpenAPI document, the proto
 * services, and the table joining each REST operation to its RPC. REST routes are built
 * from this table, so an operation exists on REST exactly when the document says so.
 */
import { readFileSync } from "node:fs";
import { packagePath } from "../package-files.js";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { ApiKeyService, AuditService, AuthzService, file_fabric_v1_access } from "../../gen/proto/fabric/v1/access_pb.js";
import { EventService, file_fabric_v1_events } from "../../gen/proto/fabric/v1/events_pb.js";
import { JobService, file_fabric_v1_jobs } from "../../gen/proto/fabric/v1/jobs_pb.js";
import { ProviderService, file_fabric_v1_providers } from "../../gen/proto/fabric/v1/providers_pb.js";
import { PolicyService, UsageService, file_fabric_v1_usage } from "../../gen/proto/fabric/v1/usage_pb.js";
import { IdentityService, file_fabric_v1_identity } from "../../gen/proto/fabric/v1/identity_pb.js";
import { RunService, file_fabric_v1_run } from "../../gen/proto/fabric/v1/run_pb.js";
import { ScheduleService, file_fabric_v1_schedules } from "../../gen/proto/fabric/v1/schedules_pb.js";
import { RetentionService, file_fabric_v1_retention } from "../../gen/proto/fabric/v1/retention_pb.js";
import { TenancyService, file_fabric_v1_tenancy } from "../../gen/proto/fabric/v1/tenancy_pb.js";
import { WebhookService, file_fabric_v1_webhooks } from "../../gen/proto/fabric/v1/webhooks_pb.js";
import { WorkflowService, file_fabric_v1_workflow } from "../../gen/proto/fabric/v1/workflow_pb.js";

/** proto3 JSON as REST speaks it (and gRPC's JSON codecs answer): proto field names, every field present. */
export const jsonOptions = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;

export const openApiPath = packagePath("gen/openapi/openapi.json");
export const openApiDocument: Record<string, any> = JSON.parse(readFileSync(openApiPath, "utf8"));

/** The proto services by type name; `ServiceImpls` (service-impls.ts) is typed from these descriptors. */
export const serviceDescriptors = {
  "fabric.v1.WorkflowService": WorkflowService,
  "fabric.v1.RunService": RunService,
  "fabric.v1.IdentityService": IdentityService,
  "fabric.v1.TenancyService": TenancyService,
  "fabric.v1.ApiKeyService": ApiKeyService,
  "fabric.v1.AuthzService": AuthzService,
  "fabric.v1.AuditService": AuditService,
  "fabric.v1.EventService": EventService,
  "fabric.v1.WebhookService": WebhookService,
  "fabric.v1.ProviderService": ProviderService,
  "fabric.v1.JobService": JobService,
  "fabric.v1.UsageService": UsageService,
  "fabric.v1.PolicyService": PolicyService,
  "fabric.v1.ScheduleService": ScheduleService,
  "fabric.v1.RetentionService": RetentionService,
} as const;
export type ServiceName = keyof typeof serviceDescriptors;
for (const [name, desc] of Object.entries(serviceDescriptors)) if (name !== desc.typeName) throw new Error(`serviceDescriptors: ${name} holds ${desc.typeName}`);

export const services: readonly DescService[] = Object.values(serviceDescriptors);
export const protoFiles = [file_fabric_v1_workflow, file_fabric_v1_run, file_fabric_v1_identity, file_fabric_v1_tenancy, file_fabric_v1_access, file_fabric_v1_events, file_fabric_v1_webhooks, file_fabric_v1_providers, file_fabric_v1_jobs, file_fabric_v1_usage, file_fabric_v1_schedules, file_fabric_v1_retention];

export interface RestOperation {
  operationId: string;
  method: string;
  /** OpenAPI path template, e.g. `/v1/workflow-runs/{id}`. */
  path: string;
  /** `fabric.v1.RunService/GetRun`, or undefined for the health/spec/docs operations. */
  rpc?: string;
  protoMethod?: DescMethod;
  /** Which request field the body fills (`*` = the whole request). */
  body?: string;
  /** Which response field becomes `data` (`*` = the whole response). */
  data?: string;
  stream?: "sse" | "websocket";
  /** Success status codes the document lists, lowest first. */
  successStatuses: number[];
}

export const methodsByRpc = new Map<string, DescMethod>(services.flatMap((s) => s.methods.map((m) => [`${s.typeName}/${m.name}`, m] as const)));

export const restOperations: readonly RestOperation[] = Object.entries<Record<string, any>>(openApiDocument.paths).flatMap(([path, item]) =>
  Object.entries<any>(item).map(([method, op]) => {
    const rpc: string | undefined = op["x-fabric-rpc"];
    const protoMethod = rpc ? methodsByRpc.get(rpc) : undefined;
    if (rpc && !protoMethod) throw new Error(`${method.toUpperCase()} ${path}: x-fabric-rpc ${rpc} is not a proto method`);
    return {
      operationId: op.operationId,
      method: method.toUpperCase(),
      path,
      rpc,
      protoMethod,
      body: op["x-fabric-body"],
      data: op["x-fabric-data"],
      stream: op["x-fabric-stream"],
      successStatuses: Object.keys(op.responses)
        .filter((s) => /^2\d\d$/.test(s))
        .map(Number)
        .sort(),
    };
  }),
);
