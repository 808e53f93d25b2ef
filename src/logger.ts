/**
 * Structured logs: pino, one JSON object per line on stderr (stdout stays for command
 * output). `LOG_LEVEL` picks the level; on a terminal in development the lines are
 * printed short and readable instead (`pretty`).
 *
 * Every line says what it is about through child loggers carrying the context fields
 * (`request_id`, `operation`, `principal_id`, `api_key_id`, `organization_id`, `run_id`,
 * `node_key`, `attempt`, `worker_id`, `trace_id`).
 *
 * Secrets never reach the output, in two layers:
 * 1. `redact` blanks fields that hold secrets by name (authorization headers, passwords,
 *    tokens, keys, webhook secrets), at any of the depths our fields nest;
 * 2. every finished line is scrubbed of anything shaped like one of our credentials
 *    (`fab_…` API keys, `fabs_…` sign-in tokens, `whsec_…` webhook secrets, JWTs, provider
 *    keys like `sk-…`), and of the parameter lists of failed queries, which may carry any
 *    of them. Errors go through `serializeError`, which keeps type, code, message and stack
 *    with the same scrubbing.
 */
import pino, { type DestinationStream, type LevelWithSilent } from "pino";

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  /** Whether a line at `level` would be written (skip building costly fields otherwise). */
  enabled?(level: Exclude<LogLevel, "silent">): boolean;
}

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

export interface LoggerOptions {
  /** Where lines go. Default: stderr (synchronously, so nothing is lost on exit). */
  destination?: DestinationStream;
  /** Short human-readable lines instead of JSON. Default: stderr is a terminal and FABRIC_ENV is not production. */
  pretty?: boolean;
}

/** Field names whose values are secrets wherever they appear. */
const secretKeys = [
  "authorization",
  "password",
  "new_password",
  "token",
  "access_token",
  "refresh_token",
  "api_key",
  "apiKey",
  "secret",
  "signing_secret",
  "jwt",
  "cookie",
];
/** Paths pino's redaction checks: each key at the top and one or two levels down. */
const redactPaths = secretKeys.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

/**
 * Credential shapes scrubbed from every line. Whatever field a secret hides in (an error
 * message, a URL, a header dump) it leaves the process as `[REDACTED]`.
 */
const secretPatterns: RegExp[] = [
  /\bfab_[a-z0-9]{8}_[A-Za-z0-9]+/g, // API keys
  /\bfabs_[A-Za-z0-9_-]+/g, // one-time sign-in tokens
  /\bfabr_[A-Za-z0-9_-]+/g, // refresh tokens
  /\bfabi_[A-Za-z0-9_-]+/g, // invitation tokens
  /\bwhsec_[A-Za-z0-9+/=_-]+/g, // webhook signing secrets
  /\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g, // JWTs
  /\bsk-(?:ant-)?[A-Za-z0-9_-]{8,}/g, // OpenAI / Anthropic keys
  /(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, // authorization header values
];
/**
 * A failed query's parameter list (drizzle: "Failed query: …\nparams: …"): in a raw string,
 * to the end of its line; inside a finished JSON line, to the end of the JSON string.
 */
const rawQueryParams = /\nparams: [^\n]*/g;
const jsonQueryParams = /\\nparams: (?:[^"\\]|\\[^n])*/g;

/** Replaces everything credential-shaped in a string (a raw one or a finished JSON line). */
export function scrubSecrets(text: string): string {
  let out = text.replace(rawQueryParams, "\nparams: [REDACTED]").replace(jsonQueryParams, "\\nparams: [REDACTED]");
  for (const p of secretPatterns) out = out.replace(p, (m) => (/^(bearer|basic)\s/i.test(m) ? `${m.split(/\s+/)[0]} [REDACTED]` : "[REDACTED]"));
  return out;
}

/**
 * An error as a log field: type, code, message and stack, scrubbed; the SQL parameters a
 * database error may carry (`parameters`, `params`, `query`) are left out.
 */
export function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: scrubSecrets(String(err)) };
  const e = err as Error & { code?: unknown; cause?: unknown };
  const out: Record<string, unknown> = { type: e.name, message: scrubSecrets(e.message) };
  if (typeof e.code === "string" || typeof e.code === "number") out.code = e.code;
  if (e.stack) out.stack = scrubSecrets(e.stack);
  if (e.cause !== undefined && e.cause !== err) out.cause = serializeError(e.cause);
  return out;
}

const pinoLevels: Record<LogLevel, LevelWithSilent> = { debug: "debug", info: "info", warn: "warn", error: "error", silent: "silent" };

export function createLogger(level: LogLevel = "info", base: Record<string, unknown> = {}, options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? (process.stderr.isTTY === true && process.env.FABRIC_ENV !== "production" && !options.destination);
  const destination = options.destination ?? (pretty ? prettyStderr() : pino.destination({ dest: 2, sync: true }));
  const root = pino(
    {
      level: pinoLevels[level],
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      messageKey: "msg",
      redact: { paths: redactPaths, censor: "[REDACTED]" },
      serializers: { err: serializeError, error: serializeError },
      hooks: { streamWrite: scrubSecrets },
    },
    destination,
  );
  return wrap(Object.keys(base).length ? root.child(base) : root);
}

function wrap(p: pino.Logger): Logger {
  return {
    debug: (msg, fields) => (fields ? p.debug(fields, msg) : p.debug(msg)),
    info: (msg, fields) => (fields ? p.info(fields, msg) : p.info(msg)),
    warn: (msg, fields) => (fields ? p.warn(fields, msg) : p.warn(msg)),
    error: (msg, fields) => (fields ? p.error(fields, msg) : p.error(msg)),
    child: (fields) => wrap(p.child(fields)),
    enabled: (level) => p.isLevelEnabled(level),
  };
}

/** Development on a terminal: `12:00:01 INFO  message key=value …`. */
function prettyStderr(): DestinationStream {
  return {
    write(line: string) {
      try {
        const { time, level, msg, ...rest } = JSON.parse(line) as Record<string, unknown>;
        const fields = Object.entries(rest)
          .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
          .join(" ");
        process.stderr.write(`${String(time).slice(11, 19)} ${String(level).toUpperCase().padEnd(5)} ${msg}${fields ? `  ${fields}` : ""}\n`);
      } catch {
        process.stderr.write(line);
      }
    },
  };
}
