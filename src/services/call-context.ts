/** Who is calling and on whose behalf, as every service method receives it. */
import type { EffectivePermissions } from "../domain/permissions.js";

export interface Caller {
  principalId: string;
  /**
   * The organization the call acts in: an API key's own, the `X-Organization-Id`
   * header's, or the principal's only one. Empty when none applies (a user of several
   * organizations who named none); the guard refuses organization-scoped calls then.
   */
  organizationId: string;
  /** How the caller authenticated. */
  via: "api_key" | "jwt" | "dev_header";
  /** The API key used, if any. */
  apiKeyId?: string;
  /** Scopes of that key; empty = everything the principal may do. */
  scopes: readonly string[];
}

export interface CallContext {
  caller: Caller;
  requestId: string;
  signal: AbortSignal;
  /** The client's network address, for the audit log. */
  clientAddress: string;
  /**
   * The caller's permissions in `caller.organizationId`, narrowed by the key's scopes;
   * set by the guard for organization-scoped operations.
   */
  permissions?: EffectivePermissions;
  /**
   * Checks the caller again as at the start of the call (credentials authenticated
   * again, the operation's guard run again) and replaces `permissions`; throws
   * unauthenticated or permission_denied when access is gone. Long-lived streams use it
   * (access/stream-access.ts). Set by the call step.
   */
  recheck?: () => Promise<void>;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Ids are UUIDs; anything else cannot exist (and must not reach a uuid cast in SQL). */
export const isUuid = (s: string) => uuidPattern.test(s);
