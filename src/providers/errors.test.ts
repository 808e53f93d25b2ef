import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { classifyStatus, HttpStatusError, parseRetryAfter, ProviderError, registerSdkErrors, toProviderError } from "./errors.js";

// The adapters register their SDK as they load it; these tests build the SDKs' errors directly.
registerSdkErrors({ openai: OpenAI, anthropic: Anthropic });

describe("parseRetryAfter", () => {
  const h = (o: Record<string, string>) => new Headers(o);

  it("prefers retry-after-ms", () => {
    expect(parseRetryAfter(h({ "retry-after-ms": "250", "retry-after": "9" }))).toBe(250);
  });
  it("reads (fractional) seconds", () => {
    expect(parseRetryAfter(h({ "retry-after": "2" }))).toBe(2000);
    expect(parseRetryAfter(h({ "retry-after": "0.5" }))).toBe(500);
  });
  it("reads an HTTP date relative to now, never negative", () => {
    const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
    expect(parseRetryAfter(h({ "retry-after": "Wed, 21 Oct 2015 07:28:03 GMT" }), now)).toBe(3000);
    expect(parseRetryAfter(h({ "retry-after": "Wed, 21 Oct 2015 07:27:00 GMT" }), now)).toBe(0);
  });
  it("ignores absent or garbage values and accepts plain header records", () => {
    expect(parseRetryAfter(h({}))).toBeUndefined();
    expect(parseRetryAfter(h({ "retry-after": "soon" }))).toBeUndefined();
    expect(parseRetryAfter({ "retry-after": "1" })).toBe(1000);
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe("classifyStatus", () => {
  it.each([
    [400, "invalid_request"],
    [401, "auth"],
    [403, "auth"],
    [404, "invalid_request"],
    [408, "timeout"],
    [409, "transient"],
    [422, "invalid_request"],
    [429, "rate_limited"],
    [500, "transient"],
    [502, "transient"],
    [503, "overloaded"],
    [504, "timeout"],
    [529, "overloaded"],
  ] as const)("%i → %s", (status, cls) => expect(classifyStatus(status)).toBe(cls));
});

describe("toProviderError", () => {
  it("passes ProviderErrors through untouched", () => {
    const e = new ProviderError({ provider: "x", errorClass: "auth", message: "m" });
    expect(toProviderError("y", e)).toBe(e);
  });

  it("translates SDK status errors with retry-after", () => {
    const oe = OpenAI.APIError.generate(429, { message: "slow down" }, undefined, new Headers({ "retry-after": "3" }));
    expect(toProviderError("openai", oe)).toMatchObject({ errorClass: "rate_limited", status: 429, retryable: true, retryAfterMs: 3000 });
    const ae = Anthropic.APIError.generate(529, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }, undefined, new Headers());
    expect(toProviderError("anthropic", ae)).toMatchObject({ errorClass: "overloaded", status: 529, retryable: true });
  });

  it("uses the body type of an Anthropic in-stream error that has no status", () => {
    // What the SDK's SSE decoder throws for `event: error` (APIError.generate would make a
    // connection error out of a missing status).
    const ae = new Anthropic.APIError(undefined, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }, undefined, undefined);
    expect(toProviderError("anthropic", ae)).toMatchObject({ errorClass: "overloaded", retryable: true });
  });

  it("maps user aborts, connection errors and SDK timeouts", () => {
    expect(toProviderError("openai", new OpenAI.APIUserAbortError()).errorClass).toBe("aborted");
    expect(toProviderError("openai", new OpenAI.APIConnectionError({ message: "reset" })).errorClass).toBe("transient");
    expect(toProviderError("anthropic", new Anthropic.APIConnectionTimeoutError()).errorClass).toBe("timeout");
  });

  it("treats SDK client-side errors as invalid requests", () => {
    expect(toProviderError("anthropic", new Anthropic.AnthropicError("Streaming is required")).errorClass).toBe("invalid_request");
  });

  it("maps fetch failures, cut streams and unknown errors to transient", () => {
    const refused = new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }) });
    expect(toProviderError("ollama", refused)).toMatchObject({ errorClass: "transient", retryable: true, provider: "ollama" });
    expect(toProviderError("ollama", Object.assign(new TypeError("terminated"), { cause: { code: "UND_ERR_SOCKET" } })).errorClass).toBe("transient");
    expect(toProviderError("ollama", new SyntaxError("Unexpected token")).errorClass).toBe("transient");
  });

  it("an aborted signal wins over whatever was thrown", () => {
    const ac = new AbortController();
    ac.abort();
    expect(toProviderError("ollama", new TypeError("fetch failed"), ac.signal)).toMatchObject({ errorClass: "aborted", retryable: false });
  });

  it("an AbortError not caused by the caller is a timeout", () => {
    expect(toProviderError("ollama", new DOMException("The operation timed out.", "TimeoutError")).errorClass).toBe("timeout");
  });

  it("reads status, retry-after and x-should-retry from HttpStatusError", () => {
    const e = new HttpStatusError(503, "busy", new Headers({ "retry-after": "1", "x-should-retry": "false" }));
    expect(toProviderError("ollama", e)).toMatchObject({ errorClass: "overloaded", status: 503, retryAfterMs: 1000, retryable: false });
  });
});
