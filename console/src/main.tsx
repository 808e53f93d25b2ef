/**
 * The Fabric console: a client of the public API and nothing else. Every page is loaded
 * on demand, so the first visit downloads only this shell and the sign-in page.
 */
import { render, type ComponentType } from "preact";
import { useEffect, useState } from "preact/hooks";
import { session } from "./api/session.js";
import { interceptLinks, navigate, useLocation } from "./router.js";
import { ErrorNotice, Loading } from "./ui/components.js";
import { toApiError, useSession } from "./ui/hooks.js";
import { OrgProvider, useOrg } from "./ui/org.js";
import { SignIn, showSignInLinkError } from "./pages/sign-in.js";
import type { ApiError } from "./api/problem.js";
import "./styles.css";

type PageModule = { default: ComponentType<{ params: string[] }> };

/** Path patterns → page modules; the first match wins. Captured groups become `params`. */
const routes: [RegExp, string, () => Promise<PageModule>][] = [
  [/^\/runs\/([^/]+)$/, "Run", () => import("./pages/run.js")],
  [/^\/runs\/?$/, "Runs", () => import("./pages/runs.js")],
  [/^\/workflows\/([^/]+)$/, "Workflow", () => import("./pages/workflow.js")],
  [/^\/workflows\/?$/, "Workflows", () => import("./pages/workflows.js")],
  [/^\/spend\/?$/, "Spend", () => import("./pages/spend.js")],
  [/^\/access(?:\/([a-z-]+))?\/?$/, "Access", () => import("./pages/access.js")],
  [/^\/events\/?$/, "Events", () => import("./pages/events.js")],
  [/^\/webhooks\/?$/, "Webhooks", () => import("./pages/webhooks.js")],
];

const nav: [string, string][] = [
  ["/runs", "Runs"],
  ["/workflows", "Workflows"],
  ["/spend", "Spend"],
  ["/access", "Access"],
  ["/events", "Events"],
  ["/webhooks", "Webhooks"],
];

function Page({ path }: { path: string }) {
  const match = routes.map(([re, title, load]) => ({ m: re.exec(path), title, load })).find((r) => r.m);
  const [loaded, setLoaded] = useState<{ path: string; Component: PageModule["default"] }>();
  const [error, setError] = useState<ApiError>();
  useEffect(() => {
    if (!match) return;
    let stale = false;
    document.title = `${match.title} · Fabric`;
    match.load().then(
      (mod) => !stale && setLoaded({ path, Component: mod.default }),
      (err) => !stale && setError(toApiError(err)),
    );
    return () => {
      stale = true;
    };
  }, [match?.load]);
  if (!match) {
    return (
      <div>
        <h1>Page not found</h1>
        <p>
          Nothing lives at <code>{path}</code>. <a href="/runs">Go to runs</a>.
        </p>
      </div>
    );
  }
  if (error) return <ErrorNotice error={error} />;
  if (!loaded) return <Loading what="the page" />;
  const { Component } = loaded;
  return <Component params={match.m!.slice(1).map((p) => (p === undefined ? "" : decodeURIComponent(p)))} />;
}

function OrgSwitcher() {
  const org = useOrg();
  return (
    <div class="switchers">
      <label>
        <span class="visually-hidden">Organization</span>
        <select
          aria-label="Organization"
          value={org.organizationId}
          disabled={session.kind === "api_key" || org.organizations.length < 2}
          onChange={(e) => session.setOrganization((e.target as HTMLSelectElement).value)}
        >
          {org.organizations.map((o) => (
            <option key={o.id} value={o.id}>
              {o.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        <span class="visually-hidden">Team</span>
        <select aria-label="Team" value={org.teamId} onChange={(e) => org.setTeam((e.target as HTMLSelectElement).value)}>
          <option value="">All teams</option>
          {org.teams.map((t) => (
            <option key={t.id} value={t.id}>
              {t.name}
            </option>
          ))}
        </select>
      </label>
    </div>
  );
}

function Who() {
  const org = useOrg();
  const role = org.permissions.role;
  return (
    <span class="who" data-testid="who">
      {org.me.display_name}
      {role && <span class="muted"> · {role}</span>}
    </span>
  );
}

function Shell({ path }: { path: string }) {
  return (
    <OrgProvider>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a href="/runs" class="brand" aria-label="Fabric console home">
          Fabric
        </a>
        <nav aria-label="Main">
          <ul>
            {nav.map(([href, label]) => (
              <li key={href}>
                <a href={href} aria-current={path.startsWith(href) ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
            <li>
              <a href="/docs">API docs</a>
            </li>
          </ul>
        </nav>
        <OrgSwitcher />
        <Who />
        <button type="button" onClick={() => session.signOut().then(() => navigate("/sign-in"))}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Page key={path} path={path} />
      </main>
    </OrgProvider>
  );
}

function App({ ready }: { ready: boolean }) {
  const s = useSession();
  const { path } = useLocation();
  if (!ready) return <Loading what="the console" />;
  if (!s.signedIn || path === "/sign-in") {
    return (
      <main id="main">
        <SignIn />
      </main>
    );
  }
  if (path === "/") {
    navigate("/runs", { replace: true });
    return null;
  }
  return <Shell path={path} />;
}

async function start() {
  const root = document.getElementById("app")!;
  interceptLinks(root);
  render(<App ready={false} />, root);
  // The one-time link puts its token in the fragment, which never reaches a server log;
  // take it out of the address bar before anything else happens.
  const link = /^#sign-in=([A-Za-z0-9_-]+)$/.exec(location.hash)?.[1];
  if (link) history.replaceState(null, "", location.pathname + location.search);
  if (link) await session.signInWithLink(link).catch((err) => showSignInLinkError(toApiError(err)));
  else await session.restore();
  if (session.signedIn && (location.pathname === "/sign-in" || location.pathname === "/")) navigate("/runs", { replace: true });
  render(<App ready />, root);
}

void start();
