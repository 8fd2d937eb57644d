#!/usr/bin/env bash
# Throwaway comparison: flotilla's benchmark backend as a Docker swarm
# service, loaded directly and through Docker's own ingress routing mesh
# (`flotilla bench mesh --docker-swarm`). It puts the local engine
# (unix:///var/run/docker.sock; DOCKER_HOST is ignored) in swarm mode for
# the run and refuses an engine already in it. The bench leaves swarm mode
# itself; the trap below leaves it too, whatever happens to the bench.
# Never run by tests or CI. Extra arguments go to `bench mesh`.
set -euo pipefail
cd "$(dirname "$0")/.."
unset DOCKER_HOST
mkdir -p bin
CGO_ENABLED=0 go build -o bin/flotilla ./cmd/flotilla   # static: it runs alone inside the image
if [ "$(docker -H unix:///var/run/docker.sock info --format '{{.Swarm.LocalNodeState}}')" != inactive ]; then
  echo "the engine is already in swarm mode: not touching a swarm this script did not make" >&2
  exit 1
fi
trap 'docker -H unix:///var/run/docker.sock swarm leave --force >/dev/null 2>&1 || true' EXIT
bin/flotilla bench mesh --docker-swarm "$@"
