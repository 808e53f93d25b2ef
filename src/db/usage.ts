/**
 * Usage records, budget reservations and rate-limit counters: the statements of the one
 * path every provider call takes (gateway/provider-gateway.ts).
 *
 * Locking: a reservation charges its estimate to every applicable ledger row in one
 * transaction, in `compareCharges` order, each with a conditional upsert that adds the
 * estimate only while the committed total stays within the limit. The upsert locks the row,
 * so concurrent reservations on one budget serialize there and can never overshoot it; a
 * refusal rolls back what the transaction charged so far. Settlement adjusts the same rows
 * (locked in the same order, one statement) by `actual − estimate`. Nothing else locks
 * ledger rows, so there is no deadlock.
 */
import { sql, type SQL } from "drizzle-orm";
import { compareCharges, type Charge, type ScopeRules } from "../domain/policy.js";
import type { PriceOverrides } from "../domain/pricing.js";
import { query, type Db, type Executor } from "./database.js";
import { emitEvents } from "./events.js";
import type { UsageStatus } from "./schema.js";

export interface Attribution {
  organizationId: string;
  teamId: string | null;
  principalId: string | null;
  apiKeyId: string | null;
  runId: string | null;
  nodeKey: string | null;
}

export interface UsageFacts {
  provider: string;
  model: string;
  operation: string;
  priceTable: string;
  estimatedNanoUsd: number | null;
}

export interface Settlement {
  status: Exclude<UsageStatus, "reserved">;
  /** The provider and model that answered (or were tried last): a fallback differs from the reserved first choice. */
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  cacheWriteTokens: number;
  /** Null: not known (unpriced, or an attempt that may have been billed produced no usage). */
  actualNanoUsd: number | null;
  /** Keep the reservation charged at its estimate (an attempt may have been billed for an unknown amount). */
  keepEstimate?: boolean;
  errorCode: string | null;
  latencyMs: number;
}

/** One ledger row's key. */
export type LedgerKey = Pick<Charge, "scopeKey" | "period" | "periodStart">;

/** The organization's and (when given) the team's rules, organization first, plus the organization's price overrides. */
export async function loadScopeRules(ex: Executor, organizationId: string, teamId: string | null): Promise<{ rules: ScopeRules[]; priceOverrides: PriceOverrides | undefined }> {
  const orgKey = `org:${organizationId}`;
  const keys = teamId ? [orgKey, `team:${teamId}`] : [orgKey];
  const rows = await query<any>(
    ex,
    sql`SELECT scope_key, allowed_providers, allowed_models, max_run_cost_nano_usd::float8 AS max_run, requests_per_minute_per_key AS rpm,
               daily_limit_nano_usd::float8 AS daily, monthly_limit_nano_usd::float8 AS monthly, price_overrides
        FROM policies WHERE scope_key IN (${sql.join(
          keys.map((k) => sql`${k}`),
          sql`, `,
        )}) AND organization_id = ${organizationId}`,
  );
  rows.sort((a, b) => keys.indexOf(a.scope_key) - keys.indexOf(b.scope_key));
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  const rules = rows.map(
    (r): ScopeRules => ({
      scope: r.scope_key === orgKey ? "organization" : "team",
      scopeKey: r.scope_key,
      allowedProviders: r.allowed_providers ?? [],
      allowedModels: r.allowed_models ?? [],
      maxRunCostNanoUsd: num(r.max_run),
      requestsPerMinutePerKey: num(r.rpm),
      dailyLimitNanoUsd: num(r.daily),
      monthlyLimitNanoUsd: num(r.monthly),
    }),
  );
  const org = rows.find((r) => r.scope_key === orgKey);
  return { rules, priceOverrides: (org?.price_overrides as PriceOverrides | null) ?? undefined };
}

export type Reservation = { ok: true; id: number } | { ok: false; charge: Charge; committedNanoUsd: number };

/**
 * Charges `estimate` to every ledger in `charges` and inserts the `reserved` usage record,
 * atomically; or refuses, naming the first budget the estimate does not fit.
 *
 * One statement (inside a transaction, so a refusal can be rolled back): a multi-row
 * upsert in lock order whose update only applies while `committed + estimate ≤ limit`
 * (the gateway never reserves a free call), then the record, inserted only when every ledger took the
 * estimate. A row the upsert creates takes the estimate unconditionally, so its limit is
 * checked on what it returns. Any ledger missing from the result refused: roll back.
 */
export async function reserve(db: Db, args: { attribution: Attribution; facts: UsageFacts; charges: readonly Charge[]; estimateNanoUsd: number }): Promise<Reservation> {
  const charges = [...args.charges].sort(compareCharges);
  const est = args.estimateNanoUsd;
  const rows = charges.map((c) => sql`(${c.scopeKey}, ${c.period}, ${c.periodStart}, ${est}::bigint, ${c.limitNanoUsd}::bigint)`);
  const refused = new RefusedCharge();
  try {
    return await db.transaction(async (tx) => {
      const [r] = await query<{ taken: number; fits: boolean; id: number | null }>(
        tx,
        sql`WITH up AS (
              INSERT INTO budget_ledger (scope_key, period, period_start, committed_nano_usd, limit_nano_usd)
              VALUES ${sql.join(rows, sql`, `)}
              ON CONFLICT (scope_key, period, period_start) DO UPDATE
                SET committed_nano_usd = budget_ledger.committed_nano_usd + excluded.committed_nano_usd, limit_nano_usd = excluded.limit_nano_usd
                WHERE budget_ledger.committed_nano_usd + excluded.committed_nano_usd <= excluded.limit_nano_usd
              RETURNING committed_nano_usd, limit_nano_usd
            ), verdict AS (
              SELECT count(*) AS taken, coalesce(bool_and(committed_nano_usd <= limit_nano_usd), true) AS fits FROM up
            ), rec AS (
              ${insertRecord(args.attribution, args.facts, "reserved", null, charges, sql`FROM verdict WHERE verdict.fits AND verdict.taken = ${charges.length}`)}
            )
            SELECT verdict.taken::int AS taken, verdict.fits, (SELECT id FROM rec) AS id FROM verdict`,
      );
      if (r && r.id !== null && r.id !== undefined) return { ok: true as const, id: Number(r.id) };
      throw refused; // rolls back what the statement charged
    });
  } catch (err) {
    if (err !== refused) throw err;
  }
  // Which budget refused (for the message and the event): the first whose room is too small now.
  const current = await committedNanoUsd(db, charges);
  const i = Math.max(0, charges.findIndex((c, j) => current[j]! + est > c.limitNanoUsd));
  return { ok: false, charge: charges[i]!, committedNanoUsd: current[i]! };
}

class RefusedCharge {}

/** Settles a reservation: the record gets its outcome, the ledgers `actual − estimate` (the estimate stays charged when the actual is unknown). */
export async function settle(ex: Executor, args: { id: number; charges: readonly Charge[]; estimateNanoUsd: number; settlement: Settlement }): Promise<void> {
  const s = args.settlement;
  const delta = s.actualNanoUsd === null || s.keepEstimate ? 0 : s.actualNanoUsd - args.estimateNanoUsd;
  const charges = [...args.charges].sort(compareCharges);
  const keys = charges.map((c) => sql`(${c.scopeKey}, ${c.period}, ${c.periodStart})`);
  await ex.execute(sql`
    WITH rec AS (
      UPDATE usage_records SET status = ${s.status}, provider = ${s.provider}, model = ${s.model}, input_tokens = ${s.inputTokens}, output_tokens = ${s.outputTokens},
        cached_input_tokens = ${s.cachedInputTokens}, cache_write_tokens = ${s.cacheWriteTokens}, actual_nano_usd = ${s.actualNanoUsd},
        error_code = ${s.errorCode}, latency_ms = ${s.latencyMs}, settled_at = now()
      WHERE id = ${args.id} AND status = 'reserved'
      RETURNING id
    ), locked AS (
      SELECT scope_key, period, period_start FROM budget_ledger
      WHERE ${keys.length ? sql`(scope_key, period, period_start) IN (${sql.join(keys, sql`, `)})` : sql`false`} AND ${delta}::bigint <> 0 AND EXISTS (SELECT 1 FROM rec)
      ORDER BY scope_key, period, period_start
      FOR UPDATE
    )
    UPDATE budget_ledger b SET committed_nano_usd = b.committed_nano_usd + ${delta}
    FROM locked l WHERE b.scope_key = l.scope_key AND b.period = l.period AND b.period_start = l.period_start`);
}

/**
 * A call under no budget: one record, already settled. Its cost is also added to those of
 * `ledgers` that exist (locked in the one order): a budget set while the call was in flight
 * rebased its ledger without this record, and must still count it.
 */
export async function recordSettled(ex: Executor, attribution: Attribution, facts: UsageFacts, settlement: Settlement, ledgers: readonly LedgerKey[] = []): Promise<number> {
  const cost = settlement.actualNanoUsd ?? 0;
  const keys = [...ledgers].sort(compareCharges).map((l) => sql`(${l.scopeKey}, ${l.period}, ${l.periodStart})`);
  if (cost === 0 || keys.length === 0) {
    const [row] = await query<{ id: number }>(ex, insertRecord(attribution, { ...facts, model: settlement.model }, settlement.status, settlement, null));
    return Number(row!.id);
  }
  const [row] = await query<{ id: number }>(
    ex,
    sql`WITH rec AS (${insertRecord(attribution, { ...facts, model: settlement.model }, settlement.status, settlement, null)}),
        locked AS (
          SELECT scope_key, period, period_start FROM budget_ledger WHERE (scope_key, period, period_start) IN (${sql.join(keys, sql`, `)})
          ORDER BY scope_key, period, period_start FOR UPDATE
        ), added AS (
          UPDATE budget_ledger b SET committed_nano_usd = b.committed_nano_usd + ${cost}::bigint
          FROM locked l WHERE b.scope_key = l.scope_key AND b.period = l.period AND b.period_start = l.period_start
        )
        SELECT id FROM rec`,
  );
  return Number(row!.id);
}

/** The record's INSERT; `from` (e.g. `FROM verdict WHERE …`) makes it conditional on a preceding CTE. */
function insertRecord(a: Attribution, f: UsageFacts, status: UsageStatus, s: Settlement | null, charges: readonly Charge[] | null, from?: SQL) {
  const chargesJson = charges ? JSON.stringify(charges.map((c) => ({ scope_key: c.scopeKey, period: c.period, period_start: c.periodStart }))) : null;
  const values = sql`${a.organizationId}::uuid, ${a.teamId}::uuid, ${a.principalId}::uuid, ${a.apiKeyId}::uuid, ${a.runId}::uuid, ${a.nodeKey}::text, ${f.provider}::text, ${f.model}::text, ${f.operation}::text, ${status}::text,
      ${s?.inputTokens ?? 0}::bigint, ${s?.outputTokens ?? 0}::bigint, ${s?.cachedInputTokens ?? 0}::bigint, ${s?.cacheWriteTokens ?? 0}::bigint, ${f.estimatedNanoUsd}::bigint, ${s?.actualNanoUsd ?? null}::bigint,
      ${f.priceTable}::text, ${chargesJson}::jsonb, ${s?.errorCode ?? null}::text, ${s?.latencyMs ?? 0}::int, ${s ? sql`now()` : sql`NULL::timestamptz`}`;
  return sql`INSERT INTO usage_records (organization_id, team_id, principal_id, api_key_id, run_id, node_key, provider, model, operation, status,
      input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, estimated_nano_usd, actual_nano_usd, price_table, charges, error_code, latency_ms, settled_at)
    ${from ? sql`SELECT ${values} ${from}` : sql`VALUES (${values})`}
    RETURNING id::float8 AS id`;
}

/**
 * Marks the first refusal of a budget period and emits `budget.exceeded` with it, once per
 * ledger row (later refusals in the same period change nothing).
 */
export async function markExceeded(db: Db, args: { organizationId: string; charge: Charge; estimateNanoUsd: number; committedNanoUsd: number }): Promise<void> {
  const c = args.charge;
  await db.transaction(async (tx) => {
    const rows = await query(
      tx,
      sql`INSERT INTO budget_ledger (scope_key, period, period_start, exceeded_at) VALUES (${c.scopeKey}, ${c.period}, ${c.periodStart}, now())
          ON CONFLICT (scope_key, period, period_start) DO UPDATE SET exceeded_at = now() WHERE budget_ledger.exceeded_at IS NULL
          RETURNING 1`,
    );
    if (rows.length === 0) return;
    const [scope, id] = c.scopeKey.split(":") as [string, string];
    await emitEvents(tx, [
      {
        organizationId: args.organizationId,
        runId: scope === "run" ? id : null,
        kind: "budget.exceeded",
        payload: {
          scope: scope === "org" ? "organization" : scope,
          ...(scope === "team" ? { team_id: id } : {}),
          period: c.period,
          period_start: c.periodStart,
          // 64-bit integers as the API writes them: decimal strings (docs/contracts.md).
          limit_nano_usd: String(c.limitNanoUsd),
          committed_nano_usd: String(args.committedNanoUsd),
          refused_estimate_nano_usd: String(args.estimateNanoUsd),
          budget: c.label,
        },
      },
    ]);
  });
}

/**
 * Sets a budget's ledger rows for the current periods to what the scope has actually
 * committed in them (settled costs, and estimates of calls in flight), so a budget set or
 * raised mid-period counts what was spent before it existed. Locks the rows first: a
 * reservation racing with it waits, and the sum (a later statement, so a fresh snapshot
 * under READ COMMITTED) sees every reservation committed before the lock.
 */
export async function rebaseLedgers(
  tx: Executor,
  args: { organizationId: string; teamId: string | null; scopeKey: string; periods: readonly { period: "day" | "month"; start: string; startAt: Date; resetAt: Date }[] },
): Promise<void> {
  for (const p of args.periods) {
    await tx.execute(sql`INSERT INTO budget_ledger (scope_key, period, period_start) VALUES (${args.scopeKey}, ${p.period}, ${p.start}) ON CONFLICT DO NOTHING`);
    await tx.execute(sql`SELECT 1 FROM budget_ledger WHERE scope_key = ${args.scopeKey} AND period = ${p.period} AND period_start = ${p.start} FOR UPDATE`);
    await tx.execute(sql`
      UPDATE budget_ledger SET committed_nano_usd = (
        SELECT coalesce(sum(CASE WHEN status = 'reserved' THEN estimated_nano_usd ELSE coalesce(actual_nano_usd, estimated_nano_usd, 0) END), 0)
        FROM usage_records
        WHERE organization_id = ${args.organizationId} ${args.teamId ? sql`AND team_id = ${args.teamId}` : sql``}
          AND created_at >= ${p.startAt.toISOString()}::timestamptz AND created_at < ${p.resetAt.toISOString()}::timestamptz
      )
      WHERE scope_key = ${args.scopeKey} AND period = ${p.period} AND period_start = ${p.start}`);
  }
}

/**
 * What budgets have committed so far — for showing and estimating (GetBudget, EstimateCost)
 * and for naming the budget that refused a reservation. A plain read without locks: the
 * answer is a snapshot that a concurrent reservation may change at once; only `reserve`
 * decides whether a call fits, under the ledger row's lock. The committed nano-USD of each
 * ledger row in `keys`, in the same order; 0 for a row not written yet.
 */
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
