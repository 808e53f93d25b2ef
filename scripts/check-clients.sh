#!/usr/bin/env bash
# Clients in other languages, checked against this repository's contract and server
# (CI runs it from .ci/run; see docs/clients.md):
#
#   python  the Python client's own tests (clients/python/tests, unittest) against a real
#           `fabric dev` that the tests start on free ports: once on the embedded PGlite,
#           once on a new database of the local Postgres (127.0.0.1:5432)
#   go      Go stubs of proto/ generate with buf (protoc-gen-go, protoc-gen-go-grpc) and
#           compile, with a program that uses them, against Debian's protobuf and grpc-go
#
#   bash scripts/check-clients.sh            # both
#   bash scripts/check-clients.sh python     # or: go
#
# What they need comes from Debian packages, installed when missing (as root; otherwise the
# script names the apt-get command). Ends with one line per check; exit 1 if any failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/debian-packages.sh

results=()
failed=0

check_python() {
  ensure_debian_packages python3-grpcio python3-protobuf || return 1
  # Debian's packages install for Debian's interpreter; PYTHON overrides (another
  # interpreter with grpcio and protobuf >= 4.21).
  local python=${PYTHON:-/usr/bin/python3} engine log summary
  "$python" -c 'import grpc, google.protobuf' || { echo "$python cannot import grpc and google.protobuf" >&2; return 1; }
  "$python" -c 'import grpc, google.protobuf; print("python", __import__("sys").version.split()[0], "grpcio", grpc.__version__, "protobuf", google.protobuf.__version__)'
  for engine in pglite postgres; do
    printf '\n--- Python client tests, fabric dev on %s\n' "$engine"
    log=$(mktemp)
    (cd clients/python && FABRIC_TEST_DB=$engine "$python" -m unittest discover -s tests -t . -v) 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    summary=$(unittest_counts "$log")
    rm -f "$log"
    results+=("python client on $engine: $summary")
    ((rc == 0)) || failed=1
  done
}

# "N passed, N failed, N skipped" from unittest's closing lines ("Ran N tests…", then
# "OK (skipped=1)" or "FAILED (failures=1, errors=2, skipped=1)").
unittest_counts() {
  awk '
    /^Ran [0-9]+ tests? in/ { ran = $2 }
    /^(OK|FAILED)/ {
      s = $0
      while (match(s, /(failures|errors|skipped|expected failures|unexpected successes)=[0-9]+/)) {
        kv = substr(s, RSTART, RLENGTH); split(kv, a, "="); n[a[1]] = a[2]; s = substr(s, RSTART + RLENGTH)
      }
    }
    END {
      bad = n["failures"] + n["errors"] + n["unexpected successes"]
      skip = n["skipped"] + n["expected failures"]
      if (ran == "") { print "0 passed, 1 failed, 0 skipped (no unittest summary: the run crashed)"; exit }
      printf "%d passed, %d failed, %d skipped\n", ran - bad - skip, bad, skip
    }' "$1"
}

check_go() {
  ensure_debian_packages golang-go protoc-gen-go protoc-gen-go-grpc golang-google-protobuf-dev golang-google-grpc-dev || return 1
  local tmp
  tmp=$(mktemp -d)
  # The template of docs/clients.md, writing into a GOPATH at the go_package's import path
  # (fabric.dev/gen/go/fabric/v1). Debian's Go libraries are a GOPATH too
  # (/usr/share/gocode), so GOPATH mode compiles offline, with no module proxy.
  cat >"$tmp/buf.gen.yaml" <<EOF
version: v2
inputs:
  - directory: proto
    exclude_paths: [proto/grpc, proto/google]
plugins:
  - local: protoc-gen-go
    out: $tmp/gopath/src/fabric.dev/gen/go
    opt: paths=source_relative
  - local: protoc-gen-go-grpc
    out: $tmp/gopath/src/fabric.dev/gen/go
    opt: paths=source_relative
EOF
  node_modules/.bin/buf generate --template "$tmp/buf.gen.yaml" || { rm -rf "$tmp"; return 1; }
  mkdir -p "$tmp/gopath/src/fabric.dev/usestubs"
  # A program that uses the stubs as a Go client would (it is compiled, not run).
  cat >"$tmp/gopath/src/fabric.dev/usestubs/main.go" <<'EOF'
package main

import (
	"context"
	"fmt"
	"os"

	fabricv1 "fabric.dev/gen/go/fabric/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

func main() {
	conn, err := grpc.Dial(os.Args[1], grpc.WithInsecure())
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+os.Args[2])
	input, _ := structpb.NewStruct(map[string]interface{}{"topic": "hello"})
	started, err := fabricv1.NewRunServiceClient(conn).StartRun(ctx, &fabricv1.StartRunRequest{WorkflowName: "smoke", Input: input})
	fmt.Println(started.GetRun().GetId(), err)
}
EOF
  local rc=0
  (
    cd "$tmp/gopath/src/fabric.dev/usestubs" &&
      export GOPATH="$tmp/gopath:/usr/share/gocode" GO111MODULE=off GOPROXY=off GOFLAGS= GOCACHE="$tmp/cache" &&
      go version &&
      go vet fabric.dev/gen/go/fabric/v1 fabric.dev/usestubs &&
      go build -o "$tmp/usestubs" . &&
      echo "compiled: $(ls "$tmp/gopath/src/fabric.dev/gen/go/fabric/v1" | wc -l) generated files and a program using them"
  ) || rc=1
  rm -rf "$tmp"
  return $rc
}

targets=("$@")
((${#targets[@]})) || targets=(python go)
for target in "${targets[@]}"; do
  case $target in
    python)
      printf '\n==> Python client (clients/python) against fabric dev\n'
      check_python || { failed=1; results+=("python client: FAILED (see above)"); }
      ;;
    go)
      printf '\n==> Go stubs generate and compile\n'
      if check_go; then results+=("go stubs: compiled"); else failed=1; results+=("go stubs: FAILED (see above)"); fi
      ;;
    *) echo "usage: $0 [python|go]..." >&2; exit 2 ;;
  esac
done

printf '\n'
printf '%s\n' "${results[@]}"
exit $failed
