import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DomainError } from "../domain/errors.js";
import { decodeCursor, encodeCursor, pageSize } from "./pagination.js";

function domainError(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    return err as DomainError;
  }
  throw new Error("expected a DomainError");
}

const b64 = (s: string) => Buffer.from(s).toString("base64url");

describe("page tokens", () => {
  it("round-trip a cursor", () => {
    const c = { t: new Date("2024-05-06T07:08:09.123Z").toISOString(), id: randomUUID() };
    const token = encodeCursor(c);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/); // URL-safe, opaque
    expect(token).not.toContain(c.id);
    expect(decodeCursor(token)).toEqual(c);
  });

  it("an empty token means the first page", () => {
    expect(decodeCursor("")).toBeUndefined();
  });

  it.each([
    ["garbage", "not base64 json!!"],
    ["base64 of non-JSON", b64("hello")],
    ["JSON null", b64("null")],
    ["a number", b64("42")],
    ["missing id", b64(JSON.stringify({ t: "2024-01-01T00:00:00.000Z" }))],
    ["non-string id", b64(JSON.stringify({ t: "2024-01-01T00:00:00.000Z", id: 7 }))],
    ["invalid time", b64(JSON.stringify({ t: "yesterday-ish", id: randomUUID() }))],
  ])("%s → invalid_argument on /page_token", (_what, token) => {
    const err = domainError(() => decodeCursor(token));
    expect(err.kind).toBe("invalid_argument");
    expect(err.options.issues).toEqual([expect.objectContaining({ path: "/page_token", code: "invalid_value" })]);
  });

  it("a token whose id is not a UUID is rejected here, before it reaches a uuid column in SQL", () => {
    // Bug: decodeCursor accepts any string id; listWorkflows/listRuns then compare it with
    // a uuid column and Postgres fails with "invalid input syntax for type uuid" (→ internal).
    const err = domainError(() => decodeCursor(b64(JSON.stringify({ t: "2024-01-01T00:00:00.000Z", id: "'; drop table runs; --" }))));
    expect(err.kind).toBe("invalid_argument");
  });
});

describe("pageSize", () => {
  it("defaults 0 (unset) to 50", () => {
    expect(pageSize(0)).toBe(50);
  });

  it("accepts 1..200 as given", () => {
    expect(pageSize(1)).toBe(1);
    expect(pageSize(73)).toBe(73);
    expect(pageSize(200)).toBe(200);
  });

  it.each([-1, 201, 10_000])("rejects %d with invalid_argument on /page_size", (n) => {
    const err = domainError(() => pageSize(n));
    expect(err.kind).toBe("invalid_argument");
    expect(err.options.issues).toEqual([expect.objectContaining({ path: "/page_size", code: "invalid_value" })]);
  });
});
