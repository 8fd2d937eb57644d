#!/usr/bin/env bash
# Throwaway comparisons with Docker's own swarm mode: `flotilla bench VERB
# --docker-swarm` (mesh: the same load through Docker's ingress routing
# mesh; engine: N replicas as a swarm service beside flotilla's docker
# driver and the engine straight). It puts the local engine
# (unix:///var/run/docker.sock; DOCKER_HOST is ignored) in swarm mode for
# the run and refuses an engine already in it. The bench leaves swarm mode
# itself; the trap below leaves it too, whatever happens to the bench.
# Never run by tests or CI. Extra arguments go to `bench VERB`.
set -euo pipefail
verb=${1:?usage: $0 mesh|engine [bench flags]}
shift
cd "$(dirname "$0")/.."
unset DOCKER_HOST
mkdir -p bin
CGO_ENABLED=0 go build -o bin/flotilla ./cmd/flotilla   # static: it runs alone inside the image
if [ "$(docker -H unix:///var/run/docker.sock info --format '{{.Swarm.LocalNodeState}}')" != inactive ]; then
  echo "the engine is already in swarm mode: not touching a swarm this script did not make" >&2
  exit 1
fi
trap 'docker -H unix:///var/run/docker.sock swarm leave --force >/dev/null 2>&1 || true' EXIT
bin/flotilla bench "$verb" --docker-swarm "$@"
