//! The kernel's ARP and neighbour path on the Calico-style node, in the probe mode named by
//! VETHTRACE_PROBE (kprobe, fentry or tracepoint; tracepoint when unset, the only one this
//! build machine's kernel allows). `cargo xtask vm` runs this file once per mode on Debian's
//! 6.1 kernel.
//!
//! Oracles nobody here wrote: arping's own verdict (answered or not), tcpdump on the same cali
//! (how many ARP requests the host sent), `ip neigh` (the state the entry ended in), and
//! bpftrace (whether kprobes and fentry attach on this kernel at all).

mod common;

use std::{process::Command, thread, time::Duration};

use common::{Node, Tcpdump, Tracer, eventually, frame_key, run, stdout};
use serde_json::Value;

/// The mode under test.
fn mode() -> String {
    std::env::var("VETHTRACE_PROBE").ok().filter(|m| !m.is_empty()).unwrap_or_else(|| "tracepoint".into())
}

/// vethtrace on `ifaces` with the probes in the mode under test.
fn tracer(node: &Node, ifaces: &[&str]) -> Tracer {
    let mode = mode();
    let mut args = vec!["--no-drops", "--probe", mode.as_str()];
    for i in ifaces {
        args.extend(["--iface", i]);
    }
    let t = Tracer::start(node, &args);
    assert!(t.stderr().contains(&format!("ARP/neighbour probes: {mode} (")), "{}", t.stderr());
    t
}

/// pod1 asks for its gateway once; whether it got an answer (arping's exit status).
fn arping_gateway(node: &Node) -> bool {
    node.in_pod("pod1", "arping")
        .args(["-c", "1", "-w", "2", "-I", "eth0", "169.254.1.1"])
        .output()
        .expect("arping")
        .status
        .success()
}

fn is_arp(e: &Value, iface: &str, hook: &str, op: &str) -> bool {
    e["kind"] == "arp" && e["iface"] == iface && e["hook"] == hook && e["arp_op"] == op
}

fn cali_mac(node: &Node, cali: &str) -> String {
    let link: Value = serde_json::from_str(&node.ip(&["-j", "link", "show", cali])).unwrap();
    link[0]["address"].as_str().unwrap().to_owned()
}

/// Every ARP/neighbour event says which mode produced it.
fn assert_mode(events: &[Value]) {
    for e in events.iter().filter(|e| e["kind"] == "arp" || e["kind"] == "neigh") {
        assert_eq!(e["probe"], mode().as_str(), "{e}");
    }
}

#[test]
fn gateway_arp_is_received_and_answered_by_proxy_on_that_cali() {
    let node = Node::up("ng");
    let cali1 = node.cali("pod1");
    let t = tracer(&node, &["cali*"]);
    let skip = t.events_so_far().len();
    assert!(arping_gateway(&node), "the node must answer pod1's ARP for 169.254.1.1 (proxy_arp)");
    let recv = t.wait_event(skip, "the host receiving pod1's ARP request", |e| {
        is_arp(e, &cali1, "recv", "request") && e["arp_tpa"] == "169.254.1.1"
    });
    assert_eq!(recv["arp_spa"], "10.244.1.5", "{recv}");
    let reply = t.wait_event(skip, "the host's proxy reply", |e| {
        is_arp(e, &cali1, "send", "reply") && e["arp_spa"] == "169.254.1.1"
    });
    assert_eq!(reply["arp_sha"], cali_mac(&node, &cali1).as_str(), "the proxy reply carries the cali's MAC: {reply}");
    assert_eq!(reply["arp_tpa"], "10.244.1.5", "{reply}");
    assert_eq!(reply["arp_tha"], recv["arp_sha"], "answered to the asker's MAC: {reply}");
    let fin = t.stop();
    assert_mode(&fin.events);
}

#[test]
fn an_address_no_pod_owns_goes_incomplete_then_failed() {
    let node = Node::up("nf");
    let cali1 = node.cali("pod1");
    node.ip(&["route", "add", "10.244.1.99/32", "dev", &cali1, "scope", "link"]);
    let t = tracer(&node, &["cali*"]);
    let dump = Tcpdump::start(&node, &cali1, "out");
    let _ = node.in_node("ping").args(["-c", "1", "-W", "1", "10.244.1.99"]).output();
    // The kernel sends its solicitations (3 by default, a second apart), then gives up.
    let failed = eventually(Duration::from_secs(15), || {
        stdout(node.in_node("ip").args(["-j", "neigh", "show", "10.244.1.99", "dev", &cali1])).contains("FAILED")
    });
    assert!(failed, "ip neigh: 10.244.1.99 on {cali1} never went FAILED");
    thread::sleep(Duration::from_millis(500));
    let frames = dump.stop();
    let fin = t.stop();
    assert_mode(&fin.events);
    let ours: Vec<&Value> = fin.events.iter().filter(|e| e["kind"] == "neigh" && e["neigh_ip"] == "10.244.1.99").collect();
    let incomplete = ours
        .iter()
        .position(|e| e["new_state"] == "INCOMPLETE")
        .unwrap_or_else(|| panic!("no neighbour event going INCOMPLETE: {ours:#?}\n{}", fin.stderr));
    assert_eq!(ours[incomplete]["hook"], "resolve", "{}", ours[incomplete]);
    assert_eq!(ours[incomplete]["old_state"], "none", "a new entry: {}", ours[incomplete]);
    assert_eq!(ours[incomplete]["held"], true, "the ping waits for resolution: {}", ours[incomplete]);
    // The entry's whole life, as the kernel's own states and vethtrace told it, for any failure.
    let story = || format!("{ours:#?}\nip neigh: {}\nvethtrace: {}", node.ip(&["neigh", "show", "10.244.1.99"]), fin.stderr);
    let last = ours.last().unwrap();
    assert_eq!(
        (&last["hook"], &last["old_state"], &last["new_state"], &last["iface"]),
        (&"timer".into(), &"INCOMPLETE".into(), &"FAILED".into(), &cali1.as_str().into()),
        "the last event must be the timer giving up: {}",
        story()
    );
    // Every solicitation tcpdump saw leave the cali was reported as sent by the host.
    let on_wire = frames
        .iter()
        .map(|(_, f)| frame_key(f))
        .filter(|k| k.contains(" arp 1 ") && k.ends_with(" 10.244.1.99"))
        .count();
    let sent = fin.of_kind("arp").iter().filter(|e| e["hook"] == "send" && e["arp_tpa"] == "10.244.1.99").count();
    assert!(on_wire >= 1, "tcpdump saw no ARP request for 10.244.1.99");
    assert_eq!(sent, on_wire, "ARP requests sent by the host vs. seen by tcpdump on {cali1}");
}

#[test]
fn with_proxy_arp_off_the_request_is_received_and_not_answered() {
    let node = Node::up("np");
    let cali1 = node.cali("pod1");
    run(node.in_node("sysctl").args(["-qw", &format!("net.ipv4.conf.{cali1}.proxy_arp=0")]));
    let t = tracer(&node, &["cali*"]);
    let skip = t.events_so_far().len();
    assert!(!arping_gateway(&node), "with proxy_arp off nobody should answer 169.254.1.1");
    t.wait_event(skip, "the host receiving pod1's ARP request", |e| {
        is_arp(e, &cali1, "recv", "request") && e["arp_tpa"] == "169.254.1.1"
    });
    let fin = t.stop();
    assert_mode(&fin.events);
    let replies: Vec<_> = fin.events.iter().filter(|e| is_arp(e, &cali1, "send", "reply")).collect();
    assert!(replies.is_empty(), "no reply may be sent: {replies:#?}");
}

#[test]
fn only_traced_interfaces_are_reported() {
    let node = Node::up("no");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    let t = tracer(&node, &[&cali1]);
    let skip = t.events_so_far().len();
    let _ = node.in_pod("pod2", "arping").args(["-c", "1", "-w", "2", "-I", "eth0", "169.254.1.1"]).output();
    assert!(arping_gateway(&node));
    t.wait_event(skip, "pod1's ARP on the traced cali", |e| is_arp(e, &cali1, "recv", "request"));
    let fin = t.stop();
    let foreign: Vec<_> = fin
        .events
        .iter()
        .filter(|e| (e["kind"] == "arp" || e["kind"] == "neigh") && e["iface"] != cali1.as_str())
        .collect();
    assert!(foreign.is_empty(), "events on {cali2} or elsewhere, which is not traced: {foreign:#?}");
}

/// Whether bpftrace can attach `probe` (e.g. `kprobe:arp_rcv`) on this kernel.
fn bpftrace_attaches(probe: &str) -> bool {
    Command::new("timeout")
        .args(["60", "bpftrace", "-e", &format!("{probe} {{ }} interval:ms:200 {{ exit(); }}")])
        .output()
        .expect("bpftrace is this test's oracle (apt install bpftrace)")
        .status
        .success()
}

#[test]
fn auto_takes_the_first_mode_that_attaches() {
    common::require_root();
    let expected = if bpftrace_attaches("kprobe:arp_rcv") {
        "kprobe"
    } else if bpftrace_attaches("kfunc:arp_rcv") {
        "fentry"
    } else {
        "tracepoint"
    };
    let node = Node::up("na");
    let t = Tracer::start(&node, &["--no-drops"]);
    let stderr = t.stderr();
    t.stop();
    assert!(stderr.contains(&format!("ARP/neighbour probes: {expected} (")), "bpftrace says {expected}:\n{stderr}");
    let check = Command::new(common::vethtrace_bin()).arg("check").output().unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}");
    assert!(report.contains(&format!("--probe auto takes: {expected}\n")), "{report}");
}

/// `vethtrace check` as an unprivileged user: it still reports what it can see, names the
/// missing capabilities, and exits non-zero because tracing cannot work.
#[test]
fn check_without_privileges_says_tracing_cannot_work() {
    common::require_root();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        .arg(common::vethtrace_bin())
        .arg("check")
        .output()
        .expect("setpriv (util-linux)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("no   privileges") && report.contains("missing capabilities"), "{report}");
    assert!(report.contains("ok   BTF"), "BTF is readable without privileges: {report}");
    assert!(report.contains("--probe auto takes: none"), "{report}");
    assert!(report.ends_with("vethtrace cannot trace here: see the lines marked no above.\n"), "{report}");
}
