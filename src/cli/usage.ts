/**
 * The help text of every command, kept apart from the commands themselves so that
 * `fabric --help` and `fabric <command> --help` load nothing else.
 */

export const exitCodes = `Exit codes: 0 success · 1 failure (the operation was tried and failed: a run that failed,
an unreachable server or database, a busy port, an older schema, a refusal by the server)
· 2 usage (unknown command or flag, a missing or malformed argument or file, invalid
configuration, input the server rejected as invalid). Errors are one line on stderr; set
LOG_LEVEL=debug for the stack.`;

const apiFlags = `Connection: --url URL (FABRIC_URL, default http://127.0.0.1:3001) --api-key KEY (FABRIC_API_KEY;
default: the key \`fabric dev\` saved in FABRIC_DATA_DIR/dev-api-key) --json (machine-readable output)`;

const serverFlags = `Flags: --port N (PORT) --grpc-port N (GRPC_PORT) --host H (HOST) --data-dir DIR (FABRIC_DATA_DIR)
Environment: DATABASE_URL, DATABASE_POOL_MAX, FABRIC_ENV, JWT_SECRET, LOG_LEVEL, … (see README)`;

export const commandUsage: Record<string, string> = {
  dev: `fabric dev [flags]
  The control plane and an executor in one process, on the embedded Postgres (PGlite) in
  FABRIC_DATA_DIR unless DATABASE_URL is set. Prints the URLs, a console sign-in link and
  an API key. Development only.
${serverFlags}`,
  serve: `fabric serve [--no-migrate] [flags]
  The control plane: REST + SSE on PORT (3001), gRPC on GRPC_PORT (3002). Applies the
  migrations first (under a Postgres advisory lock, so several replicas may start at
  once); with --no-migrate it applies none and refuses to start on a schema older than
  its code.
${serverFlags}`,
  executor: `fabric executor
  An executor: claims ready steps from Postgres and runs them. Needs DATABASE_URL; run as
  many as you like. Refuses to start on a schema older than its code (run \`fabric migrate\`).
Environment: DATABASE_URL, WORKER_ID, WORKER_CONCURRENCY, WORKER_POLL_INTERVAL,
  WORKER_LEASE_SECONDS, WORKER_MAX_RETRIES, WORKER_SHUTDOWN_GRACE, RUN_ID, LOG_LEVEL`,
  migrate: `fabric migrate [--data-dir DIR]
  Applies the database migrations and exits (DATABASE_URL, or the embedded database in
  FABRIC_DATA_DIR). Safe to run from several places at once.`,
  admin: `fabric admin bootstrap --email EMAIL --organization NAME [--slug SLUG] [--force] [--json]
  Creates the first owner: an organization, a user with that email as its owner, and an
  API key for that user, printed once. Talks to the database directly (DATABASE_URL, or
  the embedded database), applying migrations first. Run it again with the same email
  and organization: nothing changes and no key is printed. When another owner exists it
  refuses unless --force (which adds this owner, and a new key for an existing one).`,
  run: `fabric run <file.json|yaml> [--input k=v ...] [--input-json '{…}'] [--follow]
           [--idempotency-key K] [--priority 0-100]
  Registers the workflow in the file, starts a run and, with --follow, prints each
  step live and then the final context. Exit 0 when the run completed, 1 when it failed.
${apiFlags}`,
  runs: `fabric runs list [--status S] [--workflow-id ID] [--limit N]
fabric runs get RUN_ID
fabric runs cancel RUN_ID [--reason TEXT]
fabric runs events RUN_ID
  Runs of your organization: a table by default (--json for the API's JSON). \`events\`
  prints the run's events, its history then live ones, until the run ends (Ctrl-C stops).
${apiFlags}`,
  workflows: `fabric workflows list [--limit N]
fabric workflows get ID_OR_NAME
fabric workflows apply FILE (.json, .yaml)
  Workflow definitions: apply registers the file's workflow (a new version when it changed).
${apiFlags}`,
  keys: `fabric keys create --name NAME [--scopes a,b] [--expires-in-days N]
fabric keys list
fabric keys revoke KEY_ID
  API keys of your organization; create prints the new key once.
${apiFlags}`,
};

export const mainUsage = `fabric — AI workflow platform

Usage: fabric <command> [flags]      fabric <command> --help      fabric --version

Servers:
  dev                  control plane + executor in one process (embedded Postgres unless DATABASE_URL)
  serve                control plane: REST + SSE on PORT (3001), gRPC on GRPC_PORT (3002)
  executor             an executor (needs DATABASE_URL; run as many as you like)
  migrate              apply database migrations and exit
  admin bootstrap      create the first owner, organization and API key (production)

Over the API (FABRIC_URL, FABRIC_API_KEY or --url, --api-key):
  run FILE             register a workflow, start a run, optionally follow it live
  runs                 list | get | cancel | events
  workflows            list | get | apply FILE
  keys                 create | list | revoke

${exitCodes}`;
