/**
 * One workflow: its versions, the spec of the chosen version (JSON and graph), a diff
 * between two versions, and a form to start a run with a JSON input checked before it is sent.
 */
import { useState } from "preact/hooks";
import { api, unwrap, type WorkflowDefinition } from "../api/client.js";
import { DagView } from "../graph/dag-view.js";
import { navigate, setQuery, useLocation } from "../router.js";
import { ErrorNotice, JsonTree, Loading, parseJsonObject, Section, Time } from "../ui/components.js";
import { useAction, useLoad } from "../ui/hooks.js";
import { useOrg } from "../ui/org.js";
import { diffLines } from "./line-diff.js";

export default function WorkflowPage({ params }: { params: string[] }) {
  const name = params[0]!;
  const { query } = useLocation();
  const versions = useLoad(async () => (await unwrap(api.GET("/v1/workflows", { params: { query: { name, page_size: 200 } } }))).data, [name]);
  if (versions.error) return <ErrorNotice error={versions.error} />;
  if (!versions.data) return <Loading what="the workflow" />;
  if (versions.data.length === 0) {
    return (
      <div>
        <h1>{name}</h1>
        <p data-testid="not-found">No workflow with this name is visible to you.</p>
      </div>
    );
  }
  const all = versions.data;
  const chosen = all.find((w) => String(w.version) === query.get("v")) ?? all[0]!;
  const against = all.find((w) => String(w.version) === query.get("diff"));
  return (
    <div>
      <h1>
        {name} <span class="muted">v{chosen.version}</span>
      </h1>
      <div class="filters">
        <label>
          Version
          <select value={String(chosen.version)} onChange={(e) => setQuery({ v: (e.target as HTMLSelectElement).value })}>
            {all.map((w) => (
              <option key={w.id} value={String(w.version)}>
                v{w.version} — {new Date(w.create_time ?? 0).toLocaleString()}
              </option>
            ))}
          </select>
        </label>
        <label>
          Compare with
          <select value={against ? String(against.version) : ""} onChange={(e) => setQuery({ diff: (e.target as HTMLSelectElement).value })}>
            <option value="">—</option>
            {all
              .filter((w) => w.id !== chosen.id)
              .map((w) => (
                <option key={w.id} value={String(w.version)}>
                  v{w.version}
                </option>
              ))}
          </select>
        </label>
      </div>
      <StartRun workflow={chosen} />
      {against && <SpecDiff before={against} after={chosen} />}
      <Section title="Graph">
        <DagView nodes={chosen.spec?.nodes ?? []} label={`Graph of ${name} v${chosen.version}`} />
      </Section>
      <Section title="Spec">
        <p class="muted small">
          Registered <Time value={chosen.create_time} />; id <code>{chosen.id}</code>
        </p>
        <JsonTree value={chosen.spec ?? {}} label="spec" />
      </Section>
    </div>
  );
}

function SpecDiff({ before, after }: { before: WorkflowDefinition; after: WorkflowDefinition }) {
  const lines = diffLines(JSON.stringify(before.spec, null, 2), JSON.stringify(after.spec, null, 2));
  const changed = lines.filter((l) => l.op !== "same").length;
  return (
    <Section title={`Changes from v${before.version} to v${after.version}`}>
      <p class="muted small">{changed ? `${changed} line${changed === 1 ? "" : "s"} changed.` : "The specs are identical."}</p>
      <pre class="diff" data-testid="diff" tabIndex={0} aria-label={`Line changes from v${before.version} to v${after.version}`}>
        {lines.map((l, i) => (
          <div key={i} class={`diff-${l.op}`}>
            <span aria-hidden="true">{l.op === "added" ? "+ " : l.op === "removed" ? "- " : "  "}</span>
            {l.op !== "same" && <span class="visually-hidden">{l.op}: </span>}
            {l.text}
          </div>
        ))}
      </pre>
    </Section>
  );
}

function StartRun({ workflow }: { workflow: WorkflowDefinition }) {
  const org = useOrg();
  const [input, setInput] = useState("{}");
  const [key, setKey] = useState("");
  const [inputError, setInputError] = useState<string>();
  const start = useAction(async () => {
    const parsed = parseJsonObject(input);
    if (parsed.error !== undefined) {
      setInputError(`Input ${parsed.error}`);
      return;
    }
    setInputError(undefined);
    const run = (await unwrap(api.POST("/v1/workflow-runs", { body: { workflow_id: workflow.id, input: parsed.value, idempotency_key: key || undefined } }))).data;
    navigate(`/runs/${run.id}`);
  });
  if (!org.can("run.create", workflow.team_id)) return null;
  return (
    <Section title="Start a run">
      <form
        class="start-run"
        onSubmit={(e) => {
          e.preventDefault();
          void start.go();
        }}
      >
        <label>
          Input (a JSON object; it becomes the run's context)
          <textarea
            rows={3}
            value={input}
            spellcheck={false}
            onInput={(e) => {
              const v = (e.target as HTMLTextAreaElement).value;
              setInput(v);
              setInputError(parseJsonObject(v).error ? `Input ${parseJsonObject(v).error}` : undefined);
            }}
            aria-invalid={!!inputError}
            aria-describedby="input-error"
          />
        </label>
        {inputError && (
          <p id="input-error" class="field-error" role="alert">
            {inputError}
          </p>
        )}
        <label>
          Idempotency key (optional)
          <input type="text" value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit" class="primary" disabled={start.busy || !!inputError}>
          Start run of v{workflow.version}
        </button>
      </form>
      <ErrorNotice error={start.error} />
    </Section>
  );
}
