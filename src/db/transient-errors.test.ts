import { describe, expect, it } from "vitest";
import { DomainError } from "../domain/errors.js";
import { httpStatus, toDomainError } from "../control-plane/error-mapping.js";
import { backoffMs, errorSummary, isTransientDbError, retryWhileTransient, transientCode, withDeadline } from "./transient-errors.js";

/** What Drizzle throws: its own error with the driver's as `cause`, the SQL and parameters in the message. */
const wrapped = (cause: object) => Object.assign(new Error("Failed query: SELECT secret FROM t WHERE x = $1\nparams: hunter2"), { cause });

describe("transient database failures", () => {
  it("recognises connection and server-state failures through wrappers, and nothing else", () => {
    expect(transientCode(wrapped(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" })))).toBe("ECONNREFUSED");
    expect(transientCode(wrapped({ code: "57P01", message: "terminating connection due to administrator command" }))).toBe("57P01");
    expect(transientCode(wrapped({ code: "57P03", message: "the database system is starting up" }))).toBe("57P03");
    expect(transientCode(Object.assign(new Error("write CONNECTION_CLOSED 127.0.0.1:5432"), { code: "CONNECTION_CLOSED" }))).toBe("CONNECTION_CLOSED");
    expect(isTransientDbError(new AggregateError([Object.assign(new Error("x"), { code: "ECONNREFUSED" })]))).toBe(true);
    // Bugs and the client's bad input are not.
    expect(isTransientDbError(new TypeError("cannot read properties of undefined"))).toBe(false);
    expect(isTransientDbError(wrapped({ code: "23505", message: "duplicate key" }))).toBe(false);
    expect(isTransientDbError(wrapped({ code: "22P05", message: "unsupported Unicode escape sequence" }))).toBe(false);
  });

  it("map to unavailable (503 + Retry-After), bugs stay internal", () => {
    const down = toDomainError(wrapped(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })));
    expect(down).toBeInstanceOf(DomainError);
    expect({ kind: down.kind, code: down.code, status: httpStatus[down.kind], retryAfter: down.options.retryAfterSeconds }).toEqual({ kind: "unavailable", code: "database_unavailable", status: 503, retryAfter: 1 });
    expect(toDomainError(new TypeError("bug")).kind).toBe("internal");
  });

  it("summarise the cause in one line, without the SQL or its parameters", () => {
    const line = errorSummary(wrapped(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" })));
    expect(line).toBe("connect ECONNREFUSED 127.0.0.1:5432");
    expect(line).not.toMatch(/hunter2|SELECT/);
  });

  it("retryWhileTransient retries transient failures only, within its bound", async () => {
    let calls = 0;
    const flaky = async () => {
      if (++calls < 3) throw Object.assign(new Error("reset"), { code: "ECONNRESET" });
      return "ok";
    };
    await expect(retryWhileTransient(flaky, { baseMs: 1 })).resolves.toBe("ok");
    expect(calls).toBe(3);
    let bugCalls = 0;
    await expect(retryWhileTransient(async () => { bugCalls++; throw new TypeError("bug"); }, { baseMs: 1 })).rejects.toThrow("bug");
    expect(bugCalls).toBe(1);
    await expect(retryWhileTransient(async () => { throw Object.assign(new Error("down"), { code: "ECONNREFUSED" }); }, { baseMs: 50, maxMs: 120 })).rejects.toThrow("down");
  });

  it("withDeadline gives up on a promise that never settles, with a transient error", async () => {
    const never = new Promise<never>(() => {});
    const err = await withDeadline(never, 30, "a lost query").catch((e) => e);
    expect(isTransientDbError(err)).toBe(true);
    await expect(withDeadline(Promise.resolve(7), 1000, "fine")).resolves.toBe(7);
  });

  it("backoff grows, is capped, and is jittered", () => {
    expect(backoffMs(0, 100, 5000, () => 0)).toBe(50);
    expect(backoffMs(3, 100, 5000, () => 1)).toBe(800);
    expect(backoffMs(30, 100, 5000, () => 1)).toBe(5000);
  });
});
