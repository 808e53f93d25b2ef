/**
 * The provider runtime: `ai.generate` and `ai.embed` nodes call providers through the same
 * gateway as the API (src/gateway): the organization's and the run's team's policy and
 * budgets apply, the estimate is reserved against a budget (and the run's cost cap) before
 * the call, and every call leaves a usage record attributed to the run's organization,
 * team, starter (principal, API key), run and node. The step's signal reaches the provider
 * request, so a timeout or cancel really aborts it.
 *
 * Settings come from the node's `config` (`provider`, `model`, `strategy`, `tier`,
 * `max_tokens`, `temperature`, `stream`, and `system`), overridden by a `params` input when
 * the node binds one (jobs do), and are checked by the rule the API and jobs apply too
 * (domain/provider-call.ts); a bad one fails the step as `invalid_input`. The output
 * carries `routing` (strategy, the provider/model that answered, every attempt, the
 * router's one-line explanation) and `cost` (estimate and actual as exact decimal USD
 * strings; null with a reason when the model has no price).
 *
 * Failures: a policy refusal (`budget_exceeded`, `model_not_allowed`, …) fails the node
 * without retries; a retryable provider failure after every candidate is `transient` (the
 * node's retry policy decides); invalid_request / auth are `invalid_input`. A stream that
 * already produced text is never failed over (its progress events published that text).
 */
import type { Json, JsonObject } from "../domain/context.js";
import { DomainError } from "../domain/errors.js";
import type { Cost } from "../domain/pricing.js";
import { parseProviderCallSettings, type ChatMessage, type ProviderCallRequest } from "../domain/provider-call.js";
import { ProviderCallError, type CallResult, type ProviderGateway } from "../gateway/index.js";
import { invalidInput, StepError, type Runtime, type Step } from "./step.js";

type Operation = "ai.generate" | "ai.embed";

export interface ProviderRuntimeOptions {
  /** Progress flush interval for streamed generations. Default 200 ms. */
  progressEveryMs?: number;
}

export function createProviderRuntime(gateway: ProviderGateway, options: ProviderRuntimeOptions = {}): Runtime {
  const progressEveryMs = options.progressEveryMs ?? 200;
  return {
    async execute(step) {
      const op = step.node.spec.operation as Operation;
      const { request, stream } = parseCall(step, op);
      const progress = stream ? progressWriter(step, progressEveryMs) : undefined;
      let result: CallResult;
      try {
        result = await gateway.call({
          request,
          attribution: { organizationId: step.organizationId, teamId: step.teamId ?? null, principalId: step.principalId ?? null, apiKeyId: step.apiKeyId ?? null, runId: step.runId, nodeKey: step.node.spec.key },
          signal: step.signal,
          stream,
          ...(progress ? { onDelta: progress.push } : {}),
        });
      } catch (err) {
        throw stepErrorOf(err);
      } finally {
        await progress?.close();
      }
      return { output: outputOf(result) };
    },
  };
}

function outputOf(r: CallResult): JsonObject {
  const output: JsonObject = r.embed
    ? { embeddings: r.embed.embeddings, model: r.model, provider: r.provider, usage: usageJson(r.usage) }
    : { text: r.generate!.text, model: r.model, provider: r.provider, usage: usageJson(r.usage) };
  if (r.generate?.finishReason) output["finish_reason"] = r.generate.finishReason;
  output["routing"] = { strategy: r.decision.explanation.strategy, provider: r.provider, model: r.model, attempts: r.attempts as unknown as Json, why: r.decision.explanation.why };
  output["cost"] = costJson(r.estimate, r.actual, r.priceTable);
  output["usage_record_id"] = String(r.usageRecordId);
  return output;
}

function stepErrorOf(err: unknown): unknown {
  if (err instanceof ProviderCallError) {
    const e = err.providerError;
    if (err.afterStreamBegan && e.retryable) return new StepError(`provider_${e.errorClass}`, `${err.message} (after the stream began; not failed over)`, "transient");
    const cls = e.errorClass === "invalid_request" || e.errorClass === "auth" ? "invalid_input" : e.errorClass === "timeout" ? "timeout" : e.errorClass === "aborted" ? "cancelled" : "transient";
    return new StepError(`provider_${e.errorClass}`, err.message, cls);
  }
  if (err instanceof DomainError) {
    const code = err.options.code ?? err.kind;
    return new StepError(code, err.message, err.kind === "unavailable" ? "transient" : "invalid_input");
  }
  return err;
}

/** The effective settings: `config`, overridden field by field by a `params` input object. */
function settingsOf(step: Step): JsonObject {
  const params = step.inputs["params"];
  if (params === undefined || params === null) return step.config;
  if (typeof params !== "object" || Array.isArray(params)) throw invalidInput("inputs.params must be an object");
  return { ...step.config, ...(params as JsonObject) };
}

export function parseCall(step: Step, op: Operation): { request: ProviderCallRequest; stream: boolean } {
  const cfg = settingsOf(step);
  // The settings by the one rule of every call path; the first problem fails the step.
  const { settings, issues } = parseProviderCallSettings(cfg, op);
  if (issues.length) throw invalidInput(`config.${issues[0]!.message}`);
  const { maxTokens, temperature, stream, ...routing } = settings;
  const base: ProviderCallRequest = { operation: op, ...routing };
  if (op === "ai.embed") {
    const input = step.inputs["input"];
    const texts = typeof input === "string" ? [input] : Array.isArray(input) && input.every((x) => typeof x === "string") ? (input as string[]) : null;
    if (!texts) throw invalidInput("inputs.input must be a string or a list of strings");
    return { request: { ...base, texts }, stream: false };
  }
  const prompt = step.inputs["prompt"];
  const messages = step.inputs["messages"];
  if (typeof prompt !== "string" && !Array.isArray(messages)) throw invalidInput("inputs.prompt (a string) or inputs.messages (a list) is required");
  if (Array.isArray(messages) && !messages.every((m) => isChatMessage(m))) throw invalidInput("inputs.messages must be a list of {role: system|user|assistant, content: string}");
  const system = step.inputs["system"] ?? cfg["system"];
  if (system !== undefined && typeof system !== "string") throw invalidInput("config.system must be a string");
  const request: ProviderCallRequest = { ...base };
  if (Array.isArray(messages)) request.messages = messages as unknown as ChatMessage[];
  else request.prompt = prompt as string;
  if (system !== undefined) request.system = system;
  if (maxTokens !== undefined) request.maxTokens = maxTokens;
  if (temperature !== undefined) request.temperature = temperature;
  return { request, stream: stream !== false };
}

function isChatMessage(m: unknown): boolean {
  if (!m || typeof m !== "object" || Array.isArray(m)) return false;
  const { role, content } = m as Record<string, unknown>;
  return (role === "system" || role === "user" || role === "assistant") && typeof content === "string";
}

function costJson(estimate: Cost, actual: Cost | { status: "error"; reason: string }, priceTable: string): JsonObject {
  const out: JsonObject = {
    estimated_usd: estimate.status === "priced" ? estimate.usd : null,
    actual_usd: actual.status === "priced" ? actual.usd : null,
    price_table: priceTable,
  };
  if (estimate.status === "unpriced") out["estimated_unpriced_reason"] = estimate.reason;
  if (actual.status !== "priced") out["actual_unpriced_reason"] = actual.reason;
  return out;
}

/**
 * Reports streamed text as `workflow.node.progress` events at most every `everyMs`, so the
 * deltas of a node's progress events concatenate to exactly its final text. A generation
 * whose tokens all arrive within one interval reports no progress at all: its completion
 * event says everything.
 */
function progressWriter(step: Step, everyMs: number) {
  let pending = "";
  let chars = 0;
  let lastFlush = 0; // set by the first delta: waiting for the first token is not progress
  let flushed = false;
  let writing: Promise<void> = Promise.resolve();
  const flush = () => {
    if (!pending) return;
    const delta = pending;
    pending = "";
    lastFlush = Date.now();
    flushed = true;
    writing = writing.then(() => step.progress({ delta, chars }));
  };
  return {
    push(text: string) {
      if (!lastFlush) lastFlush = Date.now();
      pending += text;
      chars += text.length;
      if (Date.now() - lastFlush >= everyMs) flush();
    },
    async close() {
      if (flushed) flush();
      await writing;
    },
  };
}

/**
 * Token counts as the API writes every 64-bit integer (`TokenUsage`, int64): decimal strings,
 * so a node's `usage` reads the same as GetJobUsage's and a usage record's. Outputs stored
 * before this was so hold JSON numbers; readers take either (docs/contracts.md).
 */
function usageJson(u: { inputTokens: number; outputTokens: number; cachedInputTokens?: number; cacheWriteTokens?: number }): JsonObject {
  const out: JsonObject = { input_tokens: String(u.inputTokens), output_tokens: String(u.outputTokens) };
  if (u.cachedInputTokens !== undefined) out["cached_input_tokens"] = String(u.cachedInputTokens);
  if (u.cacheWriteTokens !== undefined) out["cache_write_tokens"] = String(u.cacheWriteTokens);
  return out;
}
