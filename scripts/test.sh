#!/usr/bin/env bash
# The whole test suite: formatting, go.mod tidiness, vet and staticcheck,
# then every tier (package tests, in-process clusters, e2e tests of the
# built binary and the docker CLI), with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi
if ! go mod tidy -diff; then
  echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; exit 1
fi
go vet ./...
# staticcheck at a pinned version, fetched from the module proxy (not a
# dependency of the module, so go.mod stays the product's).
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
go test -race -count=1 -timeout 20m ./... "$@"
