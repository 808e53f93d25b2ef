/**
 * The one email rule: what sign-up accepts, and therefore what an invitation may be sent
 * to — an invitation can only be accepted by a user whose email equals it, so an address no
 * one could sign up with would be an invitation no one could ever accept.
 *
 * A pragmatic check, not RFC 5322: at most 254 characters (the longest address SMTP can
 * carry), a local part of 1..64 characters without spaces, controls, quotes, brackets or
 * `@`, and a domain of at least two dot-separated DNS labels (IDNs in punycode).
 */
import { invalidArgument } from "./errors.js";

export const maxEmailLength = 254;

/**
 * NFKC-normalized, trimmed and lower-cased: the one form emails are stored and compared
 * in. NFKC folds fullwidth and other compatibility forms (`ａ` → `a`), so two addresses
 * that look alike are one.
 */
export const normalizeEmail = (email: string) => email.normalize("NFKC").trim().toLowerCase();

/** Invisible characters (format controls such as zero-width space/joiners, BOM, bidi marks): never in an email. */
const invisible = /[\p{Cf}\u115F\u1160\u3164\uFFA0]/u;

const label = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const emailPattern = new RegExp(`^[^\\s@\\p{Cc}"<>()\\[\\],;:\\\\]{1,64}@${label}(?:\\.${label})+$`, "u");

/** Whether a normalized email is one a user can sign up with. */
export const isValidEmail = (normalized: string) => normalized.length <= maxEmailLength && !invisible.test(normalized) && emailPattern.test(normalized);

/** The normalized email, or `invalid_argument` (`required` / `invalid_email`) at `path`. */
export function requireEmail(raw: string, path = "/email"): string {
  const email = normalizeEmail(raw);
  if (!email) throw invalidArgument("email is required", [{ path, code: "required", message: "email is required" }]);
  if (!isValidEmail(email)) throw invalidArgument("email is not a valid email address", [{ path, code: "invalid_email", message: "not a valid email address" }]);
  return email;
}
