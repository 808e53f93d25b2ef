/**
 * Workflow spec validation: everything is checked before anything is stored or run,
 * and every problem is reported (not just the first), each with a JSON pointer.
 */
import type { NodeSpec, WorkflowSpec } from "../../gen/proto/fabric/v1/workflow_pb.js";
import type { Issue } from "./errors.js";
import { isBindingLike, mergePolicies, parseBinding } from "./context.js";
import { conditionIssues } from "./node-condition.js";
import { nodeOperations, textOps } from "./node-operations.js";

export const limits = {
  maxNodes: 500,
  maxDependencies: 100,
  maxSpecBytes: 256 * 1024,
  maxAttempts: 20,
  maxTimeoutMs: 24 * 3600 * 1000,
} as const;

export const retryClasses = ["timeout", "transient", "lease_expired", "error"] as const;

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Names starting with `fabric.` (any case) belong to Fabric's built-in definitions (e.g.
 * the jobs' `fabric.job.text`): users may not upsert or validate workflows named so.
 */
export const reservedNamePrefix = "fabric.";
export const isReservedWorkflowName = (name: string) => name.toLowerCase().startsWith(reservedNamePrefix);
const keyPattern = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/** `allowReservedName`: only for Fabric's own built-in definitions. */
export function validateWorkflowSpec(spec: WorkflowSpec, opts: { allowReservedName?: boolean } = {}): Issue[] {
  const issues: Issue[] = [];
  const add = (path: string, code: string, message: string) => issues.push({ path, code, message });

  if (!spec.name) add("/name", "required", "name is required");
  else if (!namePattern.test(spec.name)) add("/name", "invalid_value", "name must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit");
  else if (isReservedWorkflowName(spec.name) && !opts.allowReservedName) add("/name", "reserved_name", `names starting with "${reservedNamePrefix}" are reserved for Fabric's built-in workflows`);
  if (spec.nodes.length === 0) add("/nodes", "required", "a workflow needs at least one node");
  if (spec.nodes.length > limits.maxNodes) add("/nodes", "too_large", `a workflow has at most ${limits.maxNodes} nodes`);
  if (spec.runTimeoutMs !== undefined && (spec.runTimeoutMs < 1 || spec.runTimeoutMs > limits.maxTimeoutMs)) add("/run_timeout_ms", "invalid_value", `run_timeout_ms must be within 1..${limits.maxTimeoutMs}`);

  const seen = new Map<string, number>();
  spec.nodes.forEach((node, i) => {
    const at = `/nodes/${i}`;
    if (!node.key) add(`${at}/key`, "required", "key is required");
    else if (!keyPattern.test(node.key)) add(`${at}/key`, "invalid_value", `key ${JSON.stringify(node.key)} must start with a letter and hold only letters, digits, '_' or '-' (max 64)`);
    else if (seen.has(node.key)) add(`${at}/key`, "duplicate_key", `duplicate node key ${JSON.stringify(node.key)} (also /nodes/${seen.get(node.key)})`);
    else seen.set(node.key, i);
    validateNode(node, at, add);
  });

  spec.nodes.forEach((node, i) => {
    const deps = new Set<string>();
    if (node.dependsOn.length > limits.maxDependencies) add(`/nodes/${i}/depends_on`, "too_large", `at most ${limits.maxDependencies} dependencies`);
    node.dependsOn.forEach((dep, j) => {
      const at = `/nodes/${i}/depends_on/${j}`;
      if (dep === node.key) add(at, "cycle", `node ${JSON.stringify(node.key)} depends on itself`);
      else if (!seen.has(dep)) add(at, "unknown_dependency", `node ${JSON.stringify(node.key)} depends on unknown node ${JSON.stringify(dep)}`);
      else if (deps.has(dep)) add(at, "duplicate_key", `dependency ${JSON.stringify(dep)} is listed twice`);
      deps.add(dep);
    });
  });

  if (!issues.some((x) => x.code === "unknown_dependency" || x.code === "duplicate_key" || x.code === "cycle")) {
    const cyclic = nodesInCycles(spec.nodes);
    if (cyclic.length) add("/nodes", "cycle", `the dependencies form a cycle through ${cyclic.map((k) => JSON.stringify(k)).join(", ")}`);
  }
  if (issues.length === 0 && new TextEncoder().encode(JSON.stringify(spec)).length > limits.maxSpecBytes) {
    add("", "too_large", `the spec is larger than ${limits.maxSpecBytes} bytes`);
  }
  return issues;
}

function validateNode(node: NodeSpec, at: string, add: (path: string, code: string, message: string) => void) {
  const op = Object.hasOwn(nodeOperations, node.operation) ? nodeOperations[node.operation] : undefined;
  if (!node.operation) add(`${at}/operation`, "required", "operation is required");
  else if (!op) add(`${at}/operation`, "unknown_operation", `unknown operation ${JSON.stringify(node.operation)}; known: ${Object.keys(nodeOperations).join(", ")}`);
  else if (node.runtime && node.runtime !== op.runtime) add(`${at}/runtime`, "invalid_value", `operation ${node.operation} runs on the ${op.runtime} runtime, not ${JSON.stringify(node.runtime)}`);

  for (const [name, value] of Object.entries(node.inputs ?? {})) {
    if (isBindingLike(value) && !parseBinding(value as string)) {
      add(`${at}/inputs/${name}`, "malformed_binding", `input ${JSON.stringify(name)}: ${JSON.stringify(value)} is not a binding like "$context.a.b" (write "$$" for a literal "$")`);
    }
  }
  for (const [field, target] of Object.entries(node.outputs)) {
    const path = parseBinding(target);
    if (!path) add(`${at}/outputs/${field}`, "malformed_binding", `output ${JSON.stringify(field)}: ${JSON.stringify(target)} is not a binding like "$context.a.b"`);
    else if (path.length === 0 && node.merge !== "deep_merge") add(`${at}/outputs/${field}`, "malformed_binding", `output ${JSON.stringify(field)}: writing the whole $context needs merge "deep_merge"`);
    if (field !== "*" && !/^[A-Za-z0-9_-]+$/.test(field)) add(`${at}/outputs/${field}`, "invalid_value", `output field ${JSON.stringify(field)} must be a field name or "*"`);
  }
  if (node.when) for (const issue of conditionIssues(node.when, `${at}/when`)) add(issue.path, issue.code, issue.message);
  if (node.merge && !(mergePolicies as readonly string[]).includes(node.merge)) add(`${at}/merge`, "invalid_value", `merge must be one of ${mergePolicies.join(", ")}`);

  const p = node.policy;
  if (p) {
    if (p.timeoutMs !== undefined && (p.timeoutMs < 1 || p.timeoutMs > limits.maxTimeoutMs)) add(`${at}/policy/timeout_ms`, "invalid_value", `timeout_ms must be within 1..${limits.maxTimeoutMs}`);
    if (p.maxAttempts !== undefined && (p.maxAttempts < 1 || p.maxAttempts > limits.maxAttempts)) add(`${at}/policy/max_attempts`, "invalid_value", `max_attempts must be within 1..${limits.maxAttempts}`);
    const b = p.backoff;
    if (b) {
      if (b.initialMs !== undefined && (b.initialMs < 0 || b.initialMs > 3_600_000)) add(`${at}/policy/backoff/initial_ms`, "invalid_value", "initial_ms must be within 0..3600000");
      if (b.maxMs !== undefined && (b.maxMs < 0 || b.maxMs > 3_600_000)) add(`${at}/policy/backoff/max_ms`, "invalid_value", "max_ms must be within 0..3600000");
      if (b.factor !== undefined && !(b.factor >= 1 && b.factor <= 10)) add(`${at}/policy/backoff/factor`, "invalid_value", "factor must be within 1..10");
      if (b.jitter !== undefined && !(b.jitter >= 0 && b.jitter <= 1)) add(`${at}/policy/backoff/jitter`, "invalid_value", "jitter must be within 0..1");
    }
    p.retryOn.forEach((c, j) => {
      if (!(retryClasses as readonly string[]).includes(c)) add(`${at}/policy/retry_on/${j}`, "invalid_value", `retry_on values are ${retryClasses.join(", ")}`);
    });
  }

  const config = node.config ?? {};
  if (node.operation === "text.transform_basic") {
    const textOp = config["op"];
    if (typeof textOp !== "string" || !(textOps as readonly string[]).includes(textOp)) add(`${at}/config/op`, "invalid_value", `config.op must be one of ${textOps.join(", ")}`);
    if (textOp === "replace") {
      // Replacement is literal (no `$&`, `$'` patterns); an empty `find` would match between every character.
      const find = config["find"];
      if (typeof find !== "string" || find === "") add(`${at}/config/find`, "invalid_value", "config.find must be a non-empty string for op replace");
      if (typeof config["replace"] !== "string") add(`${at}/config/replace`, "invalid_value", "config.replace must be a string for op replace");
    }
  }
  if (node.operation === "workflow.wait_signal" && config["timeout_ms"] !== undefined) {
    const t = config["timeout_ms"];
    if (typeof t !== "number" || !Number.isInteger(t) || t < 1 || t > limits.maxTimeoutMs) add(`${at}/config/timeout_ms`, "invalid_value", `config.timeout_ms must be an integer within 1..${limits.maxTimeoutMs}`);
  }
}

/** Kahn's algorithm; returns the keys of nodes left on a cycle (empty for a DAG). */
export function nodesInCycles(nodes: readonly NodeSpec[]): string[] {
  const remaining = new Map(nodes.map((n) => [n.key, n.dependsOn.length]));
  const dependents = new Map<string, string[]>();
  for (const n of nodes) for (const d of n.dependsOn) dependents.set(d, [...(dependents.get(d) ?? []), n.key]);
  const queue = nodes.filter((n) => n.dependsOn.length === 0).map((n) => n.key);
  while (queue.length) {
    const k = queue.pop()!;
    remaining.delete(k);
    for (const d of dependents.get(k) ?? []) {
      const left = remaining.get(d)! - 1;
      remaining.set(d, left);
      if (left === 0) queue.push(d);
    }
  }
  return [...remaining.keys()];
}

/** Keys of the nodes that depend on each node. */
export function dependentsOf(nodes: readonly NodeSpec[]): Map<string, string[]> {
  const out = new Map<string, string[]>(nodes.map((n) => [n.key, []]));
  for (const n of nodes) for (const d of n.dependsOn) out.get(d)!.push(n.key);
  return out;
}
