//! What the kernel holds, read with tools nobody here wrote (iproute2, bpftool), and a raw
//! vethtrace process for tests that start several at once or kill one at any moment.

use std::{
    fs,
    ops::{Deref, DerefMut},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use testkit::{ExitCounters, Files, Vethtrace, kernel};

use super::{
    Node,
    bpf::{BPF_TCX_EGRESS, BPF_TCX_INGRESS, in_netns, tcx_prog_ids},
    stdout, vethtrace_bin,
};

/// TC modes this kernel offers: TCX exists from Linux 6.6, clsact everywhere. VETHTRACE_TC_MODE
/// (`tcx` or `clsact`) narrows it to one, to re-run a failure.
pub fn tc_modes() -> Vec<&'static str> {
    let only = std::env::var("VETHTRACE_TC_MODE").unwrap_or_default();
    kernel_tc_modes().into_iter().filter(|m| only.is_empty() || *m == only).collect()
}

fn kernel_tc_modes() -> Vec<&'static str> {
    let release = stdout(Command::new("uname").arg("-r"));
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= (6, 6) { vec!["tcx", "clsact"] } else { vec!["clsact"] }
}

/// Ids of the BPF programs process `pid` holds a descriptor of (/proc/PID/fdinfo): its own
/// programs, whatever other vethtraces run on the machine at the same time.
pub fn held_prog_ids(pid: i32) -> Vec<u64> {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else { return Vec::new() };
    fds.filter_map(|fd| fs::read_to_string(fd.ok()?.path()).ok())
        .filter_map(|info| info.lines().find_map(|l| l.strip_prefix("prog_id:"))?.trim().parse().ok())
        .collect()
}

/// Frames TC saw on `iface` by the kernel's own counters (`ip -s -j link` in the node's
/// namespace): ingress = rx_packets; egress = tx_packets + tx_dropped (a veth counts a frame its
/// peer's backlog refused as dropped, after the egress hook ran).
pub fn link_packets(node: &Node, iface: &str) -> (u64, u64) {
    let links = kernel::link_counters(&node.ns()).unwrap_or_else(|e| panic!("{e}"));
    let link = links.iter().find(|l| l.name == iface).unwrap_or_else(|| panic!("no {iface} in {links:?}"));
    (link.rx_packets, link.tx_packets + link.tx_dropped)
}

/// One TC attachment `bpftool net show` lists in a namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TcProg {
    pub dev: String,
    /// "tcx/ingress", "clsact/egress", …
    pub kind: String,
    pub name: String,
    pub prog_id: u64,
}

/// Every TC program attached in namespace `ns`: clsact filters from `bpftool -j net show`, TCX
/// links from the kernel's BPF_PROG_QUERY per interface (bpftool 7.1 does not list them), names
/// from `bpftool prog show`.
pub fn tc_progs(ns: &str) -> Vec<TcProg> {
    let out = stdout(Command::new("ip").args(["netns", "exec", ns, "bpftool", "-j", "net", "show"]));
    let nets: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("bpftool net JSON {out}: {e}"));
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let mut progs: Vec<TcProg> = nets
        .iter()
        .flat_map(|n| n["tc"].as_array().cloned().unwrap_or_default())
        .filter(|t| !s(t, "kind").starts_with("tcx"))
        .map(|t| TcProg { dev: s(&t, "devname"), kind: s(&t, "kind"), name: s(&t, "name"), prog_id: t["id"].as_u64().unwrap_or(0) })
        .collect();
    progs.extend(tcx_progs(ns));
    progs.sort();
    progs
}

fn tcx_progs(ns: &str) -> Vec<TcProg> {
    let out = stdout(Command::new("ip").args(["-n", ns, "-j", "link", "show"]));
    let links: Vec<(String, u32)> = serde_json::from_str::<Vec<Value>>(&out)
        .expect("ip -j link JSON")
        .iter()
        .map(|l| (l["ifname"].as_str().unwrap_or_default().to_owned(), l["ifindex"].as_u64().unwrap_or(0) as u32))
        .collect();
    let found = in_netns(ns, move || {
        let mut found = Vec::new();
        for (dev, ifindex) in links {
            for (kind, at) in [("tcx/ingress", BPF_TCX_INGRESS), ("tcx/egress", BPF_TCX_EGRESS)] {
                found.extend(tcx_prog_ids(ifindex, at).into_iter().map(|id| (dev.clone(), kind, id)));
            }
        }
        found
    });
    found
        .into_iter()
        .map(|(dev, kind, id)| TcProg { dev, kind: kind.to_owned(), name: prog_name(id), prog_id: u64::from(id) })
        .collect()
}

/// A loaded program's name (`bpftool -j prog show id N`), "" when it is gone.
fn prog_name(id: u32) -> String {
    let out = Command::new("bpftool").args(["-j", "prog", "show", "id", &id.to_string()]).output().expect("bpftool");
    serde_json::from_slice::<Value>(&out.stdout).ok().and_then(|v| v["name"].as_str().map(str::to_owned)).unwrap_or_default()
}

/// vethtrace's own TC programs attached in namespace `ns`.
pub fn our_tc_progs(ns: &str) -> Vec<TcProg> {
    tc_progs(ns).into_iter().filter(|p| p.name.starts_with("vethtrace")).collect()
}

/// Whether program `id` is still loaded (bpftool prog show id).
pub fn prog_loaded(id: u64) -> bool {
    Command::new("bpftool")
        .args(["prog", "show", "id", &id.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Interfaces of the node with a clsact qdisc (`tc -j qdisc show`).
pub fn clsact_devs(node: &Node) -> Vec<String> {
    let out = stdout(node.in_node("tc").args(["-j", "qdisc", "show"]));
    let qdiscs: Vec<Value> = serde_json::from_str(&out).expect("tc -j JSON");
    let mut devs: Vec<String> = qdiscs
        .iter()
        .filter(|q| q["kind"] == "clsact")
        .map(|q| q["dev"].as_str().unwrap_or_default().to_owned())
        .collect();
    devs.sort();
    devs
}

/// Non-vethtrace TC filters and clsact filters in text form, for one interface and hook.
pub fn tc_filters(node: &Node, iface: &str, hook: &str) -> String {
    stdout(node.in_node("tc").args(["filter", "show", "dev", iface, hook]))
}

/// The exit counters vethtrace prints: `vethtrace: N events, N lost, N undecodable`.
pub fn exit_counters(stderr: &str) -> Option<(u64, u64, u64)> {
    ExitCounters::parse(stderr).map(|c| (c.events, c.lost, c.undecodable))
}

/// A vethtrace process in the node's namespace, JSON to a file, stderr to a file; killed and
/// its files removed on drop. Unlike [`super::Tracer`], several can run at once. The process
/// (`child`, `files`, …) is a [`testkit::Vethtrace`].
pub struct Proc {
    process: Vethtrace,
    pub dir: PathBuf,
}

impl Deref for Proc {
    type Target = Vethtrace;

    fn deref(&self) -> &Vethtrace {
        &self.process
    }
}

impl DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Vethtrace {
        &mut self.process
    }
}

impl Proc {
    pub fn spawn(node: &Node, tag: &str, args: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(super::unique_prefix(tag));
        fs::create_dir_all(&dir).unwrap();
        let mut cmd = Vethtrace::command(&node.ns(), &[], &vethtrace_bin());
        cmd.args(["--output", "json", "--output-file"]).arg(dir.join("events.json")).env("RUST_BACKTRACE", "1");
        let process = Vethtrace::spawn(cmd, args, Files::in_dir(&dir, "", false)).unwrap_or_else(|e| panic!("{e}"));
        Self { process, dir }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.process.pid()).unwrap()
    }

    /// Waits until the ready file exists; panics with stderr when it exits first or takes 60 s
    /// (a loaded machine's QEMU/TCG VM is that slow).
    pub fn wait_ready(&mut self) {
        self.process.wait_ready(super::READY_LIMIT).unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn signal(&self, sig: i32) {
        let _ = self.process.signal(sig);
    }

    /// Sends `sig` and waits (60 s at most) for the exit status.
    pub fn stop_with(&mut self, sig: i32) -> std::process::ExitStatus {
        self.process.stop_with(sig, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn events_path(&self) -> PathBuf {
        self.dir.join("events.json")
    }

    /// Every complete JSON line written so far.
    pub fn events(&self) -> Vec<Value> {
        read_events(&self.events_path())
    }

    /// A /proc/PID/status size in KiB: "VmRSS" (all resident memory, the ring buffer's pages
    /// included), "RssAnon" (the heap and stacks: where a leak shows).
    pub fn status_kib(&self, key: &str) -> u64 {
        kernel::status_kib(self.process.pid(), key).unwrap_or_else(|| panic!("no {key} in /proc/PID/status"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.process.child.kill();
        let _ = self.process.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub fn read_events(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with('}'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// What vethtrace says at every start on a node without pod-identity sources (these test nodes):
/// which sources it tried, and that events carry no pod.
pub fn is_pod_source_line(line: &str) -> bool {
    line.starts_with("vethtrace: pods: ") || line.starts_with("vethtrace: warning: no pod-identity source answered")
}

/// Stderr without the pod-source lines.
pub fn without_pod_source_lines(stderr: &str) -> String {
    stderr.lines().filter(|l| !is_pod_source_line(l)).map(|l| format!("{l}\n")).collect()
}

/// Stderr lines that are neither the exit counters nor the start-up/progress lines vethtrace
/// prints on a healthy run: errors, warnings, panics.
pub fn unexpected_stderr(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| !is_pod_source_line(l))
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains("error") || l.contains("panic") || l.contains("warn") || l.contains("backtrace") || l.contains("fail")
        })
        .collect()
}
