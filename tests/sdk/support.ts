/** What the SDK's wire tests share: catching a FabricError, draining an iterator, a workflow that waits. */
import { expect } from "vitest";
import { FabricError, type WorkflowSpec } from "../../src/sdk/index.js";

/** The FabricError a call rejects with; fails the test when it resolves or throws anything else. */
export async function rejection(p: Promise<unknown>): Promise<FabricError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FabricError);
    return err as FabricError;
  }
  throw new Error("expected the call to fail");
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

/** Stays `waiting` until signalled (or fails after `timeoutMs`), then upper-cases `word`. */
export const gateWorkflow = (name: string, timeoutMs = 60_000): WorkflowSpec => ({
  name,
  nodes: [
    { key: "gate", operation: "workflow.wait_signal", config: { timeout_ms: timeoutMs }, outputs: { approved: "$context.approved" } },
    { key: "after", operation: "text.transform_basic", config: { op: "upper" }, depends_on: ["gate"], inputs: { text: "$context.word" }, outputs: { text: "$context.loud" } },
  ],
});

/** A problem document as the control plane writes one. */
export const problemBody = (status: number, code: string, detail = "injected by the test") => ({ type: `https://fabric.dev/problems/${code}`, title: code, status, detail, code, request_id: `injected-${code}` });
