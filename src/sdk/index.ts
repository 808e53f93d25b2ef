/**
 * Fabric's TypeScript SDK. See `FabricClient` (./client.ts) for usage and conventions.
 */
export { FabricClient, RunsResource, WorkflowsResource, sdkVersion, terminalEventKinds, terminalRunStatuses } from "./client.js";
export type { FabricClientOptions, FetchLike, RequestOptions, RetryOptions, WaitOptions, WatchOptions } from "./client.js";
export { FabricError } from "./errors.js";
export type { ClientErrorCode, FabricErrorInit } from "./errors.js";
export type { FabricGrpc } from "./grpc.js";
export { readSse, type SseMessage } from "./sse.js";
export type {
  ListRunsParams,
  ListWorkflowsParams,
  NodeSpec,
  Page,
  Problem,
  Run,
  RunError,
  RunEvent,
  RunNode,
  RunNodeStatus,
  RunStatus,
  SignalRunRequest,
  StartRunRequest,
  ValidateWorkflowResult,
  ValidationIssue,
  WorkflowDefinition,
  WorkflowSpec,
} from "./types.js";
export { verifyWebhookSignature, type VerifyWebhookSignatureInput } from "./webhooks.js";
