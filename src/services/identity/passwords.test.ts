import { describe, expect, it } from "vitest";
import { currentParams, hashPassword, maxmemFor, needsRehash, parsePasswordHash, plausiblePassword, requireAcceptablePassword, verifyPassword } from "./passwords.js";

const good = "correct horse battery staple";

describe("passwords", () => {
  it("hashes to a self-describing scrypt string and verifies the round trip", async () => {
    const stored = await hashPassword(good);
    expect(stored).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(stored).not.toContain(good);
    expect(await verifyPassword(good, stored)).toBe(true);
  });

  it("salts: the same password hashes differently each time, and both verify", async () => {
    const [a, b] = await Promise.all([hashPassword(good), hashPassword(good)]);
    expect(a).not.toBe(b);
    expect(await verifyPassword(good, a)).toBe(true);
    expect(await verifyPassword(good, b)).toBe(true);
  });

  it("refuses a wrong password", async () => {
    const stored = await hashPassword(good);
    expect(await verifyPassword("correct horse battery stapl", stored)).toBe(false);
    expect(await verifyPassword(good.toUpperCase(), stored)).toBe(false);
    expect(await verifyPassword("", stored)).toBe(false);
  });

  it("treats composed and decomposed Unicode as the same password (NFC)", async () => {
    const composed = "mot de passe d\u00e9j\u00e0 vu";
    const decomposed = "mot de passe de\u0301ja\u0300 vu";
    expect(composed).not.toBe(decomposed);
    expect(await verifyPassword(decomposed, await hashPassword(composed))).toBe(true);
  });

  it("parses the parameters, salt and key", async () => {
    const stored = await hashPassword(good);
    const parsed = parsePasswordHash(stored)!;
    expect(parsed).not.toBeNull();
    expect({ N: parsed.N, r: parsed.r, p: parsed.p }).toEqual({ N: 2 ** 15, r: 8, p: 1 });
    expect(parsed.salt.length).toBe(16);
    expect(parsed.key.length).toBe(32);
    expect(needsRehash(stored)).toBe(false);
  });

  it("verifies hashes written with other parameters, and says they need a rehash", async () => {
    const weaker = await hashPassword(good, { N: 2 ** 12, r: 8, p: 1 });
    expect(weaker.startsWith("scrypt$4096$8$1$")).toBe(true);
    expect(await verifyPassword(good, weaker)).toBe(true);
    expect(await verifyPassword("not the password", weaker)).toBe(false);
    expect(needsRehash(weaker)).toBe(true);
  });

  it("refuses tampered or malformed stored strings (false, never a throw)", async () => {
    const stored = await hashPassword(good);
    const parts = stored.split("$");
    const flip = (s: string) => (s[0] === "A" ? "B" : "A") + s.slice(1);
    const tampered = [
      [parts[0], parts[1], parts[2], parts[3], flip(parts[4]!), parts[5]].join("$"), // salt changed
      [parts[0], parts[1], parts[2], parts[3], parts[4], flip(parts[5]!)].join("$"), // key changed
      [parts[0], "16384", parts[2], parts[3], parts[4], parts[5]].join("$"), // cost lowered
      [parts[0], parts[1], "4", parts[3], parts[4], parts[5]].join("$"), // block size changed
    ];
    for (const t of tampered) expect(await verifyPassword(good, t), t).toBe(false);

    const malformed = [
      "",
      "plain text",
      stored.replace("scrypt$", "bcrypt$"),
      stored + "$extra",
      [parts[0], "1000", parts[2], parts[3], parts[4], parts[5]].join("$"), // not a power of two
      [parts[0], String(2 ** 24), parts[2], parts[3], parts[4], parts[5]].join("$"), // asks for too much work
      [parts[0], parts[1], "0", parts[3], parts[4], parts[5]].join("$"),
      [parts[0], parts[1], parts[2], "99", parts[4], parts[5]].join("$"),
      [parts[0], parts[1], parts[2], parts[3], parts[4] + "=", parts[5]].join("$"), // padding: not canonical
      [parts[0], parts[1], parts[2], parts[3], "c2FsdA", parts[5]].join("$"), // salt too short
      [parts[0], parts[1], parts[2], parts[3], parts[4], "a2V5"].join("$"), // key too short
      [parts[0], parts[1], parts[2], parts[3], "not base64!", parts[5]].join("$"),
    ];
    for (const m of malformed) {
      expect(parsePasswordHash(m), m).toBeNull();
      expect(needsRehash(m)).toBe(true);
      expect(await verifyPassword(good, m), m).toBe(false);
    }
  });

  it("no stored hash (unknown account) costs a hash and is always false", async () => {
    expect(await verifyPassword(good, null)).toBe(false);
    expect(await verifyPassword("", undefined)).toBe(false);
  });

  it("sizes maxmem for the parameters (more than Node's 32 MiB default here)", () => {
    expect(maxmemFor(currentParams)).toBeGreaterThan(128 * currentParams.N * currentParams.r);
    expect(maxmemFor(currentParams)).toBeGreaterThan(32 * 1024 * 1024);
  });

  it("accepts passwords of 10 to 1024 characters", () => {
    expect(() => requireAcceptablePassword("")).toThrow(/required/);
    expect(() => requireAcceptablePassword("123456789")).toThrow(/at least 10/);
    expect(() => requireAcceptablePassword("1234567890")).not.toThrow();
    expect(() => requireAcceptablePassword("x".repeat(1024))).not.toThrow();
    expect(() => requireAcceptablePassword("x".repeat(1025))).toThrow(/at most 1024/);
    // Characters, not UTF-16 units: five emoji are five characters.
    expect(() => requireAcceptablePassword("🔑".repeat(9))).toThrow(/at least 10/);
    expect(() => requireAcceptablePassword("🔑".repeat(10))).not.toThrow();
    expect(plausiblePassword("x".repeat(1024))).toBe(true);
    expect(plausiblePassword("x".repeat(1025))).toBe(false);
    expect(plausiblePassword("")).toBe(false);
  });
});
