//! What each way of watching the node costs per packet, at fixed rates below saturation (on
//! two cores a saturating flood measures contention as much as cost): vethtrace's modes and
//! tcpdump `-w` on the same two calis, in alternated rounds. Per run: the tool's processes' CPU
//! per packet seen (utime + stime from /proc/PID/stat; a packet is seen once per cali end it
//! crosses), vethtrace's programs' kernel time per packet seen (bpf_stats), bytes written per
//! packet seen, and what the tool lost (vethtrace: ring full; tcpdump: dropped by the kernel).

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::Context as _;
use testkit::kernel::{clock_ticks, sample};

use super::{
    node::Node,
    programs,
    report::{Report, Row, Target},
    tracer::Vethtrace,
};

/// A fixed load from pod1 to pod2.
#[derive(Clone, Copy)]
enum Load {
    /// 64-byte UDP datagrams per second.
    Udp(u64),
    /// TCP at this many bits per second.
    Tcp(u64),
}

const LOADS: [Load; 3] = [Load::Udp(50_000), Load::Udp(100_000), Load::Tcp(1_000_000_000)];

impl Load {
    fn name(self) -> String {
        match self {
            Self::Udp(pps) => format!("udp-64 {} k/s", pps / 1000),
            Self::Tcp(bps) => format!("tcp {} Mbit/s", bps / 1_000_000),
        }
    }

    fn run(self, node: &Node, seconds: u32) -> anyhow::Result<()> {
        match self {
            Self::Udp(pps) => node.iperf_at(true, seconds, pps * 64 * 8),
            Self::Tcp(bps) => node.iperf_at(false, seconds, bps),
        }
        .map(drop)
    }
}

/// The tools compared, each on both pod calis.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tool {
    Tcpdump,
    Drops,
    MetricsOnly,
    Pcapng,
    Json,
    Text,
    Journey,
}

const TOOLS: [Tool; 7] =
    [Tool::Tcpdump, Tool::Drops, Tool::MetricsOnly, Tool::Pcapng, Tool::Json, Tool::Text, Tool::Journey];

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Self::Tcpdump => "tcpdump -w",
            Self::Drops => "vethtrace --drops",
            Self::MetricsOnly => "vethtrace metrics only",
            Self::Pcapng => "vethtrace -w pcapng",
            Self::Json => "vethtrace JSON to a file",
            Self::Text => "vethtrace text to a file",
            Self::Journey => "vethtrace --journey JSON to a file",
        }
    }

    /// vethtrace's flags for this mode, writing to `out`.
    fn args(self, out: &Path) -> Vec<String> {
        let out = out.display().to_string();
        let strs = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        match self {
            Self::Tcpdump | Self::MetricsOnly => Vec::new(),
            Self::Drops => strs(&["--drops", "--output-file", &out]),
            Self::Pcapng => strs(&["-w", &out]),
            Self::Json => strs(&["--output", "json", "--output-file", &out]),
            Self::Text => strs(&["--output", "text", "--output-file", &out]),
            Self::Journey => strs(&["--journey", "--output", "json", "--output-file", &out]),
        }
    }
}

/// One run's figures, per packet seen on the cali ends.
#[derive(Clone, Copy, Default)]
struct Cost {
    cpu_ns: f64,
    kernel_ns: f64,
    bytes: f64,
    lost: f64,
}

/// A tool running on the node, and how to read what it used.
enum Running {
    Tcpdump(Vec<testkit::Tcpdump>),
    Vethtrace(Vethtrace),
}

impl Running {
    fn start(tool: Tool, node: &Node, bin: &Path, extra: &[&str], out: &Path) -> anyhow::Result<Self> {
        if tool == Tool::Tcpdump {
            let mut dumps = Vec::new();
            for cali in &node.calis {
                let pcap = node.scratch.join(format!("cost-{cali}.pcap"));
                let stderr = node.scratch.join(format!("cost-{cali}.stderr"));
                dumps.push(testkit::Tcpdump::start(&node.ns(), cali, &[], &pcap, &stderr)?);
            }
            return Ok(Self::Tcpdump(dumps));
        }
        let args = tool.args(out);
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend_from_slice(extra);
        Ok(Self::Vethtrace(if tool == Tool::MetricsOnly {
            Vethtrace::start_metrics_only(bin, node, "cost", &all)?
        } else {
            Vethtrace::start_lines_off(bin, node, "cost", &all)?
        }))
    }

    fn cpu_ticks(&self) -> u64 {
        let pids: Vec<u32> = match self {
            Self::Tcpdump(d) => d.iter().map(testkit::Tcpdump::pid).collect(),
            Self::Vethtrace(v) => vec![v.pid()],
        };
        pids.into_iter().filter_map(sample).map(|s| s.cpu_ticks).sum()
    }

    /// Stops the tool; returns what it lost and the bytes it wrote (its files removed).
    fn stop(self, out: &Path) -> anyhow::Result<(u64, u64)> {
        let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        match self {
            Self::Tcpdump(dumps) => {
                let (mut lost, mut bytes) = (0, 0);
                for d in &dumps {
                    d.interrupt()?;
                }
                for mut d in dumps {
                    lost += d.wait_stopped(std::time::Duration::from_secs(30)).unwrap_or(0);
                    bytes += size(&d.pcap);
                    let _ = fs::remove_file(&d.pcap);
                    let _ = fs::remove_file(&d.stderr);
                }
                Ok((lost, bytes))
            }
            Self::Vethtrace(v) => {
                let (counters, _) = v.stop()?;
                let bytes = size(out);
                let _ = fs::remove_file(out);
                Ok((counters.map_or(0, |c| c.lost), bytes))
            }
        }
    }
}

/// Sum of run time (ns) of vethtrace's loaded programs.
fn kernel_ns() -> anyhow::Result<u64> {
    Ok(programs::stats()?.values().map(|(ns, _)| ns).sum())
}

fn one(node: &Node, bin: &Path, extra: &[&str], seconds: u32, load: Load, tool: Tool) -> anyhow::Result<Cost> {
    let out = node.scratch.join("cost.out");
    let running = Running::start(tool, node, bin, extra, &out)?;
    let (ticks0, packets0, ns0) = (running.cpu_ticks(), node.cali_packets()?, kernel_ns()?);
    let result = load.run(node, seconds);
    let (ticks1, packets1, ns1) = (running.cpu_ticks(), node.cali_packets()?, kernel_ns()?);
    let (lost, bytes) = running.stop(&out)?;
    result?;
    let packets = (packets1 - packets0).max(1) as f64;
    let cpu_ns = (ticks1 - ticks0) as f64 / clock_ticks() * 1e9;
    Ok(Cost { cpu_ns: cpu_ns / packets, kernel_ns: (ns1 - ns0) as f64 / packets, bytes: bytes as f64 / packets, lost: lost as f64 })
}

pub(super) fn rows(node: &Node, bin: &Path, extra: &[&str], repeat: usize, seconds: u32, report: &mut Report) -> anyhow::Result<()> {
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).context("BPF_ENABLE_STATS")?;
    // By load, then tool: one Cost per round.
    let mut costs: Vec<BTreeMap<Tool, Vec<Cost>>> = vec![BTreeMap::new(); LOADS.len()];
    for round in 0..repeat {
        for (i, load) in LOADS.iter().enumerate() {
            eprintln!("xtask: bench round {}/{repeat}: cost per packet at {}", round + 1, load.name());
            for tool in TOOLS {
                let cost = one(node, bin, extra, seconds, *load, tool)?;
                costs[i].entry(tool).or_default().push(cost);
            }
        }
    }
    for (load, by_tool) in LOADS.iter().zip(&costs) {
        load_rows(*load, by_tool, report);
    }
    Ok(())
}

fn load_rows(load: Load, by_tool: &BTreeMap<Tool, Vec<Cost>>, report: &mut Report) {
    let group = "cost";
    let at = load.name();
    let col = |tool: Tool, f: fn(&Cost) -> f64| by_tool.get(&tool).map(|c| c.iter().map(f).collect()).unwrap_or_default();
    for tool in TOOLS {
        report.push(Row::new(group, format!("{at}: {} CPU per packet", tool.name()), "ns", col(tool, |c| c.cpu_ns)));
    }
    for tool in TOOLS.into_iter().filter(|t| *t != Tool::Tcpdump) {
        report.push(Row::new(group, format!("{at}: {} kernel per packet", tool.name()), "ns", col(tool, |c| c.kernel_ns)));
    }
    for tool in TOOLS {
        report.push(Row::new(group, format!("{at}: {} bytes per packet", tool.name()), "bytes", col(tool, |c| c.bytes)));
    }
    // Against tcpdump in the same round; what the issue of record asks: pcapng and text no
    // dearer than tcpdump, JSON at most 1.5 times; nothing lost.
    let tcpdump = col(Tool::Tcpdump, |c| c.cpu_ns);
    for (tool, most) in [(Tool::Pcapng, 1.0), (Tool::Text, 1.0), (Tool::Json, 1.5), (Tool::MetricsOnly, 1.0)] {
        let ratio: Vec<f64> = col(tool, |c| c.cpu_ns).iter().zip(&tcpdump).map(|(v, t)| v / t).collect();
        report.push(Row::new(group, format!("{at}: {} CPU / tcpdump's", tool.name()), "ratio", ratio).target(Target::MedianAtMost(most)));
    }
    for tool in TOOLS {
        let row = Row::new(group, format!("{at}: {} lost", tool.name()), "events", col(tool, |c| c.lost));
        report.push(if tool == Tool::Tcpdump { row } else { row.target(Target::AllAtMost(0.0)) });
    }
}
