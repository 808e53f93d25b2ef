/**
 * Spending and routing rules, and how the ones that apply to a call combine. Pure.
 *
 * A call is billed to its organization and, when it has one, to a team. Each may have a
 * policy (allowed providers/models, a per-run cost cap, a per-API-key rate limit) and a
 * budget (hard caps per UTC day and per UTC calendar month). Every applicable rule must
 * hold, so the tightest wins: allow-lists intersect (the router checks each), caps and rate
 * limits take the minimum, and the call's estimate must fit every budget.
 */
import type { RoutingPolicy } from "./routing.js";

export type Scope = "organization" | "team";

export interface ScopeRules {
  scope: Scope;
  /** `org:<id>` or `team:<id>`: the key of the policy row and of its ledgers. */
  scopeKey: string;
  allowedProviders: readonly string[];
  allowedModels: readonly string[];
  maxRunCostNanoUsd: number | null;
  requestsPerMinutePerKey: number | null;
  dailyLimitNanoUsd: number | null;
  monthlyLimitNanoUsd: number | null;
}

export const orgScopeKey = (organizationId: string) => `org:${organizationId}`;
export const teamScopeKey = (teamId: string) => `team:${teamId}`;
export const runScopeKey = (runId: string) => `run:${runId}`;

/** One ledger a reservation is charged to. */
export interface Charge {
  scopeKey: string;
  period: "day" | "month" | "run";
  /** `YYYY-MM-DD`, `YYYY-MM`, or "" for a run. */
  periodStart: string;
  limitNanoUsd: number;
  /** e.g. "the team's daily budget": named in refusals. */
  label: string;
  /** When the period ends (a refusal's Retry-After); null for a run cap, which never resets. */
  resetAt: Date | null;
}

export interface Period {
  start: string;
  startAt: Date;
  resetAt: Date;
}

/** The UTC day or calendar month containing `now`. */
export function periodOf(kind: "day" | "month", now: Date): Period {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  if (kind === "day") {
    const startAt = new Date(Date.UTC(y, m, now.getUTCDate()));
    return { start: startAt.toISOString().slice(0, 10), startAt, resetAt: new Date(startAt.getTime() + 86_400_000) };
  }
  const startAt = new Date(Date.UTC(y, m, 1));
  return { start: startAt.toISOString().slice(0, 7), startAt, resetAt: new Date(Date.UTC(y, m + 1, 1)) };
}

/** Whole seconds until `resetAt` (at least 1): a refusal's Retry-After. */
export function retryAfterSeconds(resetAt: Date, now: Date): number {
  return Math.max(1, Math.ceil((resetAt.getTime() - now.getTime()) / 1000));
}

export interface EffectiveRules {
  /** For the router: each scope's allow-lists (empty lists = no restriction, so omitted). */
  routing: RoutingPolicy[];
  /** The smallest per-run cap, and whose it is. */
  maxRunCost: { nanoUsd: number; scope: Scope } | null;
  /** The smallest per-key rate limit. */
  requestsPerMinutePerKey: number | null;
  /** Every budget ledger the call's estimate must fit, in lock order. */
  charges: Charge[];
}

const scopeName = (s: Scope) => (s === "organization" ? "the organization's" : "the team's");

/**
 * Combines the rules of every scope a call is billed to. `runId` adds the per-run cap as a
 * ledger (a run's calls together must stay under it); without a run, the cap applies to the
 * single call's estimate, which the caller checks.
 */
export function effectiveRules(rules: readonly ScopeRules[], opts: { now: Date; runId?: string | null }): EffectiveRules {
  const routing: RoutingPolicy[] = [];
  let maxRunCost: EffectiveRules["maxRunCost"] = null;
  let rate: number | null = null;
  const charges: Charge[] = [];
  const day = periodOf("day", opts.now);
  const month = periodOf("month", opts.now);
  for (const r of rules) {
    if (r.allowedProviders.length || r.allowedModels.length) {
      routing.push({
        source: r.scope,
        ...(r.allowedProviders.length ? { allowedProviders: r.allowedProviders } : {}),
        ...(r.allowedModels.length ? { allowedModels: r.allowedModels } : {}),
      });
    }
    if (r.maxRunCostNanoUsd !== null && (maxRunCost === null || r.maxRunCostNanoUsd < maxRunCost.nanoUsd)) maxRunCost = { nanoUsd: r.maxRunCostNanoUsd, scope: r.scope };
    if (r.requestsPerMinutePerKey !== null && (rate === null || r.requestsPerMinutePerKey < rate)) rate = r.requestsPerMinutePerKey;
    if (r.dailyLimitNanoUsd !== null) {
      charges.push({ scopeKey: r.scopeKey, period: "day", periodStart: day.start, limitNanoUsd: r.dailyLimitNanoUsd, label: `${scopeName(r.scope)} daily budget`, resetAt: day.resetAt });
    }
    if (r.monthlyLimitNanoUsd !== null) {
      charges.push({ scopeKey: r.scopeKey, period: "month", periodStart: month.start, limitNanoUsd: r.monthlyLimitNanoUsd, label: `${scopeName(r.scope)} monthly budget`, resetAt: month.resetAt });
    }
  }
  if (maxRunCost && opts.runId) {
    charges.push({ scopeKey: runScopeKey(opts.runId), period: "run", periodStart: "", limitNanoUsd: maxRunCost.nanoUsd, label: `${scopeName(maxRunCost.scope)} per-run cost cap`, resetAt: null });
  }
  charges.sort(compareCharges);
  return { routing, maxRunCost, requestsPerMinutePerKey: rate, charges };
}

/** The one lock order of ledger rows, for reservations and settlements alike (no deadlocks). */
export function compareCharges(a: Pick<Charge, "scopeKey" | "period" | "periodStart">, b: Pick<Charge, "scopeKey" | "period" | "periodStart">): number {
  return a.scopeKey < b.scopeKey ? -1 : a.scopeKey > b.scopeKey ? 1 : a.period < b.period ? -1 : a.period > b.period ? 1 : a.periodStart < b.periodStart ? -1 : a.periodStart > b.periodStart ? 1 : 0;
}
