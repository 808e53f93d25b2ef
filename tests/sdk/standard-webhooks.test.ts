/**
 * Standard Webhooks, checked against the specification's reference library
 * (`standardwebhooks`): what the dispatcher signs (src/delivery/webhook-security.ts) the
 * library verifies, what the library signs the SDK's `verifyWebhook` verifies, for new
 * secrets and for secrets issued before (base64url).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { newWebhookSecret, standardSignature } from "../../src/delivery/webhook-security.js";
import { standardWebhookSecret, verifyWebhook } from "../../src/sdk/index.js";

const body = (i: number) => JSON.stringify({ id: i, kind: "workflow.run.completed", payload: { text: "héllo ✓ " + "x".repeat(i % 50) } });

describe("Standard Webhooks", () => {
  it("1,000 deliveries signed by Fabric: the reference library verifies every one", () => {
    let verified = 0;
    for (let i = 0; i < 1000; i++) {
      const secret = newWebhookSecret();
      const id = randomUUID();
      const ts = Math.floor(Date.now() / 1000);
      const b = body(i);
      const headers = { "webhook-id": id, "webhook-timestamp": String(ts), "webhook-signature": standardSignature(secret, id, ts, b) };
      new Webhook(secret).verify(b, headers);
      verified++;
    }
    expect(verified).toBe(1000);
  });

  it("the library refuses tampering, another secret and an old timestamp (the test can fail)", () => {
    const secret = newWebhookSecret();
    const id = randomUUID();
    const ts = Math.floor(Date.now() / 1000);
    const headers = { "webhook-id": id, "webhook-timestamp": String(ts), "webhook-signature": standardSignature(secret, id, ts, body(1)) };
    expect(() => new Webhook(secret).verify(body(2), headers)).toThrow(WebhookVerificationError);
    expect(() => new Webhook(newWebhookSecret()).verify(body(1), headers)).toThrow(WebhookVerificationError);
    expect(() => new Webhook(secret).verify(body(1), { ...headers, "webhook-id": randomUUID() })).toThrow(WebhookVerificationError);
    const old = ts - 600;
    expect(() => new Webhook(secret).verify(body(1), { ...headers, "webhook-timestamp": String(old), "webhook-signature": standardSignature(secret, id, old, body(1)) })).toThrow(WebhookVerificationError);
  });

  it("a secret issued before (whsec_ + base64url) signs with the same key bytes; its standard form verifies", () => {
    for (let i = 0; i < 200; i++) {
      const legacy = `whsec_${randomBytes(32).toString("base64url")}`;
      const id = randomUUID();
      const ts = Math.floor(Date.now() / 1000);
      const headers = { "webhook-id": id, "webhook-timestamp": String(ts), "webhook-signature": standardSignature(legacy, id, ts, body(i)) };
      new Webhook(standardWebhookSecret(legacy)).verify(body(i), headers);
      expect(verifyWebhook({ secret: legacy, body: body(i), headers })).toBe(true);
    }
  });

  it("the SDK's verifyWebhook accepts what the library signs, and follows the specification's rules", () => {
    const secret = newWebhookSecret();
    const lib = new Webhook(secret);
    const now = Date.now();
    const at = new Date(now);
    const ts = Math.floor(now / 1000);
    const id = `msg_${randomUUID()}`;
    const b = body(7);
    const signature = lib.sign(id, at, b);
    const headers = { "Webhook-Id": id, "Webhook-Timestamp": String(ts), "Webhook-Signature": signature };
    expect(verifyWebhook({ secret, body: b, headers, now })).toBe(true);
    expect(verifyWebhook({ secret, body: new TextEncoder().encode(b), headers: new Headers(headers), now })).toBe(true);
    // Several signatures, space-separated (rotation): one valid v1 is enough; other versions are ignored.
    expect(verifyWebhook({ secret, body: b, headers: { ...headers, "Webhook-Signature": `v1a,${signature.slice(3)} v1,${"A".repeat(43)}= ${signature}` }, now })).toBe(true);
    expect(verifyWebhook({ secret, body: b, headers: { ...headers, "Webhook-Signature": `v2,${signature.slice(3)}` }, now })).toBe(false);
    expect(verifyWebhook({ secret, body: b + " ", headers, now })).toBe(false);
    expect(verifyWebhook({ secret: newWebhookSecret(), body: b, headers, now })).toBe(false);
    expect(verifyWebhook({ secret, body: b, headers: { ...headers, "Webhook-Id": "other" }, now })).toBe(false);
    expect(verifyWebhook({ secret, body: b, headers: { ...headers, "Webhook-Id": "" }, now })).toBe(false);
    expect(verifyWebhook({ secret, body: b, headers, now: now + 301_000 })).toBe(false);
    expect(verifyWebhook({ secret, body: b, headers, now: now - 301_000 })).toBe(false);
  });
});
