/**
 * Verifying Fabric webhook deliveries. Fabric signs with Standard Webhooks
 * (https://www.standardwebhooks.com/): `webhook-id` (the delivery id, stable across
 * retries: use it to drop duplicates), `webhook-timestamp` (Unix seconds) and
 * `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")>`, where
 * the key is the base64 after `whsec_` decoded. `verifyWebhook` checks them; any Standard
 * Webhooks library does the same.
 *
 * Deprecated, for one more release: Fabric's own `fabric-webhook-timestamp` and
 * `fabric-webhook-signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>` keyed
 * with the whole `whsec_…` secret as UTF-8 (`verifyWebhookSignature`).
 *
 * Verify against the raw body bytes as received, before parsing them.
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
 * True when the deprecated `fabric-webhook-signature` is valid for this body and timestamp
 * and the timestamp is within the tolerance (replay protection). Constant-time comparison.
 *
 * @deprecated Use `verifyWebhook` (Standard Webhooks headers); the `fabric-webhook-*`
 * headers are sent for one more release.
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

export interface VerifyWebhookInput {
  /** The webhook's `whsec_…` secret (shown once at creation). */
  secret: string;
  /** The raw request body, exactly as received. */
  body: string | Uint8Array;
  /** The request headers (names in any case): `webhook-id`, `webhook-timestamp`, `webhook-signature`. */
  headers: Record<string, string | string[] | undefined> | Headers;
  /** How far the timestamp may be from now, in seconds. Default 300 (the specification's). */
  toleranceSeconds?: number;
  /** Now, in milliseconds (tests). */
  now?: number;
}

/**
 * True when the Standard Webhooks signature of a delivery is valid and its timestamp is
 * within the tolerance (replay protection). Several space-separated signatures may be sent
 * (key rotation): one valid `v1` signature is enough. Constant-time comparison.
 */
export function verifyWebhook(input: VerifyWebhookInput): boolean {
  const { secret, body, toleranceSeconds = 300 } = input;
  const header = (name: string): string => {
    if (input.headers instanceof Headers) return input.headers.get(name) ?? "";
    const key = Object.keys(input.headers).find((k) => k.toLowerCase() === name);
    const v = key === undefined ? undefined : input.headers[key];
    return (Array.isArray(v) ? v[0] : v) ?? "";
  };
  const id = header("webhook-id");
  const ts = header("webhook-timestamp").trim();
  const signature = header("webhook-signature");
  if (!id || !/^\d{1,12}$/.test(ts) || !signature) return false;
  const now = Math.floor((input.now ?? Date.now()) / 1000);
  if (Math.abs(now - Number(ts)) > toleranceSeconds) return false;
  const key = Buffer.from(secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret, "base64");
  if (key.length === 0) return false;
  const mac = createHmac("sha256", key);
  mac.update(`${id}.${ts}.`);
  mac.update(typeof body === "string" ? Buffer.from(body, "utf8") : body);
  const expected = mac.digest();
  let ok = false;
  for (const part of signature.split(" ")) {
    const [version, value] = part.split(",", 2);
    if (version !== "v1" || !value || !/^[A-Za-z0-9+/]+={0,2}$/.test(value)) continue;
    const given = Buffer.from(value, "base64");
    if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
  }
  return ok;
}

/**
 * The standard-base64 form of a secret, for Standard Webhooks libraries that decode only
 * standard base64: secrets issued before Fabric signed with Standard Webhooks are
 * `whsec_` + base64url. The key bytes (and so the signatures) are the same.
 */
export function standardWebhookSecret(secret: string): string {
  const raw = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  return `whsec_${Buffer.from(raw, "base64").toString("base64")}`;
}
