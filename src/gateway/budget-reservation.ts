/**
 * The budget half of a provider call: reserve before, settle after.
 *
 * Reserve: under a budget or a per-run cap, the largest estimate among the candidates that
 * may be tried is charged to every applicable ledger before the call (db/usage.ts `reserve`
 * explains the locking), or the call is refused (`budget_exceeded`, with Retry-After at the
 * period's end). Under a budget, unpriced candidates are left out of the fallbacks (a
 * reservation needs a price); when none is priced the call fails closed (`model_unpriced`).
 *
 * Settle: the usage record gets the tokens and actual cost, the ledgers `actual − estimate`.
 * The actual cost billed under a reservation is at most the reservation, so what a budget
 * has committed never exceeds its cap (invariant; tests/budgets/overshoot.test.ts).
 * A call under no budget writes its record once, settled. A settlement that fails (database
 * down) is logged, never turned into a failed call: the reservation keeps its estimate
 * charged, which errs on the side of the budget.
 */
import type { Db } from "../db/database.js";
import { markExceeded, recordSettled, reserve, settle, type Attribution, type LedgerKey, type Settlement } from "../db/usage.js";
import { DomainError } from "../domain/errors.js";
import { orgScopeKey, periodOf, retryAfterSeconds, teamScopeKey, type Charge } from "../domain/policy.js";
import { estimateCost, formatUsd, requirePriced, type Cost, type PriceTable } from "../domain/pricing.js";
import { inputChars, type ProviderCallRequest } from "../domain/provider-call.js";
import type { Candidate, RouteDecision } from "../domain/routing.js";
import type { Usage } from "../providers/provider.js";
import type { Prepared } from "./rules-cache.js";
import { warnDbFailure } from "../db/transient-errors.js";

type Log = { warn(msg: string, fields?: Record<string, unknown>): void };

/** What a call may try and what it holds against its budgets. */
export interface BudgetHold {
  /** The candidates the call may try, in order. */
  candidates: Candidate[];
  /** The most any of them can cost: what is reserved under a budget. */
  worst: Cost;
  /** The reservation's usage record, when a budget applied and the call was not free. */
  reservation: { id: number; estimateNanoUsd: number } | null;
}

/** Whether any budget or per-run cap applies to the call. */
export const isBudgeted = (p: Prepared) => p.rules.charges.length > 0 || p.rules.maxRunCost !== null;

/** The candidates a call under `prepared` may try: under a budget, the priced ones (else all, to fail closed on the first). */
export function candidatesToTry(decision: RouteDecision, req: ProviderCallRequest, prepared: Prepared): Candidate[] {
  if (!isBudgeted(prepared)) return decision.chosen;
  const priced = decision.chosen.filter((c) => estimateOf(c, req, prepared.prices).status === "priced");
  return priced.length > 0 ? priced : decision.chosen;
}

/** Reserves the call's worst case against every budget that applies, or refuses it. */
export async function reserveBudget(db: Db, args: { request: ProviderCallRequest; attribution: Attribution; prepared: Prepared; decision: RouteDecision }, log?: Log): Promise<BudgetHold> {
  const { request: req, attribution, prepared } = args;
  const { rules, prices } = prepared;
  const candidates = candidatesToTry(args.decision, req, prepared);
  const worst = worstEstimate(candidates, req, prices);
  if (!isBudgeted(prepared)) return { candidates, worst, reservation: null };
  const est = requirePriced(worst).totalNanoUsd;
  if (rules.maxRunCost && !attribution.runId && est > rules.maxRunCost.nanoUsd) {
    throw new DomainError("resource_exhausted", `the call's estimated cost of $${formatUsd(est)} exceeds ${scopeName(rules.maxRunCost.scope)} per-run cost cap of $${formatUsd(rules.maxRunCost.nanoUsd)}`, { code: "budget_exceeded" });
  }
  // A free call cannot overshoot anything: it is admitted even by a spent budget.
  if (rules.charges.length === 0 || est <= 0) return { candidates, worst, reservation: null };
  const first = candidates[0]!;
  const r = await reserve(db, {
    attribution,
    facts: { provider: first.provider, model: first.model, operation: req.operation, priceTable: prices.version, estimatedNanoUsd: est },
    charges: rules.charges,
    estimateNanoUsd: est,
  });
  if (!r.ok) return refuse(db, attribution, r.charge, est, r.committedNanoUsd, log);
  return { candidates, worst, reservation: { id: r.id, estimateNanoUsd: est } };
}

async function refuse(db: Db, attribution: Attribution, charge: Charge, estimateNanoUsd: number, committedNanoUsd: number, log?: Log): Promise<never> {
  await markExceeded(db, { organizationId: attribution.organizationId, charge, estimateNanoUsd, committedNanoUsd }).catch((err) => log && warnDbFailure(log, "could not record budget.exceeded", err));
  const at = new Date();
  throw new DomainError(
    "resource_exhausted",
    `the call's estimated cost of $${formatUsd(estimateNanoUsd)} does not fit ${charge.label}: $${formatUsd(committedNanoUsd)} of $${formatUsd(charge.limitNanoUsd)} is committed` +
      (charge.resetAt ? `; it resets at ${charge.resetAt.toISOString()}` : ""),
    { code: "budget_exceeded", ...(charge.resetAt ? { retryAfterSeconds: retryAfterSeconds(charge.resetAt, at) } : {}) },
  );
}

/**
 * Records what the call cost: settles the reservation, or (none held) writes the usage record
 * settled, with the estimate of the candidate that answered (or failed last). Returns the
 * usage record's id; never throws.
 */
export async function settleCall(
  db: Db,
  args: { hold: BudgetHold; request: ProviderCallRequest; attribution: Attribution; prepared: Prepared; candidate: Candidate; settlement: Settlement },
  log?: Log,
): Promise<number> {
  const { hold, request: req, attribution, prepared, candidate, settlement } = args;
  try {
    if (hold.reservation) {
      const est = hold.reservation.estimateNanoUsd;
      // Never billed beyond what was reserved: the reservation is the call's worst case
      // (output is capped at max_tokens by every adapter), so only a provider that
      // over-reports its usage gets here — and then committed ≤ cap still holds.
      const billed = settlement.actualNanoUsd !== null && settlement.actualNanoUsd > est ? { ...settlement, actualNanoUsd: est } : settlement;
      if (billed !== settlement) log?.warn("usage above the reservation billed at the reservation", { provider: settlement.provider, model: settlement.model, actual_nano_usd: settlement.actualNanoUsd, reserved_nano_usd: est });
      await settle(db, { id: hold.reservation.id, charges: prepared.rules.charges, estimateNanoUsd: est, settlement: billed });
      return hold.reservation.id;
    }
    const own = estimateOf(candidate, req, prepared.prices);
    const estimatedNanoUsd = own.status === "priced" ? own.totalNanoUsd : null;
    return await recordSettled(db, attribution, { provider: candidate.provider, model: candidate.model, operation: req.operation, priceTable: prepared.prices.version, estimatedNanoUsd }, settlement, ledgersOf(attribution));
  } catch (err) {
    if (log) warnDbFailure(log, "could not settle usage", err, { organization_id: attribution.organizationId, run_id: attribution.runId });
    return hold.reservation?.id ?? 0;
  }
}

/** The most any candidate that may be tried can cost (the reservation); unpriced as soon as one is. */
export function worstEstimate(candidates: readonly Candidate[], req: ProviderCallRequest, prices: PriceTable): Cost {
  let worst: Cost | undefined;
  for (const c of candidates) {
    const e = estimateOf(c, req, prices);
    if (e.status === "unpriced") return e;
    if (!worst || (worst.status === "priced" && e.totalNanoUsd > worst.totalNanoUsd)) worst = e;
  }
  return worst!;
}

export function estimateOf(c: Candidate, req: ProviderCallRequest, prices: PriceTable): Cost {
  return estimateCost({ provider: c.provider, model: c.model, operation: req.operation, inputChars: inputChars(req), ...(req.maxTokens !== undefined ? { maxOutputTokens: req.maxTokens } : {}) }, prices);
}

const scopeName = (s: "organization" | "team") => (s === "organization" ? "the organization's" : "the team's");

/**
 * The ledgers (current day and month of the organization and the team) a call under no
 * budget adds its cost to when they exist: a budget set while the call was in flight (its
 * rebase could not see the call's record yet) then still counts it.
 */
function ledgersOf(a: Attribution, at = new Date()): LedgerKey[] {
  const day = periodOf("day", at).start;
  const month = periodOf("month", at).start;
  const scopes = [orgScopeKey(a.organizationId), ...(a.teamId ? [teamScopeKey(a.teamId)] : [])];
  return scopes.flatMap((scopeKey) => [
    { scopeKey, period: "day" as const, periodStart: day },
    { scopeKey, period: "month" as const, periodStart: month },
  ]);
}

/** A call that answered: the tokens it used and what they cost (null when unpriced). */
export function succeededSettlement(c: { provider: string; model: string }, usage: Usage, actual: Cost | { status: "error" }, latencyMs: number, maybeBilled: boolean): Settlement {
  return {
    status: "succeeded",
    provider: c.provider,
    model: c.model,
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    cachedInputTokens: usage.cachedInputTokens ?? 0,
    cacheWriteTokens: usage.cacheWriteTokens ?? 0,
    actualNanoUsd: actual.status === "priced" ? actual.totalNanoUsd : null,
    keepEstimate: maybeBilled,
    errorCode: null,
    latencyMs: Math.round(latencyMs),
  };
}

/**
 * A failed call: released (cost 0) when no attempt can have been billed — providers do not
 * bill a refused or failed request —, else cost unknown (null) and the estimate kept.
 */
export function failedSettlement(c: Candidate, errorCode: string, latencyMs: number, maybeBilled: boolean): Settlement {
  return {
    status: "failed",
    provider: c.provider,
    model: c.model,
    inputTokens: 0,
    outputTokens: 0,
    cachedInputTokens: 0,
    cacheWriteTokens: 0,
    actualNanoUsd: maybeBilled ? null : 0,
    keepEstimate: maybeBilled,
    errorCode,
    latencyMs: Math.round(latencyMs),
  };
}
