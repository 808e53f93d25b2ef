/** Who the caller is: sign-up, login and sessions (`AuthResource`), and `me` (`MeResource`). */
import { unwrap, type RequestOptions, type RestTransport } from "../core/rest-transport.js";
import type { GetMeResponse, LoginRequest, LoginResponse, MeScopeParams, MyOrganization, MyPermissions, MyTeam, SignUpRequest, SignUpResponse, Tokens } from "../types.js";

export class AuthResource {
  constructor(private readonly transport: RestTransport) {}

  /** Creates a user; resolves with the principal and its first tokens. No credentials needed. */
  async signUp(request: SignUpRequest, options?: RequestOptions): Promise<SignUpResponse> {
    return unwrap(await this.transport.call("post", "/v1/auth/signup", { body: request, options }), "signUp");
  }

  /** Email and password for tokens (`tokens.access_token` is the JWT to pass as `token`). No credentials needed. */
  async login(request: LoginRequest, options?: RequestOptions): Promise<LoginResponse> {
    return unwrap(await this.transport.call("post", "/v1/auth/login", { body: request, options }), "login");
  }

  /** Exchanges a one-time sign-in token (the `#sign-in=fabs_…` of `fabric dev`'s console link) for a session, like a login. No credentials needed; the token works once. */
  async exchangeSignInToken(token: string, options?: RequestOptions): Promise<LoginResponse> {
    return unwrap(await this.transport.call("post", "/v1/auth/sign-in-token", { body: { token }, options }), "exchangeSignInToken");
  }

  /** Exchanges a refresh token for new tokens; the old refresh token is spent. */
  async refresh(refreshToken: string, options?: RequestOptions): Promise<Tokens> {
    return unwrap(await this.transport.call("post", "/v1/auth/refresh", { body: { refresh_token: refreshToken }, options }), "refreshToken");
  }

  /** Ends the session of this refresh token: its refresh tokens and the access tokens issued in it stop working at once (the caller must be authenticated). */
  async logout(refreshToken: string, options?: RequestOptions): Promise<void> {
    unwrap(await this.transport.call("post", "/v1/auth/logout", { body: { refresh_token: refreshToken }, options }), "logout");
  }
}

export class MeResource {
  constructor(private readonly transport: RestTransport) {}

  /** Who the caller is: the principal, and the organization / API key it acts through. */
  async get(options?: RequestOptions): Promise<GetMeResponse> {
    return unwrap(await this.transport.call("get", "/v1/me", { options }), "getMe");
  }

  /** The caller's organizations, with its role in each. */
  async organizations(options?: RequestOptions): Promise<MyOrganization[]> {
    return unwrap(await this.transport.call("get", "/v1/me/organizations", { options }), "listMyOrganizations");
  }

  /** The caller's teams (of `params.organization_id`, or of the organization it acts in). */
  async teams(params: MeScopeParams = {}, options?: RequestOptions): Promise<MyTeam[]> {
    return unwrap(await this.transport.call("get", "/v1/me/teams", { query: params, options }), "listMyTeams");
  }

  /** The caller's effective permissions, organization-wide and per team. */
  async permissions(params: MeScopeParams = {}, options?: RequestOptions): Promise<MyPermissions> {
    return unwrap(await this.transport.call("get", "/v1/me/permissions", { query: params, options }), "getMyPermissions");
  }
}
