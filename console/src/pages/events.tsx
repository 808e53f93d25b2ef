/**
 * The organization's live event feed (`/v1/events/stream`), filtered by kind patterns,
 * run and team; it resumes after a drop with Last-Event-ID. The newest 500 are kept.
 */
import { useState } from "preact/hooks";
import type { FabricEvent } from "../api/client.js";
import { setQuery, useLocation } from "../router.js";
import { Empty, ErrorNotice, JsonTree, Time } from "../ui/components.js";
import { StreamStatus, useEventStream } from "../ui/live.js";
import { useOrg } from "../ui/org.js";

const keep = 500;

export default function EventsPage() {
  const org = useOrg();
  const { query } = useLocation();
  const kinds = query.get("kinds") ?? "";
  const run = query.get("run") ?? "";
  const team = query.get("team") ?? org.teamId;
  const replay = query.get("replay") === "1";
  const [events, setEvents] = useState<FabricEvent[]>([]);
  const params = new URLSearchParams();
  if (kinds) params.set("kinds", kinds);
  if (run) params.set("run_id", run);
  if (team) params.set("team_id", team);
  const url = `/v1/events/stream?${params}`;
  const stream = useEventStream(url, (e) => setEvents((list) => [e, ...list].slice(0, keep)), { afterId: replay ? 1 : 0 });
  return (
    <div>
      <div class="page-head">
        <h1>Events</h1>
        <StreamStatus state={stream.state} />
      </div>
      <form
        class="filters"
        role="search"
        aria-label="Filter events"
        onSubmit={(e) => {
          e.preventDefault();
          setEvents([]);
        }}
      >
        <label>
          Kinds
          <input type="text" value={kinds} placeholder="workflow.run.*, api_key.*" onChange={(e) => (setEvents([]), setQuery({ kinds: (e.target as HTMLInputElement).value.trim() }))} />
        </label>
        <label>
          Run id
          <input type="text" value={run} onChange={(e) => (setEvents([]), setQuery({ run: (e.target as HTMLInputElement).value.trim() }))} />
        </label>
        <label>
          Team
          <select value={team} onChange={(e) => (setEvents([]), setQuery({ team: (e.target as HTMLSelectElement).value }))}>
            <option value="">any</option>
            {org.teams.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </label>
        <label class="checkbox">
          <input type="checkbox" checked={replay} onChange={(e) => (setEvents([]), setQuery({ replay: (e.target as HTMLInputElement).checked ? "1" : undefined }))} />
          Replay history first
        </label>
      </form>
      <ErrorNotice error={stream.state === "failed" ? stream.error : undefined} />
      {events.length === 0 ? (
        <Empty>Waiting for events… (start a run to see some)</Empty>
      ) : (
        <table data-testid="events">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">when</th>
              <th scope="col">kind</th>
              <th scope="col">run / node</th>
              <th scope="col">payload</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr key={e.id}>
                <td>{e.id}</td>
                <td>
                  <Time value={e.create_time} />
                </td>
                <td>
                  <code>{e.kind}</code>
                </td>
                <td>
                  {e.run_id ? <a href={`/runs/${e.run_id}`}>{e.run_id.slice(0, 8)}</a> : "—"}
                  {e.node_key && <span class="muted"> / {e.node_key}</span>}
                </td>
                <td>{e.payload && Object.keys(e.payload).length ? <JsonTree value={e.payload} open={false} /> : <span class="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
