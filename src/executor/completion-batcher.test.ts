/**
 * The completion batcher over a real database: completions that arrive while a commit is
 * in flight go together in the next batch, and when that batch fails each of its items is
 * retried alone (the same completeNodes, a batch of one), so one bad item cannot fail
 * the others.
 */
import { randomUUID } from "node:crypto";
import { fromJson } from "@bufbuild/protobuf";
import { eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkflowSpecSchema } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { createTestDatabase, engine, type TestDatabase } from "../../tests/helpers/database.js";
import type { NodeCompletion } from "../db/complete-nodes.js";
import { events, organizations, workflowDefinitions, workflowRunNodes, workflowRuns } from "../db/schema.js";
import { compileWorkflow } from "../domain/compiled-workflow.js";
import { createCompletionBatcher } from "./completion-batcher.js";

let database: TestDatabase;
const orgId = randomUUID();
const workflowId = randomUUID();
const wf = compileWorkflow(fromJson(WorkflowSpecSchema, { name: "batched", nodes: [{ key: "a", operation: "workflow.noop" }] }));
const a = wf.nodes.get("a")!;

beforeAll(async () => {
  database = await createTestDatabase();
  await database.db.insert(organizations).values({ id: orgId, slug: `org-${orgId.slice(0, 8)}`, name: "Batches" });
  await database.db.insert(workflowDefinitions).values({ id: workflowId, organizationId: orgId, name: "batched", version: 1, spec: {}, specHash: "x" });
});
afterAll(() => database?.close());

/** A running run whose one node `a` is leased by w1, attempt 1. */
async function leasedRun(): Promise<string> {
  const id = randomUUID();
  await database.db.insert(workflowRuns).values({ id, organizationId: orgId, workflowId, workflowName: "batched", workflowVersion: 1, status: "running", input: {}, context: {}, metadata: {}, nodesPending: 1, startedAt: new Date() });
  await database.db.insert(workflowRunNodes).values({ runId: id, organizationId: orgId, nodeKey: "a", position: 0, operation: "workflow.noop", status: "running", attempt: 1, maxAttempts: 3, priority: 50, depsRemaining: 0, leaseOwner: "w1", leaseExpiresAt: new Date(Date.now() + 60_000) });
  return id;
}

const completion = (runId: string): NodeCompletion => ({ runId, node: a, guard: { owner: "w1", attempt: 1 }, output: { ok: true }, eventPayload: { attempt: 1 } });

describe(`completion batcher (${engine})`, () => {
  it("retries the items of a failed batch one by one: the good ones apply, only the bad one fails", async () => {
    const batcher = createCompletionBatcher(database.db);
    const [first, second] = [await leasedRun(), await leasedRun()];
    // `first` commits at once; the other two arrive while it is in flight and share the
    // next batch, which the malformed run id makes fail as a whole.
    const outcomes = await Promise.allSettled([batcher.submit(completion(first)), batcher.submit(completion("not-a-run-id")), batcher.submit(completion(second))]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(outcomes.filter((o) => o.status === "fulfilled").map((o) => o.value)).toEqual(["applied", "applied"]);

    const runs = await database.db.select().from(workflowRuns).where(inArray(workflowRuns.id, [first, second]));
    expect(runs.map((r) => r.status)).toEqual(["completed", "completed"]);
    const completed = await database.db.select().from(events).where(eq(events.kind, "workflow.node.completed"));
    expect(completed.map((e) => e.runId).sort()).toEqual([first, second].sort());
    expect(completed.map((e) => e.payload)).toEqual([
      { output: { ok: true }, attempt: 1 },
      { output: { ok: true }, attempt: 1 },
    ]);
  });
});
