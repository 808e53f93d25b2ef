/**
 * The rules a provider call is under: the organization's and the team's policy and budgets
 * (one query), made effective for the moment and the run, and the price table the
 * organization is billed by (its overrides merged over the built-in table).
 *
 * With `listen` (the database's NOTIFY subscription) the rules are cached: each
 * organization's and team's rules are kept for `ttlMs` and dropped as soon as a policy or
 * budget of the organization changes anywhere (PolicyService NOTIFYs `fabric_policy` in its
 * transaction), so a change reaches every process within milliseconds; the time limit only
 * bounds a missed notification (a reconnect). Without `listen`, every call reads the rules.
 */
import type { Database, Db } from "../db/database.js";
import { channels } from "../db/events.js";
import { loadScopeRules, type Attribution } from "../db/usage.js";
import { effectiveRules, type EffectiveRules } from "../domain/policy.js";
import { withPriceOverrides, type PriceOverrides, type PriceTable } from "../domain/pricing.js";
import { warnDbFailure } from "../db/transient-errors.js";

/** The rules a call is checked, reserved and priced by. */
export interface Prepared {
  rules: EffectiveRules;
  prices: PriceTable;
}

export interface RulesCache {
  /** The rules for a call attributed so, at `at` (budget periods). */
  prepare(attribution: Pick<Attribution, "organizationId" | "teamId" | "runId">, at?: Date): Promise<Prepared>;
  /** Drops an organization's cached rules now (this process changed them; others hear the NOTIFY). */
  invalidate(organizationId: string): void;
  /** Stops following policy changes. */
  close(): Promise<void>;
}

export function createRulesCache(
  deps: { db: Db; listen?: Database["listen"] },
  options: { ttlMs: number; basePrices: PriceTable; log?: { warn(msg: string, fields?: Record<string, unknown>): void } },
): RulesCache {
  const { db } = deps;
  const cache = new Map<string, { at: number; value: Awaited<ReturnType<typeof loadScopeRules>> }>();
  // Bumped by every invalidation: a read that started before a change must not cache its result.
  const generations = new Map<string, number>();
  const invalidate = (organizationId: string) => {
    generations.set(organizationId, (generations.get(organizationId) ?? 0) + 1);
    for (const key of cache.keys()) if (key.startsWith(`${organizationId}|`)) cache.delete(key);
  };
  const listening = deps.listen
    ? deps.listen(channels.policy, invalidate).catch((err) => {
        if (options.log) warnDbFailure(options.log, "policy changes cannot be followed; rules are read on every call", err);
        return undefined;
      })
    : Promise.resolve(undefined);

  async function rulesOf(organizationId: string, teamId: string | null) {
    const unlisten = await listening;
    if (!unlisten) return loadScopeRules(db, organizationId, teamId);
    const key = `${organizationId}|${teamId ?? ""}`;
    const hit = cache.get(key);
    const t = Date.now();
    if (hit && t - hit.at < options.ttlMs) return hit.value;
    const generation = generations.get(organizationId);
    const value = await loadScopeRules(db, organizationId, teamId);
    if (generations.get(organizationId) !== generation) return value; // changed meanwhile: use once, do not keep
    if (cache.size >= 10_000) cache.delete(cache.keys().next().value!);
    cache.set(key, { at: t, value });
    return value;
  }

  const tables = new Map<string, PriceTable>();
  /** The organization's table; merged tables are memoized by their overrides (bounded). */
  function priceTableFor(overrides: PriceOverrides | undefined): PriceTable {
    if (!overrides) return options.basePrices;
    const key = JSON.stringify(overrides);
    let table = tables.get(key);
    if (!table) {
      try {
        table = withPriceOverrides(options.basePrices, overrides);
      } catch {
        table = options.basePrices; // validated when stored; a table that no longer merges (built-in change) falls back
      }
      if (tables.size >= 256) tables.delete(tables.keys().next().value!);
      tables.set(key, table);
    }
    return table;
  }

  return {
    async prepare(attribution, at = new Date()) {
      const { rules, priceOverrides } = await rulesOf(attribution.organizationId, attribution.teamId);
      return { rules: effectiveRules(rules, { now: at, runId: attribution.runId }), prices: priceTableFor(priceOverrides) };
    },
    invalidate,
    async close() {
      const unlisten = await listening;
      cache.clear();
      await unlisten?.();
    },
  };
}
