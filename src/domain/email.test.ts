import { describe, expect, it } from "vitest";
import { DomainError } from "./errors.js";
import { isValidEmail, maxEmailLength, normalizeEmail, requireEmail } from "./email.js";

describe("the one email rule (sign-up and invitations)", () => {
  it.each(["a@example.com", "first.last+tag@mail.example.co.uk", "x@xn--bcher-kva.example", `${"a".repeat(64)}@example.com`])("accepts %s", (email) => {
    expect(isValidEmail(email)).toBe(true);
  });

  it.each([
    ["no dotted domain", "ops@intranet"],
    ["no local part", "@example.com"],
    ["a space", "a b@example.com"],
    ["a quote", 'a"b@example.com'],
    ["two @", "a@b@example.com"],
    ["a local part over 64", `${"a".repeat(65)}@example.com`],
    ["a label over 63", `a@${"b".repeat(64)}.com`],
    ["a label starting with -", "a@-example.com"],
    ["over 254 characters", `${"a".repeat(64)}@${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(58)}.com`],
  ])("refuses %s", (_why, email) => {
    expect(isValidEmail(email)).toBe(false);
  });

  it("allows exactly 254 characters", () => {
    const email = `${"a".repeat(64)}@${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(57)}.com`;
    expect(email).toHaveLength(maxEmailLength);
    expect(isValidEmail(email)).toBe(true);
  });

  it("normalizes (trim, lower case) before judging, and says which rule failed", () => {
    expect(normalizeEmail("  Ada@Example.COM ")).toBe("ada@example.com");
    expect(requireEmail("  Ada@Example.COM ")).toBe("ada@example.com");
    const issueOf = (raw: string) => {
      try {
        requireEmail(raw, "/invitee");
      } catch (err) {
        return (err as DomainError).options.issues;
      }
      return undefined;
    };
    expect(issueOf("   ")).toEqual([{ path: "/invitee", code: "required", message: "email is required" }]);
    expect(issueOf("ops@intranet")).toEqual([{ path: "/invitee", code: "invalid_email", message: "not a valid email address" }]);
  });
});
