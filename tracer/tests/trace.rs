//! The foundation, end to end on a Calico-style node: vethtrace against tcpdump on the same
//! veths, the live interface set, detaching (SIGINT and SIGKILL, TCX and clsact), bad input.

mod common;

use std::{process::Command, time::Duration};

use common::{Node, Tcpdump, Tracer, events_by_iface_dir, frame_key, run, stdout, tc_modes, vethtrace_bin};

/// ARP, ICMP, TCP, UDP over IPv4 and IPv6 between the two pods, and out through the uplink.
fn make_traffic(node: &Node) {
    // Empty neighbour tables so that the pods ARP for 169.254.1.1 again.
    run(node.in_pod("pod1", "ip").args(["neigh", "flush", "all"]));
    run(node.in_pod("pod1", "ping").args(["-c", "3", "-i", "0.05", "10.244.1.6"]));
    run(node.in_pod("pod1", "ping").args(["-6", "-c", "2", "-i", "0.05", "fd00:244::6"]));
    run(node.in_pod("pod1", "ping").args(["-c", "1", "10.99.0.2"]));
    let mut server = node.in_pod("pod2", "nc").args(["-l", "-p", "8080"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    run(Command::new("bash").arg("-c").arg(format!(
        "echo hello | ip netns exec {} nc -N -w 2 10.244.1.6 8080",
        node.pod_ns("pod1")
    )));
    common::wait_timeout(&mut server, Duration::from_secs(5));
    run(Command::new("bash").arg("-c").arg(format!(
        "echo datagram | ip netns exec {} nc -u -w 1 -q 0 10.244.1.5 5353; true",
        node.pod_ns("pod2")
    )));
    // Let the last replies cross before the captures stop.
    std::thread::sleep(Duration::from_millis(400));
}

#[test]
fn every_packet_matches_tcpdump_on_the_same_veths() {
    let node = Node::up("td");
    let calis = [node.cali("pod1"), node.cali("pod2")];
    let tracer = Tracer::start(&node, &["--iface", "cali*"]);
    let captures: Vec<_> = calis
        .iter()
        .flat_map(|c| [("in", "ingress"), ("out", "egress")].map(|(q, d)| (c.clone(), d, Tcpdump::start(&node, c, q))))
        .collect();
    // Compare what both saw between "every capture is listening" and "traffic is over": a
    // spontaneous frame (an IPv6 MLD report, a neighbour probe) outside that window would reach
    // only the side that was still running.
    let start = common::now();
    make_traffic(&node);
    let window = start..common::now();
    let frames: Vec<_> = captures.into_iter().map(|(c, d, t)| ((c, d.to_owned()), t.stop())).collect();
    let done = tracer.stop();
    assert!(done.status.success(), "vethtrace failed: {}", done.stderr);
    let ours = events_by_iface_dir(&done.events, &window);
    let mut total = 0;
    for (key, frames) in frames {
        let mut theirs: Vec<String> =
            frames.iter().filter(|(t, _)| window.contains(t)).map(|(_, f)| frame_key(f)).collect();
        theirs.sort();
        let mine = ours.get(&key).cloned().unwrap_or_default();
        let only_ours: Vec<_> = mine.iter().filter(|k| !theirs.contains(k)).collect();
        let only_theirs: Vec<_> = theirs.iter().filter(|k| !mine.contains(k)).collect();
        assert_eq!(
            mine.len(),
            theirs.len(),
            "{key:?}: vethtrace {} events, tcpdump {} frames; only vethtrace: {only_ours:?}; only tcpdump: {only_theirs:?}",
            mine.len(),
            theirs.len()
        );
        assert_eq!(mine, theirs, "{key:?}: fields differ from tcpdump's");
        total += mine.len();
    }
    // The traffic above is dozens of frames; an empty comparison would prove nothing.
    assert!(total >= 30, "only {total} frames compared");
    let all: Vec<String> = ours.values().flatten().cloned().collect();
    for needle in [" arp 1 ", " arp 2 ", "proto 1 ", "proto 58 ", "flags S", "flags S.", "flags F.", "proto 17 "] {
        assert!(all.iter().any(|k| k.contains(needle)), "no event with {needle:?}");
    }
    assert!(done.stderr.contains(" 0 lost"), "{}", done.stderr);
    // With the right layouts nothing fails in the kernel, and every section is known.
    assert!(!done.stderr.contains("failed in the kernel") && !done.stderr.contains("in-kernel failures"), "{}", done.stderr);
}

#[test]
fn direction_is_the_hosts_view_of_the_cali() {
    let node = Node::up("dir");
    let cali1 = node.cali("pod1");
    let tracer = Tracer::start(&node, &["--iface", &cali1]);
    run(node.in_pod("pod1", "ping").args(["-c", "1", "10.244.1.6"]));
    let done = tracer.stop();
    let icmp: Vec<_> = done.of_kind("packet").into_iter().filter(|e| e["proto"] == "icmp").collect();
    let request = icmp.iter().find(|e| e["icmp_type"] == 8).expect("echo request seen");
    let reply = icmp.iter().find(|e| e["icmp_type"] == 0).expect("echo reply seen");
    // What the pod sends arrives at the host: ingress on the host-side cali.
    assert_eq!(request["dir"], "ingress");
    assert_eq!(request["src"], "10.244.1.5");
    assert_eq!(request["iface"], cali1.as_str());
    assert_eq!(reply["dir"], "egress");
    assert_eq!(reply["src_mac"], "ee:ee:ee:ee:ee:ee");
    // Only the named interface is traced.
    assert!(done.of_kind("packet").iter().all(|e| e["iface"] == cali1.as_str()));
}

#[test]
fn a_pod_created_while_tracing_is_traced_within_a_second() {
    let node = Node::up("new");
    let tracer = Tracer::start(&node, &[]);
    node.add_pod("pod3", "10.244.1.7", "fd00:244::7");
    let cali3 = node.cali("pod3");
    std::thread::sleep(Duration::from_millis(1000));
    run(node.in_pod("pod3", "ping").args(["-c", "1", "10.244.1.5"]));
    node.del_pod("pod3");
    std::thread::sleep(Duration::from_millis(200));
    // Traffic after the pod went away must still be traced on the others.
    run(node.in_pod("pod1", "ping").args(["-c", "1", "10.244.1.6"]));
    let done = tracer.stop();
    assert!(done.status.success(), "{}", done.stderr);
    let on_new: Vec<_> = done.of_kind("packet").into_iter().filter(|e| e["iface"] == cali3.as_str()).collect();
    assert!(
        on_new.iter().any(|e| e["icmp_type"] == 8 && e["dir"] == "ingress"),
        "the echo request from the new pod was not traced: {on_new:?}"
    );
    assert!(
        done.of_kind("packet").iter().any(|e| e["src"] == "10.244.1.5" && e["dst"] == "10.244.1.6"),
        "tracing stopped after a pod went away"
    );
}

#[test]
fn waiting_for_a_first_match_is_said_once() {
    let node = Node::up("wait");
    let tracer = Tracer::start(&node, &["--iface", "tap*"]);
    assert!(tracer.stderr().contains("no interface matches 'tap*' yet"), "{}", tracer.stderr());
    let done = tracer.stop();
    assert!(done.status.success());
    assert_eq!(done.stderr.matches("no interface matches").count(), 1);
}

/// Runs vethtrace in `mode`, stops it with `sig`, then checks with bpftool and tc that none of
/// its programs is left in the kernel.
fn leaves_nothing_attached(mode: &str, sig: i32) {
    let node = Node::up("det");
    let names = ["vethtrace_in", "vethtrace_eg"];
    let tracer = Tracer::start(&node, &["--tc-mode", mode]);
    // Its own programs, from the descriptors it holds (other vethtraces may run at the same time).
    let held = common::system::held_prog_ids(tracer.pid());
    let during: Vec<u64> = common::bpf_prog_ids(&names).into_iter().filter(|id| held.contains(id)).collect();
    assert_eq!(during.len(), 2, "expected our two TC programs loaded, bpftool shows {during:?}");
    let cali = node.cali("pod1");
    if mode == "clsact" {
        let filters = node_tc_filters(&node, &cali);
        assert!(filters.contains("vethtrace_in"), "no clsact filter while tracing: {filters}");
    }
    let _ = tracer.stop_with(sig);
    let gone = common::eventually(Duration::from_secs(5), || {
        let now = common::bpf_prog_ids(&names);
        during.iter().all(|id| !now.contains(id))
    });
    assert!(gone, "{mode}: programs {during:?} still loaded after signal {sig}");
    let filters = node_tc_filters(&node, &cali);
    assert!(!filters.contains("vethtrace"), "{mode}: filter left after signal {sig}: {filters}");
}

fn node_tc_filters(node: &Node, iface: &str) -> String {
    ["ingress", "egress"]
        .iter()
        .map(|hook| stdout(node.in_node("tc").args(["filter", "show", "dev", iface, hook])))
        .collect()
}

#[test]
fn nothing_stays_attached_after_sigint() {
    for mode in tc_modes() {
        leaves_nothing_attached(mode, libc::SIGINT);
    }
}

#[test]
fn nothing_stays_attached_after_sigkill() {
    for mode in tc_modes() {
        leaves_nothing_attached(mode, libc::SIGKILL);
    }
}

#[test]
fn strict_turns_lost_events_into_a_failure() {
    let node = Node::up("lost");
    // The smallest ring, and a collector that is frozen while traffic flows: losses are certain.
    let tracer = Tracer::start(&node, &["--ring-size", "4096", "--strict"]);
    tracer.signal(libc::SIGSTOP);
    run(node.in_pod("pod1", "ping").args(["-c", "200", "-i", "0.002", "-q", "10.244.1.6"]));
    tracer.signal(libc::SIGCONT);
    let done = tracer.stop();
    assert_eq!(done.status.code(), Some(3), "{}", done.stderr);
    assert!(done.stderr.contains("--strict"), "{}", done.stderr);
    assert!(!done.stderr.contains(" 0 lost"), "{}", done.stderr);
    assert!(!done.events.is_empty());
}

/// Bad input: one line on stderr, non-zero exit, no panic, no backtrace.
fn one_line_error(args: &[&str], expect: &str) {
    let out = Command::new(vethtrace_bin()).args(args).env("RUST_BACKTRACE", "1").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: not one line:\n{stderr}");
    assert!(stderr.contains(expect), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
}

#[test]
fn bad_input_is_one_clear_line() {
    common::require_root();
    one_line_error(&["--iface", "cali["], "bad interface glob 'cali['");
    one_line_error(&["--bogus"], "--bogus");
    one_line_error(&["--output", "xml"], "xml");
    one_line_error(&["--ring-size", "1000"], "power of two");
}

#[test]
fn without_privileges_it_names_what_is_missing() {
    common::require_root();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        .arg(vethtrace_bin())
        .output()
        .expect("setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("missing capabilities: CAP_NET_ADMIN, CAP_BPF, CAP_PERFMON"), "{stderr}");
}
