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

/** Trimmed and lower-cased: the one form emails are stored and compared in. */
export const normalizeEmail = (email: string) => email.trim().toLowerCase();

const label = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const emailPattern = new RegExp(`^[^\\s@\\p{Cc}"<>()\\[\\],;:\\\\]{1,64}@${label}(?:\\.${label})+$`, "u");

/** Whether a normalized email is one a user can sign up with. */
export const isValidEmail = (normalized: string) => normalized.length <= maxEmailLength && emailPattern.test(normalized);

/** The normalized email, or `invalid_argument` (`required` / `invalid_email`) at `path`. */
export function requireEmail(raw: string, path = "/email"): string {
  const email = normalizeEmail(raw);
  if (!email) throw invalidArgument("email is required", [{ path, code: "required", message: "email is required" }]);
  if (!isValidEmail(email)) throw invalidArgument("email is not a valid email address", [{ path, code: "invalid_email", message: "not a valid email address" }]);
  return email;
}
