#!/usr/bin/env bash
# `flotilla bench mesh --docker-swarm` in a throwaway swarm that is always
# left (see bench-docker-swarm.sh). Extra arguments go to `bench mesh`.
exec "$(dirname "$0")/bench-docker-swarm.sh" mesh "$@"
