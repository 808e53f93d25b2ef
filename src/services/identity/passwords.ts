/**
 * Password hashing with scrypt (memory-hard, Node's built-in). A stored hash describes
 * itself — `scrypt$N$r$p$<salt>$<hash>`, salt and hash base64url without padding — so
 * the parameters can be raised later: `needsRehash` tells when a stored hash is weaker
 * than today's and the caller re-hashes on the next successful login.
 *
 * Passwords are NFC-normalised before hashing (the same password typed on two systems
 * may arrive composed or decomposed). Nothing here logs or returns a password.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";
import { invalidArgument } from "../../domain/errors.js";

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  /** Block size. */
  r: number;
  /** Parallelisation. */
  p: number;
}

/** Today's parameters: 2^15 × 8 × 128 bytes = 32 MiB per hash. */
export const currentParams: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });

export const saltBytes = 16;
export const keyBytes = 32;
export const minPasswordLength = 10;
export const maxPasswordLength = 1024;

/**
 * Bounds on what a stored string may ask for: a tampered or corrupt hash must not make
 * verification allocate gigabytes or spin for minutes.
 */
const limits = { minLogN: 10, maxLogN: 20, maxR: 32, maxP: 16, minKey: 16, maxKey: 64, minSalt: 8, maxSalt: 64 } as const;

/** What scrypt needs: 128·r·(N + p + 2) bytes, plus a margin (Node's default cap of 32 MiB is just too small for N = 2^15, r = 8). */
export const maxmemFor = ({ N, r, p }: ScryptParams) => 128 * r * (N + p + 2) + 1024 * 1024;

function derive(password: string, salt: Buffer, params: ScryptParams, length: number): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: maxmemFor(params) };
  return new Promise((resolve, reject) => scrypt(password.normalize("NFC"), salt, length, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** Password length in characters (code points, so an emoji counts once). */
const lengthOf = (password: string) => {
  let n = 0;
  for (const _ of password) n++;
  return n;
};

/** `invalid_argument` unless the password is acceptable for a new account. */
export function requireAcceptablePassword(password: string, path = "/password"): void {
  if (!password) throw invalidArgument("password is required", [{ path, code: "required", message: "password is required" }]);
  const n = lengthOf(password);
  if (n < minPasswordLength) throw invalidArgument(`the password must be at least ${minPasswordLength} characters`, [{ path, code: "too_short", message: `at least ${minPasswordLength} characters` }]);
  if (n > maxPasswordLength) throw invalidArgument(`the password must be at most ${maxPasswordLength} characters`, [{ path, code: "too_long", message: `at most ${maxPasswordLength} characters` }]);
}

/** Whether a password could be one we accepted (for login: longer ones are refused before any hashing). */
export const plausiblePassword = (password: string) => password.length > 0 && lengthOf(password) <= maxPasswordLength;

/** A new self-describing hash of `password` with today's parameters and a fresh salt. */
export async function hashPassword(password: string, params: ScryptParams = currentParams): Promise<string> {
  const salt = randomBytes(saltBytes);
  const key = await derive(password, salt, params, keyBytes);
  return format(params, salt, key);
}

function format(params: ScryptParams, salt: Buffer, key: Buffer): string {
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

export interface ParsedHash extends ScryptParams {
  salt: Buffer;
  key: Buffer;
}

const b64url = /^[A-Za-z0-9_-]+$/;

/** The parts of a stored hash, or `null` when it is not one this module wrote (or asks for out-of-bounds work). */
export function parsePasswordHash(stored: string): ParsedHash | null {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return null;
  const [, n, r, p, salt, key] = parts as [string, string, string, string, string, string];
  if (![n, r, p].every((x) => /^[1-9]\d{0,8}$/.test(x))) return null;
  const params = { N: Number(n), r: Number(r), p: Number(p) };
  const logN = Math.log2(params.N);
  if (!Number.isInteger(logN) || logN < limits.minLogN || logN > limits.maxLogN) return null;
  if (params.r > limits.maxR || params.p > limits.maxP) return null;
  if (!b64url.test(salt) || !b64url.test(key)) return null;
  const saltBuf = Buffer.from(salt, "base64url");
  const keyBuf = Buffer.from(key, "base64url");
  // Canonical encodings only: a string that decodes "loosely" was not written by us.
  if (saltBuf.toString("base64url") !== salt || keyBuf.toString("base64url") !== key) return null;
  if (saltBuf.length < limits.minSalt || saltBuf.length > limits.maxSalt || keyBuf.length < limits.minKey || keyBuf.length > limits.maxKey) return null;
  return { ...params, salt: saltBuf, key: keyBuf };
}

/**
 * A well-formed hash with today's parameters that no password is expected to match
 * (an all-zero key): verifying against it costs what a real verification costs, so a
 * login for an unknown account takes as long as one with a wrong password.
 */
const dummyHash = format(currentParams, Buffer.alloc(saltBytes), Buffer.alloc(keyBytes));

/**
 * Whether `password` matches `stored`, compared in constant time. `stored` null (no such
 * account, or one without a password) still costs one full hash and is always false.
 * A malformed or tampered stored string is false, never an exception.
 */
export async function verifyPassword(password: string, stored: string | null | undefined): Promise<boolean> {
  const parsed = parsePasswordHash(stored ?? dummyHash);
  if (!parsed) {
    // Spend the same time anyway; the answer is no.
    await derive(password, Buffer.alloc(saltBytes), currentParams, keyBytes);
    return false;
  }
  const key = await derive(password, parsed.salt, parsed, parsed.key.length);
  const match = timingSafeEqual(key, parsed.key);
  return match && stored !== null && stored !== undefined;
}

/** Whether a stored hash is weaker than (or differs from) what `hashPassword` writes today. */
export function needsRehash(stored: string): boolean {
  const parsed = parsePasswordHash(stored);
  if (!parsed) return true;
  return parsed.N !== currentParams.N || parsed.r !== currentParams.r || parsed.p !== currentParams.p || parsed.key.length !== keyBytes || parsed.salt.length !== saltBytes;
}
