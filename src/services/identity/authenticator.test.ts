import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DomainError } from "../../domain/errors.js";
import { createAuthenticator, hashSecret, isLoopbackAddress, newApiKey, parseApiKey } from "./authenticator.js";



describe("API keys", () => {
  it("have the format fab_<8 lowercase letters/digits>_<secret>", () => {
    for (let i = 0; i < 50; i++) {
      const k = newApiKey();
      expect(k.raw).toMatch(/^fab_[a-z0-9]{8}_[A-Za-z0-9]{20,128}$/);
      expect(k.raw.startsWith(`fab_${k.prefix}_`)).toBe(true);
    }
  });

  it("round-trip through parseApiKey, and the hash is of the secret", () => {
    const k = newApiKey();
    const parsed = parseApiKey(k.raw);
    expect(parsed).toEqual({ prefix: k.prefix, secret: k.raw.slice(`fab_${k.prefix}_`.length) });
    expect(hashSecret(parsed!.secret)).toBe(k.secretHash);
  });

  it("are unique", () => {
    const keys = Array.from({ length: 200 }, () => newApiKey());
    expect(new Set(keys.map((k) => k.raw)).size).toBe(200);
    expect(new Set(keys.map((k) => k.secretHash)).size).toBe(200);
  });

  it("store nothing the raw key can be derived from", () => {
    const k = newApiKey();
    const secret = parseApiKey(k.raw)!.secret;
    const stored = JSON.stringify({ prefix: k.prefix, secretHash: k.secretHash });
    expect(stored).not.toContain(secret);
    expect(stored).not.toContain(secret.slice(0, 12));
    expect(k.secretHash).toMatch(/^[0-9a-f]{64}$/);
    // The hash is of the secret alone (not the prefix), so the stored prefix adds nothing.
    expect(k.secretHash).not.toBe(hashSecret(k.raw));
  });

  it.each([
    "",
    "fab_",
    "fab_abcd1234",
    "fab_ABCD1234_aaaaaaaaaaaaaaaaaaaaaaaa",
    "fab_abcd123_aaaaaaaaaaaaaaaaaaaaaaaa",
    "fab_abcd1234_short",
    "fab_abcd1234_aaaaaaaaaaaaaaaaaaaa-aaaa",
    "key_abcd1234_aaaaaaaaaaaaaaaaaaaaaaaa",
    "fab_abcd1234_aaaaaaaaaaaaaaaaaaaaaaaa ",
    `fab_abcd1234_${"a".repeat(129)}`,
  ])("parseApiKey rejects %j", (raw) => {
    expect(parseApiKey(raw)).toBeNull();
  });
});

describe("hashSecret", () => {
  it("is a deterministic SHA-256 hex digest, never the secret itself", () => {
    expect(hashSecret("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(hashSecret("abc")).toBe(hashSecret("abc"));
    expect(hashSecret("abd")).not.toBe(hashSecret("abc"));
    const s = "A".repeat(64);
    expect(hashSecret(s)).not.toBe(s);
    expect(hashSecret("")).not.toBe("");
  });
});

describe("X-Principal-Id outside `fabric dev` on loopback", () => {
  const pid = "00000000-0000-4000-8000-000000000000";
  it("is refused as unauthenticated before anything is looked up", async () => {
    const auth = createAuthenticator({} as never, { principalHeader: false, jwtSecret: new Uint8Array(32) });
    const err = await auth.authenticate({ principalId: pid, clientAddress: "127.0.0.1" }).catch((e) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(err.kind).toBe("unauthenticated");
    expect(err.message).toContain("fabric dev");
  });

  it("is refused from a non-loopback client even where it is allowed", async () => {
    const auth = createAuthenticator({} as never, { principalHeader: true, jwtSecret: new Uint8Array(32) });
    for (const clientAddress of ["10.0.0.5", "::ffff:192.168.1.2", "2001:db8::1", undefined]) {
      const err = await auth.authenticate({ principalId: pid, clientAddress }).catch((e) => e);
      expect(err.kind, String(clientAddress)).toBe("unauthenticated");
    }
  });
});

describe("isLoopbackAddress", () => {
  it("knows loopback in its IPv4, IPv6 and mapped forms", () => {
    for (const a of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"]) expect(isLoopbackAddress(a), a).toBe(true);
    for (const a of ["10.0.0.1", "::ffff:10.0.0.1", "0.0.0.0", "::", "", "128.0.0.1"]) expect(isLoopbackAddress(a), a).toBe(false);
  });
});
