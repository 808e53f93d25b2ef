/**
 * Every operation of both transports and the action it needs. The REST router and the
 * gRPC interceptor both look operations up here, and a test fails if a contract
 * operation (OpenAPI or proto) is missing — so nothing ships unguarded.
 */
export const anonymousOperations = ["healthz", "readyz", "getOpenApi", "getDocs", "grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"] as const;

export const operationActions: Readonly<Record<string, string>> = {
  "fabric.v1.WorkflowService/UpsertWorkflow": "workflow.write",
  "fabric.v1.WorkflowService/GetWorkflow": "workflow.read",
  "fabric.v1.WorkflowService/ListWorkflows": "workflow.read",
  "fabric.v1.WorkflowService/ValidateWorkflow": "workflow.read",
  "fabric.v1.RunService/StartRun": "run.create",
  "fabric.v1.RunService/GetRun": "run.read",
  "fabric.v1.RunService/ListRuns": "run.read",
  "fabric.v1.RunService/CancelRun": "run.cancel",
  "fabric.v1.RunService/PauseRun": "run.control",
  "fabric.v1.RunService/ResumeRun": "run.control",
  "fabric.v1.RunService/SignalRun": "run.control",
  "fabric.v1.RunService/RerunRun": "run.create",
  "fabric.v1.RunService/WatchRun": "run.read",
};
