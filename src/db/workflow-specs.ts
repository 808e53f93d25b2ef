/**
 * Compiled workflow definitions by id. Definitions are immutable per version, so a
 * process caches them for its lifetime (bounded).
 */
import { eq } from "drizzle-orm";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { WorkflowSpecSchema } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { compileWorkflow, type CompiledWorkflow } from "../domain/compiled-workflow.js";
import type { Executor } from "./database.js";
import { workflowDefinitions } from "./schema.js";

export interface WorkflowCache {
  get(ex: Executor, id: string): Promise<CompiledWorkflow>;
}

export function createWorkflowCache(max = 1000): WorkflowCache {
  const cache = new Map<string, Promise<CompiledWorkflow>>();
  return {
    get(ex, id) {
      let hit = cache.get(id);
      if (!hit) {
        hit = load(ex, id);
        hit.catch(() => cache.delete(id));
        if (cache.size >= max) cache.delete(cache.keys().next().value!);
        cache.set(id, hit);
      }
      return hit;
    },
  };
}

async function load(ex: Executor, id: string): Promise<CompiledWorkflow> {
  const [row] = await ex.select({ spec: workflowDefinitions.spec }).from(workflowDefinitions).where(eq(workflowDefinitions.id, id));
  if (!row) throw new Error(`workflow definition ${id} not found`);
  return compileWorkflow(fromJson(WorkflowSpecSchema, row.spec as JsonValue, { ignoreUnknownFields: true }));
}
