#!/usr/bin/env bash
# `flotilla bench engine --docker-swarm` in a throwaway swarm that is always
# left (see bench-docker-swarm.sh). Extra arguments go to `bench engine`.
exec "$(dirname "$0")/bench-docker-swarm.sh" engine "$@"
