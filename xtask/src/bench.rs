//! `cargo xtask bench`: what tracing costs, measured side by side in one run on a Calico-style
//! node in network namespaces (scripts/calico-node.sh).
//!
//! - pod→pod TCP throughput and UDP 64-byte packet rate through the node (iperf3, pod1 → pod2):
//!   untraced, traced by vethtrace (every packet, annotation on, JSON to a file) and with one
//!   tcpdump per cali writing a pcap — interleaved round by round, reported as ratios to the
//!   untraced run of the same round;
//! - events delivered vs packets on the cali ends (kernel counters) during those runs — the UDP
//!   flood is the highest packet rate this machine generates;
//! - vethtrace's CPU and RSS during the flood (/proc), and optionally a long soak;
//! - the cost per packet at fixed rates below saturation ([`cost`]): each of vethtrace's modes
//!   and tcpdump, process CPU, kernel time and bytes written per packet, loss;
//! - the UDP flood again with `-w FILE.pcapng` (pcapng only) beside untraced and JSON;
//! - the collector's ceiling: decode + annotate + format (text, JSON) or write pcapng into a
//!   buffer, one core (`vethtrace __bench-collector`, synthetic records, no kernel involved);
//! - time from start to attached on N cali veths, and from SIGINT to exit.
//!
//! One table on stdout, the same as JSON in `target/bench/` (with the machine it ran on).

mod bare;
mod cost;
mod filter;
mod node;
mod pcapng;
mod programs;
mod report;
mod tracer;

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::{run, setup};
use node::{Node, RssSampler};
use testkit::kernel::{clock_ticks, sample};
use report::{Report, Row, Target};
use tracer::{Tcpdump, Vethtrace};

const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Rounds of every measurement (medians, minimums and maximums are over these).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Seconds per iperf3 run.
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// A CI-sized run: one round, 2-second iperf3 runs, attach to 10 and 100 veths, fewer
    /// synthetic records.
    #[arg(long)]
    quick: bool,
    /// Also trace a UDP flood for SECS seconds and watch vethtrace's RSS (e.g. 300).
    #[arg(long, value_name = "SECS")]
    soak: Option<u32>,
    /// Attach-time measurements: numbers of cali veths (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [10, 100, 500])]
    attach: Vec<usize>,
    /// Write the JSON here (default: target/bench/bench-<unix time>.json, and target/bench/latest.json).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Use this vethtrace binary instead of building target/release/vethtrace (it must be built
    /// with `--features bench`: `cargo build --release -p tracer --features bench`).
    #[arg(long, value_name = "FILE")]
    bin: Option<PathBuf>,
    /// Namespace prefix (scripts/calico-node.sh VT_PREFIX); everything under it is removed.
    #[arg(long, default_value = "vtbench")]
    prefix: String,
    /// Only these groups (comma-separated: throughput, cost, filter, pcapng, programs,
    /// collector, attach, soak); all by default. To measure one change by itself, quickly.
    #[arg(long, value_delimiter = ',', value_name = "GROUPS")]
    only: Vec<Group>,
    /// Extra flags for every traced vethtrace run (e.g. `-- --ring-size 33554432`).
    #[arg(last = true)]
    vethtrace_args: Vec<String>,
}

/// The parts of the bench `--only` can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Group {
    Throughput,
    Cost,
    Filter,
    Pcapng,
    Programs,
    Collector,
    Attach,
    Soak,
}

/// How the node is watched during a throughput run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Untraced,
    Vethtrace,
    Tcpdump,
    /// `--metrics … --output none`: every packet counted, nothing formatted.
    MetricsOnly,
}

const MODES: [Mode; 4] = [Mode::Untraced, Mode::Vethtrace, Mode::Tcpdump, Mode::MetricsOnly];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Untraced => "untraced",
            Self::Vethtrace => "vethtrace",
            Self::Tcpdump => "tcpdump",
            Self::MetricsOnly => "vethtrace metrics-only",
        }
    }
}

/// What one traced iperf3 run gave.
#[derive(Debug, Default, Clone)]
struct Run {
    tcp_bps: f64,
    udp_received_pps: f64,
    udp_sent_pps: f64,
    /// vethtrace only: packets on the cali ends, events delivered, events lost (kernel count),
    /// collector CPU (share of one core) and peak RSS during the flood.
    packets: f64,
    events: f64,
    lost: f64,
    cpu: f64,
    rss_peak: f64,
    /// vethtrace only: events delivered during the UDP flood alone.
    flood_events: f64,
    /// tcpdump only: packets it says the kernel dropped.
    tcpdump_dropped: f64,
}

pub(crate) fn run(opts: &Options) -> anyhow::Result<()> {
    if !setup::is_root() {
        bail!("the benchmark builds network namespaces and loads eBPF programs: run it as root");
    }
    let bin = match &opts.bin {
        Some(bin) => bin.clone(),
        None => {
            // The collector benchmark (`__bench-collector`) is only in a binary built with it.
            run::status(Command::new("cargo").args(["build", "--release", "--package", "tracer", "--features", "bench"]))?;
            PathBuf::from("target/release/vethtrace")
        }
    };
    let bin = fs::canonicalize(&bin).with_context(|| format!("no vethtrace binary at {}", bin.display()))?;
    let (repeat, seconds) = if opts.quick { (1, 2) } else { (opts.repeat.max(1), opts.seconds.max(1)) };
    let attach: Vec<usize> = if opts.quick { vec![10, 100] } else { opts.attach.clone() };
    let collector_events: u64 = if opts.quick { 500_000 } else { 3_000_000 };

    let mut report = Report { machine: machine(), ..Report::default() };
    report.settings = json!({
        "repeat": repeat, "iperf3_seconds": seconds, "attach": attach, "soak_seconds": opts.soak,
        "collector_events": collector_events, "udp_payload_bytes": 64, "vethtrace_output": "json, annotated, to a file",
        "vethtrace_args": opts.vethtrace_args, "only": opts.only.iter().map(|g| format!("{g:?}").to_lowercase()).collect::<Vec<_>>(),
    });
    let scratch = Path::new("target/bench").join(format!("scratch-{}", std::process::id()));
    let node = Node::up(&opts.prefix, &scratch)?;

    let extra: Vec<&str> = opts.vethtrace_args.iter().map(String::as_str).collect();
    let wanted = |g: Group| opts.only.is_empty() || opts.only.contains(&g);
    if wanted(Group::Throughput) {
        throughput(&node, &bin, &extra, repeat, seconds, &mut report)?;
    }
    if wanted(Group::Cost) {
        cost::rows(&node, &bin, &extra, repeat, seconds, &mut report)?;
    }
    if wanted(Group::Filter) {
        filter::rows(&node, &bin, &extra, repeat, seconds, &mut report)?;
    }
    if wanted(Group::Pcapng) {
        pcapng::rows(&node, &bin, &extra, repeat, seconds, &mut report)?;
    }
    if wanted(Group::Programs) {
        programs::rows(&node, &bin, &extra, repeat, seconds, &mut report)?;
    }
    if wanted(Group::Collector) {
        collector(&bin, repeat, collector_events, &mut report)?;
    }
    if wanted(Group::Attach) {
        attach_times(&node, &bin, &extra, repeat, &attach, &mut report)?;
    }
    if let Some(secs) = opts.soak.filter(|_| wanted(Group::Soak)) {
        soak(&node, &bin, &extra, secs, &mut report)?;
    }
    drop(node);

    report.machine["loadavg_end"] = json!(loadavg());
    print!("{}", report.table());
    println!("{}", machine_line(&report.machine));
    let json = serde_json::to_string_pretty(&report.json())?;
    let out_dir = Path::new("target/bench");
    fs::create_dir_all(out_dir)?;
    let path = opts.json.clone().unwrap_or_else(|| out_dir.join(format!("bench-{}.json", unix_now())));
    fs::write(&path, &json).with_context(|| format!("cannot write {}", path.display()))?;
    fs::write(out_dir.join("latest.json"), &json)?;
    eprintln!("xtask: wrote {} (and target/bench/latest.json)", path.display());
    Ok(())
}

/// Rounds of untraced / vethtrace / tcpdump, each with a TCP and a UDP run; ratios pair each
/// traced run with the untraced run of its round, so slow drifts of a shared machine cancel.
fn throughput(node: &Node, bin: &Path, extra: &[&str], repeat: usize, seconds: u32, report: &mut Report) -> anyhow::Result<()> {
    let mut runs: Vec<[Run; 4]> = Vec::new();
    for round in 0..repeat {
        let mut results: [Run; 4] = Default::default();
        for (i, mode) in MODES.into_iter().enumerate() {
            eprintln!("xtask: bench round {}/{repeat}: {}", round + 1, mode.name());
            results[i] = one_mode(node, bin, extra, seconds, mode)?;
        }
        runs.push(results);
    }
    let col = |mode: usize, f: fn(&Run) -> f64| runs.iter().map(|r| f(&r[mode])).collect::<Vec<f64>>();
    let ratio = |mode: usize, f: fn(&Run) -> f64| runs.iter().map(|r| f(&r[mode]) / f(&r[0])).collect::<Vec<f64>>();
    let (u, v, t) = (0, 1, 2);
    let tcp = |r: &Run| r.tcp_bps;
    let udp = |r: &Run| r.udp_received_pps;
    let sent = |r: &Run| r.udp_sent_pps;
    report.push(Row::new("tcp", "untraced", "bit/s", col(u, tcp)));
    report.push(Row::new("tcp", "vethtrace", "bit/s", col(v, tcp)));
    report.push(Row::new("tcp", "tcpdump", "bit/s", col(t, tcp)));
    report.push(Row::new("tcp", "tcpdump / untraced", "ratio", ratio(t, tcp)));
    report.push(
        Row::new("tcp", "vethtrace / untraced", "ratio", ratio(v, tcp))
            .target(Target::MedianAtLeast(0.97)),
    );
    report.push(Row::new("tcp", "vethtrace vs tcpdump", "ratio", runs.iter().map(|r| r[v].tcp_bps / r[t].tcp_bps).collect()).target(Target::MedianAtLeast(1.0)));
    report.push(Row::new("udp-64", "untraced received", "pkt/s", col(u, udp)));
    report.push(Row::new("udp-64", "untraced sent", "pkt/s", col(u, sent)));
    report.push(Row::new("udp-64", "vethtrace received", "pkt/s", col(v, udp)));
    report.push(Row::new("udp-64", "vethtrace sent", "pkt/s", col(v, sent)));
    report.push(Row::new("udp-64", "tcpdump received", "pkt/s", col(t, udp)));
    report.push(Row::new("udp-64", "tcpdump sent", "pkt/s", col(t, sent)));
    // With `-b 0` the sender outruns the receiver's socket on an idle machine, so a tracer that
    // slows the sender can leave the received rate as it was: the sent ratio shows that cost.
    report.push(Row::new("udp-64", "tcpdump / untraced, sent", "ratio", ratio(t, sent)));
    report.push(Row::new("udp-64", "vethtrace / untraced, sent", "ratio", ratio(v, sent)));
    report.push(Row::new("udp-64", "tcpdump / untraced", "ratio", ratio(t, udp)));
    report.push(Row::new("udp-64", "vethtrace / untraced", "ratio", ratio(v, udp)).target(Target::MedianAtLeast(0.85)));
    // Cheaper than tcpdump on every packet: in every round, not only in the median.
    report.push(Row::new("udp-64", "vethtrace vs tcpdump", "ratio", runs.iter().map(|r| r[v].udp_received_pps / r[t].udp_received_pps).collect()).target(Target::AllAtLeast(1.0)));
    report.push(Row::new("loss", "packets on the cali ends (tcp+udp)", "pkts", col(v, |r| r.packets)));
    report.push(Row::new("loss", "vethtrace events delivered", "events", col(v, |r| r.events)));
    report.push(Row::new("loss", "delivered / packets", "ratio", col(v, |r| r.events / r.packets)));
    report.push(Row::new("loss", "vethtrace events lost (ring full)", "events", col(v, |r| r.lost)).target(Target::AllAtMost(0.0)));
    report.push(Row::new("loss", "packets not delivered", "pkts", col(v, |r| r.packets - r.events)).target(Target::AllAtMost(0.0)));
    report.push(Row::new("loss", "tcpdump dropped by kernel", "pkts", col(t, |r| r.tcpdump_dropped)));
    report.push(Row::new("flood", "vethtrace CPU (one core = 100 %)", "%", col(v, |r| r.cpu * 100.0)));
    report.push(Row::new("flood", "vethtrace events per CPU-second", "ev/s", runs.iter().map(|r| r[v].events_in_flood_per_cpu(seconds)).collect()));
    report.push(Row::new("flood", "vethtrace peak RSS", "B", col(v, |r| r.rss_peak)).target(Target::AllAtMost(64.0 * MIB)));
    metrics_rows(&runs, seconds, report);
    Ok(())
}

/// One round's TCP and UDP runs in `mode`.
fn one_mode(node: &Node, bin: &Path, extra: &[&str], seconds: u32, mode: Mode) -> anyhow::Result<Run> {
    Ok(match mode {
        Mode::Untraced => {
            let tcp = node.iperf(false, seconds)?;
            let udp = node.iperf(true, seconds)?;
            Run { tcp_bps: tcp.bits_per_sec, udp_received_pps: udp.received_pps, udp_sent_pps: udp.sent_pps, ..Run::default() }
        }
        Mode::Tcpdump => {
            let dump = Tcpdump::start(node, "tcpdump-tcp")?;
            let tcp = node.iperf(false, seconds)?;
            let mut dropped = dump.stop()?;
            let dump = Tcpdump::start(node, "tcpdump-udp")?;
            let udp = node.iperf(true, seconds)?;
            dropped += dump.stop()?;
            Run {
                tcp_bps: tcp.bits_per_sec,
                udp_received_pps: udp.received_pps,
                udp_sent_pps: udp.sent_pps,
                tcpdump_dropped: dropped as f64,
                ..Run::default()
            }
        }
        Mode::Vethtrace => traced_run(node, bin, extra, seconds, false)?,
        Mode::MetricsOnly => traced_run(node, bin, extra, seconds, true)?,
    })
}

/// One TCP and one UDP run traced by vethtrace, printing every event as annotated JSON or
/// (`metrics_only`) counting them for `--metrics` only.
fn traced_run(node: &Node, bin: &Path, extra: &[&str], seconds: u32, metrics_only: bool) -> anyhow::Result<Run> {
    let mut run = Run::default();
    for udp in [false, true] {
        let tag = if udp { "flood" } else { "tcp" };
        let tracer = if metrics_only { Vethtrace::start_metrics_only(bin, node, tag, extra)? } else { Vethtrace::start(bin, node, tag, extra)? };
        let pid = tracer.pid();
        let packets_before = node.cali_packets()?;
        let before = sample(pid).unwrap_or_default();
        let rss = RssSampler::start(pid, Duration::from_millis(100));
        let result = node.iperf(udp, seconds);
        let after = sample(pid).unwrap_or_default();
        let rss = rss.stop();
        let packets = node.cali_packets()? - packets_before;
        let (counts, _) = tracer.stop()?;
        let result = result?;
        let counts = counts.context("vethtrace stopped without its counters")?;
        run.packets += packets as f64;
        run.events += counts.events as f64;
        run.lost += counts.lost as f64;
        if udp {
            run.udp_received_pps = result.received_pps;
            run.udp_sent_pps = result.sent_pps;
            run.flood_events = counts.events as f64;
            run.cpu = (after.cpu_ticks - before.cpu_ticks) as f64 / clock_ticks() / f64::from(seconds);
            run.rss_peak = rss.iter().map(|&(_, b)| b).max().unwrap_or(after.rss_bytes) as f64;
        } else {
            run.tcp_bps = result.bits_per_sec;
        }
    }
    Ok(run)
}

/// The metrics-only mode (`--metrics … --output none`) beside the printing mode.
fn metrics_rows(runs: &[[Run; 4]], seconds: u32, report: &mut Report) {
    let (u, v, m) = (0, 1, 3);
    let ratio = |mode: usize, f: fn(&Run) -> f64| runs.iter().map(|r| f(&r[mode]) / f(&r[u])).collect::<Vec<f64>>();
    let col = |mode: usize, f: fn(&Run) -> f64| runs.iter().map(|r| f(&r[mode])).collect::<Vec<f64>>();
    report.push(Row::new("metrics", "tcp: metrics-only / untraced", "ratio", ratio(m, |r| r.tcp_bps)));
    report.push(Row::new("metrics", "tcp: printing / untraced (same rounds)", "ratio", ratio(v, |r| r.tcp_bps)));
    report.push(Row::new("metrics", "udp-64: metrics-only / untraced", "ratio", ratio(m, |r| r.udp_received_pps)));
    report.push(Row::new("metrics", "udp-64: metrics-only / untraced, sent", "ratio", ratio(m, |r| r.udp_sent_pps)));
    report.push(Row::new("metrics", "udp-64: printing / untraced (same rounds)", "ratio", ratio(v, |r| r.udp_received_pps)));
    // Counted in the kernel: the collector only answers scrapes (and handles ARP, drops).
    report.push(Row::new("metrics", "metrics-only CPU (one core = 100 %)", "%", col(m, |r| r.cpu * 100.0)).target(Target::AllAtMost(2.0)));
    report.push(Row::new("metrics", "printing CPU (one core = 100 %)", "%", col(v, |r| r.cpu * 100.0)));
    report.push(Row::new("metrics", "metrics-only packets counted per CPU-second", "ev/s", runs.iter().map(|r| r[m].events_in_flood_per_cpu(seconds)).collect()));
    report.push(Row::new("metrics", "metrics-only peak RSS", "B", col(m, |r| r.rss_peak)).target(Target::AllAtMost(64.0 * MIB)));
    report.push(Row::new("metrics", "metrics-only counted / packets", "ratio", col(m, |r| r.events / r.packets)));
    report.push(Row::new("metrics", "metrics-only events lost (ring full)", "events", col(m, |r| r.lost)).target(Target::AllAtMost(0.0)));
}

impl Run {
    /// Events per CPU-second of the collector during the UDP flood: the real path (ring,
    /// decode, annotate, format, write) at the highest rate seen.
    fn events_in_flood_per_cpu(&self, seconds: u32) -> f64 {
        self.flood_events / (self.cpu * f64::from(seconds))
    }
}

/// `vethtrace __bench-collector`: synthetic records through decode + annotate + format, one
/// core, no kernel.
fn collector(bin: &Path, repeat: usize, events: u64, report: &mut Report) -> anyhow::Result<()> {
    let mut stages: Vec<(String, Vec<f64>)> = Vec::new();
    for round in 0..repeat {
        eprintln!("xtask: bench round {}/{repeat}: collector ceiling", round + 1);
        let out = Command::new(bin).args(["__bench-collector", "--events", &events.to_string()]).output()?;
        if !out.status.success() {
            bail!("vethtrace __bench-collector failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        for line in String::from_utf8(out.stdout)?.lines() {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let stage = v["stage"].as_str().unwrap_or("?").to_owned();
            let rate = v["events_per_sec"].as_f64().unwrap_or(f64::NAN);
            match stages.iter_mut().find(|(s, _)| *s == stage) {
                Some((_, samples)) => samples.push(rate),
                None => stages.push((stage, vec![rate])),
            }
        }
    }
    for (stage, samples) in stages {
        // The issue's targets: annotated JSON (what the benchmark's vethtrace writes) and text.
        let target = match stage.as_str() {
            "decode+annotate+format json" => Some(5e6),
            "decode+annotate+format text" => Some(6e6),
            _ => None,
        };
        let row = Row::new("collector", stage, "ev/s", samples);
        report.push(match target {
            Some(t) => row.target(Target::MedianAtLeast(t)),
            None => row,
        });
    }
    Ok(())
}

/// Start → ready file and SIGINT → exit with N cali veths in the node (the two pods' and N-2
/// more whose peers sit in one extra namespace).
fn attach_times(node: &Node, bin: &Path, extra: &[&str], repeat: usize, counts: &[usize], report: &mut Report) -> anyhow::Result<()> {
    let extra_ns = node.pod("attach");
    run::status(Command::new("ip").args(["netns", "add", &extra_ns]))?;
    let mut made = 0;
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    for n in sorted {
        let want = n.saturating_sub(node.calis.len());
        let mut batch = String::new();
        for i in made..want {
            let _ = writeln!(batch, "link add calibench{i:04} type veth peer name p{i:04} netns {extra_ns}");
            let _ = writeln!(batch, "link set calibench{i:04} up");
        }
        if !batch.is_empty() {
            let file = node.scratch.join("attach.batch");
            fs::write(&file, batch)?;
            run::status(Command::new("ip").args(["-n", &node.ns(), "-batch"]).arg(&file))?;
        }
        made = made.max(want);
        // TCX (the default on >= 6.6) and clsact: the kernel makes every TCX attach and detach
        // wait for an RCU grace period (tcx_entry_sync) under the RTNL lock.
        for mode in ["tcx", "clsact"] {
            let (mut ready, mut exit) = (Vec::new(), Vec::new());
            for round in 0..repeat {
                eprintln!("xtask: bench round {}/{repeat}: attach to {n} veths ({mode})", round + 1);
                let args: Vec<&str> = extra.iter().copied().chain(["--tc-mode", mode]).collect();
                let tracer = Vethtrace::start(bin, node, "attach", &args)?;
                ready.push(tracer.ready_after.as_secs_f64());
                let (_, took) = tracer.stop()?;
                exit.push(took.as_secs_f64());
            }
            let attach = Row::new("attach", format!("start → attached, {n} veths, {mode}"), "s", ready);
            report.push(if n >= 500 { attach.target(Target::MedianAtMost(1.0)) } else { attach });
            report.push(Row::new("attach", format!("SIGINT → detached and exited, {n} veths, {mode}"), "s", exit));
        }
    }
    // Deleting the namespace deletes the peers, and with them the calis.
    run::status(Command::new("ip").args(["netns", "del", &extra_ns]))?;
    Ok(())
}

/// A long UDP flood traced by vethtrace: RSS must stay flat (and under 64 MiB).
fn soak(node: &Node, bin: &Path, extra: &[&str], secs: u32, report: &mut Report) -> anyhow::Result<()> {
    eprintln!("xtask: bench soak: {secs} s UDP flood traced by vethtrace");
    // Events to /dev/null: 300 s of annotated JSON at full rate is hundreds of GB.
    let tracer = Vethtrace::start_discarding(bin, node, "soak", extra)?;
    let rss = RssSampler::start(tracer.pid(), Duration::from_secs(1));
    let packets_before = node.cali_packets()?;
    let result = node.iperf(true, secs);
    let packets = node.cali_packets()? - packets_before;
    let samples = rss.stop();
    let (counts, _) = tracer.stop()?;
    result?;
    let counts = counts.context("vethtrace stopped without its counters")?;
    let rss_at = |from: f64, to: f64| -> Vec<f64> {
        samples.iter().filter(|(t, _)| *t >= from * f64::from(secs) && *t <= to * f64::from(secs)).map(|&(_, b)| b as f64).collect()
    };
    let first = rss_at(0.05, 0.15);
    let last = rss_at(0.85, 1.0);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    report.push(Row::new("soak", format!("RSS through a {secs} s flood"), "B", samples.iter().map(|&(_, b)| b as f64).collect()).target(Target::AllAtMost(64.0 * MIB)));
    report.push(Row::new("soak", "RSS growth, last 15 % vs 5–15 %", "B", vec![mean(&last) - mean(&first)]).target(Target::AllAtMost(4.0 * MIB)));
    report.push(Row::new("soak", "events lost", "events", vec![counts.lost as f64]).target(Target::AllAtMost(0.0)));
    report.push(Row::new("soak", "packets not delivered", "pkts", vec![packets as f64 - counts.events as f64]));
    Ok(())
}

fn machine() -> serde_json::Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")).and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    let text = |cmd: &mut Command| run::stdout(cmd).trim().to_owned();
    json!({
        "kernel": text(Command::new("uname").arg("-r")),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "mem_gib": mem_kb.map(|k| (k as f64 / MIB).round()),
        "loadavg_start": loadavg(),
        "git": text(Command::new("git").args(["describe", "--always", "--dirty"])),
        "unix_time": unix_now(),
        "iperf3": text(Command::new("iperf3").arg("--version")).lines().next().unwrap_or_default().to_owned(),
    })
}

fn machine_line(m: &serde_json::Value) -> String {
    format!(
        "machine: {} CPUs ({}), {} GiB, kernel {}, git {}; load average at start {}, at end {} (other work on the machine skews every number)",
        m["cpus"],
        m["cpu_model"].as_str().unwrap_or("?"),
        m["mem_gib"],
        m["kernel"].as_str().unwrap_or("?"),
        m["git"].as_str().unwrap_or("?"),
        m["loadavg_start"].as_str().unwrap_or("?"),
        m["loadavg_end"].as_str().unwrap_or("?"),
    )
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
