import { useState } from "preact/hooks";
import { api, unwrap, type Schemas } from "../api/client.js";
import { navigate } from "../router.js";
import { Empty, ErrorNotice, Loading, parseJsonObject, Section, Time } from "../ui/components.js";
import { useAction, useLoad } from "../ui/hooks.js";
import { useOrg } from "../ui/org.js";

export default function WorkflowsPage() {
  const org = useOrg();
  const [token, setToken] = useState<string>();
  const list = useLoad(async () => unwrap(api.GET("/v1/workflows", { params: { query: { page_size: 100, page_token: token } } })), [token]);
  const latest = new Map<string, NonNullable<typeof list.data>["data"][number]>();
  for (const w of list.data?.data ?? []) if (!latest.has(w.name)) latest.set(w.name, w);
  return (
    <div>
      <h1>Workflows</h1>
      {org.can("workflow.write") && <RegisterWorkflow />}
      <Section title="Registered workflows">
        <ErrorNotice error={list.error} />
        {list.loading && !list.data && <Loading what="workflows" />}
        {list.data && latest.size === 0 && <Empty>No workflows yet. Register one above, or with `fabric run examples/smoke.json`.</Empty>}
        {latest.size > 0 && (
          <table data-testid="workflows-table">
            <thead>
              <tr>
                <th scope="col">name</th>
                <th scope="col">latest version</th>
                <th scope="col">nodes</th>
                <th scope="col">registered</th>
              </tr>
            </thead>
            <tbody>
              {[...latest.values()].map((w) => (
                <tr key={w.id}>
                  <td>
                    <a href={`/workflows/${encodeURIComponent(w.name)}`}>{w.name}</a>
                  </td>
                  <td>v{w.version}</td>
                  <td>{w.spec?.nodes.length ?? 0}</td>
                  <td>
                    <Time value={w.create_time} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {list.data?.next_page_token && (
          <button type="button" onClick={() => setToken(list.data!.next_page_token)}>
            Older definitions
          </button>
        )}
      </Section>
    </div>
  );
}

/** Paste a spec: it is validated by the API first, then registered (a new version when it changed). */
function RegisterWorkflow() {
  const [text, setText] = useState("");
  const [problems, setProblems] = useState<string[]>([]);
  const register = useAction(async () => {
    setProblems([]);
    const parsed = parseJsonObject(text);
    if (parsed.error !== undefined) {
      setProblems([`The spec is ${parsed.error}`]);
      return;
    }
    const check = (await unwrap(api.POST("/v1/workflows/validate", { body: { spec: parsed.value as Schemas["WorkflowSpecInput"] } }))).data;
    if (!check.valid) {
      setProblems(check.issues.map((i) => `${i.path || "/"}: ${i.message}`));
      return;
    }
    const wf = (await unwrap(api.POST("/v1/workflows", { body: parsed.value as Schemas["WorkflowSpecInput"] }))).data;
    navigate(`/workflows/${encodeURIComponent(wf.name)}?v=${wf.version}`);
  });
  return (
    <Section title="Register a workflow">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void register.go();
        }}
      >
        <label>
          Workflow spec (JSON: <code>{`{"name": …, "nodes": […]}`}</code>)
          <textarea rows={6} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} spellcheck={false} aria-describedby="spec-problems" />
        </label>
        {problems.length > 0 && (
          <ul id="spec-problems" class="field-error" role="alert">
            {problems.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        )}
        <button type="submit" class="primary" disabled={register.busy || !text.trim()}>
          Validate and register
        </button>
      </form>
      <ErrorNotice error={register.error} />
    </Section>
  );
}
