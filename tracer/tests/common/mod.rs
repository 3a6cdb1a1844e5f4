//! Harness for the privileged integration tests: a Calico-style node in network namespaces
//! (scripts/calico-node.sh), the real `vethtrace` binary, and tcpdump as the independent oracle.
//! The node, the processes and the waiting are the workspace's `testkit` crate (shared with
//! `cargo xtask bench`); this module makes them panic (a test wants a stack trace, not a
//! `Result`) and adds what only the tests need.
//!
//! Every test needs root. A missing privilege fails the test, it never skips: a green run must
//! mean the kernel paths really ran.
#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

pub mod drop_oracle;
pub mod ftrace;
pub mod pods;

use std::{
    collections::BTreeMap,
    fs,
    ops::Deref,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Output},
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use serde_json::Value;
use testkit::{CalicoNode, Files, Vethtrace, wait};

/// TC modes this kernel offers (narrowed by VETHTRACE_TC_MODE, see [`system::tc_modes`]).
pub fn tc_modes() -> Vec<&'static str> {
    system::tc_modes()
}

/// Fails the test unless it runs as root.
pub fn require_root() {
    let uid = String::from_utf8(Command::new("id").arg("-u").output().expect("id").stdout).unwrap();
    assert_eq!(uid.trim(), "0", "privileged integration test: run as root (CI={:?})", std::env::var("CI").ok());
}

/// The binary under test: $VETHTRACE_BIN (the VM sets it) or the one cargo built.
pub fn vethtrace_bin() -> PathBuf {
    std::env::var_os("VETHTRACE_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vethtrace")), PathBuf::from)
}

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

/// A unique namespace prefix per test (tests run in parallel).
pub fn unique_prefix(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("vt{tag}{}x{}", std::process::id() % 10000, N.fetch_add(1, Ordering::Relaxed))
}

/// A Calico-style node with pods pod1 (10.244.1.5, fd00:244::5) and pod2 (10.244.1.6,
/// fd00:244::6), removed on drop. Namespace names, `in_node`, `in_pod` and `prefix` come from
/// [`testkit::CalicoNode`].
pub struct Node {
    topo: CalicoNode,
}

impl Deref for Node {
    type Target = CalicoNode;

    fn deref(&self) -> &CalicoNode {
        &self.topo
    }
}

impl Node {
    pub fn up(tag: &str) -> Self {
        require_root();
        let prefix = unique_prefix(tag);
        Self { topo: CalicoNode::up(&prefix).unwrap_or_else(|e| panic!("test node {prefix}: {e}")) }
    }

    fn topo(&self, args: &[&str]) -> String {
        self.topo.script(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Host-side interface of `pod`.
    pub fn cali(&self, pod: &str) -> String {
        self.topo(&["cali", pod]).trim().to_owned()
    }

    pub fn add_pod(&self, pod: &str, ip4: &str, ip6: &str) {
        self.topo(&["add-pod", pod, ip4, ip6]);
    }

    /// A pod whose cali is named as Calico names Kubernetes pod `k8s` ("NAMESPACE/NAME");
    /// returns that name.
    pub fn add_k8s_pod(&self, pod: &str, ip4: &str, ip6: &str, k8s: &str) -> String {
        self.topo(&["add-pod", pod, ip4, ip6, k8s]);
        self.topo(&["cali", pod, k8s]).trim().to_owned()
    }

    pub fn del_pod(&self, pod: &str) {
        self.topo(&["del-pod", pod]);
    }

    /// A command that runs inside namespace `ns`.
    pub fn exec(ns: &str, program: &str) -> Command {
        testkit::in_ns(ns, program)
    }

    /// `ip -n <node> …`
    pub fn ip(&self, args: &[&str]) -> String {
        self.topo.ip(args).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A running vethtrace with JSON output to a file.
///
/// Tracers in one test binary run one at a time, so that a test can tell its own programs
/// from bpftool's list of everything loaded.
pub struct Tracer {
    process: Option<Vethtrace>,
    dir: PathBuf,
    /// Held by the first of the tracers started together.
    _one_at_a_time: Option<MutexGuard<'static, ()>>,
}

static ONE_TRACER: Mutex<()> = Mutex::new(());

/// What a stopped vethtrace left.
pub struct Finished {
    pub status: ExitStatus,
    pub events: Vec<Value>,
    pub stderr: String,
}

impl Finished {
    /// Events of `kind` ("packet", …).
    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["kind"] == kind).collect()
    }
}

pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_prefix(tag));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// How long a vethtrace may take to attach (a loaded machine's QEMU/TCG VM is that slow).
const READY_LIMIT: Duration = Duration::from_secs(60);

impl Tracer {
    /// Starts vethtrace inside the node namespace and waits until it is attached.
    pub fn start(node: &Node, args: &[&str]) -> Self {
        Self::launch(node, true, &[], args)
    }

    /// As [`Tracer::start`], without `--output json --output-file …` (the caller picks the output;
    /// standard output goes to a file of the scratch directory).
    pub fn start_with_output(node: &Node, args: &[&str]) -> Self {
        Self::launch(node, false, &[], args)
    }

    /// As [`Tracer::start_with_output`], run through `wrapper` (a command that ends by exec'ing
    /// its arguments, e.g. setpriv), inside the node's namespace.
    pub fn start_wrapped(node: &Node, wrapper: &[&str], args: &[&str]) -> Self {
        Self::launch(node, false, wrapper, args)
    }

    fn launch(node: &Node, json_events: bool, wrapper: &[&str], args: &[&str]) -> Self {
        let one_at_a_time = ONE_TRACER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut tracer = Self::spawn(node, args, Some(one_at_a_time), json_events, wrapper);
        tracer.wait_ready();
        tracer
    }

    /// Starts one vethtrace per argument list, all at once (their programs load in parallel),
    /// and waits until every one is attached.
    pub fn start_many(node: &Node, each: &[Vec<&str>]) -> Vec<Self> {
        let one_at_a_time = ONE_TRACER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut guard = Some(one_at_a_time);
        let mut tracers: Vec<Self> = each.iter().map(|args| Self::spawn(node, args, guard.take(), true, &[])).collect();
        tracers.iter_mut().for_each(Self::wait_ready);
        tracers
    }

    fn spawn(
        node: &Node,
        args: &[&str],
        guard: Option<MutexGuard<'static, ()>>,
        json_events: bool,
        wrapper: &[&str],
    ) -> Self {
        let dir = scratch_dir("tr");
        let mut cmd = Vethtrace::command(&node.ns(), wrapper, &vethtrace_bin());
        if json_events {
            cmd.args(["--output", "json", "--output-file"]).arg(dir.join("events.json"));
        }
        let process = Vethtrace::spawn(cmd, args, Files::in_dir(&dir, "", true)).unwrap_or_else(|e| panic!("{e}"));
        Self { process: Some(process), dir, _one_at_a_time: guard }
    }

    fn process(&self) -> &Vethtrace {
        self.process.as_ref().expect("a running tracer")
    }

    fn wait_ready(&mut self) {
        let process = self.process.as_mut().expect("a running tracer");
        process.wait_ready(READY_LIMIT).unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.process().pid()).unwrap()
    }

    pub fn stderr(&self) -> String {
        self.process().stderr()
    }

    /// What vethtrace wrote to its standard output so far.
    pub fn stdout(&self) -> String {
        self.process().stdout()
    }

    /// Events written so far (complete lines only).
    pub fn events_so_far(&self) -> Vec<Value> {
        system::read_events(&self.dir.join("events.json"))
    }

    /// The first event after the first `skip` that satisfies `pred`, waiting up to 10 s.
    pub fn wait_event(&self, skip: usize, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        wait::wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
            found = self.events_so_far().into_iter().skip(skip).find(|e| pred(e));
            found.is_some()
        });
        found.unwrap_or_else(|| panic!("no event {what} within 10 s\n{}", self.stderr()))
    }

    pub fn signal(&self, sig: i32) {
        self.process().signal(sig).unwrap_or_else(|e| panic!("kill -{sig} vethtrace: {e}"));
    }

    /// Sends `sig` and waits for the process to end.
    pub fn stop_with(mut self, sig: i32) -> Finished {
        let mut process = self.process.take().expect("a running tracer");
        let status = process.stop_with(sig, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
        Finished { status, events: self.events_so_far(), stderr: process.stderr() }
    }

    pub fn stop(self) -> Finished {
        self.stop_with(libc::SIGINT)
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        // Killed before its files go.
        drop(self.process.take());
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Waits up to `limit` for `child` to exit; kills it and fails the test past that.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> ExitStatus {
    wait::wait_exit(child, limit).unwrap_or_else(|e| panic!("{e}"))
}

/// tcpdump writing one direction of one interface to a pcap file.
pub struct Tcpdump {
    process: testkit::Tcpdump,
}

impl Tcpdump {
    /// `dir` is "in" or "out" (tcpdump -Q).
    pub fn start(node: &Node, iface: &str, dir: &str) -> Self {
        let scratch = scratch_dir("pc");
        let path = scratch.join(format!("{iface}-{dir}.pcap"));
        // -Z root: tcpdump would otherwise drop to its own user and fail to write here;
        // --immediate-mode: frames still in a TPACKET_V3 block at SIGINT would be lost.
        let args = ["-U", "--immediate-mode", "-B", "16384", "-Z", "root", "-Q", dir];
        let process = testkit::Tcpdump::start(&node.ns(), iface, &args, &path, &scratch.join(format!("{iface}-{dir}.stderr")))
            .unwrap_or_else(|e| panic!("tcpdump did not start on {iface}: {e}"));
        Self { process }
    }

    /// Stops tcpdump and returns the path of its capture (the caller removes it).
    pub fn stop_keep(mut self) -> PathBuf {
        self.process.stop(Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"));
        let _ = fs::remove_file(&self.process.stderr);
        self.process.pcap.clone()
    }

    /// Stops tcpdump and returns the captured frames with their capture times (since the epoch).
    pub fn stop(self) -> Vec<(Duration, Vec<u8>)> {
        let path = self.stop_keep();
        let file = fs::File::open(&path).unwrap();
        let mut reader = pcap_file::pcap::PcapReader::new(file).expect("pcap header");
        let mut frames = Vec::new();
        while let Some(pkt) = reader.next_packet() {
            let pkt = pkt.expect("pcap packet");
            frames.push((pkt.timestamp, pkt.data.into_owned()));
        }
        let _ = fs::remove_file(&path);
        frames
    }
}

/// tcpdump's TCP flag letters, written here from the TCP header bits (not from vethtrace's code).
fn tcp_letters(tcp: &etherparse::TcpSlice<'_>) -> String {
    let mut s = String::new();
    for (on, c) in [
        (tcp.fin(), 'F'),
        (tcp.syn(), 'S'),
        (tcp.rst(), 'R'),
        (tcp.psh(), 'P'),
        (tcp.urg(), 'U'),
        (tcp.ece(), 'E'),
        (tcp.cwr(), 'W'),
    ] {
        if on {
            s.push(c);
        }
    }
    if tcp.ack() {
        s.push('.');
    }
    s
}

fn mac(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// A comparable summary of a captured frame, decoded by etherparse.
pub fn frame_key(frame: &[u8]) -> String {
    use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};
    let Ok(p) = SlicedPacket::from_ethernet(frame) else {
        return "undecodable".into();
    };
    let mut key = String::new();
    if let Some(LinkSlice::Ethernet2(eth)) = &p.link {
        key += &format!("{} > {} type {:04x}", mac(eth.source()), mac(eth.destination()), u16::from(eth.ether_type()));
    }
    match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            key += &format!(
                " {} > {} proto {}",
                ip.header().source_addr(),
                ip.header().destination_addr(),
                ip.header().protocol().0
            );
        }
        Some(NetSlice::Ipv6(ip)) => {
            key += &format!(
                " {} > {} proto {}",
                ip.header().source_addr(),
                ip.header().destination_addr(),
                ip.payload().ip_number.0
            );
        }
        Some(NetSlice::Arp(arp)) => {
            let a = arp.to_packet();
            if let Ok(a) = a.try_eth_ipv4() {
                key += &format!(
                    " arp {} {} {} {} {}",
                    a.operation.0,
                    mac(a.sender_mac),
                    a.sender_ipv4_addr(),
                    mac(a.target_mac),
                    a.target_ipv4_addr()
                );
            }
        }
        None => {}
    }
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            key += &format!(" ports {} > {} flags {}", t.source_port(), t.destination_port(), tcp_letters(t))
        }
        Some(TransportSlice::Udp(u)) => key += &format!(" ports {} > {}", u.source_port(), u.destination_port()),
        Some(TransportSlice::Icmpv4(i)) => key += &format!(" icmp {} {}", i.type_u8(), i.code_u8()),
        Some(TransportSlice::Icmpv6(i)) => key += &format!(" icmp {} {}", i.type_u8(), i.code_u8()),
        None => {}
    }
    key
}

/// The same summary built from a vethtrace JSON packet event.
pub fn event_key(e: &Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
    let n = |k: &str| e[k].as_u64().unwrap_or_default();
    let ethertype = match e["ethertype"].as_str().unwrap_or_default() {
        "ipv4" => 0x0800,
        "ipv6" => 0x86dd,
        "arp" => 0x0806,
        hex => u64::from_str_radix(hex.trim_start_matches("0x"), 16).unwrap_or_default(),
    };
    let mut key = format!("{} > {} type {ethertype:04x}", s("src_mac"), s("dst_mac"));
    if e.get("src").is_some() {
        let proto = match e["proto"].as_str().unwrap_or_default() {
            "tcp" => 6,
            "udp" => 17,
            "icmp" => 1,
            "icmpv6" => 58,
            other => other.parse().unwrap_or_default(),
        };
        key += &format!(" {} > {} proto {proto}", s("src"), s("dst"));
    }
    if e.get("arp_op").is_some() {
        let op = match e["arp_op"].as_str().unwrap_or_default() {
            "request" => 1,
            "reply" => 2,
            other => other.parse().unwrap_or_default(),
        };
        key += &format!(" arp {op} {} {} {} {}", s("arp_sha"), s("arp_spa"), s("arp_tha"), s("arp_tpa"));
    }
    if e.get("tcp_flags").is_some() {
        key += &format!(" ports {} > {} flags {}", n("sport"), n("dport"), s("tcp_flags"));
    } else if e.get("sport").is_some() {
        key += &format!(" ports {} > {}", n("sport"), n("dport"));
    } else if e.get("icmp_type").is_some() {
        key += &format!(" icmp {} {}", n("icmp_type"), n("icmp_code"));
    }
    key
}

/// Wall-clock time of an event (its `time` key), since the epoch.
pub fn event_time(e: &Value) -> Duration {
    let t = time::OffsetDateTime::parse(e["time"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 time");
    Duration::from_nanos(u64::try_from(t.unix_timestamp_nanos()).unwrap())
}

/// Now, since the epoch.
pub fn now() -> Duration {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap()
}

/// Packet events inside `window`, grouped by (interface, direction), each group as sorted keys.
pub fn events_by_iface_dir(events: &[Value], window: &std::ops::Range<Duration>) -> BTreeMap<(String, String), Vec<String>> {
    let mut map: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for e in events.iter().filter(|e| e["kind"] == "packet" && window.contains(&event_time(e))) {
        let k = (e["iface"].as_str().unwrap().to_owned(), e["dir"].as_str().unwrap().to_owned());
        map.entry(k).or_default().push(event_key(e));
    }
    for v in map.values_mut() {
        v.sort();
    }
    map
}

/// Programs loaded in the kernel with the given names, by id (from bpftool, not from vethtrace).
pub fn bpf_prog_ids(names: &[&str]) -> Vec<u64> {
    let out = stdout(Command::new("bpftool").args(["-j", "prog", "show"]));
    let progs: Vec<Value> = serde_json::from_str(&out).expect("bpftool JSON");
    progs
        .iter()
        .filter(|p| names.contains(&p["name"].as_str().unwrap_or_default()))
        .filter_map(|p| p["id"].as_u64())
        .collect()
}

/// Waits up to `limit` for `cond`.
pub fn eventually(limit: Duration, cond: impl FnMut() -> bool) -> bool {
    wait::wait_for(limit, Duration::from_millis(50), cond)
}
pub mod system;
pub mod owner;
pub mod bpf;
pub mod bpftrace;

/// A GET of `addr` (`host:port`) in the node's namespace with bash's /dev/tcp: status, headers
/// (lowercase), body.
pub fn http_get(node: &Node, addr: &str, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let accept = accept.map_or_else(String::new, |a| format!("Accept: {a}\\r\\n"));
    let (host, port) = addr.split_once(':').unwrap();
    let script = format!(
        "exec 3<>/dev/tcp/{host}/{port} && printf 'GET {path} HTTP/1.0\\r\\nHost: vethtrace\\r\\n{accept}\\r\\n' >&3 && cat <&3"
    );
    let response = stdout(node.in_node("bash").args(["-c", &script]));
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP response: {response:?}"));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}
