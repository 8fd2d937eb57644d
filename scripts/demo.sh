#!/usr/bin/env bash
# The main job on one machine: build flotilla, start a local sandbox cluster
# (3 managers, 2 workers, each a separate daemon on 127.0.0.1) with the
# sample stack of examples/sample/compose.yml, and show it. Arguments go
# to `flotilla sandbox up`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
CGO_ENABLED=0 go build -o bin/ ./cmd/...   # static: flotilla also runs alone inside an image; flotilla-discover: cloud lookups
DIR="${FLOTILLA_SANDBOX_DIR:-$PWD/.sandbox}"
if [ -f "$DIR/sandbox.json" ]; then
  bin/flotilla sandbox down --dir "$DIR" >/dev/null || true
fi
bin/flotilla sandbox up --managers "${MANAGERS:-3}" --workers "${WORKERS:-2}" --dir "$DIR" "$@"   # e.g. --sample-driver process
echo
echo "+ flotilla -H unix://$DIR/manager-1/api.sock node ls"
bin/flotilla -H "unix://$DIR/manager-1/api.sock" node ls
echo
echo "Stop it with: bin/flotilla sandbox down --dir $DIR"
