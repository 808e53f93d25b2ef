/**
 * Where raw SQL may be written: only in `src/db`, one module per statement with its locking
 * argument above it. Elsewhere code uses drizzle's query builder (`db.select()…`,
 * `tx.update(t).set({ at: sql\`now()\` })` — a column value or a predicate inside a builder
 * call is part of that call) and the named statements of `src/db`. What this flags outside
 * `src/db` is a statement of its own: a `sql` template that starts a statement or a
 * sub-select, a raw `execute`, postgres.js's `unsafe`, `sql.raw`, an advisory lock, or the
 * raw-statement helper `query` of `db/database.ts`.
 */
const rules: { name: string; pattern: RegExp }[] = [
  { name: "a SQL statement in a sql template", pattern: /\bsql`\s*\(?\s*(?:SELECT|INSERT|UPDATE|DELETE|WITH|VALUES|LOCK|NOTIFY|LISTEN|CREATE|ALTER|DROP|TRUNCATE)\b/i },
  { name: "a raw execute", pattern: /\b(?:db|tx|ex|executor|database|client|connection)\.execute\(|\bexecute\(\s*sql`/ },
  { name: "unsafe", pattern: /\.unsafe\(/ },
  { name: "sql.raw", pattern: /\bsql\.raw\(/ },
  { name: "an advisory lock", pattern: /pg_(?:try_)?advisory/i },
  { name: "the raw-statement helper query", pattern: /import\s*\{[^}]*\bquery\b[^}]*\}\s*from\s*"[^"]*db\/database\.js"/ },
];

/** `path: rule` for each module outside `src/db` that writes raw SQL, in path order. */
export function rawSqlOutsideDb(sources: ReadonlyMap<string, string>): string[] {
  const found: string[] = [];
  for (const [path, text] of [...sources].sort(([a], [b]) => a.localeCompare(b))) {
    if (path.startsWith("src/db/")) continue;
    for (const rule of rules) if (rule.pattern.test(text)) found.push(`${path}: ${rule.name}`);
  }
  return found;
}
