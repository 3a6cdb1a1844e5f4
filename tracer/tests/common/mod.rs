//! Harness for the privileged integration tests: a Calico-style node in network namespaces
//! (scripts/calico-node.sh), the real `vethtrace` binary, and tcpdump as the independent oracle.
//!
//! Every test needs root. A missing privilege fails the test, it never skips: a green run must
//! mean the kernel paths really ran.
#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

pub mod pods;

use std::{
    collections::BTreeMap,
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU32, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// TC modes this kernel offers: TCX exists from Linux 6.6, clsact everywhere.
pub fn tc_modes() -> Vec<&'static str> {
    let release = stdout(Command::new("uname").arg("-r"));
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= (6, 6) { vec!["tcx", "clsact"] } else { vec!["clsact"] }
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

fn script() -> PathBuf {
    std::env::var_os("VETHTRACE_SCRIPTS")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts"), PathBuf::from)
        .join("calico-node.sh")
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
/// fd00:244::6), removed on drop.
pub struct Node {
    pub prefix: String,
}

impl Node {
    pub fn up(tag: &str) -> Self {
        require_root();
        let node = Self { prefix: unique_prefix(tag) };
        node.topo(&["up"]);
        node
    }

    fn topo(&self, args: &[&str]) -> String {
        stdout(Command::new("bash").arg(script()).args(args).env("VT_PREFIX", &self.prefix))
    }

    /// Name of the node's namespace.
    pub fn ns(&self) -> String {
        format!("{}node", self.prefix)
    }

    pub fn pod_ns(&self, pod: &str) -> String {
        format!("{}p-{pod}", self.prefix)
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
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]);
        cmd
    }

    pub fn in_node(&self, program: &str) -> Command {
        Self::exec(&self.ns(), program)
    }

    pub fn in_pod(&self, pod: &str, program: &str) -> Command {
        Self::exec(&self.pod_ns(pod), program)
    }

    /// `ip -n <node> …`
    pub fn ip(&self, args: &[&str]) -> String {
        stdout(Command::new("ip").arg("-n").arg(self.ns()).args(args))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("down").env("VT_PREFIX", &self.prefix).status();
    }
}

/// A running vethtrace with JSON output to a file.
///
/// Tracers in one test binary run one at a time, so that a test can tell its own programs
/// from bpftool's list of everything loaded.
pub struct Tracer {
    child: Option<Child>,
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
        let bin = vethtrace_bin();
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = node.in_node(program);
                cmd.args(rest).arg(&bin);
                cmd
            }
            None => node.in_node(bin.to_str().unwrap()),
        };
        if json_events {
            cmd.args(["--output", "json", "--output-file"]).arg(dir.join("events.json"));
        }
        let child = cmd
            .arg("--ready-file")
            .arg(dir.join("ready"))
            .args(args)
            .stdout(fs::File::create(dir.join("stdout")).unwrap())
            .stderr(fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .expect("start vethtrace");
        Self { child: Some(child), dir, _one_at_a_time: guard }
    }

    fn wait_ready(&mut self) {
        let ready = self.dir.join("ready");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("vethtrace exited before it was ready: {status}\n{}", self.stderr());
            }
            assert!(Instant::now() < deadline, "vethtrace not ready after 60 s\n{}", self.stderr());
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// What vethtrace wrote to its standard output so far.
    pub fn stdout(&self) -> String {
        fs::read_to_string(self.dir.join("stdout")).unwrap_or_default()
    }

    /// Events written so far (complete lines only).
    pub fn events_so_far(&self) -> Vec<Value> {
        parse_events(&fs::read_to_string(self.dir.join("events.json")).unwrap_or_default())
    }

    /// The first event after the first `skip` that satisfies `pred`, waiting up to 10 s.
    pub fn wait_event(&self, skip: usize, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = self.events_so_far().into_iter().skip(skip).find(|e| pred(e)) {
                return e;
            }
            assert!(Instant::now() < deadline, "no event {what} within 10 s\n{}", self.stderr());
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// Sends `sig` and waits for the process to end.
    pub fn stop_with(mut self, sig: i32) -> Finished {
        self.signal(sig);
        let status = wait_timeout(self.child.as_mut().unwrap(), Duration::from_secs(60));
        self.child = None;
        Finished {
            status,
            events: parse_events(&fs::read_to_string(self.dir.join("events.json")).unwrap_or_default()),
            stderr: fs::read_to_string(self.dir.join("stderr")).unwrap_or_default(),
        }
    }

    pub fn stop(self) -> Finished {
        self.stop_with(libc::SIGINT)
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn parse_events(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.ends_with('}'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let name = fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap_or_default();
            let _ = child.kill();
            panic!("process {} ({}) did not exit within {limit:?}", child.id(), name.trim());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// tcpdump writing one direction of one interface to a pcap file.
pub struct Tcpdump {
    child: Child,
    path: PathBuf,
}

impl Tcpdump {
    /// `dir` is "in" or "out" (tcpdump -Q).
    pub fn start(node: &Node, iface: &str, dir: &str) -> Self {
        let path = scratch_dir("pc").join(format!("{iface}-{dir}.pcap"));
        let mut child = node
            .in_node("tcpdump")
            // -Z root: tcpdump would otherwise drop to its own user and fail to write here;
            // --immediate-mode: frames still in a TPACKET_V3 block at SIGINT would be lost.
            .args(["-n", "-U", "--immediate-mode", "-B", "16384", "-Z", "root", "-i", iface, "-Q", dir, "-w"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump (apt package tcpdump)");
        // tcpdump says "listening on" once the capture is active.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("listening on") => break,
                Some(Ok(_)) => {}
                other => panic!("tcpdump did not start on {iface}: {other:?}"),
            }
        }
        thread::spawn(move || for _ in lines {});
        Self { child, path }
    }

    /// Stops tcpdump and returns the path of its capture (the caller removes it).
    pub fn stop_keep(mut self) -> PathBuf {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        wait_timeout(&mut self.child, Duration::from_secs(10));
        self.path
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
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}
pub mod system;
pub mod owner;
pub mod bpf;
