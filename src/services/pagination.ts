/** Opaque keyset page tokens over (created_at, id), newest first. */
import { invalidArgument } from "../domain/errors.js";
import { isUuid } from "./call-context.js";

export interface Cursor {
  t: string;
  id: string;
}

export function pageSize(requested: number): number {
  if (requested < 0 || requested > 200) throw invalidArgument("page_size must be within 1..200", [{ path: "/page_size", code: "invalid_value", message: "page_size must be within 1..200" }]);
  return requested || 50;
}

export const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify(c)).toString("base64url");

export function decodeCursor(token: string): Cursor | undefined {
  if (!token) return undefined;
  try {
    const c = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    // Only what this server writes: a canonical ISO time of a year Postgres can hold, and a UUID.
    if (typeof c?.t === "string" && typeof c?.id === "string" && isUuid(c.id) && /^\d{4}-/.test(c.t) && !Number.isNaN(Date.parse(c.t)) && new Date(c.t).toISOString() === c.t) return c;
  } catch {
    // fall through
  }
  throw invalidArgument("page_token is not a token this server issued", [{ path: "/page_token", code: "invalid_value", message: "invalid page_token" }]);
}
