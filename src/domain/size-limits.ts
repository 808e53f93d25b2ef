/**
 * Hard size limits on what a run produces, so that one small request cannot make a
 * shared executor (or the database, or a reader of the run) hold unbounded data. Each
 * limit is enforced where the data is produced (the executor's runtimes, the run
 * service) and checked again where it is stored (`db/complete-nodes.ts`,
 * `db/events.ts`). Configured by `FABRIC_MAX_*_BYTES` (config.ts); sizes are bytes of
 * the value's JSON text in UTF-8.
 */
export interface SizeLimits {
  /** One node's output (`FABRIC_MAX_NODE_OUTPUT_BYTES`). */
  nodeOutputBytes: number;
  /**
   * A run's context after a node's outputs are bound into it (`FABRIC_MAX_RUN_CONTEXT_BYTES`),
   * counted as the starting context plus every value bound (and its target), a value
   * replaced later included: what the run stores (db/run-context.ts), and never less than
   * the context's own size.
   */
  runContextBytes: number;
  /** One event's payload (`FABRIC_MAX_EVENT_PAYLOAD_BYTES`); a `workflow.node.completed` carries the output. */
  eventPayloadBytes: number;
  /** A run's input (`FABRIC_MAX_RUN_INPUT_BYTES`). */
  runInputBytes: number;
  /** The text a `text.transform_basic` operation produces (`FABRIC_MAX_TEXT_OUTPUT_BYTES`). */
  textOutputBytes: number;
}

export const defaultSizeLimits: SizeLimits = {
  nodeOutputBytes: 1 << 20,
  runContextBytes: 4 << 20,
  eventPayloadBytes: (1 << 20) + (64 << 10),
  runInputBytes: 256 << 10,
  textOutputBytes: 1 << 20,
};

/** The stable, non-retryable code of a node failed for producing too much. */
export const outputTooLargeCode = "output_too_large";

/** Bytes of `value`'s JSON text in UTF-8. */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? "", "utf8");
}

/** Thrown where a size is checked at storage; carries the stable code. */
export class SizeLimitError extends Error {
  override readonly name = "SizeLimitError";
  readonly code = outputTooLargeCode;
  constructor(
    readonly what: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`${what} is ${bytes} bytes, over the limit of ${limit} bytes`);
  }
}
