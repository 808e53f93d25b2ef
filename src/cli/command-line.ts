/**
 * What every command shares: flag parsing that turns mistakes into a `UsageError`, and
 * the two error kinds main.ts turns into exit codes (usage.ts lists them).
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** The command line is wrong: exit 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The operation was tried and failed: exit 1. The message is the one line printed. */
export class CommandFailure extends Error {
  override readonly name = "CommandFailure";
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** `parseArgs`, strict, with its errors as `UsageError`s naming the command's help. */
export function parseCommandLine<O extends Options>(command: string, args: string[], options: O, opts: { positionals?: number } = {}) {
  try {
    const parsed = parseArgs({ args, options, allowPositionals: (opts.positionals ?? 0) > 0, strict: true });
    if (parsed.positionals.length > (opts.positionals ?? 0)) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[opts.positionals ?? 0])}`);
    return parsed;
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(`${err.message} (see fabric ${command} --help)`);
    // node:util's messages carry a hint about `--` meant for scripts; the first sentence is what a person needs.
    const message = (err as Error).message.replace(/\. To specify a positional argument.*$/s, "").replace(/\.$/, "");
    throw new UsageError(`${message.charAt(0).toLowerCase()}${message.slice(1)} (see fabric ${command} --help)`);
  }
}

/** A whole number flag within bounds. */
export function integerFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} expects a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}
