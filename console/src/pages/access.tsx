/**
 * Access: members and their roles, invitations, API keys (the secret shown once),
 * service accounts and the audit log. Each tab and each button appears only when the
 * caller's permissions allow it.
 */
import { useState } from "preact/hooks";
import { api, unwrap, type Schemas } from "../api/client.js";
import { setQuery, useLocation } from "../router.js";
import { Empty, ErrorNotice, JsonTree, Loading, SecretOnce, Section, Time } from "../ui/components.js";
import { useAction, useLoad } from "../ui/hooks.js";
import { useOrg } from "../ui/org.js";

const tabs = [
  ["members", "Members", "member.read"],
  ["invitations", "Invitations", "invitation.read"],
  ["api-keys", "API keys", "api_key.read"],
  ["service-accounts", "Service accounts", "member.read"],
  ["audit", "Audit log", "audit.read"],
] as const;

const orgRoles = ["owner", "admin", "member", "viewer"];

export default function AccessPage({ params }: { params: string[] }) {
  const org = useOrg();
  const visible = tabs.filter(([, , action]) => org.can(action) || (action === "api_key.read" && org.permissions.own_actions.includes("api_key.read")));
  const tab = visible.find(([id]) => id === params[0]) ?? visible[0];
  return (
    <div>
      <h1>Access</h1>
      <nav aria-label="Access sections" class="tabs">
        <ul>
          {visible.map(([id, label]) => (
            <li key={id}>
              <a href={`/access/${id}`} aria-current={tab?.[0] === id ? "page" : undefined}>
                {label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      {!tab && <p class="muted">Your role has no access-management permissions here.</p>}
      {tab?.[0] === "members" && <Members />}
      {tab?.[0] === "invitations" && <Invitations />}
      {tab?.[0] === "api-keys" && <ApiKeys />}
      {tab?.[0] === "service-accounts" && <ServiceAccounts />}
      {tab?.[0] === "audit" && <Audit />}
    </div>
  );
}

function useMembers() {
  const org = useOrg();
  return useLoad(async () => (await unwrap(api.GET("/v1/organizations/{organization_id}/members", { params: { path: { organization_id: org.organizationId } } }))).data, [org.organizationId]);
}

function Members() {
  const org = useOrg();
  const members = useMembers();
  const path = (id: string) => ({ params: { path: { organization_id: org.organizationId, id } } });
  const change = useAction(async (m: Schemas["Membership"], role: string) => {
    await unwrap(api.PATCH("/v1/organizations/{organization_id}/members/{id}", { ...path(m.id), body: { role } }));
    members.reload();
  });
  const remove = useAction(async (m: Schemas["Membership"]) => {
    await unwrap(api.DELETE("/v1/organizations/{organization_id}/members/{id}", path(m.id)));
    members.reload();
  });
  const teamName = (id?: string) => (id ? (org.teams.find((t) => t.id === id)?.name ?? id.slice(0, 8)) : "organization");
  return (
    <Section title="Members and roles">
      <ErrorNotice error={members.error ?? change.error ?? remove.error} />
      {!members.data && !members.error && <Loading what="members" />}
      {members.data && (
        <table data-testid="members">
          <thead>
            <tr>
              <th scope="col">who</th>
              <th scope="col">kind</th>
              <th scope="col">scope</th>
              <th scope="col">role</th>
              <th scope="col">since</th>
              {org.can("member.remove") && <th scope="col">actions</th>}
            </tr>
          </thead>
          <tbody>
            {members.data.map((m) => (
              <tr key={m.id}>
                <td>
                  {m.principal?.display_name} <span class="muted">{m.principal?.email}</span>
                </td>
                <td>{m.principal?.kind === "service_account" ? "service account" : "user"}</td>
                <td>{teamName(m.team_id)}</td>
                <td>
                  {org.can("member.update") ? (
                    <select aria-label={`Role of ${m.principal?.display_name ?? m.id}`} value={m.role} onChange={(e) => void change.go(m, (e.target as HTMLSelectElement).value)}>
                      {(m.team_id ? ["maintainer", "member"] : orgRoles).map((r) => (
                        <option key={r}>{r}</option>
                      ))}
                    </select>
                  ) : (
                    m.role
                  )}
                </td>
                <td>
                  <Time value={m.create_time} />
                </td>
                {org.can("member.remove") && (
                  <td>
                    <button type="button" onClick={() => confirm(`Remove ${m.principal?.display_name ?? "this member"}?`) && void remove.go(m)}>
                      Remove
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function Invitations() {
  const org = useOrg();
  const invitations = useLoad(async () => (await unwrap(api.GET("/v1/organizations/{organization_id}/invitations", { params: { path: { organization_id: org.organizationId } } }))).data, [org.organizationId]);
  const [email, setEmail] = useState("");
  const [role, setRole] = useState("member");
  const [token, setToken] = useState<string>();
  const invite = useAction(async () => {
    const r = (await unwrap(api.POST("/v1/organizations/{organization_id}/invitations", { params: { path: { organization_id: org.organizationId } }, body: { email, role } }))).data;
    setToken(r.token);
    setEmail("");
    invitations.reload();
  });
  const revoke = useAction(async (id: string) => {
    await unwrap(api.POST("/v1/organizations/{organization_id}/invitations/{id}/revoke", { params: { path: { organization_id: org.organizationId, id } }, body: {} }));
    invitations.reload();
  });
  return (
    <>
      {org.can("member.invite") && (
        <Section title="Invite someone">
          <form
            class="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              void invite.go();
            }}
          >
            <label>
              Email
              <input type="email" required value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />
            </label>
            <label>
              Role
              <select value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value)}>
                {orgRoles.map((r) => (
                  <option key={r}>{r}</option>
                ))}
              </select>
            </label>
            <button type="submit" class="primary" disabled={invite.busy}>
              Invite
            </button>
          </form>
          <ErrorNotice error={invite.error} />
          {token && <SecretOnce label="Invitation token (the invitee accepts it with POST /v1/invitations/accept)" secret={token} />}
        </Section>
      )}
      <Section title="Invitations">
        <ErrorNotice error={invitations.error ?? revoke.error} />
        {invitations.data?.length === 0 && <Empty>No invitations.</Empty>}
        {!!invitations.data?.length && (
          <table>
            <thead>
              <tr>
                <th scope="col">email</th>
                <th scope="col">role</th>
                <th scope="col">status</th>
                <th scope="col">expires</th>
                <th scope="col">actions</th>
              </tr>
            </thead>
            <tbody>
              {invitations.data.map((i) => (
                <tr key={i.id}>
                  <td>{i.email}</td>
                  <td>{i.role}</td>
                  <td>{i.status}</td>
                  <td>
                    <Time value={i.expire_time} />
                  </td>
                  <td>
                    {i.status === "pending" && org.can("invitation.revoke") && (
                      <button type="button" onClick={() => void revoke.go(i.id)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}

function ApiKeys() {
  const org = useOrg();
  const keys = useLoad(async () => (await unwrap(api.GET("/v1/organizations/{organization_id}/api-keys", { params: { path: { organization_id: org.organizationId } } }))).data, [org.organizationId]);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState("");
  const [secret, setSecret] = useState<string>();
  const create = useAction(async () => {
    const body = { name, scopes: scopes.split(/[\s,]+/).filter(Boolean) };
    const r = (await unwrap(api.POST("/v1/organizations/{organization_id}/api-keys", { params: { path: { organization_id: org.organizationId } }, body }))).data;
    setSecret(r.key);
    setName("");
    keys.reload();
  });
  const revoke = useAction(async (id: string) => {
    await unwrap(api.POST("/v1/organizations/{organization_id}/api-keys/{id}/revoke", { params: { path: { organization_id: org.organizationId, id } }, body: {} }));
    keys.reload();
  });
  const mayCreate = org.can("api_key.create") || org.permissions.own_actions.includes("api_key.create");
  const mayRevoke = org.can("api_key.revoke") || org.permissions.own_actions.includes("api_key.revoke");
  return (
    <>
      {mayCreate && (
        <Section title="Create an API key">
          <form
            class="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              void create.go();
            }}
          >
            <label>
              Name
              <input type="text" required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
            </label>
            <label>
              Scopes (empty: everything you may do)
              <input type="text" value={scopes} placeholder="workflows:read runs:read" onInput={(e) => setScopes((e.target as HTMLInputElement).value)} />
            </label>
            <button type="submit" class="primary" disabled={create.busy}>
              Create key
            </button>
          </form>
          <ErrorNotice error={create.error} />
          {secret && <SecretOnce label="New API key" secret={secret} />}
        </Section>
      )}
      <Section title="API keys">
        <ErrorNotice error={keys.error ?? revoke.error} />
        {keys.data?.length === 0 && <Empty>No API keys.</Empty>}
        {!!keys.data?.length && (
          <table data-testid="api-keys">
            <thead>
              <tr>
                <th scope="col">name</th>
                <th scope="col">prefix</th>
                <th scope="col">scopes</th>
                <th scope="col">last used</th>
                <th scope="col">state</th>
                <th scope="col">actions</th>
              </tr>
            </thead>
            <tbody>
              {keys.data.map((k) => (
                <tr key={k.id}>
                  <td>{k.name}</td>
                  <td>
                    <code>{k.prefix}</code>
                  </td>
                  <td>{k.scopes.join(", ") || <span class="muted">all</span>}</td>
                  <td>
                    <Time value={k.last_used_time} />
                  </td>
                  <td>{k.revoke_time ? "revoked" : "active"}</td>
                  <td>
                    {!k.revoke_time && mayRevoke && (
                      <button type="button" onClick={() => confirm(`Revoke the key ${k.name}? Clients using it stop working at once.`) && void revoke.go(k.id)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}

function ServiceAccounts() {
  const org = useOrg();
  const members = useMembers();
  const [name, setName] = useState("");
  const [role, setRole] = useState("member");
  const create = useAction(async () => {
    await unwrap(api.POST("/v1/organizations/{organization_id}/service-accounts", { params: { path: { organization_id: org.organizationId } }, body: { display_name: name, role } }));
    setName("");
    members.reload();
  });
  const accounts = (members.data ?? []).filter((m) => m.principal?.kind === "service_account");
  return (
    <>
      {org.can("member.invite") && (
        <Section title="Create a service account">
          <form
            class="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              void create.go();
            }}
          >
            <label>
              Name
              <input type="text" required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
            </label>
            <label>
              Role
              <select value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value)}>
                {orgRoles.filter((r) => r !== "owner").map((r) => (
                  <option key={r}>{r}</option>
                ))}
              </select>
            </label>
            <button type="submit" class="primary" disabled={create.busy}>
              Create
            </button>
          </form>
          <p class="muted small">Give it an API key from the API keys tab (choose it as the key's principal over the API).</p>
          <ErrorNotice error={create.error} />
        </Section>
      )}
      <Section title="Service accounts">
        <ErrorNotice error={members.error} />
        {members.data && accounts.length === 0 && <Empty>No service accounts.</Empty>}
        {accounts.length > 0 && (
          <table>
            <thead>
              <tr>
                <th scope="col">name</th>
                <th scope="col">principal id</th>
                <th scope="col">role</th>
                <th scope="col">since</th>
              </tr>
            </thead>
            <tbody>
              {accounts.map((m) => (
                <tr key={m.id}>
                  <td>{m.principal?.display_name}</td>
                  <td>
                    <code>{m.principal?.id}</code>
                  </td>
                  <td>{m.role}</td>
                  <td>
                    <Time value={m.create_time} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}

function Audit() {
  const org = useOrg();
  const { query } = useLocation();
  const f = { action: query.get("action") ?? "", resource: query.get("resource") ?? "", actor: query.get("actor") ?? "", since: query.get("since") ?? "", until: query.get("until") ?? "" };
  const [pages, setPages] = useState<string[]>([""]);
  const token = pages.at(-1) || undefined;
  const entries = useLoad(
    () =>
      unwrap(
        api.GET("/v1/organizations/{organization_id}/audit-log", {
          params: {
            path: { organization_id: org.organizationId },
            query: { action: f.action || undefined, resource: f.resource || undefined, actor_principal_id: f.actor || undefined, since: f.since ? new Date(f.since).toISOString() : undefined, until: f.until ? new Date(f.until).toISOString() : undefined, page_size: 50, page_token: token },
          },
        }),
      ),
    [org.organizationId, JSON.stringify(f), token],
  );
  const filter = (k: string) => (e: Event) => {
    setPages([""]);
    setQuery({ [k]: (e.target as HTMLInputElement).value.trim() });
  };
  return (
    <Section title="Audit log">
      <form class="filters" role="search" aria-label="Filter the audit log" onSubmit={(e) => e.preventDefault()}>
        <label>
          Action
          <input type="text" value={f.action} placeholder="e.g. api_key.create" onChange={filter("action")} />
        </label>
        <label>
          Resource
          <input type="text" value={f.resource} placeholder="e.g. api_key:…" onChange={filter("resource")} />
        </label>
        <label>
          Actor (principal id)
          <input type="text" value={f.actor} onChange={filter("actor")} />
        </label>
        <label>
          Since
          <input type="datetime-local" value={f.since} onChange={filter("since")} />
        </label>
        <label>
          Until
          <input type="datetime-local" value={f.until} onChange={filter("until")} />
        </label>
      </form>
      <ErrorNotice error={entries.error} />
      {!entries.data && !entries.error && <Loading what="the audit log" />}
      {entries.data?.data.length === 0 && <Empty>No entries match.</Empty>}
      {!!entries.data?.data.length && (
        <table data-testid="audit">
          <thead>
            <tr>
              <th scope="col">when</th>
              <th scope="col">action</th>
              <th scope="col">resource</th>
              <th scope="col">actor</th>
              <th scope="col">details</th>
            </tr>
          </thead>
          <tbody>
            {entries.data.data.map((e) => (
              <tr key={String(e.id)}>
                <td>
                  <Time value={e.create_time} />
                </td>
                <td>
                  <code>{e.action}</code>
                </td>
                <td>
                  <code>{e.resource}</code>
                </td>
                <td>
                  <code>{e.actor_principal_id?.slice(0, 8) ?? "—"}</code>
                </td>
                <td>{e.summary && Object.keys(e.summary).length ? <JsonTree value={e.summary} open={false} /> : <span class="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div class="pager">
        {pages.length > 1 && (
          <button type="button" onClick={() => setPages(pages.slice(0, -1))}>
            Newer
          </button>
        )}
        {entries.data?.next_page_token && (
          <button type="button" onClick={() => setPages([...pages, entries.data!.next_page_token])}>
            Older
          </button>
        )}
      </div>
    </Section>
  );
}
