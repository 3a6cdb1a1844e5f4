#!/usr/bin/env bash
# A CNI plugin (spec 0.4.0) that wires a pod the way Calico does: host end "cali" +
# sha1("<namespace>.<pod>")[:11] in the runtime's network namespace (no IPv4, MAC
# ee:ee:ee:ee:ee:ee, proxy_arp, "<podIP>/32 dev cali… scope link"); in the pod, eth0 with
# <podIP>/32, "169.254.1.1 dev eth0 scope link" and "default via 169.254.1.1".
# IPs come from the "subnet" (a /24 prefix like "10.244.3") of the network configuration,
# one per pod, numbered in the "stateDir" it names.
set -euo pipefail
conf=$(cat)
field() { sed -n "s/.*\"$1\" *: *\"\([^\"]*\)\".*/\1/p" <<<"$conf"; }
state=$(field stateDir)
subnet=$(field subnet)
arg() { tr ';' '\n' <<<"${CNI_ARGS:-}" | sed -n "s/^$1=//p"; }
pod_ns=$(arg K8S_POD_NAMESPACE)
pod=$(arg K8S_POD_NAME)
cali="cali$(printf '%s' "$pod_ns.$pod" | sha1sum | cut -c1-11)"
echo "$(date +%T.%N) $CNI_COMMAND $pod_ns/$pod $cali ${CNI_NETNS:-}" >> "$state/cni.log"
case $CNI_COMMAND in
  VERSION)
    echo '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0"]}' ;;
  ADD)
    exec 9>"$state/lock"; flock 9
    n=$(( $(cat "$state/next" 2>/dev/null || echo 10) ))
    echo $((n + 1)) > "$state/next"
    ip4="$subnet.$n"
    tmp="vtc$n"
    ip link add "$cali" address ee:ee:ee:ee:ee:ee type veth peer name "$tmp"
    ip link set "$tmp" netns "$CNI_NETNS"
    nsenter --net="$CNI_NETNS" ip link set "$tmp" name "$CNI_IFNAME"
    nsenter --net="$CNI_NETNS" ip addr add "$ip4/32" dev "$CNI_IFNAME"
    nsenter --net="$CNI_NETNS" ip link set "$CNI_IFNAME" up
    nsenter --net="$CNI_NETNS" ip route add 169.254.1.1 dev "$CNI_IFNAME" scope link
    nsenter --net="$CNI_NETNS" ip route add default via 169.254.1.1 dev "$CNI_IFNAME"
    sysctl -qw "net.ipv4.conf.$cali.proxy_arp=1" "net.ipv4.neigh.$cali.proxy_delay=0"
    ip link set "$cali" up
    ip route add "$ip4/32" dev "$cali" scope link
    printf '{"cniVersion":"0.4.0","interfaces":[{"name":"%s","mac":"ee:ee:ee:ee:ee:ee"},{"name":"%s","sandbox":"%s"}],"ips":[{"version":"4","address":"%s/32","interface":1}]}\n' \
      "$cali" "$CNI_IFNAME" "$CNI_NETNS" "$ip4" ;;
  DEL)
    ip link del "$cali" 2>/dev/null || true ;;
  CHECK) ;;
  *) echo "{\"code\":4,\"msg\":\"unknown CNI_COMMAND $CNI_COMMAND\"}"; exit 1 ;;
esac
