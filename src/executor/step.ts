/**
 * What a runtime sees of one node attempt, and what it may return or throw.
 */
import type { JsonObject } from "../domain/context.js";
import type { CompiledNode } from "../domain/compiled-workflow.js";
import type { ErrorClass } from "../domain/retry-policy.js";
import type { Executor } from "../db/database.js";

export interface Step {
  runId: string;
  organizationId: string;
  /** The run's team, and who started it: the attribution of the step's provider calls. */
  teamId?: string | null;
  principalId?: string | null;
  apiKeyId?: string | null;
  node: CompiledNode;
  attempt: number;
  inputs: JsonObject;
  /**
   * What the node reads of the run's context: the paths its input bindings name — all of
   * it for a node with a condition, `workflow.validate_context` without `inputs.value`, or
   * a `$context` binding (db/run-context.ts `readStepContext`).
   */
  context: JsonObject;
  config: JsonObject;
  /** Aborted on timeout, cancellation, lost lease or shutdown; runtimes must pass it on. */
  signal: AbortSignal;
  db: Executor;
  /** Reports progress (a `workflow.node.progress` event); resolves when it is written. */
  progress(payload: JsonObject): Promise<void>;
}

export type StepResult = { output: JsonObject } | { wait: { timeoutMs: number | null } };

export interface Runtime {
  execute(step: Step): Promise<StepResult>;
}

/** A failure a runtime reports on purpose, with its retry class. */
export class StepError extends Error {
  override readonly name = "StepError";
  constructor(
    readonly code: string,
    message: string,
    readonly errorClass: ErrorClass,
  ) {
    super(message);
  }
}

export const invalidInput = (message: string) => new StepError("invalid_input", message, "invalid_input");
