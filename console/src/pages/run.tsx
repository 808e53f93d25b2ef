/**
 * One run: its DAG drawn live from the event stream, a panel for the selected node
 * (bindings, output, error, attempts, routing and cost, streamed text), the context, the
 * event timeline, and the actions the caller's permissions allow.
 */
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, unwrap, type FabricEvent, type Run, type WorkflowDefinition } from "../api/client.js";
import { DagView } from "../graph/dag-view.js";
import { navigate } from "../router.js";
import { duration, Empty, ErrorNotice, JsonTree, Loading, parseJsonObject, Section, StatusBadge, Time } from "../ui/components.js";
import { useAction, useLoad } from "../ui/hooks.js";
import { StreamStatus, useEventStream } from "../ui/live.js";
import { useOrg } from "../ui/org.js";
import { applyEvent, emptyRunModel, resolveBinding, terminalRunStatuses, type NodeTrack } from "./run-model.js";

export default function RunPage({ params }: { params: string[] }) {
  const id = params[0]!;
  const run = useLoad(async () => (await unwrap(api.GET("/v1/workflow-runs/{id}", { params: { path: { id } } }))).data, [id]);
  const workflowId = run.data?.workflow_id;
  const workflow = useLoad(async () => (workflowId ? (await unwrap(api.GET("/v1/workflows/{id}", { params: { path: { id: workflowId } } }))).data : undefined), [workflowId]);
  if (run.error && !run.data) {
    return (
      <div>
        <h1>Run {id}</h1>
        {run.error.status === 404 ? <p data-testid="not-found">This run was not found: it does not exist, or it belongs to an organization or team you cannot see.</p> : null}
        <ErrorNotice error={run.error} />
        <p>
          <a href="/runs">Back to runs</a>
        </p>
      </div>
    );
  }
  if (!run.data) return <Loading what="the run" />;
  return (
    <>
      {run.error && <ErrorNotice error={run.error} />}
      <RunView run={run.data} workflow={workflow.data} reload={run.reload} />
    </>
  );
}

function RunView({ run, workflow, reload }: { run: Run; workflow: WorkflowDefinition | undefined; reload: () => void }) {
  const [, setVersion] = useState(0);
  const model = useRef(emptyRunModel());
  useEffect(() => {
    model.current = emptyRunModel();
  }, [run.id]);
  const [selected, setSelected] = useState<string>();
  const refetch = useRef<ReturnType<typeof setTimeout>>(undefined);
  const stream = useEventStream(
    `/v1/workflow-runs/${encodeURIComponent(run.id)}/events`,
    (e: FabricEvent) => {
      applyEvent(model.current, e);
      setVersion((n) => n + 1);
      // Outputs and the context come from the snapshot: refresh it after transitions that change them.
      if (/^workflow\.(node\.(completed|failed|skipped|cancelled|waiting)|run\.)/.test(e.kind)) {
        clearTimeout(refetch.current);
        refetch.current = setTimeout(reload, 250);
      }
    },
    { isFinished: () => terminalRunStatuses.has(model.current.status ?? "") },
  );
  useEffect(() => () => clearTimeout(refetch.current), []);
  const m = model.current;
  const status = m.status ?? run.status;
  const statuses = useMemo(() => Object.fromEntries(Object.entries(m.nodes).map(([k, n]) => [k, n.status])), [m.lastEventId]);
  const specNodes = workflow?.spec?.nodes ?? run.nodes.map((n) => ({ key: n.key, operation: n.operation, depends_on: [] as string[], inputs: undefined, outputs: {}, runtime: "native" as const, merge: "replace" as const }));
  const node = selected ? run.nodes.find((n) => n.key === selected) : undefined;
  const nodeSpec = selected ? specNodes.find((n) => n.key === selected) : undefined;
  return (
    <div class="run-page">
      <div class="page-head">
        <h1>
          Run <code>{run.id.slice(0, 8)}</code> of <a href={`/workflows/${encodeURIComponent(run.workflow_name)}`}>{run.workflow_name}</a> v{run.workflow_version}
        </h1>
        <div class="head-meta">
          <span data-testid="run-status">
            <StatusBadge status={status} />
          </span>
          <StreamStatus state={stream.state} />
        </div>
      </div>
      {stream.state !== "live" && <ErrorNotice error={stream.error} />}
      <dl class="facts">
        <div>
          <dt>Run id</dt>
          <dd>
            <code>{run.id}</code>
          </dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>
            <Time value={run.create_time} />
          </dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{duration(run.start_time, run.finish_time)}</dd>
        </div>
        <div>
          <dt>Priority</dt>
          <dd>{run.priority}</dd>
        </div>
        {run.rerun_of && (
          <div>
            <dt>Rerun of</dt>
            <dd>
              <a href={`/runs/${run.rerun_of}`} data-testid="rerun-of">
                {run.rerun_of.slice(0, 8)}
              </a>
            </dd>
          </div>
        )}
      </dl>
      {run.error && (
        <div class="notice error" role="alert" data-testid="run-error">
          <strong>Run failed: {run.error.code}</strong> — {run.error.message}
          {run.error.node_key && <> (node <code>{run.error.node_key}</code>)</>}
        </div>
      )}
      <RunActions run={{ ...run, status: status as Run["status"] }} onDone={reload} waiting={Object.entries(m.nodes).filter(([, n]) => n.status === "waiting").map(([k]) => k)} />
      <div class="run-grid">
        <Section title="Graph">
          <DagView nodes={specNodes} statuses={statuses} selected={selected} onSelect={setSelected} label={`Graph of run ${run.id}`} />
        </Section>
        <Section title={selected ? `Node ${selected}` : "Node"}>
          {selected ? <NodePanel nodeKey={selected} node={node} spec={nodeSpec} track={m.nodes[selected]} context={run.context} /> : <Empty>Select a node in the graph (click it, or Tab to it and press Enter).</Empty>}
        </Section>
      </div>
      <Section title="Context">
        <JsonTree value={run.context ?? {}} label="context" />
      </Section>
      <Section title="Timeline">
        <Timeline events={m.events} onSelect={setSelected} />
      </Section>
    </div>
  );
}

function RunActions({ run, onDone, waiting }: { run: Run; onDone: () => void; waiting: string[] }) {
  const org = useOrg();
  const [signalOpen, setSignalOpen] = useState(false);
  const [payload, setPayload] = useState("{}");
  const [signalNode, setSignalNode] = useState("");
  const [payloadError, setPayloadError] = useState<string>();
  const path = { params: { path: { id: run.id } } };
  const act = useAction(async (what: "cancel" | "pause" | "resume" | "rerun" | "signal") => {
    if (what === "cancel") await unwrap(api.POST("/v1/workflow-runs/{id}/cancel", { ...path, body: { reason: "cancelled from the console" } }));
    if (what === "pause") await unwrap(api.POST("/v1/workflow-runs/{id}/pause", { ...path, body: {} }));
    if (what === "resume") await unwrap(api.POST("/v1/workflow-runs/{id}/resume", { ...path, body: {} }));
    if (what === "signal") {
      const parsed = parseJsonObject(payload);
      if (parsed.error !== undefined) {
        setPayloadError(`Payload ${parsed.error}`);
        return;
      }
      await unwrap(api.POST("/v1/workflow-runs/{id}/signal", { ...path, body: { node_key: signalNode || waiting[0] || "", payload: parsed.value } }));
      setSignalOpen(false);
    }
    if (what === "rerun") {
      const next = (await unwrap(api.POST("/v1/workflow-runs/{id}/rerun", { ...path, body: {} }))).data;
      navigate(`/runs/${next.id}`);
      return;
    }
    onDone();
  });
  const team = run.team_id;
  const live = !terminalRunStatuses.has(run.status);
  const buttons: [string, "cancel" | "pause" | "resume" | "rerun", boolean][] = [
    ["Cancel run", "cancel", live && org.can("run.cancel", team)],
    ["Pause", "pause", ["pending", "running", "waiting"].includes(run.status) && org.can("run.control", team)],
    ["Resume", "resume", run.status === "paused" && org.can("run.control", team)],
    ["Rerun from failure", "rerun", ["failed", "cancelled"].includes(run.status) && org.can("run.create", team)],
  ];
  const canSignal = run.status === "waiting" && org.can("run.control", team);
  const shown = buttons.filter(([, , ok]) => ok);
  if (!shown.length && !canSignal) return null;
  return (
    <div class="actions" role="group" aria-label="Run actions">
      {shown.map(([label, what]) => (
        <button key={what} type="button" disabled={act.busy} onClick={() => void act.go(what)} data-action={what}>
          {label}
        </button>
      ))}
      {canSignal && (
        <button type="button" aria-expanded={signalOpen} onClick={() => setSignalOpen(!signalOpen)} data-action="signal">
          Signal…
        </button>
      )}
      {canSignal && signalOpen && (
        <form
          class="signal-form"
          onSubmit={(e) => {
            e.preventDefault();
            setPayloadError(undefined);
            void act.go("signal");
          }}
        >
          {waiting.length > 1 && (
            <label>
              Node
              <select value={signalNode} onChange={(e) => setSignalNode((e.target as HTMLSelectElement).value)}>
                {waiting.map((k) => (
                  <option key={k}>{k}</option>
                ))}
              </select>
            </label>
          )}
          <label>
            Payload (JSON object; becomes the waiting node's output)
            <textarea rows={4} value={payload} onInput={(e) => setPayload((e.target as HTMLTextAreaElement).value)} aria-invalid={!!payloadError} aria-describedby="payload-error" />
          </label>
          {payloadError && (
            <p id="payload-error" class="field-error" role="alert">
              {payloadError}
            </p>
          )}
          <button type="submit" class="primary" disabled={act.busy}>
            Send signal
          </button>
        </form>
      )}
      <ErrorNotice error={act.error} onDismiss={act.clear} />
    </div>
  );
}

interface NodeSpecLike {
  key: string;
  operation: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, string>;
  config?: Record<string, unknown>;
}

function NodePanel({ nodeKey, node, spec, track, context }: { nodeKey: string; node: Run["nodes"][number] | undefined; spec: NodeSpecLike | undefined; track: NodeTrack | undefined; context: Run["context"] }) {
  const output = node?.output as Record<string, unknown> | undefined;
  const routing = output?.["routing"] as Record<string, unknown> | undefined;
  const cost = output?.["cost"] as Record<string, unknown> | undefined;
  const inputs = Object.entries(spec?.inputs ?? {});
  return (
    <div class="node-panel" data-testid="node-panel" data-node={nodeKey}>
      <p>
        <code>{spec?.operation ?? node?.operation}</code> · <StatusBadge status={track?.status ?? node?.status ?? "blocked"} /> · attempt {node?.attempt ?? 0}
        {node?.max_attempts ? ` of ${node.max_attempts}` : ""}
      </p>
      <h3>Inputs</h3>
      {inputs.length ? (
        <table class="compact">
          <thead>
            <tr>
              <th scope="col">input</th>
              <th scope="col">binding</th>
              <th scope="col">value in the context now</th>
            </tr>
          </thead>
          <tbody>
            {inputs.map(([name, binding]) => {
              const r = resolveBinding(binding, context);
              return (
                <tr key={name}>
                  <th scope="row">{name}</th>
                  <td>
                    <code>{JSON.stringify(binding)}</code>
                  </td>
                  <td>
                    <code>{r.value === undefined ? "—" : JSON.stringify(r.value)}</code>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : (
        <Empty>No inputs.</Empty>
      )}
      {track?.streamed && track.status === "running" && (
        <>
          <h3>Streaming</h3>
          <pre class="streamed" aria-live="polite" data-testid="streamed">
            {track.streamed}
          </pre>
        </>
      )}
      {node?.error && (
        <div class="notice error" data-testid="node-error">
          <strong>{node.error.code}</strong> — {node.error.message}
        </div>
      )}
      {routing && (
        <>
          <h3>Routing</h3>
          <dl class="facts" data-testid="routing">
            <div>
              <dt>Provider</dt>
              <dd>{String(routing["provider"])}</dd>
            </div>
            <div>
              <dt>Model</dt>
              <dd>{String(routing["model"])}</dd>
            </div>
            <div>
              <dt>Strategy</dt>
              <dd>{String(routing["strategy"])}</dd>
            </div>
            <div class="wide">
              <dt>Why</dt>
              <dd>{String(routing["why"] ?? "")}</dd>
            </div>
          </dl>
        </>
      )}
      {cost && (
        <>
          <h3>Cost</h3>
          <dl class="facts" data-testid="cost">
            <div>
              <dt>Estimated</dt>
              <dd>{cost["estimated_usd"] == null ? "unpriced" : `$${String(cost["estimated_usd"])}`}</dd>
            </div>
            <div>
              <dt>Actual</dt>
              <dd>{cost["actual_usd"] == null ? "unpriced" : `$${String(cost["actual_usd"])}`}</dd>
            </div>
            <div>
              <dt>Price table</dt>
              <dd>{String(cost["price_table"] ?? "")}</dd>
            </div>
          </dl>
        </>
      )}
      <h3>Output</h3>
      {output ? (
        <div data-testid="node-output">
          <JsonTree value={output} label="output" />
        </div>
      ) : (
        <Empty>No output yet.</Empty>
      )}
      <h3>Attempts</h3>
      {track?.attempts.length ? (
        <table class="compact" data-testid="attempts">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">worker</th>
              <th scope="col">started</th>
              <th scope="col">took</th>
              <th scope="col">lease until</th>
              <th scope="col">outcome</th>
            </tr>
          </thead>
          <tbody>
            {track.attempts.map((a) => (
              <tr key={a.attempt}>
                <td>{a.attempt}</td>
                <td>
                  <code>{a.workerId?.slice(0, 8) ?? "—"}</code>
                </td>
                <td>
                  <Time value={a.startTime} />
                </td>
                <td>{a.finishTime ? duration(a.startTime, a.finishTime) : "…"}</td>
                <td>
                  <Time value={a.leaseExpiresAt} />
                </td>
                <td>
                  {a.outcome ?? "running"}
                  {a.error && (
                    <span class="muted">
                      {" "}
                      ({a.error.code}: {a.error.message})
                    </span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <Empty>Not started.</Empty>
      )}
    </div>
  );
}

function Timeline({ events, onSelect }: { events: FabricEvent[]; onSelect: (key: string) => void }) {
  if (!events.length) return <Empty>No events yet.</Empty>;
  return (
    <ol class="timeline" data-testid="timeline" tabIndex={0} aria-label="Events of this run, oldest first">
      {events.map((e) => (
        <li key={e.id}>
          <span class="muted small">#{e.id}</span> <Time value={e.create_time} /> <code>{e.kind}</code>
          {e.node_key && (
            <>
              {" "}
              <button type="button" class="link" onClick={() => onSelect(e.node_key!)}>
                {e.node_key}
              </button>
            </>
          )}
        </li>
      ))}
    </ol>
  );
}
