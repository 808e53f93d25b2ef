/** Webhooks of the organization with their recent deliveries and a redeliver button. */
import { useState } from "preact/hooks";
import { api, unwrap, type Schemas } from "../api/client.js";
import { Empty, ErrorNotice, Loading, SecretOnce, Section, StatusBadge, Time } from "../ui/components.js";
import { useAction, useLoad } from "../ui/hooks.js";
import { useOrg } from "../ui/org.js";

export default function WebhooksPage() {
  const org = useOrg();
  const hooks = useLoad(async () => (await unwrap(api.GET("/v1/organizations/{organization_id}/webhooks", { params: { path: { organization_id: org.organizationId } } }))).data, [org.organizationId]);
  const [url, setUrl] = useState("");
  const [filter, setFilter] = useState("workflow.run.*");
  const [secret, setSecret] = useState<string>();
  const create = useAction(async () => {
    const r = (await unwrap(api.POST("/v1/organizations/{organization_id}/webhooks", { params: { path: { organization_id: org.organizationId } }, body: { url, event_filter: filter } }))).data;
    setSecret(r.secret);
    setUrl("");
    hooks.reload();
  });
  if (!org.can("webhook.read")) return <p class="muted">You may not read this organization's webhooks.</p>;
  return (
    <div>
      <h1>Webhooks</h1>
      {org.can("webhook.write") && (
        <Section title="Add a webhook">
          <form
            class="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              void create.go();
            }}
          >
            <label>
              URL
              <input type="url" required value={url} placeholder="https://example.com/fabric" onInput={(e) => setUrl((e.target as HTMLInputElement).value)} />
            </label>
            <label>
              Event filter
              <input type="text" required value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} />
            </label>
            <button type="submit" class="primary" disabled={create.busy}>
              Add
            </button>
          </form>
          <ErrorNotice error={create.error} />
          {secret && <SecretOnce label="Signing secret" secret={secret} />}
        </Section>
      )}
      <ErrorNotice error={hooks.error} />
      {!hooks.data && !hooks.error && <Loading what="webhooks" />}
      {hooks.data?.length === 0 && <Empty>No webhooks.</Empty>}
      {hooks.data?.map((h) => <Webhook key={h.id} hook={h} />)}
    </div>
  );
}

function Webhook({ hook }: { hook: Schemas["Webhook"] }) {
  const org = useOrg();
  const deliveries = useLoad(
    async () => (await unwrap(api.GET("/v1/organizations/{organization_id}/webhooks/{webhook_id}/deliveries", { params: { path: { organization_id: org.organizationId, webhook_id: hook.id } } }))).data,
    [hook.id],
  );
  const redeliver = useAction(async (id: string) => {
    await unwrap(api.POST("/v1/organizations/{organization_id}/webhooks/{webhook_id}/deliveries/{id}/redeliver", { params: { path: { organization_id: org.organizationId, webhook_id: hook.id, id } }, body: {} }));
    deliveries.reload();
  });
  return (
    <Section title={hook.url}>
      <p>
        <code>{hook.event_filter}</code> · {hook.enabled ? "enabled" : `disabled (${hook.disabled_reason})`} · up to {hook.max_retries} retries
      </p>
      <ErrorNotice error={deliveries.error ?? redeliver.error} />
      {deliveries.data?.length === 0 && <Empty>No deliveries yet.</Empty>}
      {!!deliveries.data?.length && (
        <table>
          <thead>
            <tr>
              <th scope="col">event</th>
              <th scope="col">status</th>
              <th scope="col">attempts</th>
              <th scope="col">response</th>
              <th scope="col">last attempt</th>
              <th scope="col">actions</th>
            </tr>
          </thead>
          <tbody>
            {deliveries.data.map((d) => (
              <tr key={d.id}>
                <td>
                  <code>{d.event_kind}</code> <span class="muted">#{String(d.event_id)}</span>
                </td>
                <td>
                  <StatusBadge status={d.status} />
                </td>
                <td>{d.attempts}</td>
                <td>{d.response_status || d.error || "—"}</td>
                <td>
                  <Time value={d.last_attempt_time} />
                </td>
                <td>
                  {org.can("webhook.write") && (
                    <button type="button" onClick={() => void redeliver.go(d.id)} disabled={redeliver.busy}>
                      Redeliver
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}
