/**
 * PolicyService: the policy and the budget of an organization (`team_id` empty) or of one
 * of its teams — one `policies` row per scope, whose policy and budget columns are managed
 * by separate operations under separate permissions (`policy.*`, `budget.*`). Each change is
 * audited and emits an event (`policy.updated`, `budget.updated`) in its transaction.
 *
 * Replace semantics (PUT): a field left out is cleared. Money is decimal USD in, exact
 * integer nano-dollars stored (domain/pricing.ts).
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { and, eq, sql } from "drizzle-orm";
import {
  BudgetPeriodSchema,
  BudgetSchema,
  GetBudgetResponseSchema,
  GetPolicyResponseSchema,
  PolicySchema,
  PriceOverrideSchema,
  SetBudgetResponseSchema,
  SetPolicyResponseSchema,
  type Budget,
  type GetBudgetRequest,
  type GetPolicyRequest,
  type Policy,
  type PriceOverride,
  type SetBudgetRequest,
  type SetPolicyRequest,
} from "../../../gen/proto/fabric/v1/usage_pb.js";
import type { Db, Executor } from "../../db/database.js";
import { committedNanoUsd, rebaseLedgers } from "../../db/usage.js";
import { channels, emitEvents, notify } from "../../db/events.js";
import { policies, teams } from "../../db/schema.js";
import { DomainError, invalidArgument, notFound, type Issue } from "../../domain/errors.js";
import type { Action } from "../../domain/permissions.js";
import { orgScopeKey, periodOf, teamScopeKey } from "../../domain/policy.js";
import { DEFAULT_PRICE_TABLE, formatUsd, parseUsd, withPriceOverrides, type PriceOverrides, type PriceSpec } from "../../domain/pricing.js";
import { etagOf, expectedVersion, preconditionFailed } from "../../domain/etags.js";
import { recordAudit } from "../access/record-audit.js";
import { requirePermission } from "../access/permission-checks.js";
import { isUuid, type CallContext } from "../call-context.js";

type PolicyRow = typeof policies.$inferSelect;

export const policyLimits = { maxNames: 100, nameMaxLength: 200, maxPriceOverrides: 500, maxRequestsPerMinute: 1_000_000 } as const;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$/;

/** The audit entries PolicyService writes: one action per use case. */
export const policyAuditActions = { setPolicy: "policy.set", setBudget: "budget.set" } as const;

/** `onChange` runs after a change commits (this process's provider gateway drops its cached rules). */
export function createPolicyService(deps: { db: Db; onChange?: (organizationId: string) => void }) {
  const { db } = deps;
  const changed = (organizationId: string) => deps.onChange?.(organizationId);

  /**
   * The scope a request names, after checking the team exists in the organization and `action`
   * on it. The organization's policy and budget bind every team's calls, so anyone who may read
   * policies (or budgets) anywhere in the organization may read the organization's (the guard
   * checked that); changing them needs the permission organization-wide.
   */
  async function scopeOf(ctx: CallContext, teamId: string, action: Action): Promise<{ scopeKey: string; teamId: string | null }> {
    if (!teamId) {
      if (action !== "policy.read" && action !== "budget.read") requirePermission(ctx, action, { teamId: null });
      return { scopeKey: orgScopeKey(ctx.caller.organizationId), teamId: null };
    }
    const [team] = isUuid(teamId) ? await db.select({ id: teams.id }).from(teams).where(and(eq(teams.id, teamId.toLowerCase()), eq(teams.organizationId, ctx.caller.organizationId))) : [];
    if (!team) throw notFound("team", teamId);
    // The stored id: scope keys compare as text, so an upper-case id must name the same budget.
    requirePermission(ctx, action, { teamId: team.id });
    return { scopeKey: teamScopeKey(team.id), teamId: team.id };
  }

  const load = async (ex: Executor, scopeKey: string) => (await ex.select().from(policies).where(eq(policies.scopeKey, scopeKey)))[0];

  async function budgetMessage(ex: Executor, organizationId: string, teamId: string | null, row: PolicyRow | undefined): Promise<Budget> {
    const now = new Date();
    const periods = [];
    for (const [kind, limit] of [
      ["day", row?.dailyLimitNanoUsd ?? null],
      ["month", row?.monthlyLimitNanoUsd ?? null],
    ] as const) {
      if (limit === null) continue;
      const p = periodOf(kind, now);
      const [committed = 0] = await committedNanoUsd(ex, [{ scopeKey: row!.scopeKey, period: kind, periodStart: p.start }]);
      periods.push(
        create(BudgetPeriodSchema, {
          period: kind,
          limitUsd: formatUsd(limit),
          committedUsd: formatUsd(committed),
          remainingUsd: formatUsd(Math.max(0, limit - committed)),
          periodStartTime: timestampFromDate(p.startAt),
          resetTime: timestampFromDate(p.resetAt),
        }),
      );
    }
    return create(BudgetSchema, {
      organizationId,
      teamId: teamId ?? "",
      ...(row?.dailyLimitNanoUsd != null ? { dailyLimitUsd: formatUsd(row.dailyLimitNanoUsd) } : {}),
      ...(row?.monthlyLimitNanoUsd != null ? { monthlyLimitUsd: formatUsd(row.monthlyLimitNanoUsd) } : {}),
      periods,
      ...(row?.budgetUpdatedAt ? { updateTime: timestampFromDate(row.budgetUpdatedAt) } : {}),
      updatedBy: row?.budgetUpdatedBy ?? "",
      etag: etagOf("budget", row?.budgetVersion ?? 0),
    });
  }

  return {
    async getPolicy(ctx: CallContext, req: GetPolicyRequest) {
      const scope = await scopeOf(ctx, req.teamId, "policy.read");
      return create(GetPolicyResponseSchema, { policy: policyMessage(ctx.caller.organizationId, scope.teamId, await load(db, scope.scopeKey)) });
    },

    async setPolicy(ctx: CallContext, req: SetPolicyRequest) {
      const scope = await scopeOf(ctx, req.teamId, "policy.write");
      const v = validatePolicy(req, scope.teamId !== null);
      const row = await db.transaction(async (tx) => {
        const values = {
          allowedProviders: v.allowedProviders,
          allowedModels: v.allowedModels,
          maxRunCostNanoUsd: v.maxRunCostNanoUsd,
          requestsPerMinutePerKey: v.requestsPerMinutePerKey,
          priceOverrides: v.priceOverrides,
          policyUpdatedAt: new Date(),
          policyUpdatedBy: ctx.caller.principalId,
        };
        const saved = await saveScope(tx, ctx, scope, values, "policy", req.etag);
        const message = policyMessage(ctx.caller.organizationId, scope.teamId, saved);
        const summary = { scope: scope.teamId ? "team" : "organization", team_id: scope.teamId, ...policySummary(saved!) };
        await recordAudit(tx, ctx, { action: policyAuditActions.setPolicy, resource: scope.teamId ? `team:${scope.teamId}:policy` : `organization:${ctx.caller.organizationId}:policy`, summary });
        await emitEvents(tx, [{ organizationId: ctx.caller.organizationId, kind: "policy.updated", payload: summary }]);
        await notify(tx, channels.policy, ctx.caller.organizationId); // every gateway drops its cached rules
        return message;
      });
      changed(ctx.caller.organizationId);
      return create(SetPolicyResponseSchema, { policy: row });
    },

    async getBudget(ctx: CallContext, req: GetBudgetRequest) {
      const scope = await scopeOf(ctx, req.teamId, "budget.read");
      return create(GetBudgetResponseSchema, { budget: await budgetMessage(db, ctx.caller.organizationId, scope.teamId, await load(db, scope.scopeKey)) });
    },

    async setBudget(ctx: CallContext, req: SetBudgetRequest) {
      const scope = await scopeOf(ctx, req.teamId, "budget.write");
      const issues: Issue[] = [];
      const money = (value: string | undefined, path: string) => {
        if (value === undefined) return null;
        try {
          return parseUsd(value);
        } catch (err) {
          issues.push({ path, code: "invalid_amount", message: (err as Error).message });
          return null;
        }
      };
      const daily = money(req.dailyLimitUsd, "/daily_limit_usd");
      const monthly = money(req.monthlyLimitUsd, "/monthly_limit_usd");
      if (issues.length) throw invalidArgument(issues.map((i) => i.message).join("; "), issues);
      const budget = await db.transaction(async (tx) => {
        const values = { dailyLimitNanoUsd: daily, monthlyLimitNanoUsd: monthly, budgetUpdatedAt: new Date(), budgetUpdatedBy: ctx.caller.principalId };
        const saved = await saveScope(tx, ctx, scope, values, "budget", req.etag);
        const now = new Date();
        const periods = [...(daily !== null ? [{ period: "day" as const, ...periodOf("day", now) }] : []), ...(monthly !== null ? [{ period: "month" as const, ...periodOf("month", now) }] : [])];
        await rebaseLedgers(tx, { organizationId: ctx.caller.organizationId, teamId: scope.teamId, scopeKey: scope.scopeKey, periods });
        const summary = {
          scope: scope.teamId ? "team" : "organization",
          team_id: scope.teamId,
          daily_limit_usd: daily === null ? null : formatUsd(daily),
          monthly_limit_usd: monthly === null ? null : formatUsd(monthly),
        };
        await recordAudit(tx, ctx, { action: policyAuditActions.setBudget, resource: scope.teamId ? `team:${scope.teamId}:budget` : `organization:${ctx.caller.organizationId}:budget`, summary });
        await emitEvents(tx, [{ organizationId: ctx.caller.organizationId, kind: "budget.updated", payload: summary }]);
        await notify(tx, channels.policy, ctx.caller.organizationId);
        return budgetMessage(tx, ctx.caller.organizationId, scope.teamId, saved);
      });
      changed(ctx.caller.organizationId);
      return create(SetBudgetResponseSchema, { budget });
    },
  };
}

interface ValidPolicy {
  allowedProviders: string[];
  allowedModels: string[];
  maxRunCostNanoUsd: number | null;
  requestsPerMinutePerKey: number | null;
  priceOverrides: PriceOverrides | null;
}

/** Every problem at once; nothing is written unless the whole policy is valid. */
export function validatePolicy(req: SetPolicyRequest, team: boolean): ValidPolicy {
  const issues: Issue[] = [];
  const names = (list: readonly string[], field: string) => {
    if (list.length > policyLimits.maxNames) issues.push({ path: `/${field}`, code: "too_many", message: `${field} holds at most ${policyLimits.maxNames} names` });
    list.forEach((n, i) => {
      if (n.length > policyLimits.nameMaxLength || !NAME.test(n)) issues.push({ path: `/${field}/${i}`, code: "invalid_name", message: `${field}[${i}] is not a provider or model name` });
    });
    return [...new Set(list)];
  };
  const allowedProviders = names(req.allowedProviders, "allowed_providers");
  const allowedModels = names(req.allowedModels, "allowed_models");
  let maxRunCostNanoUsd: number | null = null;
  if (req.maxRunCostUsd !== undefined) {
    try {
      maxRunCostNanoUsd = parseUsd(req.maxRunCostUsd);
    } catch (err) {
      issues.push({ path: "/max_run_cost_usd", code: "invalid_amount", message: (err as Error).message });
    }
  }
  const rpm = req.requestsPerMinutePerKey ?? null;
  if (rpm !== null && (rpm < 1 || rpm > policyLimits.maxRequestsPerMinute)) {
    issues.push({ path: "/requests_per_minute_per_key", code: "invalid_value", message: `requests_per_minute_per_key must be within 1..${policyLimits.maxRequestsPerMinute}` });
  }
  let priceOverrides: PriceOverrides | null = null;
  if (req.priceOverrides.length > 0) {
    if (team) issues.push({ path: "/price_overrides", code: "organization_only", message: "only an organization's policy can override prices" });
    else if (req.priceOverrides.length > policyLimits.maxPriceOverrides) issues.push({ path: "/price_overrides", code: "too_many", message: `at most ${policyLimits.maxPriceOverrides} price overrides` });
    else priceOverrides = priceOverridesOf(req.priceOverrides, issues);
  }
  if (issues.length) throw invalidArgument(issues.map((i) => i.message).join("; "), issues);
  return { allowedProviders, allowedModels, maxRunCostNanoUsd, requestsPerMinutePerKey: rpm, priceOverrides };
}

function priceOverridesOf(list: readonly PriceOverride[], issues: Issue[]): PriceOverrides | null {
  const providers: Record<string, Record<string, Partial<PriceSpec>>> = Object.create(null);
  const before = issues.length;
  list.forEach((o, i) => {
    const at = `/price_overrides/${i}`;
    if (!o.provider || !NAME.test(o.provider)) issues.push({ path: `${at}/provider`, code: "invalid_name", message: `price_overrides[${i}].provider is not a provider name` });
    if (!o.model || !(o.model === "*" || NAME.test(o.model))) issues.push({ path: `${at}/model`, code: "invalid_name", message: `price_overrides[${i}].model is not a model name or *` });
    const models = (providers[o.provider] ??= Object.create(null) as Record<string, Partial<PriceSpec>>);
    if (models[o.model]) issues.push({ path: at, code: "duplicate", message: `price_overrides[${i}] repeats ${o.provider}/${o.model}` });
    const spec: Partial<PriceSpec> = {};
    if (o.inputUsdPerMtok) spec.input = o.inputUsdPerMtok;
    if (o.outputUsdPerMtok) spec.output = o.outputUsdPerMtok;
    if (o.cachedInputUsdPerMtok) spec.cachedInput = o.cachedInputUsdPerMtok;
    if (o.cacheWriteUsdPerMtok) spec.cacheWrite = o.cacheWriteUsdPerMtok;
    if (Object.keys(spec).length === 0) issues.push({ path: at, code: "empty_price", message: `price_overrides[${i}] sets no price` });
    models[o.model] = spec;
  });
  if (issues.length > before) return null;
  const overrides: PriceOverrides = { version: "org", providers };
  try {
    withPriceOverrides(DEFAULT_PRICE_TABLE, overrides);
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    const issue = err.options.issues?.[0];
    issues.push({ path: "/price_overrides", code: issue?.code ?? "invalid_price", message: err.message });
    return null;
  }
  return JSON.parse(JSON.stringify(overrides)) as PriceOverrides;
}

function policyMessage(organizationId: string, teamId: string | null, row: PolicyRow | undefined): Policy {
  const overrides: PriceOverride[] = [];
  const po = row?.priceOverrides as PriceOverrides | null | undefined;
  for (const [provider, models] of Object.entries(po?.providers ?? {})) {
    for (const [model, spec] of Object.entries(models)) {
      overrides.push(
        create(PriceOverrideSchema, {
          provider,
          model,
          inputUsdPerMtok: spec.input !== undefined ? String(spec.input) : "",
          outputUsdPerMtok: spec.output !== undefined ? String(spec.output) : "",
          cachedInputUsdPerMtok: spec.cachedInput !== undefined ? String(spec.cachedInput) : "",
          cacheWriteUsdPerMtok: spec.cacheWrite !== undefined ? String(spec.cacheWrite) : "",
        }),
      );
    }
  }
  return create(PolicySchema, {
    organizationId,
    teamId: teamId ?? "",
    allowedProviders: row?.allowedProviders ?? [],
    allowedModels: row?.allowedModels ?? [],
    ...(row?.maxRunCostNanoUsd != null ? { maxRunCostUsd: formatUsd(row.maxRunCostNanoUsd) } : {}),
    ...(row?.requestsPerMinutePerKey != null ? { requestsPerMinutePerKey: row.requestsPerMinutePerKey } : {}),
    priceOverrides: overrides,
    ...(row?.policyUpdatedAt ? { updateTime: timestampFromDate(row.policyUpdatedAt) } : {}),
    updatedBy: row?.policyUpdatedBy ?? "",
    etag: etagOf("policy", row?.policyVersion ?? 0),
  });
}

/**
 * Writes the policy or the budget columns of a scope and raises their version, applying
 * the request's etag in the same statement: version 0 (never set) may insert the row or
 * update one whose part was never set; a later version only updates a row at that version.
 * No row written means the etag was stale.
 */
async function saveScope(tx: Executor, ctx: CallContext, scope: { scopeKey: string; teamId: string | null }, values: Partial<PolicyRow>, part: "policy" | "budget", etag: string | undefined): Promise<PolicyRow> {
  const versionColumn = part === "policy" ? policies.policyVersion : policies.budgetVersion;
  const versionKey = part === "policy" ? "policyVersion" : "budgetVersion";
  const expected = expectedVersion(part, etag);
  const set = { ...values, [versionKey]: sql`${versionColumn} + 1` };
  let saved: PolicyRow | undefined;
  if (typeof expected === "number" && expected > 0) {
    [saved] = await tx.update(policies).set(set).where(and(eq(policies.scopeKey, scope.scopeKey), eq(versionColumn, expected))).returning();
  } else if (expected !== -1) {
    [saved] = await tx
      .insert(policies)
      .values({ scopeKey: scope.scopeKey, organizationId: ctx.caller.organizationId, teamId: scope.teamId, ...values, [versionKey]: 1 })
      .onConflictDoUpdate({ target: policies.scopeKey, set, ...(expected === 0 ? { setWhere: eq(versionColumn, 0) } : {}) })
      .returning();
  }
  if (!saved) throw preconditionFailed(`the ${part} of ${scope.teamId ? `team ${scope.teamId}` : "the organization"}`, etag!);
  return saved;
}

function policySummary(row: PolicyRow): Record<string, unknown> {
  return {
    allowed_providers: row.allowedProviders,
    allowed_models: row.allowedModels,
    max_run_cost_usd: row.maxRunCostNanoUsd === null ? null : formatUsd(row.maxRunCostNanoUsd),
    requests_per_minute_per_key: row.requestsPerMinutePerKey,
    price_overrides: row.priceOverrides ?? null,
  };
}
