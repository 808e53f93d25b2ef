/**
 * Issue 14, item 10 (part): IPv6 forms of loopback/private ranges are not webhook targets,
 * lookalike emails fold to one (NFKC) and invisible characters are refused, access tokens
 * without `exp` or `sid` are refused, a blank JWT_SECRET is refused.
 */
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { isPublicAddress } from "../../src/delivery/webhook-security.js";
import { isValidEmail, normalizeEmail, requireEmail } from "../../src/domain/email.js";
import { issueAccessToken, verifyAccessToken } from "../../src/services/identity/authenticator.js";

describe("webhook targets", () => {
  it("refuses IPv6 forms of loopback and private ranges", () => {
    for (const ip of ["::7f00:1", "::ffff:0:7f00:1", "64:ff9b::7f00:1", "64:ff9b:1::a00:1", "2002:7f00:1::1", "fec0::1", "::1", "::ffff:127.0.0.1"]) {
      expect(isPublicAddress(ip), ip).toBe(false);
    }
  });
  it("still accepts public addresses (positive control)", () => {
    for (const ip of ["2606:4700:4700::1111", "1.1.1.1", "2001:4860:4860::8888"]) expect(isPublicAddress(ip), ip).toBe(true);
  });
});

describe("emails", () => {
  it("folds fullwidth lookalikes into one address", () => {
    expect(normalizeEmail("ａｌｉｃｅ@example.com")).toBe("alice@example.com");
  });
  it("refuses invisible characters", () => {
    for (const e of ["al\u200Bice@example.com", "alice\u200D@example.com", "ali\uFEFFce@example.com", "ali\u2060ce@example.com"]) {
      expect(isValidEmail(normalizeEmail(e)), JSON.stringify(e)).toBe(false);
      expect(() => requireEmail(e)).toThrow();
    }
    expect(requireEmail("Alice@Example.com")).toBe("alice@example.com");
  });
});

describe("access tokens", () => {
  const secret = new TextEncoder().encode("x".repeat(16) + "abcdefghijklmnop");
  const sub = "00000000-0000-4000-8000-000000000001";
  const sid = "00000000-0000-4000-8000-000000000002";
  it("refuses a token without exp or without sid", async () => {
    const noExp = await new SignJWT({ typ: "access", sid }).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setIssuer("fabric").setIssuedAt().sign(secret);
    const noSid = await new SignJWT({ typ: "access" }).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setIssuer("fabric").setIssuedAt().setExpirationTime("5m").sign(secret);
    await expect(verifyAccessToken(noExp, secret)).rejects.toThrow();
    await expect(verifyAccessToken(noSid, secret)).rejects.toThrow();
  });
  it("accepts one the server issues (positive control)", async () => {
    expect(await verifyAccessToken(await issueAccessToken(sub, sid, secret), secret)).toEqual({ principalId: sub, sessionId: sid });
  });
});

describe("JWT_SECRET", () => {
  it("refuses 32 spaces and other blank or repetitive secrets", () => {
    for (const v of [" ".repeat(32), "a".repeat(40), " ".repeat(20) + "abcdefghijkl"]) expect(() => loadConfig({ JWT_SECRET: v }), JSON.stringify(v)).toThrow(/JWT_SECRET/);
    expect(loadConfig({ JWT_SECRET: "a-real-secret-0123456789-abcdefghijk" }).JWT_SECRET).toBeTruthy();
  });
});
