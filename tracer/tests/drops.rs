//! Drops on a Calico-style node: each planted fault must produce drop events on the right
//! interface with the right reason and cause, and healthy traffic none. The same tracepoint read
//! by another tool is the independent oracle for reasons, locations and protocols: bpftrace,
//! which also names the device, or where bpftrace has no BTF (5.10) ftrace's own records of the
//! event (tests/common/drop_oracle.rs).
//!
//! Needs root, bpftrace (apt) and tracefs; a missing piece fails the test. In a VM without
//! bpftrace set VETHTRACE_NO_ORACLE=1: the oracle comparison is then left out (said loudly),
//! everything else is still checked.

mod common;

use std::{
    fs,
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use common::{
    Node, Tracer,
    drop_oracle::{Agreement, DropOracle, kfree_skb_has_reason, netns_inum},
    run,
};
use serde_json::Value;

fn sh(cmd: &mut Command) {
    run(cmd);
}

/// Loads an nftables ruleset into the node's namespace.
fn nft(node: &Node, rules: &str) {
    let path = std::env::temp_dir().join(format!("{}-nft-{}", node.prefix, std::process::id()));
    fs::write(&path, rules).unwrap();
    sh(node.in_node("nft").arg("-f").arg(&path));
    let _ = fs::remove_file(&path);
}

/// Runs a command that is expected to fail (a ping that gets no answer).
fn attempt(cmd: &mut Command) {
    let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// What a planted fault must produce.
struct Expect<'a> {
    /// Interface the drops are reported on.
    iface: &'a str,
    /// Acceptable reasons (kernels differ: 6.1 lacks some). A kernel without reasons (< 5.17)
    /// must give none: no `reason` or `reason_code` key.
    reasons: &'a [&'a str],
    /// Text the cause must contain.
    cause: &'a str,
    /// Its `cause_code`.
    code: &'a str,
    /// Why vethtrace kept it: "device" (a traced interface) or "address" (routed to one).
    matched: &'a str,
}

/// Starts the oracle and vethtrace, runs `trigger`, waits `settle`, stops both, checks the drop
/// events against `expect` and against the oracle. Returns the drop events on the interface.
fn check_fault(node: &Node, tag: &str, trigger: impl FnOnce(), settle: Duration, expect: &Expect<'_>) -> Vec<Value> {
    let oracle = DropOracle::start(&format!("drops-{tag}"));
    let tracer = Tracer::start(node, &["--drops"]);
    trigger();
    thread::sleep(settle);
    let finished = tracer.stop();
    let seen = oracle.map(DropOracle::stop);
    assert!(finished.status.success(), "vethtrace failed: {}", finished.stderr);
    assert!(finished.of_kind("packet").is_empty(), "--drops printed packet events");
    let drops: Vec<Value> =
        finished.of_kind("drop").into_iter().filter(|e| e["iface"] == expect.iface).cloned().collect();
    assert!(
        !drops.is_empty(),
        "no drop on {} (all drops: {:#?})\n{}",
        expect.iface,
        finished.of_kind("drop"),
        finished.stderr
    );
    let reasons = kfree_skb_has_reason();
    for d in &drops {
        if reasons {
            let reason = d["reason"].as_str().unwrap_or_default();
            assert!(expect.reasons.contains(&reason), "reason {reason} not in {:?}: {d:#}", expect.reasons);
        } else {
            assert!(d.get("reason").is_none() && d.get("reason_code").is_none(), "a reason on a kernel without: {d:#}");
        }
        let cause = d["cause"].as_str().unwrap_or_default();
        assert!(cause.contains(expect.cause), "cause {cause:?} lacks {:?}: {d:#}", expect.cause);
        assert_eq!(d["cause_code"], expect.code, "{d:#}");
        assert!(d["location"].as_str().is_some_and(|l| l.contains("+0x")), "location: {d:#}");
        assert_eq!(d["matched"], expect.matched, "{d:#}");
    }
    if let Some(seen) = seen {
        // Spontaneous drops (IPv6 multicast at ip6_mc_input) may fall outside vethtrace's
        // window: the oracle's drops in the functions of the fault are compared.
        let ours: Vec<&Value> = drops.iter().collect();
        Agreement { netns: netns_inum(&node.ns()), dev: expect.iface, ignored: &[], exact: false }.check(&seen, &ours);
    }
    drops
}

fn ping(node: &Node, pod: &str, args: &[&str]) {
    attempt(node.in_pod(pod, "ping").args(["-c", "2", "-i", "0.2", "-W", "1"]).args(args));
}

#[test]
fn unreachable_route() {
    let node = Node::up("du");
    let cali = node.cali("pod1");
    sh(node.in_node("ip").args(["route", "add", "unreachable", "10.77.0.0/16"]));
    check_fault(
        &node,
        "du",
        || ping(&node, "pod1", &["10.77.0.1"]),
        Duration::from_millis(500),
        &Expect {
            iface: &cali,
            // ip_error names EHOSTUNREACH (an unreachable route) NOT_SPECIFIED, ENETUNREACH
            // (no route at all) IP_INNOROUTES.
            reasons: &["NOT_SPECIFIED", "IP_INNOROUTES"],
            cause: "no route to 10.77.0.1 (unreachable route 10.77.0.0/16)",
            code: "no_route",
            matched: "device",
        },
    );
}

#[test]
fn host_route_to_a_cali_no_pod_owns() {
    let node = Node::up("dn");
    let cali2 = node.cali("pod2");
    sh(node.in_node("ip").args(["route", "add", "10.244.1.99/32", "dev", &cali2, "scope", "link"]));
    check_fault(
        &node,
        "dn",
        // Three unanswered ARP probes, one a second, then the queued packets are dropped.
        || ping(&node, "pod1", &["-c", "1", "10.244.1.99"]),
        Duration::from_secs(5),
        &Expect {
            iface: &cali2,
            reasons: &["NEIGH_FAILED"],
            cause: &format!("10.244.1.99 never answered ARP on {cali2} (neighbour FAILED)"),
            code: "neighbour_unanswered",
            matched: "device",
        },
    );
}

#[test]
fn nftables_drop_in_forward() {
    let node = Node::up("df");
    let cali1 = node.cali("pod1");
    let rules = "table inet vtdrop {\n  chain vtfwd {\n    type filter hook forward priority 0;\n    ip daddr 10.244.1.6 icmp type echo-request drop\n  }\n}\n";
    nft(&node, rules);
    check_fault(
        &node,
        "df",
        || ping(&node, "pod1", &["10.244.1.6"]),
        Duration::from_millis(500),
        &Expect { iface: &cali1, reasons: &["NETFILTER_DROP"], cause: "dropped by a netfilter rule", code: "netfilter", matched: "device" },
    );
}

/// A drop on the uplink (not traced) of a packet for a pod is kept by its address; a drop of
/// the node's own traffic on the same uplink is not reported.
#[test]
fn drop_on_the_uplink_is_kept_by_address() {
    let node = Node::up("da");
    let rules = "table inet vtdrop {\n  chain vtin {\n    type filter hook prerouting priority 0;\n    iifname eth0 icmp type echo-request drop\n  }\n}\n";
    nft(&node, rules);
    let uplink = format!("{}up", node.prefix);
    let drops = check_fault(
        &node,
        "da",
        || {
            attempt(Node::exec(&uplink, "ping").args(["-c", "2", "-i", "0.2", "-W", "1", "10.244.1.5"]));
            attempt(Node::exec(&uplink, "ping").args(["-c", "2", "-i", "0.2", "-W", "1", "10.99.0.1"]));
        },
        Duration::from_millis(500),
        &Expect { iface: "eth0", reasons: &["NETFILTER_DROP"], cause: "dropped by a netfilter rule", code: "netfilter", matched: "address" },
    );
    assert!(drops.iter().all(|d| d["dst"] == "10.244.1.5"), "the node's own traffic was reported: {drops:#?}");
}

/// A pod's packet SNATed to the node's uplink address and dropped after SNAT on the uplink:
/// neither its device nor its addresses are the pod's any more, but it arrived through the
/// pod's cali. The node's own packets dropped by the same rule are not reported.
#[test]
fn snatted_drop_on_the_uplink_is_kept_because_it_arrived_on_a_cali() {
    let node = Node::up("ds");
    nft(
        &node,
        "table ip vtsnat {
  chain post { type nat hook postrouting priority srcnat; oifname \"eth0\" ip saddr 10.244.0.0/16 masquerade; }
  chain late { type filter hook postrouting priority 200; oifname \"eth0\" ip daddr 192.0.2.1 drop; }
}
",
    );
    let drops = check_fault(
        &node,
        "ds",
        || {
            ping(&node, "pod1", &["192.0.2.1"]);
            attempt(node.in_node("ping").args(["-c", "3", "-i", "0.2", "-W", "1", "192.0.2.1"]));
        },
        Duration::from_millis(500),
        &Expect { iface: "eth0", reasons: &["NETFILTER_DROP"], cause: "dropped by a netfilter rule", code: "netfilter", matched: "arrival" },
    );
    assert_eq!(drops.len(), 2, "pod1's two pings, not the node's three: {drops:#?}");
    assert!(drops.iter().all(|d| d["src"] == "10.99.0.1" && d["dst"] == "192.0.2.1"), "SNATed: {drops:#?}");
}

#[test]
fn rp_filter_drops_a_spoofed_source() {
    let node = Node::up("dr");
    let cali1 = node.cali("pod1");
    sh(node.in_node("sysctl").args(["-qw", "net.ipv4.conf.all.rp_filter=1", &format!("net.ipv4.conf.{cali1}.rp_filter=1")]));
    // Resolve 169.254.1.1 with the pod's own address first: an ARP request from the spoofed
    // source would itself fail the reverse-path check and never be answered.
    ping(&node, "pod1", &["-c", "1", "10.244.1.6"]);
    // A source that the node routes back through its uplink, not through pod1's cali.
    sh(node.in_pod("pod1", "ip").args(["addr", "add", "10.55.0.9/32", "dev", "eth0"]));
    check_fault(
        &node,
        "dr",
        || ping(&node, "pod1", &["-I", "10.55.0.9", "10.244.1.6"]),
        Duration::from_millis(500),
        &Expect {
            iface: &cali1,
            reasons: &["IP_RPFILTER"],
            cause: &format!("reverse-path filter on {cali1}: source 10.55.0.9 not routed back through {cali1}"),
            code: "rp_filter",
            matched: "device",
        },
    );
}

#[test]
fn packet_larger_than_mtu_with_df() {
    let node = Node::up("dm");
    let cali1 = node.cali("pod1");
    sh(node.in_node("ip").args(["link", "set", "eth0", "mtu", "1000"]));
    let drops = check_fault(
        &node,
        "dm",
        || ping(&node, "pod1", &["-c", "1", "-M", "do", "-s", "1200", "10.99.0.2"]),
        Duration::from_millis(500),
        &Expect {
            iface: &cali1,
            // 6.1 drops it in ip_forward without a reason.
            reasons: &["PKT_TOO_BIG", "NOT_SPECIFIED"],
            cause: "packet larger than MTU with DF set (1228 bytes, MTU 1000 on eth0)",
            code: "too_big",
            matched: "device",
        },
    );
    assert_eq!(drops[0]["df"], true);
}

#[test]
fn pod_end_of_the_veth_down() {
    let node = Node::up("dd");
    let cali1 = node.cali("pod1");
    // Resolve the neighbour first, so that the packets reach the device rather than wait
    // for ARP.
    ping(&node, "pod2", &["-c", "1", "10.244.1.5"]);
    sh(node.in_pod("pod1", "ip").args(["link", "set", "eth0", "down"]));
    check_fault(
        &node,
        "dd",
        || ping(&node, "pod2", &["10.244.1.5"]),
        Duration::from_secs(4),
        &Expect {
            iface: &cali1,
            reasons: &["QDISC_DROP", "NEIGH_FAILED", "NOT_SPECIFIED", "DEV_READY"],
            cause: "veth peer is down",
            code: "veth_peer_down",
            matched: "device",
        },
    );
}

#[test]
fn healthy_traffic_drops_nothing() {
    let node = Node::up("dh");
    let tracer = Tracer::start(&node, &["--drops"]);
    for (pod, dst) in [("pod1", "10.244.1.6"), ("pod2", "10.244.1.5"), ("pod1", "10.99.0.2"), ("pod1", "fd00:244::6")] {
        let out = node.in_pod(pod, "ping").args(["-c", "3", "-i", "0.2", "-W", "2", dst]).output().unwrap();
        assert!(out.status.success(), "healthy ping {pod} -> {dst} failed: {}", String::from_utf8_lossy(&out.stdout));
    }
    thread::sleep(Duration::from_millis(300));
    let finished = tracer.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    let drops = finished.of_kind("drop");
    assert!(drops.is_empty(), "healthy traffic produced drops: {drops:#?}");
}

/// A UDP socket closed with datagrams unread: the kernel frees them from its queue, where
/// `skb->dev` holds the socket's `dev_scratch` (no address). That is a drop without a device in
/// the pod's namespace, not a struct layout gone wrong: no in-kernel failure, no warning.
#[test]
fn a_socket_closed_with_unread_datagrams_is_no_layout_error() {
    let node = Node::up("dq");
    let tracer = Tracer::start(&node, &["--drops"]);
    let mut sink = node
        .in_pod("pod2", "python3")
        .args(["-c", "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('10.244.1.6',7777))\nprint('bound',flush=True)\ntime.sleep(2)\ns.close()"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut bound = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(sink.stdout.take().unwrap()), &mut bound).unwrap();
    assert_eq!(bound.trim(), "bound");
    let send = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor i in range(20): s.sendto(b'x'*10,('10.244.1.6',7777))";
    run(node.in_pod("pod1", "python3").args(["-c", send]));
    assert!(sink.wait().unwrap().success());
    thread::sleep(Duration::from_millis(300));
    let finished = tracer.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    // The exit line names in-kernel failures only when there were some.
    for told in ["struct layout", "in-kernel failures", "failed in the kernel"] {
        assert!(!finished.stderr.contains(told), "{}", finished.stderr);
    }
}

#[test]
fn summary_counts_drops_by_reason_interface_and_flow() {
    let node = Node::up("ds");
    let cali1 = node.cali("pod1");
    sh(node.in_node("ip").args(["route", "add", "unreachable", "10.77.0.0/16"]));
    let tracer = Tracer::start(&node, &["--summary"]);
    attempt(node.in_pod("pod1", "ping").args(["-c", "3", "-i", "0.2", "-W", "1", "10.77.0.1"]));
    thread::sleep(Duration::from_millis(300));
    let finished = tracer.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(finished.of_kind("drop").is_empty() && finished.of_kind("packet").is_empty(), "--summary prints no events");
    let rows = finished.of_kind("drop_summary");
    let row = rows
        .iter()
        .find(|r| r["iface"] == cali1.as_str() && r["flow"] == "10.244.1.5 > 10.77.0.1 icmp")
        .unwrap_or_else(|| panic!("no summary row for {cali1}: {rows:#?}"));
    assert_eq!(row["count"], 3, "{row:#}");
}

/// The ftrace oracle's reading of a record: 5.10's (a line of its `trace` file in the 5.10 VM:
/// real addresses, no reason) resolved through kallsyms, and a later kernel's (`%pS`, a reason).
#[test]
fn the_ftrace_oracle_reads_kfree_skb_records() {
    use common::ftrace::{Symbols, parse_record};
    let symbols = Symbols::parse("ffffffff891b1a30 t ip_error\nffffffff891b1c00 T ip_forward\nffffffff891b1b00 d some_data\n");
    let line = "            ping-164     [001] ..s1    13.525645: kfree_skb: skbaddr=ffff8bfe1462fa00 protocol=2048 location=ffffffff891b1aad";
    let d = parse_record(line, &symbols, &[]).unwrap();
    assert_eq!((d.at, d.code, d.symbol.as_str(), d.protocol), (None, None, "ip_error", 2048));
    let reasons = [("NOT_SPECIFIED".to_owned(), 2), ("NEIGH_FAILED".to_owned(), 17)];
    let line = "  ping-9 [000] ..s1. 5.1: kfree_skb: skbaddr=000000003c7a4b9e rx_sk=0000000000000000 protocol=2054 location=neigh_invalidate+0x8c/0x140 reason: NEIGH_FAILED";
    let d = parse_record(line, &symbols, &reasons).unwrap();
    assert_eq!((d.code, d.symbol.as_str(), d.protocol), (Some(17), "neigh_invalidate", 2054));
    assert!(parse_record("  <idle>-0 [001] 1.0: kfree_skb: skbaddr=ffff protocol=2048 location=ffffffff00000001", &symbols, &[]).is_none());
}

/// An oracle that saw nothing fails the comparison (ftrace's records have no device: any
/// place), and so does one that saw the fault's function with another protocol.
#[test]
fn an_oracle_that_saw_nothing_fails_the_test() {
    use common::drop_oracle::OracleDrop;
    let ours = serde_json::json!({"location": "ip_error+0x7d", "ethertype": "ipv4"});
    let agreement = Agreement { netns: 1, dev: "cali1", ignored: &[], exact: false };
    let check = |seen: Vec<OracleDrop>| std::panic::catch_unwind(|| agreement.check(&seen, &[&ours])).is_ok();
    let drop = |protocol| OracleDrop { at: None, code: None, symbol: "ip_error".into(), protocol };
    assert!(!check(vec![]), "an empty oracle passed");
    assert!(!check(vec![drop(0x86dd)]), "another protocol passed");
    assert!(check(vec![drop(0x0800), drop(0x0800)]), "the same drops failed");
}
