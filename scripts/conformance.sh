#!/usr/bin/env bash
# Compares flotilla's Engine API answers with the machine's own Docker
# Engine in swarm mode (e2e TestConformance). A throwaway run: it puts the
# real engine in swarm mode and always takes it out again, whatever
# happens. Never part of the normal suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOCKER_HOST=unix:///var/run/docker.sock
state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$state" != "inactive" ]; then
  echo "the Docker Engine is already in a swarm ($state): refusing to touch it"; exit 1
fi
trap 'docker swarm leave --force >/dev/null 2>&1 || true; echo "engine swarm state: $(docker info --format "{{.Swarm.LocalNodeState}}")"' EXIT
FLOTILLA_CONFORMANCE=1 go test -count=1 -run 'TestConformance|TestShapeDiff' -v ./e2e "$@"
