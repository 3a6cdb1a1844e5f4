//! Living next to other TC programs: another owner's program that drops some frames keeps its
//! verdict, its place and its attachment, and vethtrace reports the frames as TC sees them (TCX
//! and clsact); two vethtraces on overlapping interfaces run side by side and each takes only its
//! own programs away.

mod common;

use std::{sync::Mutex, time::Duration};

use common::{
    Node,
    owner::{DROP_LEN, DROP_PAYLOAD, TCX_OWNER_NAME, TcxOwner, add_clsact_filter, clsact_bytecode},
    system::{Proc, TcProg, tc_filters, tc_modes, tc_progs},
};
use serde_json::Value;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const SMALL_PAYLOAD: usize = 100;
const SMALL_LEN: u64 = 14 + 20 + 8 + SMALL_PAYLOAD as u64;

/// pod1 sends `n` UDP datagrams the other owner drops and `n` it passes, to pod2.
fn send_mixed(node: &Node, n: usize) {
    let script = format!(
        "for i in $(seq {n}); do printf '%0{DROP_PAYLOAD}d' 0 > /dev/udp/10.244.1.6/7777; \
         printf '%0{SMALL_PAYLOAD}d' 0 > /dev/udp/10.244.1.6/7778; done"
    );
    common::run(node.in_pod("pod1", "bash").args(["-c", &script]));
    std::thread::sleep(Duration::from_millis(300));
}

/// Frames of each length in a capture: (DROP_LEN, SMALL_LEN).
fn by_len(lens: impl Iterator<Item = u64>) -> (usize, usize) {
    let lens: Vec<u64> = lens.collect();
    (lens.iter().filter(|l| **l == u64::from(DROP_LEN)).count(), lens.iter().filter(|l| **l == SMALL_LEN).count())
}

fn udp_events<'a>(events: &'a [Value], iface: &'a str, dir: &'a str) -> impl Iterator<Item = u64> + 'a {
    events
        .iter()
        .filter(move |e| e["kind"] == "packet" && e["iface"] == iface && e["dir"] == dir && e["proto"] == "udp")
        .map(|e| e["len"].as_u64().unwrap())
}

/// The other owner's attachment on `iface` as bpftool lists it.
fn other_owner(node: &Node, iface: &str) -> Vec<TcProg> {
    tc_progs(&node.ns()).into_iter().filter(|p| p.dev == iface && !p.name.starts_with("vethtrace")).collect()
}

/// nftables counts UDP to ports 7777 and 7778 in a pod: at `hook` output (what the pod sends)
/// or prerouting (what reaches it).
fn nft_count_udp(node: &Node, pod: &str, hook: &str) {
    let nft = |cmd: &str| common::run(node.in_pod(pod, "nft").arg(cmd));
    nft("add table inet vtcount");
    nft(&format!("add chain inet vtcount c {{ type filter hook {hook} priority 0; }}"));
    nft("add rule inet vtcount c udp dport 7777 counter");
    nft("add rule inet vtcount c udp dport 7778 counter");
}

/// The two counters' packets: (port 7777, port 7778), from `nft -j list`.
fn nft_udp_packets(node: &Node, pod: &str) -> (u64, u64) {
    let out = common::stdout(node.in_pod(pod, "nft").args(["-j", "list", "chain", "inet", "vtcount", "c"]));
    let v: Value = serde_json::from_str(&out).expect("nft JSON");
    let counts: Vec<u64> = v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["rule"]["expr"].as_array())
        .filter_map(|expr| expr.iter().find_map(|e| e["counter"]["packets"].as_u64()))
        .collect();
    (counts[0], counts[1])
}

/// Sends the mixed traffic; what pod1 sent (what arrives at its cali, where TC runs) and what
/// reached pod2, each as (dropped length, small), by nftables in the pods.
fn mixed_round(node: &Node, n: usize) -> ((u64, u64), (u64, u64)) {
    let (sent0, got0) = (nft_udp_packets(node, "pod1"), nft_udp_packets(node, "pod2"));
    send_mixed(node, n);
    let (sent1, got1) = (nft_udp_packets(node, "pod1"), nft_udp_packets(node, "pod2"));
    ((sent1.0 - sent0.0, sent1.1 - sent0.1), (got1.0 - got0.0, got1.1 - got0.1))
}

/// What `mixed_round` must count: all 2n frames sent, only the n small ones get through.
fn expected(n: usize) -> ((u64, u64), (u64, u64)) {
    let n = n as u64;
    ((n, n), (0, n))
}

fn beside_another_owner(mode: &str) {
    let node = Node::up("nb");
    let cali1 = node.cali("pod1");
    // Warm the neighbour entries so that the counted rounds hold UDP only.
    common::run(node.in_pod("pod1", "ping").args(["-c", "1", "10.244.1.6"]));
    nft_count_udp(&node, "pod1", "output");
    nft_count_udp(&node, "pod2", "prerouting");
    let _tcx = (mode == "tcx").then(|| TcxOwner::attach(&node, &cali1));
    if mode == "clsact" {
        add_clsact_filter(&node, &cali1, 7);
    }
    let owner_before = other_owner(&node, &cali1);
    assert_eq!(owner_before.len(), 1, "{mode}: the other owner's program is not attached: {owner_before:?}");
    let kind = if mode == "tcx" { "tcx/ingress" } else { "clsact/ingress" };
    assert_eq!(owner_before[0].kind, kind, "{owner_before:?}");
    assert!(mode == "clsact" || owner_before[0].name == TCX_OWNER_NAME, "{owner_before:?}");
    let filters_before = tc_filters(&node, &cali1, "ingress");
    let n = 40;
    let baseline = mixed_round(&node, n);
    assert_eq!(baseline, expected(n), "{mode}: the other owner's program does not drop as built ((in), (out))");

    let mut tracer = Proc::spawn(&node, "nb", &["--tc-mode", mode, "--no-drops", "--probe", "off"]);
    tracer.wait_ready();
    let traced = mixed_round(&node, n);
    assert_eq!(traced, baseline, "{mode}: with vethtrace attached the verdicts changed ((in), (out))");
    assert!(tc_filters(&node, &cali1, "ingress").contains(&clsact_bytecode()) || mode == "tcx");
    let status = tracer.stop_with(libc::SIGINT);
    assert!(status.success(), "{}", tracer.stderr());
    let events = tracer.events();
    // vethtrace runs in front: it reports every frame TC got, the dropped ones included.
    let as_u64 = |(a, b): (usize, usize)| (a as u64, b as u64);
    assert_eq!(as_u64(by_len(udp_events(&events, &cali1, "ingress"))), traced.0, "{mode}: vethtrace on {cali1} in vs sent");
    assert_eq!(
        as_u64(by_len(udp_events(&events, &node.cali("pod2"), "egress"))),
        traced.1,
        "{mode}: vethtrace on pod2's cali out vs received"
    );

    let owner_after = other_owner(&node, &cali1);
    assert_eq!(owner_after, owner_before, "{mode}: the other owner's attachment changed after vethtrace exited");
    assert_eq!(tc_filters(&node, &cali1, "ingress"), filters_before, "{mode}: the clsact filter list changed");
    assert_eq!(mixed_round(&node, n), baseline, "{mode}: the other owner's program stopped working");
}

#[test]
fn another_owners_program_keeps_its_verdict_place_and_attachment() {
    let _one = serial();
    for mode in tc_modes() {
        beside_another_owner(mode);
    }
}

/// vethtrace programs attached in the node, by program id.
fn ours(node: &Node) -> Vec<(String, String, u64)> {
    tc_progs(&node.ns())
        .into_iter()
        .filter(|p| p.name.starts_with("vethtrace"))
        .map(|p| (p.dev, p.kind, p.prog_id))
        .collect()
}

fn two_side_by_side(mode: &str) {
    let node = Node::up("two");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    let args = |glob: &str| vec!["--tc-mode".to_owned(), mode.to_owned(), "--iface".to_owned(), glob.to_owned()];
    let strs = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
    let all = args("cali*");
    let mut wide = Proc::spawn(&node, "two", &all.iter().map(String::as_str).collect::<Vec<_>>());
    wide.wait_ready();
    let wide_progs = ours(&node);
    assert_eq!(wide_progs.len(), 4, "{mode} {}: {wide_progs:?}", strs(&all));
    let one = args(&cali1);
    let mut narrow = Proc::spawn(&node, "two", &one.iter().map(String::as_str).collect::<Vec<_>>());
    narrow.wait_ready();
    let narrow_progs: Vec<_> = ours(&node).into_iter().filter(|p| !wide_progs.contains(p)).collect();
    assert_eq!(narrow_progs.len(), 2, "{mode}: the second vethtrace's programs: {narrow_progs:?}");
    assert!(narrow_progs.iter().all(|p| p.0 == cali1));

    let ping = |count: &str| common::run(node.in_pod("pod1", "ping").args(["-c", count, "-i", "0.05", "10.244.1.6"]));
    ping("5");
    std::thread::sleep(Duration::from_millis(300));
    let icmp = |p: &Proc, iface: &str| {
        p.events().iter().filter(|e| e["iface"] == iface && e["proto"] == "icmp").count()
    };
    assert_eq!(icmp(&wide, &cali1), 10, "{mode}: the wide tracer on {cali1}");
    assert_eq!(icmp(&narrow, &cali1), 10, "{mode}: the narrow tracer on {cali1}");
    assert_eq!(icmp(&narrow, &cali2), 0, "{mode}: the narrow tracer traced {cali2}");

    assert!(wide.stop_with(libc::SIGINT).success(), "{}", wide.stderr());
    let gone = common::eventually(Duration::from_secs(5), || ours(&node) == narrow_progs);
    assert!(gone, "{mode}: after the first exited: {:?}, expected only {narrow_progs:?}", ours(&node));
    let before = icmp(&narrow, &cali1);
    ping("3");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(icmp(&narrow, &cali1) - before, 6, "{mode}: the second stopped tracing when the first exited");
    assert!(narrow.stop_with(libc::SIGINT).success(), "{}", narrow.stderr());
    assert!(common::eventually(Duration::from_secs(5), || ours(&node).is_empty()), "{:?}", ours(&node));
}

#[test]
fn two_vethtraces_on_overlapping_interfaces_work_and_exit_independently() {
    let _one = serial();
    for mode in tc_modes() {
        two_side_by_side(mode);
    }
}
