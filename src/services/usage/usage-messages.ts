/**
 * Usage rows → the generated `UsageRecord` / `UsageGroup` messages (proto/fabric/v1/usage.proto),
 * shared by the services that report usage (JobService's GetJobUsage, UsageService).
 *
 * Conventions: ids are strings (empty when absent), token counts are int64 (BigInt), money
 * is an exact decimal USD string made from integer nano-dollars with `formatUsd`.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { TokenUsageSchema, type TokenUsage } from "../../../gen/proto/fabric/v1/providers_pb.js";
import { UsageGroupSchema, UsageRecordSchema, type UsageGroup, type UsageRecord } from "../../../gen/proto/fabric/v1/usage_pb.js";
import type { usageRecords } from "../../db/schema.js";
import { formatUsd } from "../../domain/pricing.js";

export type UsageRow = typeof usageRecords.$inferSelect;

/** A count or sum as a driver returns it: a number, a bigint, or a numeric string (Postgres `sum(bigint)`). */
export type Amount = number | bigint | string | null | undefined;

const int64 = (v: Amount): bigint => (v === null || v === undefined || v === "" ? 0n : typeof v === "bigint" ? v : BigInt(typeof v === "number" ? Math.trunc(v) : v));
/** Nano-dollars → exact decimal USD (`formatUsd`; beyond 2^53 nano-dollars, the same format from the bigint). */
function usd(v: Amount): string {
  const n = int64(v);
  if (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)) return formatUsd(Number(n));
  const abs = n < 0n ? -n : n;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, "0").replace(/0+$/, "");
  return `${n < 0n ? "-" : ""}${abs / 1_000_000_000n}${frac ? `.${frac}` : ""}`;
}

function tokenUsage(t: { inputTokens?: Amount; outputTokens?: Amount; cachedInputTokens?: Amount; cacheWriteTokens?: Amount }): TokenUsage {
  return create(TokenUsageSchema, { inputTokens: int64(t.inputTokens), outputTokens: int64(t.outputTokens), cachedInputTokens: int64(t.cachedInputTokens), cacheWriteTokens: int64(t.cacheWriteTokens) });
}

/** One `usage_records` row as a `UsageRecord`: unpriced amounts (null) are empty strings. */
export function usageRecordMessage(row: UsageRow): UsageRecord {
  return create(UsageRecordSchema, {
    id: String(row.id),
    organizationId: row.organizationId,
    teamId: row.teamId ?? "",
    principalId: row.principalId ?? "",
    apiKeyId: row.apiKeyId ?? "",
    runId: row.runId ?? "",
    nodeKey: row.nodeKey ?? "",
    provider: row.provider,
    model: row.model,
    operation: row.operation,
    status: row.status,
    usage: tokenUsage(row),
    estimatedUsd: row.estimatedNanoUsd === null ? "" : usd(row.estimatedNanoUsd),
    actualUsd: row.actualNanoUsd === null ? "" : usd(row.actualNanoUsd),
    priceTable: row.priceTable,
    errorCode: row.errorCode ?? "",
    latencyMs: row.latencyMs,
    createTime: timestampFromDate(row.createdAt),
    settleTime: row.settledAt ? timestampFromDate(row.settledAt) : undefined,
  });
}

/** What a `UsageGroup` says: its grouping keys (only those grouped by; others omitted) and its sums. */
export interface UsageGroupFields {
  teamId?: string | null;
  principalId?: string | null;
  apiKeyId?: string | null;
  runId?: string | null;
  provider?: string | null;
  model?: string | null;
  operation?: string | null;
  /** UTC day, `YYYY-MM-DD`. */
  day?: string | null;
  calls: Amount;
  failedCalls: Amount;
  inputTokens: Amount;
  outputTokens: Amount;
  cachedInputTokens: Amount;
  cacheWriteTokens: Amount;
  /** Settled cost: the actual nano-dollars of the records that are not `reserved`. */
  costNanoUsd: Amount;
  /** The estimates (nano-dollars) of the records still `reserved`. */
  reservedNanoUsd: Amount;
}

export function usageGroupMessage(f: UsageGroupFields): UsageGroup {
  return create(UsageGroupSchema, {
    teamId: f.teamId ?? "",
    principalId: f.principalId ?? "",
    apiKeyId: f.apiKeyId ?? "",
    runId: f.runId ?? "",
    provider: f.provider ?? "",
    model: f.model ?? "",
    operation: f.operation ?? "",
    day: f.day ?? "",
    calls: int64(f.calls),
    failedCalls: int64(f.failedCalls),
    usage: tokenUsage(f),
    costUsd: usd(f.costNanoUsd),
    reservedUsd: usd(f.reservedNanoUsd),
  });
}

/** The sums of `usageGroupMessage` over rows already loaded (no grouping keys): e.g. one job's records. */
export function usageTotals(rows: readonly UsageRow[]): UsageGroupFields {
  const t = { calls: rows.length, failedCalls: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0, costNanoUsd: 0, reservedNanoUsd: 0 };
  for (const r of rows) {
    if (r.status === "failed") t.failedCalls++;
    t.inputTokens += r.inputTokens;
    t.outputTokens += r.outputTokens;
    t.cachedInputTokens += r.cachedInputTokens;
    t.cacheWriteTokens += r.cacheWriteTokens;
    if (r.status === "reserved") t.reservedNanoUsd += r.estimatedNanoUsd ?? 0;
    else t.costNanoUsd += r.actualNanoUsd ?? 0;
  }
  return t;
}
