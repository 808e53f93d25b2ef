/** verifyWebhookSignature: the documented scheme, tolerance, several signatures, tampering. */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { verifyWebhookSignature } from "../../src/sdk/index.js";

const secret = "whsec_test-secret";
const body = JSON.stringify({ id: 1, kind: "team.created" });
const now = 1_800_000_000_000;
const ts = Math.floor(now / 1000);
const sign = (t: number, b = body, s = secret) => `v1=${createHmac("sha256", s).update(`${t}.${b}`).digest("hex")}`;

describe("verifyWebhookSignature", () => {
  it("accepts the documented signature, as string or bytes", () => {
    expect(verifyWebhookSignature({ secret, body, timestamp: ts, signature: sign(ts), now })).toBe(true);
    expect(verifyWebhookSignature({ secret, body: new TextEncoder().encode(body), timestamp: String(ts), signature: sign(ts), now })).toBe(true);
    expect(verifyWebhookSignature({ secret, body, timestamp: ts, signature: `v1=${"0".repeat(64)}, ${sign(ts)}`, now }), "any of several").toBe(true);
  });
  it("refuses tampering, another secret, a malformed header and stale or future timestamps", () => {
    expect(verifyWebhookSignature({ secret, body: body + " ", timestamp: ts, signature: sign(ts), now })).toBe(false);
    expect(verifyWebhookSignature({ secret: "whsec_other", body, timestamp: ts, signature: sign(ts), now })).toBe(false);
    expect(verifyWebhookSignature({ secret, body, timestamp: ts + 1, signature: sign(ts), now })).toBe(false);
    expect(verifyWebhookSignature({ secret, body, timestamp: ts, signature: sign(ts).slice(3), now })).toBe(false);
    expect(verifyWebhookSignature({ secret, body, timestamp: "abc", signature: sign(ts), now })).toBe(false);
    expect(verifyWebhookSignature({ secret, body, timestamp: ts - 301, signature: sign(ts - 301), now })).toBe(false);
    expect(verifyWebhookSignature({ secret, body, timestamp: ts + 301, signature: sign(ts + 301), now })).toBe(false);
    expect(verifyWebhookSignature({ secret, body, timestamp: ts - 301, signature: sign(ts - 301), now, toleranceSeconds: 600 })).toBe(true);
  });
});
