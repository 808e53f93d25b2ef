/**
 * Which event kinds a subscriber wants: a comma-separated list of kinds (`team.created`),
 * prefix patterns (`workflow.run.*`) or `*`. The event stream's `kinds` and a webhook's
 * `event_filter` are the same language; an empty list means every kind.
 */

const kindPattern = /^[a-z_]+(\.[a-z_]+)*(\.\*)?$|^\*$/;

/** The entries of a filter as written: split on commas, trimmed, empty ones dropped. */
export function eventKindFilterEntries(raw: string): string[] {
  return raw
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
}

/** The first entry that is neither a kind nor a prefix pattern, if any. */
export function invalidEventKindEntry(entries: readonly string[]): string | undefined {
  return entries.find((p) => !kindPattern.test(p));
}

/** Whether `kind` matches any entry; no entries match every kind. */
export function matchesEventKinds(entries: readonly string[], kind: string): boolean {
  return entries.length === 0 || entries.some((p) => (p === "*" ? true : p.endsWith(".*") ? kind.startsWith(p.slice(0, -1)) : kind === p));
}
