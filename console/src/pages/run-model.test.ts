import { describe, expect, it } from "vitest";
import { applyEvent, emptyRunModel, resolveBinding } from "./run-model.js";

let id = 0;
const ev = (kind: string, node_key?: string, payload: Record<string, unknown> = {}) => ({ id: String(++id), kind, organization_id: "o", run_id: "r", node_key, payload, create_time: new Date(1_700_000_000_000 + id * 1000).toISOString() });

describe("applyEvent", () => {
  it("tracks statuses, every attempt with its worker and lease, and streamed text", () => {
    const m = emptyRunModel();
    for (const e of [
      ev("workflow.run.created"),
      ev("workflow.node.ready", "gen"),
      ev("workflow.run.started"),
      ev("workflow.node.started", "gen", { attempt: 1, worker_id: "w1", lease_expires_at: "2030-01-01T00:00:00Z" }),
      ev("workflow.node.progress", "gen", { delta: "hel", chars: 3 }),
      ev("workflow.node.retrying", "gen", { attempt: 1, next_attempt: 2, delay_ms: 200, error: { code: "transient", message: "503" } }),
      ev("workflow.node.started", "gen", { attempt: 2, worker_id: "w2", lease_expires_at: "2030-01-01T00:00:30Z" }),
      ev("workflow.node.progress", "gen", { delta: "hello ", chars: 6 }),
      ev("workflow.node.progress", "gen", { delta: "world", chars: 11 }),
      ev("workflow.node.completed", "gen", { attempt: 2, output: { text: "hello world" } }),
      ev("workflow.run.completed"),
    ])
      applyEvent(m, e);
    expect(m.status).toBe("completed");
    const gen = m.nodes.gen!;
    expect(gen.status).toBe("succeeded");
    expect(gen.streamed).toBe("hello world");
    expect(gen.attempts.map((a) => [a.attempt, a.workerId, a.outcome, a.error?.code])).toEqual([
      [1, "w1", "retrying", "transient"],
      [2, "w2", "succeeded", undefined],
    ]);
    expect(gen.attempts[1]!.leaseExpiresAt).toBe("2030-01-01T00:00:30Z");
    expect(gen.attempts[1]!.finishTime).toBeDefined();
  });

  it("ignores a replayed event, so a resumed stream cannot apply one twice", () => {
    const m = emptyRunModel();
    const start = ev("workflow.node.started", "a", { attempt: 1, worker_id: "w" });
    applyEvent(m, start);
    applyEvent(m, start);
    expect(m.nodes.a!.attempts).toHaveLength(1);
    expect(m.events).toHaveLength(1);
  });

  it("follows a run through waiting, pause and resume", () => {
    const m = emptyRunModel();
    applyEvent(m, ev("workflow.node.started", "gate", { attempt: 1, worker_id: "w" }));
    applyEvent(m, ev("workflow.node.waiting", "gate", { timeout_ms: 1000 }));
    applyEvent(m, ev("workflow.run.waiting", undefined, { node_key: "gate" }));
    expect([m.status, m.nodes.gate!.status]).toEqual(["waiting", "waiting"]);
    applyEvent(m, ev("workflow.run.paused"));
    applyEvent(m, ev("workflow.run.resumed", undefined, { reason: "resume", status: "waiting" }));
    expect(m.status).toBe("waiting");
  });
});

describe("resolveBinding", () => {
  const context = { topic: "x", a: { list: [{ b: 2 }] } };
  it("reads context paths with indexes and keeps literals", () => {
    expect(resolveBinding("$context.a.list[0].b", context)).toEqual({ bound: true, value: 2 });
    expect(resolveBinding("$context.missing.deeper", context)).toEqual({ bound: true, value: undefined });
    expect(resolveBinding("$$context.topic", context)).toEqual({ bound: false, value: "$context.topic" });
    expect(resolveBinding(42, context)).toEqual({ bound: false, value: 42 });
  });
});
