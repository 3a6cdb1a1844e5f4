//! What the kernel counts, read with iproute2 and /proc (nothing vethtrace says).

use std::{fs, process::Command};

use serde_json::Value;

use crate::{Error, Result, node::output};

/// One interface's packet counters (`ip -s -j link`, stats64).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub name: String,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub tx_dropped: u64,
}

/// Every interface of namespace `ns` with its counters.
pub fn link_counters(ns: &str) -> Result<Vec<LinkCounters>> {
    let out = output(Command::new("ip").args(["-n", ns, "-s", "-j", "link", "show"]))?;
    let links: Vec<Value> =
        serde_json::from_str(&out).map_err(|e| Error::Parse { what: "ip -s -j link show".into(), detail: format!("{e}: {out}") })?;
    links
        .iter()
        .map(|l| {
            let n = |dir: &str, k: &str| {
                l["stats64"][dir][k]
                    .as_u64()
                    .ok_or_else(|| Error::Parse { what: "ip -s -j link show".into(), detail: format!("no {dir} {k} in {l}") })
            };
            let name = l["ifname"].as_str().unwrap_or_default().to_owned();
            Ok(LinkCounters { name, rx_packets: n("rx", "packets")?, tx_packets: n("tx", "packets")?, tx_dropped: n("tx", "dropped")? })
        })
        .collect()
}

/// CPU time (user + system, clock ticks) and resident memory of a process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
}

/// `None` once the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ProcSample { cpu_ticks: ticks, rss_bytes: status_kib(pid, "VmRSS")? * 1024 })
}

/// A /proc/PID/status size in KiB: "VmRSS" (all resident memory, the ring buffer's pages
/// included), "RssAnon" (the heap and stacks: where a leak shows).
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':')).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Clock ticks per second of /proc/PID/stat times.
pub fn clock_ticks() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().ok();
    out.and_then(|o| String::from_utf8(o.stdout).ok()).and_then(|s| s.trim().parse().ok()).unwrap_or(100.0)
}
