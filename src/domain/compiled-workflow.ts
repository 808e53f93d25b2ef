/**
 * A validated spec indexed for execution: per node its spec, the nodes that depend on
 * it, and its effective merge policy and retry policy. Definitions are immutable, so
 * executors cache these by definition id.
 */
import type { NodeSpec, WorkflowSpec } from "../../gen/proto/fabric/v1/workflow_pb.js";
import type { MergePolicy } from "./context.js";
import { compileCondition, type NodeCondition } from "./node-condition.js";
import { dependentsOf } from "./workflow-spec.js";

export interface CompiledNode {
  spec: NodeSpec;
  position: number;
  dependents: string[];
  merge: MergePolicy;
  /** The node's `when`, compiled; absent when the node always runs. */
  when?: NodeCondition;
}

export interface CompiledWorkflow {
  spec: WorkflowSpec;
  nodes: Map<string, CompiledNode>;
}

export function compileWorkflow(spec: WorkflowSpec): CompiledWorkflow {
  const deps = dependentsOf(spec.nodes);
  const nodes = new Map<string, CompiledNode>();
  spec.nodes.forEach((n, position) => nodes.set(n.key, { spec: n, position, dependents: deps.get(n.key) ?? [], merge: (n.merge || "replace") as MergePolicy, when: n.when ? compileCondition(n.when) : undefined }));
  return { spec, nodes };
}

/** Every node reachable through dependents from `key` (not including it). */
export function transitiveDependents(wf: CompiledWorkflow, key: string): string[] {
  const out = new Set<string>();
  const stack = [...(wf.nodes.get(key)?.dependents ?? [])];
  while (stack.length) {
    const k = stack.pop()!;
    if (out.has(k)) continue;
    out.add(k);
    stack.push(...(wf.nodes.get(k)?.dependents ?? []));
  }
  return [...out];
}
