/** Organizations, their teams, memberships (and service accounts), and invitations. */
import { unwrap, type RequestOptions, type RestTransport } from "../core/rest-transport.js";
import type {
  AddMemberRequest,
  CreateInvitationRequest,
  CreateInvitationResponse,
  CreateOrganizationRequest,
  CreateServiceAccountRequest,
  CreateTeamRequest,
  Invitation,
  ListMembersParams,
  Membership,
  Organization,
  Team,
  UpdateMemberRequest,
  UpdateOrganizationRequest,
  UpdateTeamRequest,
} from "../types.js";

export class OrganizationsResource {
  constructor(private readonly transport: RestTransport) {}

  /** Creates an organization; the calling user becomes its owner. */
  async create(request: CreateOrganizationRequest, options?: RequestOptions): Promise<Organization> {
    return unwrap(await this.transport.call("post", "/v1/organizations", { body: request, options }), "createOrganization");
  }

  async get(id: string, options?: RequestOptions): Promise<Organization> {
    return unwrap(await this.transport.call("get", "/v1/organizations/{id}", { path: { id }, options }), "getOrganization");
  }

  async update(id: string, request: UpdateOrganizationRequest, options?: RequestOptions): Promise<Organization> {
    return unwrap(await this.transport.call("patch", "/v1/organizations/{id}", { path: { id }, body: request, options }), "updateOrganization");
  }

  async archive(id: string, options?: RequestOptions): Promise<Organization> {
    return unwrap(await this.transport.call("post", "/v1/organizations/{id}/archive", { path: { id }, body: {}, options }), "archiveOrganization");
  }
}

export class TeamsResource {
  constructor(private readonly transport: RestTransport) {}

  async create(organizationId: string, request: CreateTeamRequest, options?: RequestOptions): Promise<Team> {
    return unwrap(await this.transport.call("post", "/v1/organizations/{organization_id}/teams", { path: { organization_id: organizationId }, body: request, options }), "createTeam");
  }

  async get(organizationId: string, id: string, options?: RequestOptions): Promise<Team> {
    return unwrap(await this.transport.call("get", "/v1/organizations/{organization_id}/teams/{id}", { path: { organization_id: organizationId, id }, options }), "getTeam");
  }

  /** The organization's teams the caller may read. */
  async list(organizationId: string, options?: RequestOptions): Promise<Team[]> {
    return unwrap(await this.transport.call("get", "/v1/organizations/{organization_id}/teams", { path: { organization_id: organizationId }, options }), "listTeams");
  }

  async update(organizationId: string, id: string, request: UpdateTeamRequest, options?: RequestOptions): Promise<Team> {
    return unwrap(await this.transport.call("patch", "/v1/organizations/{organization_id}/teams/{id}", { path: { organization_id: organizationId, id }, body: request, options }), "updateTeam");
  }

  async delete(organizationId: string, id: string, options?: RequestOptions): Promise<void> {
    unwrap(await this.transport.call("delete", "/v1/organizations/{organization_id}/teams/{id}", { path: { organization_id: organizationId, id }, options }), "deleteTeam");
  }
}

export class MembersResource {
  constructor(private readonly transport: RestTransport) {}

  /** Memberships of the organization (organization-wide and team ones), or of `params.team_id`. */
  async list(organizationId: string, params: ListMembersParams = {}, options?: RequestOptions): Promise<Membership[]> {
    return unwrap(await this.transport.call("get", "/v1/organizations/{organization_id}/members", { path: { organization_id: organizationId }, query: params, options }), "listMembers");
  }

  /**
   * Adds a member of the organization to the team `team_id` with `role`. People join the
   * organization itself only by accepting an invitation (`invitations.create`); without
   * `team_id` this fails with `invitation_required`.
   */
  async add(organizationId: string, request: AddMemberRequest, options?: RequestOptions): Promise<Membership> {
    return unwrap(await this.transport.call("post", "/v1/organizations/{organization_id}/members", { path: { organization_id: organizationId }, body: request, options }), "addMember");
  }

  /** Changes a membership's role. */
  async update(organizationId: string, id: string, request: UpdateMemberRequest, options?: RequestOptions): Promise<Membership> {
    return unwrap(await this.transport.call("patch", "/v1/organizations/{organization_id}/members/{id}", { path: { organization_id: organizationId, id }, body: request, options }), "updateMember");
  }

  async remove(organizationId: string, id: string, options?: RequestOptions): Promise<void> {
    unwrap(await this.transport.call("delete", "/v1/organizations/{organization_id}/members/{id}", { path: { organization_id: organizationId, id }, options }), "removeMember");
  }

  /** Creates a service account; resolves with its membership (give it a key with `apiKeys.create`). */
  async createServiceAccount(organizationId: string, request: CreateServiceAccountRequest, options?: RequestOptions): Promise<Membership> {
    return unwrap(await this.transport.call("post", "/v1/organizations/{organization_id}/service-accounts", { path: { organization_id: organizationId }, body: request, options }), "createServiceAccount");
  }
}

export class InvitationsResource {
  constructor(private readonly transport: RestTransport) {}

  /** Invites an email address; resolves with the invitation and its single-use `token` (shown once). */
  async create(organizationId: string, request: CreateInvitationRequest, options?: RequestOptions): Promise<CreateInvitationResponse> {
    return unwrap(await this.transport.call("post", "/v1/organizations/{organization_id}/invitations", { path: { organization_id: organizationId }, body: request, options }), "createInvitation");
  }

  async list(organizationId: string, options?: RequestOptions): Promise<Invitation[]> {
    return unwrap(await this.transport.call("get", "/v1/organizations/{organization_id}/invitations", { path: { organization_id: organizationId }, options }), "listInvitations");
  }

  async revoke(organizationId: string, id: string, options?: RequestOptions): Promise<Invitation> {
    return unwrap(await this.transport.call("post", "/v1/organizations/{organization_id}/invitations/{id}/revoke", { path: { organization_id: organizationId, id }, body: {}, options }), "revokeInvitation");
  }

  /** Accepts an invitation as the calling user; resolves with the new membership. */
  async accept(token: string, options?: RequestOptions): Promise<Membership> {
    return unwrap(await this.transport.call("post", "/v1/invitations/accept", { body: { token }, options }), "acceptInvitation");
  }
}
