//! Route and neighbour annotation on a Calico-style node, with iproute2 as the oracle: the
//! annotation of an event equals what `ip route get fibmatch` and `ip neigh` print at that
//! moment; route, rule, neighbour and sysctl changes made while tracing show up in the next
//! event; each check is provoked and seen.
//!
//! Privileged: run as root (with CI=true a missing privilege fails; it never skips).

mod common;

use std::{
    thread,
    time::{Duration, Instant},
};

use common::{Node, Tracer, run, stdout};
use serde_json::Value;

/// Keeps neighbour entries REACHABLE for minutes on `devs` of the node, so that an entry the
/// test compares does not age between the event and the `ip neigh` that checks it.
fn slow_neighbour_aging(node: &Node, devs: &[&str]) {
    for dev in devs {
        for family in ["ipv4", "ipv6"] {
            run(node
                .in_node("sysctl")
                .args(["-qw", &format!("net.{family}.neigh.{dev}.base_reachable_time_ms=600000")]));
        }
    }
}

/// Resolves every neighbour the tests route through.
fn warm_up(node: &Node) {
    run(node.in_pod("pod1", "ping").args(["-c", "2", "-i", "0.05", "10.244.1.6"]));
    run(node.in_pod("pod2", "ping").args(["-c", "2", "-i", "0.05", "10.244.1.5"]));
    run(node.in_pod("pod1", "ping").args(["-6", "-c", "2", "-i", "0.05", "fd00:244::6"]));
    run(node.in_pod("pod1", "ping").args(["-c", "1", "10.99.0.2"]));
}

/// One ICMP echo from `pod` to `dst`; a missing reply is fine (the tests look at the request).
/// Always from CPU 0: a veth hands the packet on on the CPU that sent it, and the kernel's FIB
/// verdict cache is per CPU, so every echo meets the same cache.
fn ping(node: &Node, pod: &str, dst: &str) {
    let family = if dst.contains(':') { "-6" } else { "-4" };
    let _ = node
        .in_pod(pod, "taskset")
        .args(["-c", "0", "ping", family, "-c", "1", "-W", "0.3", dst])
        .output()
        .expect("ping");
}

/// Waits for the first event after `skip` that satisfies `pred`.
/// The ingress echo request from pod1's cali to `dst` that the next ping produces.
fn echo_request(node: &Node, tracer: &Tracer, dst: &str) -> Value {
    let cali = node.cali("pod1");
    let skip = tracer.events_so_far().len();
    ping(node, "pod1", dst);
    tracer.wait_event(skip, &format!("echo request to {dst} on {cali}"), |e| {
        e["iface"] == cali.as_str() && e["dir"] == "ingress" && e["dst"] == dst
    })
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad JSON from ip: {e}: {text}"))
}

/// `ip -j route get fibmatch <dst> from <src> iif <iif>` in the node: the FIB entry the kernel
/// matches, as iproute2 prints it.
fn ip_route_fibmatch(node: &Node, dst: &str, src: &str, iif: &str) -> Value {
    let out = node.ip(&["-j", "-d", "route", "get", "fibmatch", dst, "from", src, "iif", iif]);
    json(&out)[0].clone()
}

/// The node's neighbour entry for `ip` on `dev`, if any.
fn ip_neigh(node: &Node, ip: &str, dev: &str) -> Option<Value> {
    let all = json(&node.ip(&["-j", "neigh", "show", "dev", dev]));
    all.as_array().unwrap().iter().find(|n| n["dst"] == ip).cloned()
}

/// Compares the annotation of `e` with iproute2's answer for the same destination.
fn assert_matches_iproute2(node: &Node, e: &Value) {
    let dst = e["dst"].as_str().unwrap();
    let oracle = ip_route_fibmatch(node, dst, e["src"].as_str().unwrap(), e["iface"].as_str().unwrap());
    let ctx = format!("event {e}\nip route get fibmatch: {oracle}");
    assert_eq!(e["route_type"], oracle["type"], "{ctx}");
    assert_eq!(e["route_dst"], oracle["dst"], "{ctx}");
    assert_eq!(e["route_dev"], oracle["dev"], "{ctx}");
    assert_eq!(e["route_scope"], oracle["scope"], "{ctx}");
    assert_eq!(e.get("route_gw"), oracle.get("gateway"), "{ctx}");
    if oracle["type"] == "unicast" {
        // (For local routes the kernel reports the merged local+main trie as "main".)
        let table = match oracle["table"].as_str() {
            Some("main") => 254,
            Some(n) => n.parse().unwrap(),
            None => 254,
        };
        assert_eq!(e["route_table"], table, "{ctx}");
        let next_hop = oracle.get("gateway").unwrap_or(&e["dst"]).as_str().unwrap();
        assert_eq!(e["neigh_ip"], next_hop, "{ctx}");
        let neigh = ip_neigh(node, next_hop, oracle["dev"].as_str().unwrap());
        let state = neigh.as_ref().map_or("none".into(), |n| n["state"][0].as_str().unwrap().to_owned());
        assert_eq!(e["neigh_state"], state.as_str(), "{ctx}\nip neigh: {neigh:?}");
        assert_eq!(e.get("neigh_lladdr"), neigh.as_ref().and_then(|n| n.get("lladdr")), "{ctx}\nip neigh: {neigh:?}");
    } else {
        assert!(e.get("neigh_state").is_none(), "{ctx}");
    }
}

#[test]
fn annotation_equals_ip_route_get_and_ip_neigh() {
    let node = Node::up("an");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    slow_neighbour_aging(&node, &[&cali1, &cali2, "eth0"]);
    warm_up(&node);
    let tracer = Tracer::start(&node, &["--iface", "cali*"]);
    // Pod to pod (/32 scope link), the uplink's subnet, the node itself, the default route,
    // and IPv6 pod to pod.
    for dst in ["10.244.1.6", "10.99.0.2", "10.99.0.1", "10.123.4.5", "fd00:244::6"] {
        let e = echo_request(&node, &tracer, dst);
        assert_matches_iproute2(&node, &e);
        let expected_fib = match dst {
            "10.99.0.1" => ("not_fwded", None),
            "10.244.1.6" | "fd00:244::6" => ("success", Some(cali2.as_str())),
            _ => ("success", Some("eth0")),
        };
        assert_eq!((e["fib"].as_str().unwrap(), e["fib_dev"].as_str()), expected_fib, "{e}");
        assert_eq!(e["notes"], serde_json::json!([]), "{e}");
    }
    // The egress side: pod1's request leaving on pod2's cali, with the MAC the neighbour holds.
    let skip = tracer.events_so_far().len();
    ping(&node, "pod1", "10.244.1.6");
    let out = tracer.wait_event(skip, "egress on pod2's cali", |e| {
        e["iface"] == cali2.as_str() && e["dir"] == "egress" && e["dst"] == "10.244.1.6"
    });
    assert_eq!(out["dst_mac"], out["neigh_lladdr"], "{out}");
    assert!(out.get("fib").is_none(), "no fib lookup on egress: {out}");
    assert_eq!(out["notes"], serde_json::json!([]), "{out}");
    let done = tracer.stop();
    assert!(done.status.success(), "{}", done.stderr);
}

#[test]
fn route_and_rule_changes_show_up_in_the_next_event() {
    let node = Node::up("rc");
    let cali1 = node.cali("pod1");
    slow_neighbour_aging(&node, &[&cali1, "eth0"]);
    warm_up(&node);
    let tracer = Tracer::start(&node, &["--iface", "cali*"]);
    let dst = "10.77.0.5";

    let e = echo_request(&node, &tracer, dst);
    assert_eq!(e["route_dst"], "default", "{e}");

    node.ip(&["route", "add", "10.77.0.0/16", "via", "10.99.0.2", "dev", "eth0", "metric", "7"]);
    let e = echo_request(&node, &tracer, dst);
    assert_eq!(e["route_dst"], "10.77.0.0/16", "{e}");
    assert_matches_iproute2(&node, &e);

    node.ip(&["route", "replace", "blackhole", "10.77.0.0/16", "metric", "7"]);
    let e = echo_request(&node, &tracer, dst);
    assert_eq!((&e["route_type"], &e["fib"]), (&"blackhole".into(), &"blackhole".into()), "{e}");
    assert_eq!(e["notes"], serde_json::json!(["route blackhole 10.77.0.0/16 drops it"]), "{e}");
    assert_eq!(e["note_codes"], serde_json::json!(["route_refuses"]), "{e}");

    node.ip(&["route", "del", "blackhole", "10.77.0.0/16", "metric", "7"]);
    for (kind, prefix) in [("unreachable", "10.78.0.0/16"), ("prohibit", "10.79.0.0/16")] {
        node.ip(&["route", "add", kind, prefix]);
        let target = prefix.replace(".0.0/16", ".0.9");
        let e = echo_request(&node, &tracer, &target);
        assert_eq!((&e["route_type"], &e["fib"]), (&kind.into(), &kind.into()), "{e}");
        assert_eq!(e["notes"], serde_json::json!([format!("route {kind} {prefix} drops it")]), "{e}");
    }
    let e = echo_request(&node, &tracer, dst);
    assert_eq!(e["route_dst"], "default", "deleted route still in the mirror: {e}");
    assert_matches_iproute2(&node, &e);

    // Policy routing: a source rule into table 100, then a prohibit rule in front of it.
    node.ip(&["route", "add", "10.88.0.0/16", "via", "10.99.0.2", "dev", "eth0", "table", "100"]);
    node.ip(&["rule", "add", "from", "10.244.1.5", "lookup", "100", "pref", "200"]);
    let e = echo_request(&node, &tracer, "10.88.0.1");
    assert_eq!((&e["route_dst"], &e["route_table"]), (&"10.88.0.0/16".into(), &100.into()), "{e}");
    assert_matches_iproute2(&node, &e);
    node.ip(&["rule", "add", "to", "10.88.0.0/16", "prohibit", "pref", "100"]);
    let e = echo_request(&node, &tracer, "10.88.0.1");
    assert_eq!((&e["route_type"], &e["fib"]), (&"prohibit".into(), &"prohibit".into()), "{e}");
    assert_eq!(e["notes"], serde_json::json!(["rule 100 says prohibit"]), "{e}");
    assert_eq!(e["note_codes"], serde_json::json!(["rule_refuses"]), "{e}");
    node.ip(&["rule", "del", "pref", "100"]);
    let e = echo_request(&node, &tracer, "10.88.0.1");
    assert_eq!(e["route_table"], 100, "deleted rule still in the mirror: {e}");
    tracer.stop();
}

/// With the kernel's verdict cache living an hour, only the generation the collector bumps for
/// each netlink change can void a cached verdict: the verdict must still follow a route that
/// comes and goes. (The default lifetime, 1 ms, would hide a missing bump between the steps.)
#[test]
fn a_cached_fib_verdict_is_voided_by_the_next_route_change() {
    let node = Node::up("fc");
    let cali1 = node.cali("pod1");
    slow_neighbour_aging(&node, &[&cali1, "eth0"]);
    warm_up(&node);
    let tracer = Tracer::start(&node, &["--iface", "cali*", "--fib-cache-ms", "3600000"]);
    let dst = "10.77.0.5";
    // The collector reads a change's notification in its event loop: the moment it needs.
    let settle = || std::thread::sleep(Duration::from_millis(300));
    for _ in 0..2 {
        let e = echo_request(&node, &tracer, dst);
        assert_eq!((e["fib"].as_str(), e["fib_dev"].as_str()), (Some("success"), Some("eth0")), "{e}");
    }
    node.ip(&["route", "add", "blackhole", "10.77.0.0/16"]);
    settle();
    let e = echo_request(&node, &tracer, dst);
    assert_eq!(e["fib"], "blackhole", "a verdict cached before the route came: {e}");
    node.ip(&["route", "del", "blackhole", "10.77.0.0/16"]);
    settle();
    let e = echo_request(&node, &tracer, dst);
    assert_eq!(e["fib"], "success", "a verdict cached before the route went: {e}");
    tracer.stop();
}

#[test]
fn a_neighbour_going_failed_shows_up() {
    let node = Node::up("nf");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    slow_neighbour_aging(&node, &[&cali1]);
    // An address routed to pod2's cali that nobody owns: ARP for it goes unanswered.
    node.ip(&["route", "add", "10.244.1.77/32", "dev", &cali2, "scope", "link"]);
    warm_up(&node);
    let tracer = Tracer::start(&node, &["--iface", "cali*"]);
    let first = echo_request(&node, &tracer, "10.244.1.77");
    assert_eq!(first["fib"], "no_neigh", "{first}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while ip_neigh(&node, "10.244.1.77", &cali2).is_none_or(|n| n["state"][0] != "FAILED") {
        assert!(Instant::now() < deadline, "the kernel never marked 10.244.1.77 FAILED");
        thread::sleep(Duration::from_millis(100));
    }
    // Without multicast probes a packet to a FAILED neighbour leaves it FAILED (instead of
    // starting a new resolution), so the state the next event sees is the one to compare.
    run(node.in_node("sysctl").args(["-qw", &format!("net.ipv4.neigh.{cali2}.mcast_solicit=0")]));
    let e = echo_request(&node, &tracer, "10.244.1.77");
    assert_matches_iproute2(&node, &e);
    assert_eq!((&e["neigh_state"], &e["fib"]), (&"FAILED".into(), &"no_neigh".into()), "{e}");
    assert_eq!(e["notes"], serde_json::json!([format!("neigh 10.244.1.77 on {cali2} is FAILED")]), "{e}");
    assert_eq!(e["note_codes"], serde_json::json!(["neigh_broken"]), "{e}");
    tracer.stop();
}

/// Sends one raw Ethernet frame out of `dev` in the node (AF_PACKET: it passes TC egress).
fn send_frame(node: &Node, dev: &str, frame_hex: &str) {
    let script = format!(
        "import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('{dev}', 0)); \
         s.send(bytes.fromhex('{frame_hex}'))"
    );
    run(node.in_node("python3").args(["-c", &script]));
}

fn mac_hex(mac: &str) -> String {
    mac.replace(':', "")
}

/// An IPv4/UDP frame from the cali MAC (checksums zero: only TC sees it before the pod drops it).
fn udp_frame(dst_mac: &str, src_ip: [u8; 4], dst_ip: [u8; 4]) -> String {
    let addrs: String = src_ip.iter().chain(&dst_ip).map(|b| format!("{b:02x}")).collect();
    let ipv4 = "4500001c000040004011"; // version/IHL, length 28, DF, TTL 64, UDP
    let udp = "9c40003500080000"; // 40000 > 53, length 8
    format!("{}eeeeeeeeeeee0800{ipv4}0000{addrs}{udp}", mac_hex(dst_mac))
}

fn pod_mac(node: &Node, pod: &str) -> String {
    let link = json(&stdout(node.in_pod(pod, "ip").args(["-j", "link", "show", "eth0"])));
    link[0]["address"].as_str().unwrap().to_owned()
}

#[test]
fn wrong_cali_wrong_mac_and_foreign_arp_reply_are_noted() {
    let node = Node::up("ck");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    slow_neighbour_aging(&node, &[&cali1, &cali2, "eth0"]);
    warm_up(&node);
    let (mac1, mac2) = (pod_mac(&node, "pod1"), pod_mac(&node, "pod2"));
    let tracer = Tracer::start(&node, &["--iface", "cali*"]);

    // A frame for pod2 leaving on pod1's cali.
    let skip = tracer.events_so_far().len();
    send_frame(&node, &cali1, &udp_frame(&mac1, [10, 244, 1, 99], [10, 244, 1, 6]));
    let e = tracer.wait_event(skip, "frame for pod2 on pod1's cali", |e| {
        e["iface"] == cali1.as_str() && e["dir"] == "egress" && e["dst"] == "10.244.1.6"
    });
    assert_eq!(e["notes"], serde_json::json!([format!("left on {cali1} but the route says dev {cali2}")]), "{e}");
    assert_eq!(e["note_codes"], serde_json::json!(["wrong_device"]), "{e}");

    // A frame for pod2 on pod2's cali, but to a MAC other than pod2's.
    let skip = tracer.events_so_far().len();
    send_frame(&node, &cali2, &udp_frame("02:00:00:00:00:99", [10, 244, 1, 99], [10, 244, 1, 6]));
    let e = tracer.wait_event(skip, "frame with a foreign MAC", |e| {
        e["iface"] == cali2.as_str() && e["dir"] == "egress" && e["dst_mac"] == "02:00:00:00:00:99"
    });
    assert_eq!(e["neigh_lladdr"], mac2.as_str(), "{e}");
    assert_eq!(e["notes"], serde_json::json!([format!("dst MAC 02:00:00:00:00:99 is not neigh 10.244.1.6's {mac2}")]));
    assert_eq!(e["note_codes"], serde_json::json!(["dst_mac_mismatch"]), "{e}");

    // An ARP reply for 169.254.1.1 from the host carrying a MAC that is not the cali's.
    let skip = tracer.events_so_far().len();
    let reply =
        format!("{}eeeeeeeeeeee0806 0001080006040002 020000000001a9fe0101 {}0af40105", mac_hex(&mac1), mac_hex(&mac1))
            .replace(' ', "");
    send_frame(&node, &cali1, &reply);
    // Match on the sender MAC too: pod1 may ARP for its gateway meanwhile, and the kernel's
    // genuine proxy reply on the same cali carries no note.
    let e = tracer.wait_event(skip, "the forged ARP reply", |e| {
        e["kind"] == "packet" && e["iface"] == cali1.as_str() && e["arp_op"] == "reply" && e["arp_sha"] == "02:00:00:00:00:01"
    });
    assert_eq!(
        e["notes"],
        serde_json::json!([format!("ARP reply carries 02:00:00:00:00:01 but {cali1}'s MAC is ee:ee:ee:ee:ee:ee")])
    );
    tracer.stop();
}

/// pod1's ARP request for 169.254.1.1, as the next arping produces it.
fn gateway_arp(node: &Node, tracer: &Tracer, cali: &str) -> Value {
    let skip = tracer.events_so_far().len();
    let _ = node
        .in_pod("pod1", "arping")
        .args(["-c", "1", "-w", "1", "-I", "eth0", "169.254.1.1"])
        .output()
        .expect("arping");
    tracer.wait_event(skip, "ARP request for 169.254.1.1", |e| {
        e["kind"] == "packet" && e["iface"] == cali && e["arp_op"] == "request" && e["arp_tpa"] == "169.254.1.1"
    })
}

#[test]
fn proxy_arp_off_and_missing_default_route_are_noted() {
    let node = Node::up("pa");
    let cali1 = node.cali("pod1");
    let tracer = Tracer::start(&node, &["--iface", "cali*"]);

    let e = gateway_arp(&node, &tracer, &cali1);
    assert_eq!((&e["route_dst"], &e["notes"]), (&"default".into(), &serde_json::json!([])), "{e}");

    run(node.in_node("sysctl").args(["-qw", &format!("net.ipv4.conf.{cali1}.proxy_arp=0")]));
    let e = gateway_arp(&node, &tracer, &cali1);
    assert_eq!(
        e["notes"],
        serde_json::json!([format!("proxy_arp is off on {cali1}: 169.254.1.1 will not be answered")])
    );

    run(node.in_node("sysctl").args(["-qw", &format!("net.ipv4.conf.{cali1}.proxy_arp=1")]));
    node.ip(&["route", "del", "default"]);
    let e = gateway_arp(&node, &tracer, &cali1);
    assert_eq!(
        e["notes"],
        serde_json::json!([format!("no route to 169.254.1.1 lets proxy ARP answer on {cali1} (no default route?)")])
    );
    // And the kernel indeed stayed silent: no reply left on the cali.
    thread::sleep(Duration::from_millis(300));
    let replies =
        tracer.events_so_far().into_iter().filter(|e| e["kind"] == "packet" && e["iface"] == cali1.as_str() && e["arp_op"] == "reply")
            .count();
    let done = tracer.stop();
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(replies, 1, "only the first request (proxy_arp on, default route present) is answered");
}

#[test]
fn ip_route_get_is_the_oracle_for_a_pod_that_appears_while_tracing() {
    let node = Node::up("np");
    let tracer = Tracer::start(&node, &["--iface", "cali*"]);
    node.add_pod("pod3", "10.244.1.7", "fd00:244::7");
    let cali3 = node.cali("pod3");
    slow_neighbour_aging(&node, &[&cali3]);
    run(node.in_pod("pod1", "ping").args(["-c", "2", "-i", "0.05", "10.244.1.7"]));
    let e = echo_request(&node, &tracer, "10.244.1.7");
    assert_eq!(e["route_dev"], cali3.as_str(), "{e}");
    assert_matches_iproute2(&node, &e);
    tracer.stop();
}

#[test]
fn lost_notifications_are_recovered_by_a_full_redump() {
    let node = Node::up("ov");
    slow_neighbour_aging(&node, &[&node.cali("pod1"), "eth0"]);
    warm_up(&node);
    node.ip(&["route", "add", "10.202.0.0/16", "via", "10.99.0.2", "dev", "eth0"]);
    let tracer = Tracer::start(&node, &["--iface", "cali*"]);
    // While vethtrace cannot read, far more notifications than its socket buffer holds: the
    // kernel drops them and reports ENOBUFS, which must lead to a full re-dump.
    tracer.signal(libc::SIGSTOP);
    let batch: String = (0..40_000)
        .map(|i| format!("route add 10.200.{}.{}/32 via 10.99.0.2 dev eth0\n", i / 250, i % 250 + 1))
        .collect();
    let batch_file = std::env::temp_dir().join(format!("{}-routes.batch", node.prefix));
    std::fs::write(&batch_file, batch).unwrap();
    node.ip(&["-batch", batch_file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&batch_file);
    node.ip(&["route", "add", "10.201.0.0/16", "via", "10.99.0.2", "dev", "eth0"]);
    node.ip(&["route", "del", "10.202.0.0/16"]);
    tracer.signal(libc::SIGCONT);

    let deadline = Instant::now() + Duration::from_secs(10);
    // The re-dump runs beside the ring drain; events are annotated from it once it is in.
    while !tracer.stderr().contains("re-read the node's network state") {
        assert!(Instant::now() < deadline, "no re-dump after an overrun:\n{}", tracer.stderr());
        thread::sleep(Duration::from_millis(50));
    }
    let e = echo_request(&node, &tracer, "10.201.0.9");
    assert_eq!(e["route_dst"], "10.201.0.0/16", "{e}");
    let e = echo_request(&node, &tracer, "10.202.0.9");
    assert_eq!(e["route_dst"], "default", "a route deleted during the overrun is still mirrored: {e}");
    let e = echo_request(&node, &tracer, "10.200.23.250");
    assert_eq!(e["route_dst"], "10.200.23.250", "{e}");
    assert_matches_iproute2(&node, &e);
    let done = tracer.stop();
    assert!(done.status.success(), "{}", done.stderr);
}
