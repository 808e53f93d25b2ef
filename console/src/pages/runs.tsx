/**
 * Runs, newest first, filtered by status, workflow, team, time range and text, paged by
 * the API's keyset tokens ("Load more"), and kept current from the organization's event
 * stream: a new run that matches the filters appears at the top, a row whose run changes
 * state is refreshed in place.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { api, unwrap, type Run } from "../api/client.js";
import { setQuery, useLocation } from "../router.js";
import { duration, Empty, ErrorNotice, Loading, StatusBadge, Time } from "../ui/components.js";
import { toApiError } from "../ui/hooks.js";
import { StreamStatus, useEventStream } from "../ui/live.js";
import { useOrg } from "../ui/org.js";
import type { ApiError } from "../api/problem.js";

const statuses = ["pending", "running", "paused", "waiting", "completed", "failed", "cancelled"] as const;
type Status = (typeof statuses)[number];

interface Filters {
  status: string;
  workflow: string;
  team: string;
  from: string;
  to: string;
  text: string;
}

const toIso = (local: string) => (local ? new Date(local).toISOString() : undefined);

export function runQuery(f: Filters, pageToken?: string) {
  return {
    status: (statuses as readonly string[]).includes(f.status) ? (f.status as Status) : undefined,
    workflow_name: f.workflow || undefined,
    team_id: f.team || undefined,
    created_after: toIso(f.from),
    created_before: toIso(f.to),
    query: f.text || undefined,
    page_size: 50,
    page_token: pageToken,
  };
}

/** Whether a run (fetched after an event) belongs in the list as filtered. */
function matches(run: Run, f: Filters): boolean {
  if (f.status && run.status !== f.status) return false;
  if (f.workflow && run.workflow_name !== f.workflow) return false;
  if (f.team && run.team_id !== f.team) return false;
  const created = Date.parse(run.create_time ?? "");
  if (f.from && created < Date.parse(f.from)) return false;
  if (f.to && created >= Date.parse(f.to)) return false;
  if (f.text) {
    const t = f.text.toLowerCase();
    if (!run.id.startsWith(t) && !run.workflow_name.toLowerCase().includes(t) && !(run.idempotency_key ?? "").toLowerCase().includes(t)) return false;
  }
  return true;
}

export default function RunsPage() {
  const org = useOrg();
  const { query } = useLocation();
  const filters: Filters = {
    status: query.get("status") ?? "",
    workflow: query.get("workflow") ?? "",
    team: query.get("team") ?? org.teamId,
    from: query.get("from") ?? "",
    to: query.get("to") ?? "",
    text: query.get("q") ?? "",
  };
  const key = JSON.stringify(filters);
  const [rows, setRows] = useState<Run[]>();
  const [next, setNext] = useState("");
  const [error, setError] = useState<ApiError>();
  const [loadingMore, setLoadingMore] = useState(false);
  const generation = useRef(0);

  useEffect(() => {
    const mine = ++generation.current;
    setRows(undefined);
    setError(undefined);
    unwrap(api.GET("/v1/workflow-runs", { params: { query: runQuery(filters) } })).then(
      (page) => {
        if (mine !== generation.current) return;
        setRows(page.data);
        setNext(page.next_page_token);
      },
      (err) => mine === generation.current && setError(toApiError(err)),
    );
  }, [key]);

  const loadMore = async () => {
    setLoadingMore(true);
    const mine = generation.current;
    try {
      const page = await unwrap(api.GET("/v1/workflow-runs", { params: { query: runQuery(filters, next) } }));
      if (mine !== generation.current) return;
      setRows((r) => [...(r ?? []), ...page.data.filter((x) => !r?.some((y) => y.id === x.id))]);
      setNext(page.next_page_token);
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setLoadingMore(false);
    }
  };

  const latest = useRef({ filters, rows });
  latest.current = { filters, rows };
  const pending = useRef(new Map<string, ReturnType<typeof setTimeout>>());
  const stream = useEventStream(`/v1/events/stream?kinds=${encodeURIComponent("workflow.run.*")}${filters.team ? `&team_id=${encodeURIComponent(filters.team)}` : ""}`, (e) => {
    const runId = e.run_id;
    if (!runId) return;
    const known = latest.current.rows?.some((r) => r.id === runId);
    if (!known && e.kind !== "workflow.run.created") return;
    // Several events of one run in a burst: fetch it once.
    clearTimeout(pending.current.get(runId));
    pending.current.set(
      runId,
      setTimeout(async () => {
        pending.current.delete(runId);
        const mine = generation.current;
        const run = await unwrap(api.GET("/v1/workflow-runs/{id}", { params: { path: { id: runId } } })).then(
          (r) => r.data,
          () => undefined,
        );
        if (!run || mine !== generation.current) return;
        setRows((current) => {
          if (!current) return current;
          const at = current.findIndex((r) => r.id === run.id);
          if (at >= 0) return current.map((r) => (r.id === run.id ? run : r));
          return matches(run, latest.current.filters) ? [run, ...current] : current;
        });
      }, 150),
    );
  });
  useEffect(() => () => pending.current.forEach((t) => clearTimeout(t)), []);

  return (
    <div>
      <div class="page-head">
        <h1>Runs</h1>
        <StreamStatus state={stream.state} />
      </div>
      <form class="filters" role="search" aria-label="Filter runs" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status
          <select value={filters.status} onChange={(e) => setQuery({ status: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            {statuses.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Workflow
          <input type="text" value={filters.workflow} placeholder="name" onChange={(e) => setQuery({ workflow: (e.target as HTMLInputElement).value.trim() })} />
        </label>
        <label>
          Team
          <select value={filters.team} onChange={(e) => setQuery({ team: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            {org.teams.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          From
          <input type="datetime-local" value={filters.from} onChange={(e) => setQuery({ from: (e.target as HTMLInputElement).value })} />
        </label>
        <label>
          To
          <input type="datetime-local" value={filters.to} onChange={(e) => setQuery({ to: (e.target as HTMLInputElement).value })} />
        </label>
        <label>
          Text
          <input type="search" value={filters.text} placeholder="run id, workflow, idempotency key" onChange={(e) => setQuery({ q: (e.target as HTMLInputElement).value.trim() })} />
        </label>
      </form>
      <ErrorNotice error={error} />
      {!rows && !error && <Loading what="runs" />}
      {rows && rows.length === 0 && (
        <Empty>
          No runs match. Register a workflow (paste <code>examples/smoke.json</code>) and start a run on the <a href="/workflows">Workflows</a> page.
        </Empty>
      )}
      {rows && rows.length > 0 && (
        <table class="runs" data-testid="runs-table">
          <caption class="visually-hidden">Runs, newest first</caption>
          <thead>
            <tr>
              <th scope="col">run</th>
              <th scope="col">workflow</th>
              <th scope="col">status</th>
              <th scope="col">created</th>
              <th scope="col">took</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id} data-run-id={r.id}>
                <td>
                  <a href={`/runs/${r.id}`}>
                    <code>{r.id.slice(0, 8)}</code>
                  </a>
                </td>
                <td>
                  {r.workflow_name} <span class="muted">v{r.workflow_version}</span>
                </td>
                <td>
                  <StatusBadge status={r.status} />
                </td>
                <td>
                  <Time value={r.create_time} />
                </td>
                <td>{duration(r.start_time, r.finish_time)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {rows && next && (
        <button type="button" onClick={() => void loadMore()} disabled={loadingMore} data-testid="load-more">
          {loadingMore ? "Loading…" : "Load more"}
        </button>
      )}
      {rows && <p class="muted small" role="status">{`${rows.length} run${rows.length === 1 ? "" : "s"} shown${next ? "; more available" : ""}.`}</p>}
    </div>
  );
}
