#!/usr/bin/env bash
# A Calico-style Kubernetes node built from network namespaces, for the demo, the tests and the
# benchmark. Nothing here touches the host's own interfaces, routes or firewall: every address,
# route and sysctl lives inside namespaces named "${VT_PREFIX}*".
#
#   calico-node.sh up                      node + uplink + pods pod1 (10.244.1.5) and pod2 (10.244.1.6)
#   calico-node.sh add-pod NAME IP4 IP6 [NS/POD]
#                                          one more pod (IP6 may be "-"); with NS/POD its cali is
#                                          named as Calico names Kubernetes pod POD of namespace NS
#                                          (cali + sha1("NS.POD")[:11]) instead of from NAME
#   calico-node.sh del-pod NAME
#   calico-node.sh cali NAME [NS/POD]      prints the host-side interface name of pod NAME
#   calico-node.sh down                    removes every namespace with the prefix
#
# Layout (what a real Calico node looks like):
#   ${P}node   ip_forward=1; per pod a veth "cali<11 hex>" (no IPv4, MAC ee:ee:ee:ee:ee:ee,
#              proxy_arp=1, proxy_delay=0), route "<podIP>/32 dev cali… scope link";
#              uplink eth0 10.99.0.1/30 with "default via 10.99.0.2".
#   ${P}p-<pod> eth0 <podIP>/32, "169.254.1.1 dev eth0 scope link", "default via 169.254.1.1";
#              IPv6 <podIP6>/128, "default via fe80::ecee:eeff:feee:eeee dev eth0".
#   ${P}up     the uplink's far end, 10.99.0.2/30 (answers pings; stands for the rest of the network).
set -euo pipefail

P=${VT_PREFIX:-vt}
NODE=${P}node
UP=${P}up
CALI_MAC=ee:ee:ee:ee:ee:ee
CALI_LL6=fe80::ecee:eeff:feee:eeee

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# Quiet IPv6 (no DAD waits, no router solicitations) and sane defaults inside namespace $1.
ns_defaults() {
  local ns=$1
  nsx "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0 \
    net.ipv6.conf.default.router_solicitations=0 net.ipv6.conf.default.accept_ra=0 \
    net.ipv6.conf.all.accept_ra=0
  nsx "$ns" ip link set lo up
}

# cali_name NAME [NS/POD]: Calico's rule hashes "<namespace>.<pod>"; without NS/POD the
# prefix keeps parallel tests' interface names apart.
cali_name() {
  local key="$P$1"
  if [ -n "${2:-}" ] && [ "$2" != - ]; then key="${2%%/*}.${2#*/}"; fi
  printf 'cali%s' "$(printf '%s' "$key" | sha1sum | cut -c1-11)"
}

up() {
  down_quiet
  ip netns add "$NODE"
  ip netns add "$UP"
  ns_defaults "$NODE"
  ns_defaults "$UP"
  nsx "$NODE" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  # Uplink with a default route: proxy ARP answers only for targets routed out another interface.
  ip -n "$NODE" link add eth0 type veth peer name eth0 netns "$UP"
  ip -n "$NODE" addr add 10.99.0.1/30 dev eth0
  ip -n "$NODE" link set eth0 up
  ip -n "$UP" addr add 10.99.0.2/30 dev eth0
  ip -n "$UP" link set eth0 up
  ip -n "$UP" route add 10.244.0.0/16 via 10.99.0.1
  ip -n "$NODE" route add default via 10.99.0.2
  add_pod pod1 10.244.1.5 fd00:244::5
  add_pod pod2 10.244.1.6 fd00:244::6
}

add_pod() {
  local name=$1 ip4=$2 ip6=${3:--} ns=${P}p-$1 cali
  cali=$(cali_name "$name" "${4:-}")
  ip netns add "$ns"
  ns_defaults "$ns"
  ip -n "$NODE" link add "$cali" address "$CALI_MAC" type veth peer name eth0 netns "$ns"
  nsx "$NODE" sysctl -qw "net.ipv4.conf.$cali.proxy_arp=1" "net.ipv4.neigh.$cali.proxy_delay=0"
  ip -n "$NODE" link set "$cali" up
  ip -n "$NODE" route add "$ip4/32" dev "$cali" scope link
  ip -n "$ns" addr add "$ip4/32" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add 169.254.1.1 dev eth0 scope link
  ip -n "$ns" route add default via 169.254.1.1 dev eth0
  if [ "$ip6" != - ]; then
    ip -n "$ns" -6 addr add "$ip6/128" dev eth0 nodad
    ip -n "$ns" -6 route add default via "$CALI_LL6" dev eth0
    ip -n "$NODE" -6 route add "$ip6/128" dev "$cali"
  fi
}

del_pod() {
  ip netns del "${P}p-$1" 2>/dev/null || true
}

down_quiet() {
  local ns
  for ns in $(ip netns list | awk '{print $1}'); do
    case $ns in "$NODE" | "$UP" | "${P}p-"*) ip netns del "$ns" 2>/dev/null || true ;; esac
  done
}

case ${1:-} in
  up) up ;;
  down) down_quiet ;;
  add-pod) add_pod "$2" "$3" "${4:--}" "${5:-}" ;;
  del-pod) del_pod "$2" ;;
  cali) cali_name "$2" "${3:-}"; echo ;;
  *) echo "usage: $0 up|down|add-pod NAME IP4 [IP6 [NS/POD]]|del-pod NAME|cali NAME [NS/POD]" >&2; exit 2 ;;
esac
