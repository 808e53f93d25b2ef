/**
 * Database rows → the generated domain messages. Both transports serialise these same
 * messages (gRPC binary/JSON, REST proto3 JSON with proto field names), so one
 * conversion here keeps REST and gRPC identical by construction.
 */
import { etagOf } from "../../domain/etags.js";
import { create, fromJson, toJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate, ValueSchema } from "@bufbuild/protobuf/wkt";
import { EventSchema, RunErrorSchema, RunNodeSchema, RunSchema, type Event, type Run, type RunError, type RunNode } from "../../../gen/proto/fabric/v1/run_pb.js";
import { WorkflowDefinitionSchema, WorkflowSpecSchema, type WorkflowDefinition } from "../../../gen/proto/fabric/v1/workflow_pb.js";
import type { events, workflowDefinitions, workflowRunNodes, workflowRuns } from "../../db/schema.js";

const ts = (d: Date | null | undefined) => (d ? timestampFromDate(d) : undefined);

function runError(e: unknown): RunError | undefined {
  if (!e || typeof e !== "object") return undefined;
  const x = e as Record<string, unknown>;
  return create(RunErrorSchema, { code: String(x["code"] ?? "error"), message: String(x["message"] ?? ""), nodeKey: typeof x["node_key"] === "string" ? x["node_key"] : undefined });
}

export function workflowMessage(row: typeof workflowDefinitions.$inferSelect): WorkflowDefinition {
  return create(WorkflowDefinitionSchema, {
    id: row.id,
    organizationId: row.organizationId,
    name: row.name,
    version: row.version,
    spec: fromJson(WorkflowSpecSchema, row.spec as JsonValue, { ignoreUnknownFields: true }),
    createTime: ts(row.createdAt),
    teamId: row.teamId ?? undefined,
    etag: etagOf("workflow", row.version),
  });
}

export function runMessage(row: typeof workflowRuns.$inferSelect, nodes: (typeof workflowRunNodes.$inferSelect)[] = []): Run {
  return create(RunSchema, {
    id: row.id,
    organizationId: row.organizationId,
    workflowId: row.workflowId,
    workflowName: row.workflowName,
    workflowVersion: row.workflowVersion,
    status: row.status,
    priority: row.priority,
    failFast: row.failFast,
    input: row.input as JsonObject,
    context: row.context as JsonObject,
    state: row.state === null || row.state === undefined ? undefined : fromJson(ValueSchema, row.state as JsonValue),
    metadata: row.metadata as JsonObject,
    idempotencyKey: row.idempotencyKey ?? undefined,
    error: runError(row.error),
    rerunOf: row.rerunOf ?? undefined,
    createTime: ts(row.createdAt),
    startTime: ts(row.startedAt),
    finishTime: ts(row.finishedAt),
    deadline: ts(row.deadlineAt),
    nodes: nodes.map(nodeMessage),
    teamId: row.teamId ?? undefined,
  });
}

export function nodeMessage(n: typeof workflowRunNodes.$inferSelect): RunNode {
  return create(RunNodeSchema, {
    key: n.nodeKey,
    operation: n.operation,
    status: n.status,
    attempt: n.attempt,
    maxAttempts: n.maxAttempts,
    output: (n.output ?? undefined) as JsonObject | undefined,
    error: runError(n.error),
    startTime: ts(n.startedAt),
    finishTime: ts(n.finishedAt),
  });
}

/**
 * The hub hands the same row object to every subscriber, so the message (and, at the
 * REST edge, its JSON) is built once per event, not once per subscriber.
 */
const eventMessages = new WeakMap<object, Event>();

export function eventMessage(e: typeof events.$inferSelect): Event {
  let m = eventMessages.get(e);
  if (!m) {
    m = buildEventMessage(e);
    eventMessages.set(e, m);
  }
  return m;
}

function buildEventMessage(e: typeof events.$inferSelect): Event {
  return create(EventSchema, {
    id: BigInt(e.id),
    kind: e.kind,
    organizationId: e.organizationId,
    runId: e.runId ?? undefined,
    nodeKey: e.nodeKey ?? undefined,
    payload: e.payload as JsonObject,
    createTime: ts(e.createdAt),
  });
}

export const specJson = (s: Parameters<typeof toJson<typeof WorkflowSpecSchema>>[1]) => toJson(WorkflowSpecSchema, s, { useProtoFieldName: true });
