//! Drop hunting sees the pod end of every traced veth: faults on a pod's side of a Calico-style
//! node, told in the node's terms on the pod's cali, within a second of the pod's first try.
//!
//! What each planted fault does in the kernel (found with tcpdump and bpftrace on 6.18):
//! - proxy_arp off on the cali: the pod's ARP requests for 169.254.1.1 reach the node and get
//!   no reply (the node consumes them: no kernel drop); after 3 s of probes the pod frees its
//!   queued packets with NEIGH_FAILED at neigh_invalidate, on its eth0, in its namespace.
//! - the pod's eth0 down: the kernel removes the pod's routes; its sends fail with ENETUNREACH
//!   and no packet exists. What can be seen is the node's traffic to the pod, dropped on the
//!   cali (no carrier).
//! - the pod's route to 169.254.1.1 removed: nothing breaks. The default route's next hop
//!   stays bound to eth0, the pod still ARPs for 169.254.1.1 and the node answers; only adding
//!   a default route again fails ("Nexthop has invalid gateway"), with no packet.
//!
//! bpftrace on skb:kfree_skb is the oracle for kernel reasons (filtered by netns inode), and
//! tcpdump in the node's namespace for the ARP requests that go unanswered. Needs root,
//! bpftrace, tcpdump and tracefs; a missing piece fails the test (VETHTRACE_NO_ORACLE=1 leaves
//! bpftrace out, said loudly, as in tests/drops.rs).

mod common;

use std::{
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use common::{
    Finished, Node, Tcpdump, Tracer,
    drop_oracle::{Agreement, DropOracle, OracleDrop, netns_inum},
    event_time, now, run,
};
use serde_json::Value;

/// Whether this kernel lets vethtrace find a veth's peer (`struct veth_priv` in BTF: veth
/// built in, or the module's own BTF, Linux >= 5.11). Without it vethtrace must say that
/// pod-side drops are off, and the pod-side part of a test is that line (said on standard
/// error, not skipped silently).
fn pod_side_drops_possible() -> bool {
    let possible =
        std::path::Path::new("/sys/kernel/btf/veth").exists() || !std::path::Path::new("/sys/module/veth/initstate").exists();
    if !possible {
        eprintln!(
            "veth is a module without BTF here (no /sys/kernel/btf/veth: Linux < 5.11): pod-side drops are off, so \
             this test checks that vethtrace says so and reports none, NOT the pod's own drops"
        );
    }
    possible
}

/// Runs a command that is expected to fail (a ping that gets no answer); its output.
fn attempt(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().expect("run");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Waits for pod1's neighbour entry of its gateway to go FAILED (the kernel's three
/// solicitations, a second apart, then the packets it held are freed: the pod-side
/// NEIGH_FAILED drops), and a moment more for those drops to reach vethtrace. The kernel's
/// timer decides when, not a fixed sleep.
fn wait_gateway_failed(node: &Node) {
    let failed = common::eventually(Duration::from_secs(15), || {
        common::stdout(node.in_pod("pod1", "ip").args(["neigh", "show", "169.254.1.1"])).contains("FAILED")
    });
    assert!(failed, "pod1's neighbour entry of 169.254.1.1 never went FAILED");
    thread::sleep(Duration::from_millis(500));
}

fn ping(node: &Node, pod: &str, dst: &str) -> String {
    attempt(node.in_pod(pod, "ping").args(["-c", "4", "-i", "0.3", "-W", "1", dst]))
}

/// Drop events (kernel drops and findings) on `iface`.
fn drops_on<'a>(f: &'a Finished, iface: &str) -> Vec<&'a Value> {
    f.of_kind("drop").into_iter().filter(|d| d["iface"] == iface).collect()
}

/// The pod's ARP requests and the node's replies on `cali`, as tcpdump in the node saw them.
fn arp_counts(frames: &[(Duration, Vec<u8>)]) -> (usize, usize) {
    let arp = |op: u8| frames.iter().filter(|(_, f)| f.len() >= 22 && f[12..14] == [8, 6] && f[21] == op).count();
    (arp(1), arp(2))
}

/// proxy_arp off on a pod's cali, the pod pinging the uplink: an ARP_UNANSWERED finding on
/// the cali within a second naming proxy_arp, then the pod's own NEIGH_FAILED drops on its
/// eth0 reported on the cali with the same cause — bpftrace saw those in the pod's namespace,
/// tcpdump saw requests and no reply. The healthy pod2 shows nothing.
#[test]
fn proxy_arp_off_is_found_on_the_cali_and_the_pods_drops_follow() {
    let node = Node::up("pa");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    run(node.in_node("sysctl").args(["-qw", &format!("net.ipv4.conf.{cali1}.proxy_arp=0")]));
    let oracle = DropOracle::start("podside-pa");
    let dump = Tcpdump::start(&node, &cali1, "inout");
    let tracer = Tracer::start(&node, &["--drops"]);
    let t0 = now();
    let out = ping(&node, "pod1", "10.99.0.2");
    assert!(out.contains("100% packet loss"), "the fault did not break the pod: {out}");
    assert!(ping(&node, "pod2", "10.99.0.2").contains(" 0% packet loss"), "pod2 is not healthy");
    wait_gateway_failed(&node);
    let finished = tracer.stop();
    let frames = dump.stop();
    let seen = oracle.map(DropOracle::stop);
    assert!(finished.status.success(), "vethtrace failed: {}", finished.stderr);
    let pod_side_on = pod_side_drops_possible();
    let said = if pod_side_on { "pod-side drops: on" } else { "pod-side drops: off" };
    assert!(finished.stderr.contains(said), "{}", finished.stderr);
    let (requests, replies) = arp_counts(&frames);
    assert!(requests >= 2 && replies == 0, "tcpdump: {requests} ARP requests, {replies} replies");

    let drops = drops_on(&finished, &cali1);
    let cause =
        format!("pod 10.244.1.5 got no ARP reply for its gateway 169.254.1.1 on {cali1}: proxy_arp is off on {cali1}");
    let findings: Vec<&&Value> = drops.iter().filter(|d| d["reason"] == "ARP_UNANSWERED").collect();
    let first = findings.first().unwrap_or_else(|| panic!("no ARP_UNANSWERED on {cali1}: {drops:#?}"));
    assert!(event_time(first) - t0 < Duration::from_secs(1), "found {:?} after the first ping", event_time(first) - t0);
    assert!(findings.len() <= requests, "{} findings for {requests} requests", findings.len());
    for f in &findings {
        assert_eq!((&f["cause"], &f["cause_code"]), (&Value::from(cause.as_str()), &Value::from("arp_proxy_arp_off")), "{f:#}");
        assert_eq!((&f["ethertype"], &f["arp_tpa"]), (&Value::from("arp"), &Value::from("169.254.1.1")), "{f:#}");
        assert!(f.get("reason_code").is_none_or(Value::is_null) && f.get("side").is_none(), "{f:#}");
    }
    let pod_side: Vec<&&Value> = drops.iter().filter(|d| d["reason"] == "NEIGH_FAILED").collect();
    assert!(pod_side.is_empty() != pod_side_on, "pod-side NEIGH_FAILED on {cali1} (possible: {pod_side_on}): {drops:#?}");
    for d in &pod_side {
        assert_eq!((&d["side"], &d["pod_dev"]), (&Value::from("pod"), &Value::from("eth0")), "{d:#}");
        assert_eq!(d["src"], "10.244.1.5", "{d:#}");
        assert_eq!((&d["cause"], &d["cause_code"]), (&Value::from(cause.as_str()), &Value::from("arp_proxy_arp_off")), "{d:#}");
    }
    if let Some(seen) = seen.filter(|_| pod_side_on) {
        let ours: Vec<&Value> = pod_side.iter().map(|d| **d).collect();
        agree_in_netns(&seen, netns_inum(&node.pod_ns("pod1")), "eth0", &ours);
    }
    assert!(drops_on(&finished, &cali2).is_empty(), "healthy pod2: {:#?}", drops_on(&finished, &cali2));
}

/// vethtrace's drops match what the oracle saw on `dev` in namespace `netns`: where the oracle
/// names devices (bpftrace), the same (reason code, function, protocol) triples and no fewer
/// drops. Not the oracle's drops that vethtrace leaves out by design (README: IPv6 control
/// traffic freed without a reason — ip6_mc_input discarding MLD reports and solicitations for
/// groups nobody joined, icmpv6_rcv freeing handled ND on 6.1): a pod whose IPv6 comes up during
/// the window sends them, and they are not the fault under test.
fn agree_in_netns(seen: &[OracleDrop], netns: u64, dev: &str, ours: &[&Value]) {
    Agreement { netns, dev, ignored: &["ip6_mc_input", "icmpv6_rcv"], exact: true }.check(seen, ours);
}

/// The same fault under `--summary`: rows for the cali with both the finding and the pod's
/// drops, none for the healthy pod.
#[test]
fn proxy_arp_off_in_the_summary() {
    let node = Node::up("ps");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    run(node.in_node("sysctl").args(["-qw", &format!("net.ipv4.conf.{cali1}.proxy_arp=0")]));
    let tracer = Tracer::start(&node, &["--summary"]);
    ping(&node, "pod1", "10.99.0.2");
    assert!(ping(&node, "pod2", "10.99.0.2").contains(" 0% packet loss"), "pod2 is not healthy");
    wait_gateway_failed(&node);
    let finished = tracer.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(finished.of_kind("drop").is_empty(), "--summary prints no events");
    let rows = finished.of_kind("drop_summary");
    let row = |reason: &str| rows.iter().find(|r| r["iface"] == cali1.as_str() && r["reason"] == reason).copied();
    let arp = row("ARP_UNANSWERED").unwrap_or_else(|| panic!("no ARP_UNANSWERED row for {cali1}: {rows:#?}"));
    assert_eq!(arp["flow"], "arp 10.244.1.5 > 169.254.1.1", "{arp:#}");
    assert!(arp["count"].as_u64().unwrap() >= 2, "{arp:#}");
    // The pod's own drops, on kernels where vethtrace can see the pod end of the veth.
    if pod_side_drops_possible() {
        let neigh = row("NEIGH_FAILED").unwrap_or_else(|| panic!("no NEIGH_FAILED row for {cali1}: {rows:#?}"));
        assert_eq!(neigh["flow"], "10.244.1.5 > 10.99.0.2 icmp", "{neigh:#}");
    } else {
        assert!(finished.stderr.contains("pod-side drops: off"), "{}", finished.stderr);
        assert!(row("NEIGH_FAILED").is_none(), "pod-side rows with pod-side drops off: {rows:#?}");
    }
    assert!(rows.iter().all(|r| r["iface"] != cali2.as_str()), "healthy pod2 in the summary: {rows:#?}");
}

/// The pod takes its eth0 down: its own sends fail with no packet at all (the kernel removed
/// its routes), so what drop hunting can show is the node's traffic to the pod, dropped on
/// the cali within a second with the pod's eth0 named — bpftrace agreeing on the cali.
#[test]
fn pods_eth0_down_shows_on_the_nodes_traffic_to_it() {
    let node = Node::up("pe");
    let cali1 = node.cali("pod1");
    // The node knows the pod's MAC, so its packets reach the cali rather than wait for ARP.
    assert!(attempt(node.in_node("ping").args(["-c", "1", "10.244.1.5"])).contains(" 0% packet loss"));
    run(node.in_pod("pod1", "ip").args(["link", "set", "eth0", "down"]));
    let oracle = DropOracle::start("podside-pe");
    let tracer = Tracer::start(&node, &["--drops"]);
    let out = ping(&node, "pod1", "10.99.0.2");
    assert!(out.contains("Network is unreachable"), "the pod's send did not fail at once: {out}");
    let t0 = now();
    attempt(node.in_node("ping").args(["-c", "3", "-i", "0.3", "-W", "1", "10.244.1.5"]));
    thread::sleep(Duration::from_millis(500));
    let finished = tracer.stop();
    let seen = oracle.map(DropOracle::stop);
    assert!(finished.status.success(), "{}", finished.stderr);
    let drops = drops_on(&finished, &cali1);
    let first = drops.first().unwrap_or_else(|| panic!("no drop on {cali1}: {:#?}", finished.of_kind("drop")));
    let after = event_time(first) - t0;
    assert!(after < Duration::from_secs(1), "first drop {after:?} after the first ping");
    for d in &drops {
        // Naming the pod's eth0 needs the pod end of the veth (veth's BTF); without it the
        // cali's own state says the same.
        let want = if pod_side_drops_possible() {
            format!("veth peer is down (the pod's eth0 is down: {cali1} has no carrier)")
        } else {
            format!("veth peer is down ({cali1} has no carrier: its other end is down)")
        };
        assert_eq!((&d["cause"], &d["cause_code"]), (&Value::from(want.as_str()), &Value::from("veth_peer_down")), "{d:#}");
        // The node's pings to the pod, and its ARP requests for it.
        assert!(d["dst"] == "10.244.1.5" || d["arp_tpa"] == "10.244.1.5", "{d:#}");
        assert!(d.get("side").is_none(), "a node-side drop: {d:#}");
    }
    if let Some(seen) = seen {
        agree_in_netns(&seen, netns_inum(&node.ns()), &cali1, &drops);
    }
}

/// The pod's route to 169.254.1.1 removed: on this kernel nothing breaks (the default route's
/// next hop stays bound to eth0; tcpdump shows the ARP exchange and the echo replies), and
/// drop hunting, rightly, reports nothing. Re-adding a default route is what fails, in the
/// pod, with no packet.
#[test]
fn pods_gateway_route_removed_breaks_nothing_and_shows_nothing() {
    let node = Node::up("pr");
    let cali1 = node.cali("pod1");
    run(node.in_pod("pod1", "ip").args(["route", "del", "169.254.1.1", "dev", "eth0"]));
    run(node.in_pod("pod1", "ip").args(["neigh", "flush", "all"]));
    let dump = Tcpdump::start(&node, &cali1, "inout");
    let tracer = Tracer::start(&node, &["--drops"]);
    let out = ping(&node, "pod1", "10.99.0.2");
    assert!(out.contains(" 0% packet loss"), "the pod lost its network: {out}");
    let readd = attempt(node.in_pod("pod1", "ip").args(["route", "replace", "default", "via", "169.254.1.1"]));
    assert!(readd.contains("invalid gateway"), "re-adding the default route: {readd}");
    thread::sleep(Duration::from_millis(500));
    let finished = tracer.stop();
    let (requests, replies) = arp_counts(&dump.stop());
    assert!(requests >= 1 && replies >= 1, "tcpdump: {requests} ARP requests, {replies} replies");
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(drops_on(&finished, &cali1).is_empty(), "{:#?}", drops_on(&finished, &cali1));
}

/// Healthy pods resolving their gateway afresh and talking to each other, the node and the
/// uplink: no drop and no finding.
#[test]
fn healthy_pods_give_no_findings() {
    let node = Node::up("ph");
    for pod in ["pod1", "pod2"] {
        run(node.in_pod(pod, "ip").args(["neigh", "flush", "all"]));
    }
    let tracer = Tracer::start(&node, &["--drops"]);
    for (pod, dst) in [("pod1", "10.244.1.6"), ("pod2", "10.244.1.5"), ("pod1", "10.99.0.2"), ("pod2", "10.99.0.1"), ("pod1", "fd00:244::6")] {
        let out = ping(&node, pod, dst);
        assert!(out.contains(" 0% packet loss"), "healthy ping {pod} -> {dst}: {out}");
    }
    thread::sleep(Duration::from_millis(300));
    let finished = tracer.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(finished.of_kind("drop").is_empty(), "healthy pods produced drops: {:#?}", finished.of_kind("drop"));
}

/// A ping to a /32 routed to a cali whose pod does not own it: netlink never announces the
/// INCOMPLETE entry, the neighbour probes do, so from the second echo request on the
/// annotation says INCOMPLETE (not `none`) with the FIB's no_neigh explained — while `ip neigh`
/// shows the entry INCOMPLETE.
#[test]
fn a_neighbour_being_resolved_is_annotated_incomplete() {
    let node = Node::up("pi");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    run(node.in_node("ip").args(["route", "add", "10.244.1.99/32", "dev", &cali1, "scope", "link"]));
    let tracer = Tracer::start(&node, &[]);
    let ping = ["-c", "3", "-i", "0.3", "-W", "1", "10.244.1.99"];
    let mut pinger = node.in_pod("pod2", "ping").args(ping).stdout(Stdio::null()).spawn().unwrap();
    thread::sleep(Duration::from_millis(450));
    let kernel = node.ip(&["neigh", "show", "10.244.1.99", "dev", &cali1]);
    let _ = pinger.wait();
    thread::sleep(Duration::from_millis(300));
    let finished = tracer.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(kernel.contains("INCOMPLETE"), "ip neigh during the pings: {kernel:?}");
    let requests: Vec<&Value> = finished
        .of_kind("packet")
        .into_iter()
        .filter(|e| e["iface"] == cali2.as_str() && e["dir"] == "ingress" && e["dst"] == "10.244.1.99")
        .filter(|e| e["icmp_type"] == 8)
        .collect();
    assert!(requests.len() >= 3, "echo requests on {cali2}: {requests:#?}");
    assert!(requests[1..].iter().any(|r| r["fib"] == "no_neigh"), "the kernel's FIB: {requests:#?}");
    for r in &requests[1..] {
        assert_eq!(r["neigh_state"], "INCOMPLETE", "{r:#}");
        let notes: Vec<&str> = r["notes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        if r["fib"] == "no_neigh" {
            assert!(notes.contains(&"the kernel has no answer from 10.244.1.99 yet"), "{r:#}");
            assert!(r["note_codes"].as_array().is_some_and(|c| c.contains(&"neigh_no_answer_yet".into())), "{r:#}");
        }
    }
}
