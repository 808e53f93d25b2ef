/**
 * The closed catalogue of node operations. Validation rejects anything else, and the
 * executor dispatches on `runtime`.
 */
export type Runtime = "native" | "provider";

export interface NodeOperationInfo {
  runtime: Runtime;
  description: string;
}

export const nodeOperations: Readonly<Record<string, NodeOperationInfo>> = {
  "workflow.noop": { runtime: "native", description: "Outputs its inputs unchanged." },
  "workflow.merge_context": { runtime: "native", description: "Outputs `config.values` merged with its inputs; bind with `*`." },
  "workflow.validate_context": { runtime: "native", description: "Checks the context (or `inputs.value`) against the JSON Schema in `config.schema`." },
  "workflow.fan_in": { runtime: "native", description: "Collects the outputs of its dependencies: `{items: [...], by_key: {...}}`." },
  "workflow.wait_signal": { runtime: "native", description: "Waits for a signal (SignalRun); its payload is the output. `config.timeout_ms` bounds the wait." },
  "text.transform_basic": { runtime: "native", description: "`config.op`: upper | lower | trim | template | prefix | suffix | replace | length." },
  "ai.generate": { runtime: "provider", description: "Text generation: `inputs.prompt` (or `inputs.messages`); `config.provider`, `config.model`, `config.max_tokens`." },
  "ai.embed": { runtime: "provider", description: "Embeddings of `inputs.input` (a string or list of strings)." },
};

export const textOps = ["upper", "lower", "trim", "template", "prefix", "suffix", "replace", "length"] as const;
