/**
 * Spend: settled cost per day by team, model, provider and workflow; every budget with
 * what is committed (spent plus reserved) against its cap; the jobs list.
 */
import { useState } from "preact/hooks";
import { api, unwrap, type Schemas } from "../api/client.js";
import { StackedBarChart, type Series } from "../ui/bar-chart.js";
import { Empty, ErrorNotice, Loading, Section, StatusBadge, Time } from "../ui/components.js";
import { useLoad } from "../ui/hooks.js";
import { useOrg } from "../ui/org.js";

const dimensions = [
  ["team", "Cost by team"],
  ["model", "Cost by model"],
  ["provider", "Cost by provider"],
  ["workflow", "Cost by workflow"],
] as const;
type Dimension = (typeof dimensions)[number][0];

const usd = (n: number) => `$${n < 0.01 && n > 0 ? n.toPrecision(2) : n.toFixed(2)}`;

function days(n: number): string[] {
  const out: string[] = [];
  const today = new Date();
  for (let i = n - 1; i >= 0; i--) out.push(new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i)).toISOString().slice(0, 10));
  return out;
}

export default function SpendPage() {
  const org = useOrg();
  const [range, setRange] = useState(14);
  const xs = days(range);
  const start = `${xs[0]}T00:00:00Z`;
  const teamName = (id: string) => (id ? (org.teams.find((t) => t.id === id)?.name ?? id.slice(0, 8)) : "no team");
  const usage = useLoad(async () => {
    const results = await Promise.all(
      dimensions.map(([dim]) =>
        unwrap(api.GET("/v1/organizations/{organization_id}/usage", { params: { path: { organization_id: org.organizationId }, query: { group_by: `day,${dim}`, start_time: start, team_id: org.teamId || undefined } } })),
      ),
    );
    return results.map((r) => r.data);
  }, [org.organizationId, org.teamId, range]);
  const canBudgets = org.can("budget.read");
  return (
    <div>
      <h1>Spend</h1>
      {org.can("usage.read") ? (
        <Section
          title="Usage over time"
          actions={
            <label>
              Range{" "}
              <select value={String(range)} onChange={(e) => setRange(Number((e.target as HTMLSelectElement).value))}>
                <option value="7">7 days</option>
                <option value="14">14 days</option>
                <option value="30">30 days</option>
              </select>
            </label>
          }
        >
          <ErrorNotice error={usage.error} />
          {!usage.data && !usage.error && <Loading what="usage" />}
          {usage.data && (
            <>
              <p data-testid="usage-total">
                Total: <strong>{usd(Number(usage.data[0]!.total.cost_usd || 0))}</strong> settled, {usd(Number(usage.data[0]!.total.reserved_usd || 0))} reserved by calls in flight, {usage.data[0]!.total.calls} call{Number(usage.data[0]!.total.calls) === 1 ? "" : "s"} ({usage.data[0]!.total.failed_calls} failed).
              </p>
              <div class="charts">
                {dimensions.map(([dim, title], i) => (
                  <StackedBarChart key={dim} title={title} xs={xs} series={seriesOf(usage.data![i]!.groups, dim, teamName)} format={usd} />
                ))}
              </div>
            </>
          )}
        </Section>
      ) : (
        <p class="muted">You may not read this organization's usage.</p>
      )}
      {canBudgets && <Budgets />}
      {org.can("job.read") && <Jobs />}
    </div>
  );
}

function seriesOf(groups: Schemas["UsageGroup"][], dim: Dimension, teamName: (id: string) => string): Series[] {
  const by = new Map<string, Series>();
  for (const g of groups) {
    const raw = dim === "team" ? teamName(g.team_id) : dim === "workflow" ? g.workflow_name || "direct calls" : g[dim];
    const name = raw || "—";
    const s: Series = by.get(name) ?? { name, values: {} };
    s.values[g.day] = (s.values[g.day] ?? 0) + Number(g.cost_usd || 0);
    by.set(name, s);
  }
  return [...by.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function Budgets() {
  const org = useOrg();
  const scopes = [{ id: "", name: "Organization" }, ...org.teams.map((t) => ({ id: t.id, name: `Team ${t.name}` }))];
  const budgets = useLoad(
    () => Promise.all(scopes.map((s) => unwrap(api.GET("/v1/organizations/{organization_id}/budget", { params: { path: { organization_id: org.organizationId }, query: { team_id: s.id || undefined } } })).then((r) => ({ scope: s.name, budget: r.data })))),
    [org.organizationId, org.teams.length],
  );
  return (
    <Section title="Budgets">
      <ErrorNotice error={budgets.error} />
      {!budgets.data && !budgets.error && <Loading what="budgets" />}
      {budgets.data && (
        <table data-testid="budgets">
          <thead>
            <tr>
              <th scope="col">scope</th>
              <th scope="col">period</th>
              <th scope="col">committed / cap</th>
              <th scope="col">resets</th>
            </tr>
          </thead>
          <tbody>
            {budgets.data.flatMap(({ scope, budget }) =>
              budget.periods.length === 0
                ? [
                    <tr key={scope}>
                      <th scope="row">{scope}</th>
                      <td colSpan={3} class="muted">
                        no cap set
                      </td>
                    </tr>,
                  ]
                : budget.periods.map((p) => {
                    const committed = Number(p.committed_usd || 0);
                    const limit = Number(p.limit_usd || 0);
                    return (
                      <tr key={`${scope}-${p.period}`}>
                        <th scope="row">{scope}</th>
                        <td>{p.period === "day" ? "daily" : "monthly"}</td>
                        <td>
                          <meter min={0} max={limit || 1} value={committed} high={limit * 0.8} optimum={0} aria-label={`${scope} ${p.period} budget used`} />{" "}
                          ${p.committed_usd || "0"} of ${p.limit_usd}
                        </td>
                        <td>
                          <Time value={p.reset_time} />
                        </td>
                      </tr>
                    );
                  }),
            )}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function Jobs() {
  const org = useOrg();
  const [token, setToken] = useState<string>();
  const jobs = useLoad(() => unwrap(api.GET("/v1/jobs", { params: { query: { page_size: 25, page_token: token, team_id: org.teamId || undefined } } })), [token, org.teamId]);
  return (
    <Section title="Jobs">
      <ErrorNotice error={jobs.error} />
      {!jobs.data && !jobs.error && <Loading what="jobs" />}
      {jobs.data && jobs.data.data.length === 0 && <Empty>No jobs yet (POST /v1/jobs queues a single provider call).</Empty>}
      {jobs.data && jobs.data.data.length > 0 && (
        <table data-testid="jobs">
          <thead>
            <tr>
              <th scope="col">job</th>
              <th scope="col">modality</th>
              <th scope="col">status</th>
              <th scope="col">created</th>
            </tr>
          </thead>
          <tbody>
            {jobs.data.data.map((j) => (
              <tr key={j.id}>
                <td>
                  <a href={`/runs/${j.workflow_run_id}`}>
                    <code>{j.id.slice(0, 8)}</code>
                  </a>
                </td>
                <td>{j.modality}</td>
                <td>
                  <StatusBadge status={j.status} />
                </td>
                <td>
                  <Time value={j.create_time} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {jobs.data?.next_page_token && (
        <button type="button" onClick={() => setToken(jobs.data!.next_page_token)}>
          Older jobs
        </button>
      )}
    </Section>
  );
}
