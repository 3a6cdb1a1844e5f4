#!/usr/bin/env bash
# The demo: a Calico-style node in network namespaces (scripts/calico-node.sh), traced live by
# vethtrace while pods make ARP, ICMP, TCP and UDP traffic (IPv4 and IPv6), a pod starts late,
# and one pod talks to an address nobody owns. Everything is removed at the end or on Ctrl-C.
#   scripts/demo.sh path/to/vethtrace [vethtrace args...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "$1"); shift
export VT_PREFIX=vtdemo
node=${VT_PREFIX}node
topo() { "$here/calico-node.sh" "$@"; }
in_pod() { local pod=$1; shift; ip netns exec "${VT_PREFIX}p-$pod" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; sleep 0.3; }

tracer=
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$tracer" ] && kill -0 "$tracer" 2>/dev/null; then
    kill -INT "$tracer"; wait "$tracer" || true
  fi
  pkill -f "ip netns exec ${VT_PREFIX}" 2>/dev/null || true
  topo down
  echo "demo: removed the namespaces it made" >&2
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

step "building a Calico-style node: namespaces ${node}, ${VT_PREFIX}up, ${VT_PREFIX}p-pod1, ${VT_PREFIX}p-pod2"
topo up
ip -n "$node" -br link | grep cali >&2
ip -n "$node" route | grep cali >&2

ready=$(mktemp -u /tmp/vethtrace-demo.XXXXXX)
step "starting: vethtrace --iface 'cali*' $*"
ip netns exec "$node" "$bin" --iface 'cali*' --ready-file "$ready" "$@" &
tracer=$!
for _ in $(seq 100); do [ -e "$ready" ] && break; sleep 0.1; done
rm -f "$ready"

step "pod1 pings pod2 (ARP for 169.254.1.1 first, answered by proxy ARP)"
in_pod pod1 ping -c 2 -i 0.3 10.244.1.6 >/dev/null
step "pod1 pings pod2 over IPv6"
in_pod pod1 ping -6 -c 1 fd00:244::6 >/dev/null
step "TCP: pod1 connects to pod2:8080 and sends a line"
in_pod pod2 timeout 3 nc -l 8080 >/dev/null &
server=$!
sleep 0.3
echo hello | in_pod pod1 nc -N -w 2 10.244.1.6 8080 || true
wait "$server" || true
step "UDP: pod2 sends a datagram to pod1:5353"
echo ping | in_pod pod2 nc -u -w 1 -q 0 10.244.1.5 5353 || true
step "a pod starts while tracing (it is attached within a second)"
topo add-pod pod3 10.244.1.7 fd00:244::7
sleep 0.5
in_pod pod3 ping -c 1 10.244.1.5 >/dev/null
step "pod1 reaches the network beyond the node"
in_pod pod1 ping -c 1 10.99.0.2 >/dev/null
step "a /32 routed to a cali that no pod owns: the node's ARP goes unanswered, then the kernel drops the packet (NEIGH_FAILED)"
ip -n "$node" route add 10.244.1.99/32 dev "$(topo cali pod3)" scope link
in_pod pod1 ping -c 1 -W 1 10.244.1.99 >/dev/null || true
# Three unanswered probes, a second apart, before the neighbour is FAILED and the packet dropped.
sleep 3.5
step "done"
