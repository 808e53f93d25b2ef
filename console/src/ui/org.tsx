/**
 * The organization (and optionally the team) the console is looking at, who the caller
 * is there, and what they may do — from `GET /v1/me/permissions`, so buttons for actions
 * the caller may not take are never shown. The API checks every call anyway.
 */
import { createContext, type ComponentChildren } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import { api, unwrap, type Schemas } from "../api/client.js";
import { session } from "../api/session.js";
import { ErrorNotice, Loading } from "./components.js";
import { toApiError, useSession } from "./hooks.js";
import type { ApiError } from "../api/problem.js";

export interface OrgState {
  me: Schemas["Principal"];
  organizations: Schemas["MyOrganization"][];
  organizationId: string;
  permissions: Schemas["GetMyPermissionsResponse"];
  teams: Schemas["Team"][];
  /** The team picked in the switcher, used as the default filter; empty: all teams. */
  teamId: string;
  setTeam: (id: string) => void;
  /** Whether the caller may take `action` organization-wide, or on `teamId`'s resources. */
  can: (action: string, teamId?: string) => boolean;
}

const OrgContext = createContext<OrgState | undefined>(undefined);

export function useOrg(): OrgState {
  const org = useContext(OrgContext);
  if (!org) throw new Error("useOrg outside OrgProvider");
  return org;
}

export function OrgProvider({ children }: { children: ComponentChildren }) {
  const s = useSession();
  const [state, setState] = useState<Omit<OrgState, "teamId" | "setTeam" | "can">>();
  const [error, setError] = useState<ApiError>();
  const [teamId, setTeam] = useState("");
  const wanted = s.organizationId;

  useEffect(() => {
    let stale = false;
    (async () => {
      const me = (await unwrap(api.GET("/v1/me"))).data;
      const organizations = (await unwrap(api.GET("/v1/me/organizations"))).data;
      const organizationId = me.organization_id ?? (organizations.some((o) => o.id === wanted) ? wanted : organizations.find((o) => !o.archived)?.id);
      if (!organizationId) throw new Error("you belong to no organization yet: ask an owner for an invitation, or create one with POST /v1/organizations");
      if (session.kind === "user" && organizationId !== session.organizationId) {
        session.setOrganization(organizationId);
        return; // the session change re-runs this effect with the header set
      }
      const permissions = (await unwrap(api.GET("/v1/me/permissions", { params: { query: { organization_id: organizationId } } }))).data;
      const canReadTeams = permissions.actions.includes("team.read");
      const teams = canReadTeams ? (await unwrap(api.GET("/v1/organizations/{organization_id}/teams", { params: { path: { organization_id: organizationId } } }))).data : [];
      if (!stale) {
        setError(undefined);
        setState({ me: me.principal, organizations, organizationId, permissions, teams });
      }
    })().catch((err) => !stale && setError(toApiError(err)));
    return () => {
      stale = true;
    };
  }, [wanted]);

  if (error) return <ErrorNotice error={error} />;
  if (!state) return <Loading what="your organization" />;
  const can = (action: string, team?: string) => {
    const p = state.permissions;
    if (p.actions.includes(action)) return true;
    return !!team && p.teams.some((t) => t.team_id === team && t.actions.includes(action));
  };
  return <OrgContext.Provider value={{ ...state, teamId, setTeam, can }}>{children}</OrgContext.Provider>;
}
