/**
 * What budgets have committed so far, for showing and estimating (GetBudget, EstimateCost).
 * A plain read without locks: the answer is advice, a snapshot that a concurrent reservation
 * may change at once. Only the reservation itself (`reserve` in usage.ts) decides whether a
 * call fits, under the ledger row's lock.
 */
import { sql } from "drizzle-orm";
import { query, type Executor } from "./database.js";
import type { LedgerKey } from "./usage.js";

/** The committed nano-USD of each ledger row in `keys`, in the same order; 0 for a row not written yet. */
export async function committedNanoUsd(ex: Executor, keys: readonly LedgerKey[]): Promise<number[]> {
  if (keys.length === 0) return [];
  const rows = await query<{ scope_key: string; period: string; period_start: string; committed: number }>(
    ex,
    sql`SELECT scope_key, period, period_start, committed_nano_usd::float8 AS committed FROM budget_ledger
        WHERE (scope_key, period, period_start) IN (${sql.join(
          keys.map((k) => sql`(${k.scopeKey}, ${k.period}, ${k.periodStart})`),
          sql`, `,
        )})`,
  );
  return keys.map((k) => Number(rows.find((r) => r.scope_key === k.scopeKey && r.period === k.period && r.period_start === k.periodStart)?.committed ?? 0));
}
