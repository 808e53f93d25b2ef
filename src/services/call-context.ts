/** Who is calling and on whose behalf, as every service method receives it. */
export interface Caller {
  principalId: string;
  organizationId: string;
  /** The API key used, if any. */
  apiKeyId?: string;
  /** Scopes of that key; empty = everything the principal may do. */
  scopes: readonly string[];
}

export interface CallContext {
  caller: Caller;
  requestId: string;
  signal: AbortSignal;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Ids are UUIDs; anything else cannot exist (and must not reach a uuid cast in SQL). */
export const isUuid = (s: string) => uuidPattern.test(s);
