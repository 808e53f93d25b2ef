#!/usr/bin/env bash
# Contract gate: protobuf format/lint/breaking, generated code fresh (gen/ and the Python
# client's stubs), OpenAPI lint and breaking changes, Drizzle migrations fresh. Stops at
# the first failure (exit 1). See docs/contracts.md.
#
#   bash scripts/check-contracts.sh                    # run every check (CI, before pushing)
#   bash scripts/check-contracts.sh --update-baseline  # deliberately accept the current contract:
#       regenerate, show what breaks against the old baseline, then rewrite
#       contracts/baseline/fabric.binpb and contracts/baseline/openapi.json (commit them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=node_modules/.bin
BASE=contracts/baseline
export REDOCLY_TELEMETRY=off
n=0
step() { n=$((n + 1)); printf '\n==> [%s] %s\n' "$n" "$*"; }
fail() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf '    ok: %s\n' "$*"; }

[[ -x $BIN/buf ]] || fail "node_modules/.bin/buf is missing: run npm ci"

# Fails when regenerating changed tracked files under $1 or left new untracked files there.
# (Compared with the index, so regenerated files that are already `git add`-ed count as fresh.)
must_be_unchanged() {
  local dir=$1 hint=$2 untracked
  untracked=$(git ls-files --others --exclude-standard -- "$dir")
  if ! git diff --quiet -- "$dir" || [[ -n $untracked ]]; then
    git status --short -- "$dir" >&2
    git diff --stat -- "$dir" >&2
    fail "$hint"
  fi
}

case "${1:-}" in
  "") ;;
  --update-baseline)
    step "codegen (npm run codegen)"
    npm run --silent codegen
    mkdir -p "$BASE"
    if [[ -f $BASE/fabric.binpb && -f $BASE/openapi.json ]]; then
      step "changes being accepted (informational)"
      "$BIN/buf" breaking --against "$BASE/fabric.binpb" || true
      "$BIN/tsx" scripts/check-openapi-breaking.ts "$BASE/openapi.json" gen/openapi/openapi.json || true
    fi
    step "write $BASE/fabric.binpb and $BASE/openapi.json"
    "$BIN/buf" build -o "$BASE/fabric.binpb"
    cp gen/openapi/openapi.json "$BASE/openapi.json"
    printf '\nBaselines refreshed. Review them (git status --short %s; git diff %s) and commit them.\n' "$BASE" "$BASE"
    exit 0
    ;;
  *) echo "usage: $0 [--update-baseline]" >&2; exit 2 ;;
esac

[[ -f $BASE/fabric.binpb && -f $BASE/openapi.json ]] || fail "no baseline in $BASE: run bash scripts/check-contracts.sh --update-baseline"

step "buf format -d --exit-code"
"$BIN/buf" format -d --exit-code || fail "proto files are not formatted: run npx buf format -w"
ok "proto formatted"

step "buf lint"
"$BIN/buf" lint || fail "buf lint found problems"
ok "proto lint clean"

step "buf breaking --against $BASE/fabric.binpb"
"$BIN/buf" breaking --against "$BASE/fabric.binpb" || fail "breaking protobuf change against the baseline (if deliberate: --update-baseline)"
ok "no breaking protobuf changes"

step "generated code is fresh (npm run codegen, then git diff gen/ and clients/python/fabric_client/_gen/ + untracked files)"
npm run --silent codegen || fail "npm run codegen failed"
must_be_unchanged gen/ "generated code is stale, run npm run codegen (and commit gen/)"
ok "gen/ matches the sources"
must_be_unchanged clients/python/fabric_client/_gen/ "the Python client's stubs are stale, run npm run codegen (and commit clients/python/fabric_client/_gen/)"
ok "clients/python/fabric_client/_gen/ matches the sources"

step "redocly lint gen/openapi/openapi.json"
"$BIN/redocly" lint gen/openapi/openapi.json || fail "redocly lint found problems in the derived OpenAPI document"
# Its OpenAPI 3.0 form (scripts/openapi-30.ts), for tools limited to 3.0.
"$BIN/redocly" lint gen/openapi/openapi-3.0.json || fail "redocly lint found problems in the OpenAPI 3.0 document"

step "OpenAPI breaking changes against $BASE/openapi.json"
"$BIN/tsx" scripts/check-openapi-breaking.ts "$BASE/openapi.json" gen/openapi/openapi.json \
  || fail "breaking REST change against the baseline (if deliberate: --update-baseline)"

step "Drizzle migrations are fresh (drizzle-kit generate, then git diff drizzle/)"
if [[ -f drizzle.config.ts ]]; then
  # Without a terminal, drizzle-kit prints "Error: Interactive prompts require a TTY" (a rename
  # it must ask about) and still exits 0, writing nothing: treat any Error line as a failure.
  out=$("$BIN/drizzle-kit" generate </dev/null 2>&1) || { echo "$out"; fail "drizzle-kit generate failed"; }
  echo "$out"
  if grep -q '^Error' <<<"$out"; then fail "drizzle-kit generate could not finish (it asks about renames): run npm run db:generate in a terminal and commit drizzle/"; fi
  must_be_unchanged drizzle/ "migrations are stale: run npm run db:generate and commit drizzle/"
  ok "drizzle/ matches the schema"
else
  echo "    skipped: no drizzle.config.ts yet"
fi

printf '\nAll contract checks passed.\n'
