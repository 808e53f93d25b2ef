/** Opaque keyset page tokens over (created_at, id), newest first. */
import { and, eq, lt, or, type SQL } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
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

/** The keyset condition "older than the cursor" for lists ordered by (created_at DESC, id DESC). */
export function olderThan(createdAt: AnyPgColumn, id: AnyPgColumn, cursor: Cursor | undefined): SQL | undefined {
  if (!cursor) return undefined;
  const t = new Date(cursor.t);
  return or(lt(createdAt, t), and(eq(createdAt, t), lt(id, cursor.id)));
}

/** One page of rows fetched with `limit(size + 1)`, and the token for the next page ("" on the last). */
export function pageOf<R extends { createdAt: Date; id: string }>(rows: R[], size: number): { page: R[]; nextPageToken: string } {
  const page = rows.slice(0, size);
  const last = page.at(-1);
  return { page, nextPageToken: rows.length > size && last ? encodeCursor({ t: last.createdAt.toISOString(), id: last.id }) : "" };
}
