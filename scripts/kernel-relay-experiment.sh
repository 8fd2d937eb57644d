#!/usr/bin/env bash
# What a kernel path between nodes would give the routing mesh, measured
# by hand (docs/design/networking.md, "Between nodes"): two hosts as
# network namespaces joined by a veth, a VXLAN overlay between them
# (plain text: this kernel has no WireGuard, ESP or kTLS to encrypt it),
# and the bench's backend on host B. wrk on host A loads
#   direct:  B's underlay address, no mesh;
#   kernel:  A's own "published port", DNAT to the task's overlay address
#            and SNAT to A's overlay address (replies must come back
#            through A), carried by VXLAN to B.
# Needs root, wrk (apt-get install wrk), curl and bin/flotilla. Removes what it
# made on every exit.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${DURATION:-5s}
mtu=${MTU:-1500} # the underlay's; VXLAN takes 50 bytes of it
conns=${CONNS:-16}
A=flt-exp-a B=flt-exp-b
cleanup() {
  [ -n "${backend:-}" ] && kill "$backend" 2>/dev/null || true
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
[ -x bin/flotilla ] || { echo "build bin/flotilla first" >&2; exit 1; }

ip netns add "$A"
ip netns add "$B"
ip link add flt-exp-va netns "$A" type veth peer name flt-exp-vb netns "$B"
ip -n "$A" addr add 192.168.213.1/24 dev flt-exp-va
ip -n "$B" addr add 192.168.213.2/24 dev flt-exp-vb
for ns in "$A" "$B"; do
  ip -n "$ns" link set lo up
done
ip -n "$A" link set flt-exp-va mtu "$mtu"
ip -n "$B" link set flt-exp-vb mtu "$mtu"
ip -n "$A" link set flt-exp-va up
ip -n "$B" link set flt-exp-vb up
# The overlay: one VXLAN device per host, the peer as its only remote.
ip -n "$A" link add flt-exp-x type vxlan id 4213 local 192.168.213.1 remote 192.168.213.2 dstport 4789 dev flt-exp-va
ip -n "$B" link add flt-exp-x type vxlan id 4213 local 192.168.213.2 remote 192.168.213.1 dstport 4789 dev flt-exp-vb
ip -n "$A" link set flt-exp-x mtu $((mtu - 50))
ip -n "$B" link set flt-exp-x mtu $((mtu - 50))
ip -n "$A" addr add 10.213.0.1/24 dev flt-exp-x
ip -n "$B" addr add 10.213.0.2/24 dev flt-exp-x
ip -n "$A" link set flt-exp-x up
ip -n "$B" link set flt-exp-x up

# The task on B listens on all its addresses (overlay and underlay).
ip netns exec "$B" env FLOTILLA_ADDR_80=0.0.0.0:8080 bin/flotilla bench backend >/dev/null 2>&1 &
backend=$!
for _ in $(seq 100); do
  ip netns exec "$A" bash -c 'exec 3<>/dev/tcp/192.168.213.2/8080' 2>/dev/null && break
  sleep 0.1
done

# A's published port 9000: DNAT to the task, SNAT to A's overlay address.
ip netns exec "$A" iptables -t nat -A OUTPUT -p tcp -d 192.168.213.1 --dport 9000 -j DNAT --to-destination 10.213.0.2:8080
ip netns exec "$A" iptables -t nat -A POSTROUTING -d 10.213.0.2 -p tcp --dport 8080 -j SNAT --to-source 10.213.0.1

run() {
  echo "== $1"
  ip netns exec "$A" wrk -t2 -c"$conns" -d"$dur" --latency "$2" | grep -E 'Requests/sec|Transfer/sec|  50%|  99%'
}
run "direct (B's underlay address)" http://192.168.213.2:8080/
run "kernel path (A's port 9000 -> VXLAN -> task)" http://192.168.213.1:9000/
# /bulk streams without end: read it for 5 s.
bulk() {
  local n
  n=$(ip netns exec "$A" curl -s -o /dev/null --max-time 5 -w '%{size_download}' "$2" || true)
  echo "== $1: $((n / 5 / 1048576)) MiB/s"
}
bulk "direct, bulk" http://192.168.213.2:8080/bulk
bulk "kernel path, bulk" http://192.168.213.1:9000/bulk
