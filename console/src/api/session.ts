/**
 * Who the console acts as, and how it proves it.
 *
 * Credentials live in this tab only: the access token (a 15-minute JWT) in memory; the
 * refresh token — or, for a machine identity, the API key — in `sessionStorage`, so a
 * reload keeps the session and closing the tab forgets it. Nothing is ambient: every call
 * carries an `Authorization` header that a cross-site page cannot make the browser add,
 * so there is no CSRF surface and the API needs no cookie path. Logout revokes the
 * session on the server (its access tokens stop working at once) and forgets everything.
 *
 * The organization a user acts in travels as `X-Organization-Id`; an API key belongs to
 * exactly one organization, so none is sent for it.
 */
import createClient from "openapi-fetch";
import type { components, paths } from "../../../gen/openapi/schema";
import { ApiError, unwrap } from "./problem.js";

type Tokens = components["schemas"]["Tokens"];
export type Principal = components["schemas"]["Principal"];

type Credentials =
  | { kind: "user"; accessToken: string; accessExpiresAt: number; refreshToken: string }
  | { kind: "api_key"; apiKey: string };

const storageKey = "fabric.console.credentials";
const orgStorageKey = "fabric.console.organization";
/** Renew the access token when it has less than this left. */
const renewBeforeMs = 60_000;

const authApi = createClient<paths>({ baseUrl: globalThis.location?.origin ?? "" });

type Listener = () => void;

class Session {
  private credentials: Credentials | undefined;
  private renewing: Promise<void> | undefined;
  private listeners = new Set<Listener>();
  /** Why the last session ended without a logout (shown on the sign-in page). */
  endedBecause: string | undefined;
  organizationId: string | undefined = sessionStorage.getItem(orgStorageKey) ?? undefined;

  get signedIn(): boolean {
    return this.credentials !== undefined;
  }
  get kind(): Credentials["kind"] | undefined {
    return this.credentials?.kind;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  private changed() {
    for (const l of this.listeners) l();
  }

  /** Restores the tab's session after a reload. Resolves signed in or not, never rejects. */
  async restore(): Promise<void> {
    const raw = sessionStorage.getItem(storageKey);
    if (!raw) return;
    try {
      const stored = JSON.parse(raw) as { kind: "user"; refreshToken: string } | { kind: "api_key"; apiKey: string };
      if (stored.kind === "api_key") this.credentials = { kind: "api_key", apiKey: stored.apiKey };
      else await this.refreshWith(stored.refreshToken);
    } catch {
      this.forget();
    }
    this.changed();
  }

  async signInWithPassword(email: string, password: string): Promise<void> {
    const body = await unwrap(authApi.POST("/v1/auth/login", { body: { email, password } }));
    this.useTokens(body.data.tokens);
  }

  /** Exchanges the one-time link's token (from the URL fragment) for a session. */
  async signInWithLink(token: string): Promise<void> {
    const body = await unwrap(authApi.POST("/v1/auth/sign-in-token", { body: { token } }));
    this.useTokens(body.data.tokens);
  }

  /** Checks the key against the API before keeping it. */
  async signInWithApiKey(apiKey: string): Promise<void> {
    await unwrap(authApi.GET("/v1/me", { headers: { Authorization: `Bearer ${apiKey}` } }));
    this.credentials = { kind: "api_key", apiKey };
    this.organizationId = undefined;
    sessionStorage.removeItem(orgStorageKey);
    this.store();
    this.changed();
  }

  async signOut(): Promise<void> {
    const c = this.credentials;
    if (c?.kind === "user") {
      // Revoking the session on the server is what makes logout immediate; forget locally whatever it answers.
      await unwrap(authApi.POST("/v1/auth/logout", { headers: { Authorization: `Bearer ${c.accessToken}` }, body: { refresh_token: c.refreshToken } })).catch(() => undefined);
    }
    this.endedBecause = undefined;
    this.forget();
    this.changed();
  }

  /** Called on a 401: the server no longer accepts these credentials. */
  expired(): void {
    if (!this.credentials) return;
    this.endedBecause = "Your session ended (signed out elsewhere, expired, or the key was revoked). Sign in again.";
    this.forget();
    this.changed();
  }

  setOrganization(id: string | undefined): void {
    this.organizationId = id;
    if (id) sessionStorage.setItem(orgStorageKey, id);
    else sessionStorage.removeItem(orgStorageKey);
    this.changed();
  }

  /** The headers that authenticate a request now, renewing the access token first when it is about to expire. */
  async headers(): Promise<Record<string, string>> {
    let c = this.credentials;
    if (c?.kind === "user" && c.accessExpiresAt - Date.now() < renewBeforeMs) {
      this.renewing ??= this.refreshWith(c.refreshToken)
        .catch(() => this.expired())
        .finally(() => (this.renewing = undefined));
      await this.renewing;
      c = this.credentials;
    }
    if (!c) return {};
    if (c.kind === "api_key") return { Authorization: `Bearer ${c.apiKey}` };
    const h: Record<string, string> = { Authorization: `Bearer ${c.accessToken}` };
    if (this.organizationId) h["X-Organization-Id"] = this.organizationId;
    return h;
  }

  private async refreshWith(refreshToken: string): Promise<void> {
    const body = await unwrap(authApi.POST("/v1/auth/refresh", { body: { refresh_token: refreshToken } }));
    this.useTokens(body.data);
  }

  private useTokens(t: Tokens): void {
    this.credentials = { kind: "user", accessToken: t.access_token, accessExpiresAt: Date.now() + t.expires_in * 1000, refreshToken: t.refresh_token };
    this.endedBecause = undefined;
    this.store();
    this.changed();
  }

  private store(): void {
    const c = this.credentials;
    if (!c) return;
    sessionStorage.setItem(storageKey, JSON.stringify(c.kind === "user" ? { kind: "user", refreshToken: c.refreshToken } : { kind: "api_key", apiKey: c.apiKey }));
  }

  private forget(): void {
    this.credentials = undefined;
    this.organizationId = undefined;
    sessionStorage.removeItem(storageKey);
    sessionStorage.removeItem(orgStorageKey);
  }
}

export const session = new Session();
export { ApiError };
