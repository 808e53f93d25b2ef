/**
 * What makes webhooks safe to offer: secrets (generated, encrypted at rest, used to sign)
 * and the SSRF guard (a webhook may only reach public addresses).
 *
 * Secrets: the signing secret must be usable for every delivery's HMAC, so it cannot be
 * stored as a hash. It is stored encrypted (AES-256-GCM) under a key derived from
 * FABRIC_SECRETS_KEY, else JWT_SECRET, else — development only — a fixed development
 * key. Rotating that key makes existing webhook secrets unreadable (their deliveries fail
 * with `secret_unreadable`): re-create the webhooks.
 *
 * SSRF: a URL's host is resolved and every address must be public — not loopback,
 * private (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7), link-local (169.254/16,
 * fe80::/10, which includes cloud metadata 169.254.169.254), unspecified, multicast or
 * reserved. Checked at create/update, and again at delivery time on the very address the
 * connection uses (a custom DNS lookup), so DNS rebinding cannot slip past it.
 * `FABRIC_WEBHOOKS_ALLOW_PRIVATE=true` lifts the check, only with FABRIC_ENV=development.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from "node:crypto";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP } from "node:net";

export interface WebhookSettings {
  /** Deliveries and URLs may target non-public addresses (development only). */
  allowPrivate: boolean;
  /** AES-256 key for secrets at rest. */
  secretsKey: Buffer;
}

const developmentSecretsKey = "fabric-development-only-webhook-secrets-key";

export function webhookSettingsFrom(config: { FABRIC_ENV: string; JWT_SECRET?: string; FABRIC_SECRETS_KEY?: string; FABRIC_WEBHOOKS_ALLOW_PRIVATE?: boolean }): WebhookSettings {
  const development = config.FABRIC_ENV === "development";
  const material = config.FABRIC_SECRETS_KEY ?? config.JWT_SECRET ?? (development ? developmentSecretsKey : undefined);
  if (!material) throw new Error("webhook secrets need FABRIC_SECRETS_KEY or JWT_SECRET outside development");
  return {
    allowPrivate: development && config.FABRIC_WEBHOOKS_ALLOW_PRIVATE === true,
    secretsKey: createHash("sha256").update("fabric webhook secrets\0").update(material).digest(),
  };
}

// ─── Secrets ────────────────────────────────────────────────────────────────────────────

/**
 * A Standard Webhooks secret: `whsec_` + 32 random bytes in standard base64 (what the
 * specification's libraries decode). Secrets issued before were `whsec_` + base64url of
 * 32 bytes; both decode to their key bytes with `standardSigningKey`.
 */
export const newWebhookSecret = () => `whsec_${randomBytes(32).toString("base64")}`;

export function encryptSecret(key: Buffer, secret: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const ct = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
  return ["v1", iv.toString("base64url"), cipher.getAuthTag().toString("base64url"), ct.toString("base64url")].join(".");
}

export function decryptSecret(key: Buffer, stored: string): string {
  const [v, iv, tag, ct] = stored.split(".");
  if (v !== "v1" || !iv || !tag || ct === undefined) throw new Error("unknown secret format");
  const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
  decipher.setAuthTag(Buffer.from(tag, "base64url"));
  return Buffer.concat([decipher.update(Buffer.from(ct, "base64url")), decipher.final()]).toString("utf8");
}

/**
 * The HMAC key of a Standard Webhooks signature: the base64 after `whsec_`, decoded. Node's
 * base64 decoder reads both alphabets, so secrets issued before (base64url) keep working
 * with the same key bytes.
 */
export const standardSigningKey = (secret: string): Buffer => Buffer.from(secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret, "base64");

/**
 * The Standard Webhooks `webhook-signature` header: `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`
 * (https://www.standardwebhooks.com/, "Signature scheme").
 */
export const standardSignature = (secret: string, id: string, timestamp: number, body: string) => `v1,${createHmac("sha256", standardSigningKey(secret)).update(`${id}.${timestamp}.${body}`).digest("base64")}`;

/**
 * Deprecated (sent for one release beside the standard headers): the `fabric-webhook-signature`
 * header, `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` keyed with the whole `whsec_…` string (UTF-8).
 */
export const signatureHeader = (secret: string, timestamp: number, body: string) => `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;

// ─── Addresses ──────────────────────────────────────────────────────────────────────────

const blocked = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8], // "this network", unspecified
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT (also some clouds' metadata, e.g. 100.100.100.200)
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, cloud metadata 169.254.169.254
  ["172.16.0.0", 12],
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.168.0.0", 16],
  ["198.18.0.0", 15], // benchmarking
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const)
  blocked.addSubnet(net, prefix, "ipv4");
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["::ffff:0:0:0", 96], // IPv4-translated (SIIT): ::ffff:0:7f00:1
  ["64:ff9b::", 96], // NAT64
  ["64:ff9b:1::", 48], // local-use NAT64
  ["2002::", 16], // 6to4: embeds an IPv4 address
  ["fc00::", 7], // unique local (fd00:ec2::254 is AWS metadata)
  ["fec0::", 10], // site-local (deprecated)
  ["fe80::", 10],
  ["ff00::", 8],
] as const)
  blocked.addSubnet(net, prefix, "ipv6");

/** Whether `ip` (v4 or v6 literal) is a public unicast address. */
export function isPublicAddress(ip: string): boolean {
  // IPv4-mapped IPv6 is judged as the IPv4 address (BlockList cannot tell them apart anyway).
  const mapped = /^(?:0{0,4}:){0,4}:?(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return isPublicAddress(mapped[1]!);
  // IPv4-mapped (::ffff:7f00:1) and the deprecated IPv4-compatible (::7f00:1) forms in hex.
  const hex = /^::(?:ffff:)?([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
  if (hex) {
    const [a, b] = [parseInt(hex[1]!, 16), parseInt(hex[2]!, 16)];
    return isPublicAddress(`${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`);
  }
  const family = isIP(ip);
  if (family === 4) return !blocked.check(ip, "ipv4");
  if (family === 6) return !blocked.check(ip, "ipv6");
  return false;
}

export class UrlNotAllowed extends Error {
  override readonly name = "UrlNotAllowed";
  readonly code = "url_not_allowed";
}

/** The URL's host without IPv6 brackets. */
export const hostOf = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, "$1");

/** Parses a webhook URL: http(s), no credentials. Throws UrlNotAllowed. */
export function parseWebhookUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UrlNotAllowed("url is not a valid absolute URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new UrlNotAllowed("url must be http or https");
  if (url.username || url.password) throw new UrlNotAllowed("url must not carry credentials");
  if (!url.hostname) throw new UrlNotAllowed("url has no host");
  return url;
}

function lookupAll(host: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => dnsLookup(host, { all: true, verbatim: true }, (err, addrs) => (err ? reject(err) : resolve(addrs))));
}

/** Resolves the URL's host; every address must be public unless `allowPrivate`. Throws UrlNotAllowed. */
export async function checkWebhookUrl(raw: string, allowPrivate: boolean): Promise<URL> {
  const url = parseWebhookUrl(raw);
  if (allowPrivate) return url;
  const host = hostOf(url);
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = (await lookupAll(host)).map((a) => a.address);
    } catch {
      throw new UrlNotAllowed(`url host ${JSON.stringify(host)} does not resolve`);
    }
  }
  const bad = addresses.find((a) => !isPublicAddress(a));
  if (bad !== undefined || addresses.length === 0) throw new UrlNotAllowed(`url host ${JSON.stringify(host)} resolves to a non-public address (${bad ?? "none"})`);
  return url;
}

/**
 * A `lookup` for http.request that refuses non-public addresses: the connection uses
 * exactly the addresses checked here (no second resolution to rebind).
 */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean; family?: number }, callback: (...args: any[]) => void) => {
    dnsLookup(hostname, { ...options, all: true, verbatim: true } as any, (err: NodeJS.ErrnoException | null, addrs: LookupAddress[]) => {
      if (err) return callback(err);
      const bad = addrs.find((a) => !allowPrivate && !isPublicAddress(a.address));
      if (bad || addrs.length === 0) return callback(new UrlNotAllowed(`${hostname} resolves to a non-public address (${bad?.address ?? "none"})`));
      if (options.all) callback(null, addrs);
      else callback(null, addrs[0]!.address, addrs[0]!.family);
    });
  };
}
