/**
 * A run's live state folded from its event stream: each node's status, every attempt
 * (worker, lease, timing, outcome) and the text streamed by the current attempt. The
 * events are the history — the run snapshot (`GET /v1/workflow-runs/{id}`) has no
 * attempts — so the run page replays them from the first and then follows live.
 */
import type { FabricEvent } from "../api/client.js";

export interface Attempt {
  attempt: number;
  workerId?: string;
  leaseExpiresAt?: string;
  startTime?: string;
  finishTime?: string;
  outcome?: "succeeded" | "failed" | "retrying" | "released" | "waiting";
  error?: { code?: string; message?: string };
  /** For a retry: the delay before the next attempt. */
  retryDelayMs?: number;
}

export interface NodeTrack {
  status: string;
  attempts: Attempt[];
  /** Text streamed by the latest attempt (`workflow.node.progress` deltas). */
  streamed: string;
}

export interface RunModel {
  status: string | undefined;
  nodes: Record<string, NodeTrack>;
  events: FabricEvent[];
  lastEventId: number;
}

export const terminalRunStatuses = new Set(["completed", "failed", "cancelled"]);

export function emptyRunModel(): RunModel {
  return { status: undefined, nodes: {}, events: [], lastEventId: 0 };
}

const runStatusByKind: Record<string, string> = {
  "workflow.run.created": "pending",
  "workflow.run.queued": "pending",
  "workflow.run.started": "running",
  "workflow.run.waiting": "waiting",
  "workflow.run.paused": "paused",
  "workflow.run.resumed": "running",
  "workflow.run.completed": "completed",
  "workflow.run.failed": "failed",
  "workflow.run.cancelled": "cancelled",
};

type Payload = Record<string, unknown>;
const str = (v: unknown) => (typeof v === "string" ? v : undefined);
const num = (v: unknown) => (typeof v === "number" ? v : undefined);

/** Folds one event into the model (in place; returns it). Events at or below `lastEventId` are ignored. */
export function applyEvent(model: RunModel, e: FabricEvent): RunModel {
  const id = Number(e.id);
  if (id <= model.lastEventId) return model;
  model.lastEventId = id;
  model.events.push(e);
  const p = (e.payload ?? {}) as Payload;
  const runStatus = runStatusByKind[e.kind];
  if (runStatus) {
    // A resume reports what the run went back to (e.g. `waiting` when a node still waits).
    model.status = e.kind === "workflow.run.resumed" ? (str(p["status"]) ?? "running") : runStatus;
    return model;
  }
  if (!e.node_key || !e.kind.startsWith("workflow.node.")) return model;
  const node = (model.nodes[e.node_key] ??= { status: "blocked", attempts: [], streamed: "" });
  const current = (n?: number) => (n !== undefined ? node.attempts.find((a) => a.attempt === n) : node.attempts.at(-1));
  switch (e.kind) {
    case "workflow.node.ready": {
      node.status = "ready";
      if (p["reason"] === "released") {
        const a = current();
        if (a && !a.outcome) Object.assign(a, { outcome: "released", finishTime: e.create_time });
      }
      break;
    }
    case "workflow.node.started":
      node.status = "running";
      node.streamed = "";
      node.attempts.push({ attempt: num(p["attempt"]) ?? node.attempts.length + 1, workerId: str(p["worker_id"]), leaseExpiresAt: str(p["lease_expires_at"]), startTime: e.create_time });
      break;
    case "workflow.node.progress":
      node.streamed += str(p["delta"]) ?? "";
      break;
    case "workflow.node.waiting": {
      node.status = "waiting";
      const a = current();
      if (a) a.outcome = "waiting";
      break;
    }
    case "workflow.node.retrying": {
      node.status = "ready";
      const a = current(num(p["attempt"]));
      if (a) Object.assign(a, { outcome: "retrying", finishTime: e.create_time, error: p["error"] as Attempt["error"], retryDelayMs: num(p["delay_ms"]) });
      break;
    }
    case "workflow.node.completed": {
      node.status = "succeeded";
      const a = current(num(p["attempt"]));
      if (a) Object.assign(a, { outcome: "succeeded", finishTime: e.create_time });
      break;
    }
    case "workflow.node.failed": {
      node.status = "failed";
      const a = current(num(p["attempt"]));
      if (a) Object.assign(a, { outcome: "failed", finishTime: e.create_time, error: p["error"] as Attempt["error"] });
      break;
    }
    case "workflow.node.skipped":
      node.status = "skipped";
      break;
    case "workflow.node.cancelled":
      node.status = "cancelled";
      break;
  }
  return model;
}

/** Resolves a `$context.a.b[0]` binding against the context; other values are literals (`$$x` is the string `$x`). */
export function resolveBinding(binding: unknown, context: unknown): { bound: boolean; value: unknown } {
  if (typeof binding !== "string" || !binding.startsWith("$")) return { bound: false, value: binding };
  if (binding.startsWith("$$")) return { bound: false, value: binding.slice(1) };
  if (binding !== "$context" && !binding.startsWith("$context.")) return { bound: false, value: binding };
  let v: unknown = context;
  for (const part of binding.slice("$context".length).split(/\.|\[(\d+)\]/).filter((s) => s !== undefined && s !== "")) {
    if (v === null || typeof v !== "object") return { bound: true, value: undefined };
    v = (v as Record<string, unknown>)[part];
  }
  return { bound: true, value: v };
}
