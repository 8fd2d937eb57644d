#!/usr/bin/env bash
# The whole test suite: vet, formatting, then every tier (package tests,
# in-process clusters, e2e tests of the built binary and the docker CLI),
# with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi
go vet ./...
go test -race -count=1 -timeout 20m ./... "$@"
