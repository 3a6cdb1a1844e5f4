//! Surviving a real node's worst moments: a ring buffer overflowing under a flood (every frame
//! either delivered or counted lost, against the veth counters), and SIGKILL at random moments
//! of start-up, attach and detach (nothing of vethtrace's left in the kernel, a clsact qdisc that
//! was there before kept).

mod common;

use std::{
    collections::BTreeMap,
    sync::Mutex,
    thread,
    time::{Duration, Instant},
};

use common::{
    Node, run,
    system::{Proc, clsact_devs, exit_counters, link_packets, our_tc_progs, tc_modes},
};
use rand::{RngExt as _, SeedableRng as _, rngs::StdRng};
use serde_json::Value;

/// The tests here count every vethtrace program in their node; one at a time keeps that simple.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Packet events per (interface, direction).
fn packets_by_iface_dir(events: &[Value]) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for e in events.iter().filter(|e| e["kind"] == "packet") {
        let key = (e["iface"].as_str().unwrap().to_owned(), e["dir"].as_str().unwrap().to_owned());
        *m.entry(key).or_default() += 1;
    }
    m
}

/// The node's two cali counters, per (interface, direction).
fn counters(node: &Node, calis: &[String]) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for cali in calis {
        let (rx, tx) = link_packets(node, cali);
        m.insert((cali.clone(), "ingress".to_owned()), rx);
        m.insert((cali.clone(), "egress".to_owned()), tx);
    }
    m
}

/// A UDP flood pod1 → pod2 for `secs` (iperf3, 64-byte datagrams, unlimited rate).
fn udp_flood(node: &Node, secs: u32) {
    let mut server = node.in_pod("pod2", "iperf3").args(["-s", "-1", "-p", "5201"]).spawn().expect("iperf3");
    assert!(
        common::eventually(Duration::from_secs(5), || {
            common::stdout(node.in_pod("pod2", "ss").args(["-Htln", "sport = :5201"])).contains("5201")
        }),
        "iperf3 server did not listen"
    );
    run(node.in_pod("pod1", "iperf3").args(["-c", "10.244.1.6", "-u", "-b", "0", "-l", "64", "-t", &secs.to_string()]));
    common::wait_timeout(&mut server, Duration::from_secs(20));
}

/// What one traced window of traffic gave.
struct Window {
    /// Frames the veth counters saw, per (interface, direction).
    seen: BTreeMap<(String, String), u64>,
    /// Packet events vethtrace wrote, per (interface, direction).
    delivered: BTreeMap<(String, String), u64>,
    /// The exit counters: events, lost, undecodable.
    exit: (u64, u64, u64),
    code: Option<i32>,
    stderr: String,
}

/// No frame of the node's own on the two calis while vethtrace runs: every neighbour the traffic
/// needs is made permanent (no ARP request, probe or refresh at a moment of the kernel's choosing).
fn pin_neighbours(node: &Node) {
    for (pod, ip) in [("pod1", "10.244.1.5"), ("pod2", "10.244.1.6")] {
        let links: Vec<Value> =
            serde_json::from_str(&common::stdout(node.in_pod(pod, "ip").args(["-j", "link", "show", "dev", "eth0"])))
                .expect("ip -j JSON");
        let pod_mac = links[0]["address"].as_str().expect("the pod's MAC").to_owned();
        let cali = node.cali(pod);
        run(node.in_node("ip").args(["neigh", "replace", ip, "lladdr", &pod_mac, "dev", &cali, "nud", "permanent"]));
        let cali_mac = node.ip(&["-j", "link", "show", "dev", &cali]);
        let cali_mac: Vec<Value> = serde_json::from_str(&cali_mac).expect("ip -j JSON");
        let cali_mac = cali_mac[0]["address"].as_str().expect("the cali's MAC");
        run(node.in_pod(pod, "ip").args(["neigh", "replace", "169.254.1.1", "lladdr", cali_mac, "dev", "eth0", "nud", "permanent"]));
    }
}

/// The counters once the calis have carried nothing for a while: the MLD reports that follow a
/// link's start (at random moments up to a second apart) are over.
fn quiet_counters(node: &Node, calis: &[String]) -> BTreeMap<(String, String), u64> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = counters(node, calis);
    loop {
        thread::sleep(Duration::from_millis(1500));
        let now = counters(node, calis);
        if now == last {
            return now;
        }
        assert!(Instant::now() < deadline, "the calis never went quiet: {last:?} then {now:?}");
        last = now;
    }
}

/// Traffic in a window, then vethtrace stopped. vethtrace starts on a quiet node and stops on one,
/// so every frame it sees is one the counters count between the two readings.
fn traced_window(node: &Node, args: &[&str], traffic: impl FnOnce()) -> Window {
    let calis = [node.cali("pod1"), node.cali("pod2")];
    pin_neighbours(node);
    quiet_counters(node, &calis);
    // Only packet events: the ARP/neighbour probes and drops would share the ring.
    let mut tracer = Proc::spawn(node, "ovf", &[&["--no-drops", "--probe", "off"], args].concat());
    tracer.wait_ready();
    let before = counters(node, &calis);
    traffic();
    // The last frames cross, then the counters are read and vethtrace stops at once.
    let after = quiet_counters(node, &calis);
    let status = tracer.stop_with(libc::SIGINT);
    let stderr = tracer.stderr();
    let exit = exit_counters(&stderr).unwrap_or_else(|| panic!("no exit counters on stderr:\n{stderr}"));
    let seen: BTreeMap<_, _> = after.iter().map(|(k, a)| (k.clone(), a - before[k])).collect();
    Window { seen, delivered: packets_by_iface_dir(&tracer.events()), exit, code: status.code(), stderr }
}

#[test]
fn a_flood_through_a_tiny_ring_is_delivered_or_counted_lost_exactly() {
    let _one = serial();
    let node = Node::up("ovf");
    let Window { seen, delivered, exit: (events, lost, undecodable), code, stderr } =
        traced_window(&node, &["--ring-size", "4096", "--strict"], || udp_flood(&node, 2));
    let total_seen: u64 = seen.values().sum();
    let total_delivered: u64 = delivered.values().sum();
    assert_eq!(events, total_delivered, "exit counter vs JSON lines written\n{stderr}");
    assert_eq!(undecodable, 0, "{stderr}");
    assert!(lost > 0, "a 4 KiB ring under a UDP flood lost nothing: the test proves nothing\n{stderr}");
    for (k, n) in &delivered {
        assert!(n <= &seen[k], "{k:?}: {n} events but the veth counted only {}", seen[k]);
    }
    assert_eq!(
        total_delivered + lost,
        total_seen,
        "delivered {total_delivered} + lost {lost} != frames the veth counters saw {total_seen} (per direction \
         delivered {delivered:?}, counted {seen:?})"
    );
    assert_eq!(code, Some(3), "--strict with {lost} lost must exit 3\n{stderr}");
    assert!(stderr.contains("--strict"), "{stderr}");
}

#[test]
fn without_overflow_every_direction_matches_the_veth_counters() {
    let _one = serial();
    let node = Node::up("nov");
    let Window { seen, delivered, exit: (_, lost, _), code, stderr } = traced_window(&node, &["--strict"], || {
        run(node.in_pod("pod1", "ping").args(["-q", "-c", "300", "-i", "0.002", "10.244.1.6"]));
        run(node.in_pod("pod2", "ping").args(["-q", "-c", "100", "-i", "0.002", "-s", "1200", "10.244.1.5"]));
    });
    assert_eq!(lost, 0, "{stderr}");
    assert_eq!(delivered, seen, "events per (interface, direction) vs the veth counters");
    assert!(seen.values().all(|n| *n >= 400), "{seen:?}");
    assert_eq!(code, Some(0), "--strict with nothing lost exits 0\n{stderr}");
}

/// Another owner's classic BPF filter (cls_bpf direct-action): `ret -1`, TC_ACT_UNSPEC.
const PASS: &str = "1,6 0 0 4294967295";

/// Extra pods so that attaching takes a while and a kill lands in the middle of it.
const EXTRA_PODS: usize = 10;

fn kills_per_mode(modes: usize) -> usize {
    let total: usize = std::env::var("VETHTRACE_KILLS").ok().and_then(|n| n.parse().ok()).unwrap_or(50);
    total.div_ceil(modes)
}

/// What must hold after every kill: none of vethtrace's programs attached in the node (bpftool,
/// which lists TCX links and clsact filters alike), and exactly the clsact qdiscs that were there
/// before it started.
fn assert_clean(node: &Node, qdiscs_before: &[String], what: &str) {
    let clean = common::eventually(Duration::from_secs(10), || {
        our_tc_progs(&node.ns()).is_empty() && clsact_devs(node) == qdiscs_before
    });
    assert!(
        clean,
        "{what}: left behind: programs {:?}; clsact qdiscs {:?} (before: {qdiscs_before:?})",
        our_tc_progs(&node.ns()),
        clsact_devs(node)
    );
}

fn sigkill_at_random_moments(mode: &str, kills: usize, seed: u64) {
    let node = Node::up("kill");
    for i in 0..EXTRA_PODS {
        node.add_pod(&format!("k{i}"), &format!("10.244.2.{}", i + 10), "-");
    }
    // Another owner's clsact qdisc with its own filter on pod1's cali: it must stay.
    let cali1 = node.cali("pod1");
    run(node.in_node("tc").args(["qdisc", "add", "dev", &cali1, "clsact"]));
    run(node.in_node("tc").args(["filter", "add", "dev", &cali1, "ingress", "pref", "7", "bpf", "da", "bytecode", PASS]));
    let qdiscs_before = clsact_devs(&node);
    let args = ["--tc-mode", mode, "--iface", "cali*"];
    // One run to the end to learn how long start-up and detach take here.
    let started = Instant::now();
    let mut p = Proc::spawn(&node, "kill", &args);
    p.wait_ready();
    let startup = started.elapsed();
    // The oracle sees vethtrace's attachments while it runs: ingress and egress on every cali.
    let attached = our_tc_progs(&node.ns());
    assert_eq!(attached.len(), 2 * (2 + EXTRA_PODS), "{mode}: attached while running: {attached:?}");
    let stopping = Instant::now();
    p.stop_with(libc::SIGINT);
    let detach = stopping.elapsed();
    drop(p);
    assert_clean(&node, &qdiscs_before, &format!("{mode}: after a clean stop"));
    let mut rng = StdRng::seed_from_u64(seed);
    for k in 0..kills {
        let during_detach = rng.random_bool(0.3);
        let mut p = Proc::spawn(&node, "kill", &args);
        let moment = if during_detach {
            p.wait_ready();
            p.signal(libc::SIGINT);
            detach.mul_f64(rng.random_range(0.0..1.2))
        } else {
            startup.mul_f64(rng.random_range(0.0..1.2))
        };
        thread::sleep(moment);
        p.stop_with(libc::SIGKILL);
        let phase = if during_detach { "detach" } else { "start-up/attach" };
        drop(p);
        assert_clean(&node, &qdiscs_before, &format!("{mode}: kill {k} at {moment:?} into {phase} (seed {seed})"));
    }
    let ours = common::system::tc_filters(&node, &cali1, "ingress");
    assert!(ours.contains(PASS) && ours.contains("pref 7"), "the other owner's filter went: {ours}");
}

#[test]
fn sigkill_at_random_moments_leaves_nothing_behind() {
    let _one = serial();
    let seed = std::env::var("VETHTRACE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    });
    eprintln!("sigkill seed {seed} (VETHTRACE_SEED={seed} repeats it)");
    let modes = tc_modes();
    let kills = kills_per_mode(modes.len());
    for mode in modes {
        sigkill_at_random_moments(mode, kills, seed);
    }
}
