import { expect } from "vitest";
import { ProviderError } from "../../src/providers/errors.js";
import type { GenerateResult, StreamChunk } from "../../src/providers/provider.js";

export async function collectStream(iter: AsyncIterable<StreamChunk>): Promise<{ deltas: string[]; result: GenerateResult }> {
  const deltas: string[] = [];
  let result: GenerateResult | undefined;
  for await (const c of iter) {
    if (c.type === "delta") deltas.push(c.text);
    else result = c.result;
  }
  if (!result) throw new Error("stream ended without done");
  return { deltas, result };
}

/** Drains a stream, returning the deltas seen before it failed and the error it failed with. */
export async function streamFailure(iter: AsyncIterable<StreamChunk>): Promise<{ deltas: string[]; error: ProviderError }> {
  const deltas: string[] = [];
  try {
    for await (const c of iter) if (c.type === "delta") deltas.push(c.text);
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return { deltas, error: err as ProviderError };
  }
  throw new Error("stream did not fail");
}

export async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error("expected the call to fail");
}

/** Waits until `cond` holds; the ceiling only ends a wait that would never finish. */
export async function waitFor(cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error("waitFor timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** ceil(chars / 4), the echo/fake token rule. */
export const tokens = (...parts: string[]) => Math.ceil(parts.reduce((n, p) => n + p.length, 0) / 4);
