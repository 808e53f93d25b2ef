/**
 * Verifying Fabric webhook deliveries. Each delivery carries
 * `fabric-webhook-timestamp` (Unix seconds), `fabric-webhook-id` (the delivery id, stable
 * across retries: use it to drop duplicates) and
 * `fabric-webhook-signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`,
 * keyed with the whole `whsec_…` secret as UTF-8. Verify against the raw body bytes as
 * received, before parsing them.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export interface VerifyWebhookSignatureInput {
  /** The webhook's `whsec_…` secret (shown once at creation). */
  secret: string;
  /** The raw request body, exactly as received. */
  body: string | Uint8Array;
  /** The `fabric-webhook-timestamp` header. */
  timestamp: string | number;
  /** The `fabric-webhook-signature` header (several `v1=` values may be separated by spaces or commas). */
  signature: string;
  /** How far the timestamp may be from now, in seconds. Default 300. */
  toleranceSeconds?: number;
  /** Now, in milliseconds (tests). */
  now?: number;
}

/**
 * True when the signature is valid for this body and timestamp and the timestamp is
 * within the tolerance (replay protection). Constant-time comparison.
 */
export function verifyWebhookSignature(input: VerifyWebhookSignatureInput): boolean {
  const { secret, body, signature, toleranceSeconds = 300 } = input;
  const ts = String(input.timestamp).trim();
  if (!/^\d{1,12}$/.test(ts) || !secret) return false;
  const now = Math.floor((input.now ?? Date.now()) / 1000);
  if (Math.abs(now - Number(ts)) > toleranceSeconds) return false;
  const mac = createHmac("sha256", secret);
  mac.update(`${ts}.`);
  mac.update(typeof body === "string" ? Buffer.from(body, "utf8") : body);
  const expected = mac.digest();
  let ok = false;
  for (const part of signature.split(/[\s,]+/)) {
    const m = /^v1=([0-9a-f]{64})$/i.exec(part);
    if (!m) continue;
    const given = Buffer.from(m[1]!, "hex");
    if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
  }
  return ok;
}
