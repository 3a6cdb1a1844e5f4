//! Pod churn: 200 pods created and deleted at up to 20 a second while vethtrace traces the node,
//! with traffic on every pod and between two long-lived ones, in TCX and clsact modes. No crash,
//! no error line, every pod's echo requests seen while it lives (as many as ping sent), the
//! kernel's table of traced interfaces back to the two pods that remain, no memory growth
//! through the second half of the churn, nothing attached after exit.

mod common;

use std::{
    process::{Command, Stdio},
    sync::Mutex,
    thread,
    time::{Duration, Instant},
};

use common::{
    Node,
    system::{Proc, clsact_devs, exit_counters, link_packets, our_tc_progs, tc_modes, unexpected_stderr},
};
use serde_json::Value;

const PODS: usize = 200;
/// Pods started per second, at most.
const RATE: f64 = 20.0;
/// How long a pod lives after its traffic.
const LINGER: Duration = Duration::from_millis(500);
const PINGS: u32 = 2;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// One churned pod: name, IPv4 address, host-side interface; what its ping sent and whether it
/// was answered.
struct Churned {
    ip: String,
    cali: String,
    /// Frames the kernel counted arriving on the cali (rx_packets) while the pod's end was up.
    arrived: u64,
    answered: bool,
}

/// A pod like scripts/calico-node.sh makes, in one shell (fewer processes than the script, so
/// that 20 a second is possible on two cores): veth, proxy ARP, /32 route, the pod's address;
/// the pod's end stays down, silent, until [`bring_up`].
fn create_pod(node: &Node, name: &str, ip: &str, cali: &str) {
    let (n, p) = (node.ns(), node.pod_ns(name));
    let script = format!(
        "set -e; ip netns add {p}; ip -n {p} link set lo up; \
         ip -n {n} link add {cali} address ee:ee:ee:ee:ee:ee type veth peer name eth0 netns {p}; \
         ip netns exec {n} sysctl -qw net.ipv4.conf.{cali}.proxy_arp=1 net.ipv4.neigh.{cali}.proxy_delay=0; \
         ip -n {n} link set {cali} up; ip -n {n} route add {ip}/32 dev {cali} scope link; \
         ip -n {p} addr add {ip}/32 dev eth0"
    );
    common::run(Command::new("bash").arg("-c").arg(script));
}

/// The pod's end up, with its routes: from here on it sends (IPv6 link-local, then the pings).
fn bring_up(node: &Node, name: &str) {
    let p = node.pod_ns(name);
    let script = format!(
        "set -e; ip -n {p} link set eth0 up; ip -n {p} route add 169.254.1.1 dev eth0 scope link; \
         ip -n {p} route add default via 169.254.1.1 dev eth0"
    );
    common::run(Command::new("bash").arg("-c").arg(script));
}

/// Whether vethtrace counts `cali` as traced yet: its ifindex in vethtrace's TRACED_IFACES map,
/// which it fills once both programs are attached (bpftool map lookup: a bpf(2) call, not a
/// netlink dump — polling `tc filter show` on new interfaces made vethtrace's own clsact
/// attach fail with ENODEV).
fn traced(node: &Node, map_id: &str, cali: &str) -> bool {
    let out = node.ip(&["-j", "link", "show", "dev", cali]);
    let ifindex = serde_json::from_str::<Value>(&out).unwrap()[0]["ifindex"].as_u64().unwrap() as u32;
    let key: Vec<String> = ifindex.to_le_bytes().iter().map(|b| b.to_string()).collect();
    Command::new("bpftool")
        .args(["map", "lookup", "id", map_id, "key"])
        .args(&key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A pod's life: created, waited for until vethtrace is on its cali, brought up, pings pod2,
/// lingers, its end down, gone.
fn live(node: &Node, i: usize, mode: &str, map_id: &str) -> Result<Churned, String> {
    let name = format!("c{i}");
    let ip = format!("10.244.{}.{}", 3 + i / 250, i % 250 + 1);
    let cali = node.cali(&name);
    create_pod(node, &name, &ip, &cali);
    if !common::eventually(Duration::from_secs(10), || traced(node, map_id, &cali)) {
        node.del_pod(&name);
        return Err(format!("{mode}: vethtrace not on {cali} ({name}) 10 s after it appeared"));
    }
    let (before, _) = link_packets(node, &cali);
    bring_up(node, &name);
    let out = node
        .in_pod(&name, "ping")
        .args(["-c", &PINGS.to_string(), "-i", "0.2", "-W", "3", "10.244.1.6"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    thread::sleep(LINGER);
    // The pod's end down first: nothing more arrives on the cali once its counter is read.
    common::run(node.in_pod(&name, "ip").args(["link", "set", "eth0", "down"]));
    let (after, _) = link_packets(node, &cali);
    node.del_pod(&name);
    Ok(Churned { ip, cali, arrived: after - before, answered: out.status.success() })
}

fn bpftool(args: &[&str]) -> Value {
    serde_json::from_str(&common::stdout(Command::new("bpftool").args(args))).unwrap()
}

/// The id of vethtrace's TRACED_IFACES map: the map among the process's fds (the kernel's
/// /proc/PID/fdinfo names each map's id) that bpftool names so.
fn traced_ifaces_map(pid: i32) -> String {
    let map_ids: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter_map(|info| info.lines().find_map(|l| l.strip_prefix("map_id:").map(|id| id.trim().to_owned())))
        .collect();
    map_ids
        .iter()
        .find(|id| bpftool(&["-j", "map", "show", "id", id])["name"] == "TRACED_IFACES")
        .unwrap_or_else(|| panic!("no TRACED_IFACES among vethtrace's maps {map_ids:?}"))
        .clone()
}

/// The number of entries in the map (bpftool map dump).
fn map_entries(map_id: &str) -> usize {
    bpftool(&["-j", "map", "dump", "id", map_id]).as_array().unwrap().len()
}

/// (VmRSS, RssAnon) in MiB.
fn rss_mib(p: &Proc) -> (f64, f64) {
    (p.status_kib("VmRSS") as f64 / 1024.0, p.status_kib("RssAnon") as f64 / 1024.0)
}

/// Starts the pods at RATE, each living on its own thread; waits for all.
fn churn(node: &Node, mode: &str, map_id: &str, range: std::ops::Range<usize>) -> Vec<Result<Churned, String>> {
    let start = Instant::now();
    thread::scope(|s| {
        let handles: Vec<_> = range
            .clone()
            .map(|i| {
                let due = start + Duration::from_secs_f64((i - range.start) as f64 / RATE);
                thread::sleep(due.saturating_duration_since(Instant::now()));
                s.spawn(move || live(node, i, mode, map_id))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("pod thread")).collect()
    })
}

fn churn_while_tracing(mode: &str) {
    let node = Node::up("ch");
    let mut tracer = Proc::spawn(&node, "ch", &["--tc-mode", mode]);
    tracer.wait_ready();
    let mut background = node.in_pod("pod1", "ping").args(["-q", "-i", "0.05", "10.244.1.6"]).stdout(Stdio::null()).spawn().unwrap();
    let map_id = traced_ifaces_map(tracer.pid());
    let started = Instant::now();
    let first = churn(&node, mode, &map_id, 0..PODS / 2);
    let rss_mid = rss_mib(&tracer);
    let second = churn(&node, mode, &map_id, PODS / 2..PODS);
    let elapsed = started.elapsed();
    thread::sleep(Duration::from_secs(1));
    let rss_end = rss_mib(&tracer);
    let _ = background.kill();
    let _ = background.wait();
    assert!(tracer.child.try_wait().unwrap().is_none(), "{mode}: vethtrace died during the churn\n{}", tracer.stderr());
    let traced_now = map_entries(&map_id);
    let status = tracer.stop_with(libc::SIGINT);
    let stderr = tracer.stderr();
    let failed: Vec<&String> = first.iter().chain(&second).filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} pods failed: {failed:?}\n{stderr}", failed.len());
    eprintln!(
        "{mode}: {PODS} pods in {elapsed:.1?}; VmRSS {:.1} MiB at half-time, {:.1} MiB at the end; RssAnon {:.1} → {:.1} MiB",
        rss_mid.0, rss_end.0, rss_mid.1, rss_end.1
    );
    assert!(status.success(), "{mode}: exit {status}\n{stderr}");
    let (_, lost, undecodable) = exit_counters(&stderr).expect("exit counters");
    assert_eq!((lost, undecodable), (0, 0), "{mode}: events lost or undecodable\n{stderr}");
    assert!(unexpected_stderr(&stderr).is_empty(), "{mode}: error lines on stderr:\n{stderr}");
    assert_eq!(traced_now, 2, "{mode}: TRACED_IFACES should hold pod1's and pod2's cali only after the churn");
    assert!(
        rss_end.1 - rss_mid.1 <= 1.0,
        "{mode}: the heap (RssAnon) grew {:.1} → {:.1} MiB through the second 100 pods",
        rss_mid.1,
        rss_end.1
    );

    let events = tracer.events();
    for pod in first.iter().chain(&second).filter_map(|r| r.as_ref().ok()) {
        assert!(pod.answered, "{mode}: {} ({}) got no echo reply", pod.cali, pod.ip);
        let on_cali: Vec<&Value> =
            events.iter().filter(|e| e["kind"] == "packet" && e["iface"] == pod.cali.as_str() && e["dir"] == "ingress").collect();
        let requests = on_cali.iter().filter(|e| e["src"] == pod.ip.as_str() && e["icmp_type"] == 8).count();
        assert!(requests >= 1, "{mode}: no echo request of {} on {} reported", pod.ip, pod.cali);
        assert_eq!(
            on_cali.len() as u64,
            pod.arrived,
            "{mode}: frames vethtrace reported arriving on {} ({}) vs the kernel's rx_packets: {:?}\n{stderr}",
            pod.cali,
            pod.ip,
            on_cali.iter().map(|e| format!("{} {} {} {}", e["ethertype"], e["proto"], e["dst"], e["time"])).collect::<Vec<_>>()
        );
    }
    assert!(common::eventually(Duration::from_secs(5), || our_tc_progs(&node.ns()).is_empty()), "{mode}: left attached: {:?}", our_tc_progs(&node.ns()));
    assert!(clsact_devs(&node).is_empty(), "{mode}: clsact qdiscs left: {:?}", clsact_devs(&node));
}

#[test]
fn two_hundred_pods_churned_while_tracing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for mode in tc_modes() {
        churn_while_tracing(mode);
    }
}
