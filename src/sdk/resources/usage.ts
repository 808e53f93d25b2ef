/**
 * What provider calls cost and the rules they obey: usage totals and records
 * (`UsageResource`), policies and budgets (`PoliciesResource`) — the REST face of
 * `UsageService` and `PolicyService`.
 */
import { listAll, type Page } from "../core/paging.js";
import { unwrap, type RequestOptions, type RestTransport } from "../core/rest-transport.js";
import type { Budget, ListUsageRecordsParams, Policy, PolicyScopeParams, QueryUsageParams, QueryUsageResponse, SetBudgetRequest, SetPolicyRequest, UsageRecord } from "../types.js";

export class UsageResource {
  constructor(private readonly transport: RestTransport) {}

  /**
   * Usage and cost totals of the organization's provider calls, grouped by `group_by`
   * (`team`, `principal`, `api_key`, `run`, `provider`, `model`, `operation`, `day`;
   * comma-separated or an array) and filtered; `total` sums every matching call.
   */
  async query(organizationId: string, params: QueryUsageParams = {}, options?: RequestOptions): Promise<QueryUsageResponse> {
    const groupBy = typeof params.group_by === "string" ? params.group_by : params.group_by?.join(",");
    const query = { ...params, group_by: groupBy || undefined, start_time: rfc3339(params.start_time, "start_time"), end_time: rfc3339(params.end_time, "end_time") };
    return unwrap(await this.transport.call("get", "/v1/organizations/{organization_id}/usage", { path: { organization_id: organizationId }, query, options }), "queryUsage");
  }

  /** One page of usage records (one per provider call attempt), newest first. */
  async records(organizationId: string, params: ListUsageRecordsParams = {}, options?: RequestOptions): Promise<Page<UsageRecord>> {
    const query = { ...params, start_time: rfc3339(params.start_time, "start_time"), end_time: rfc3339(params.end_time, "end_time") };
    return this.transport.call("get", "/v1/organizations/{organization_id}/usage/records", { path: { organization_id: organizationId }, query, options });
  }

  /** Every usage record matching `params`, page by page. */
  recordsAll(organizationId: string, params: ListUsageRecordsParams = {}, options?: RequestOptions): AsyncGenerator<UsageRecord, void, undefined> {
    return listAll((page_token) => this.records(organizationId, { ...params, page_token }, options), params.page_token);
  }
}

/** RFC 3339 from a Date; a string as given. */
function rfc3339(t: string | Date | undefined, name: string): string | undefined {
  if (!(t instanceof Date)) return t;
  if (Number.isNaN(t.getTime())) throw new TypeError(`FabricClient: ${name} is an invalid Date`);
  return t.toISOString();
}

/**
 * The rules provider calls and jobs obey: a policy (allowed providers and models, a
 * per-run cost cap, a per-key rate limit, organization price overrides) and a budget
 * (daily / monthly hard caps), each for the organization or for one team (`team_id`).
 * A call billed to a team obeys the organization's rules and the team's.
 */
export class PoliciesResource {
  constructor(private readonly transport: RestTransport) {}

  /** The organization's policy, or `params.team_id`'s (empty fields when none is set). */
  async get(organizationId: string, params: PolicyScopeParams = {}, options?: RequestOptions): Promise<Policy> {
    return unwrap(await this.transport.call("get", "/v1/organizations/{organization_id}/policy", { path: { organization_id: organizationId }, query: params, options }), "getPolicy");
  }

  /** Replaces the whole policy of the organization, or of `request.team_id` (a field left out: no such rule); resolves with the policy now in force. */
  async set(organizationId: string, request: SetPolicyRequest, options?: RequestOptions): Promise<Policy> {
    return unwrap(await this.transport.call("put", "/v1/organizations/{organization_id}/policy", { path: { organization_id: organizationId }, body: request, options }), "setPolicy");
  }

  /** The organization's budget, or `params.team_id`'s, with the current periods' spend. */
  async getBudget(organizationId: string, params: PolicyScopeParams = {}, options?: RequestOptions): Promise<Budget> {
    return unwrap(await this.transport.call("get", "/v1/organizations/{organization_id}/budget", { path: { organization_id: organizationId }, query: params, options }), "getBudget");
  }

  /** Replaces the limits of the organization's budget, or of `request.team_id`'s (a limit left out: none); resolves with the budget now in force. */
  async setBudget(organizationId: string, request: SetBudgetRequest, options?: RequestOptions): Promise<Budget> {
    return unwrap(await this.transport.call("put", "/v1/organizations/{organization_id}/budget", { path: { organization_id: organizationId }, body: request, options }), "setBudget");
  }
}
