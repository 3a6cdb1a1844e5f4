//! Rows for `-w FILE.pcapng`: the UDP 64-byte flood traced by vethtrace writing pcapng only
//! (every frame's first `--snaplen` bytes and its comment) beside the untraced flood and the
//! default JSON run, each ratio paired within its round; plus what the pcapng run lost and
//! the collector's CPU while writing it.

use std::{fs, path::Path};

use anyhow::Context as _;
use testkit::kernel::{clock_ticks, sample};

use super::{
    node::Node,
    report::{Report, Row, Target},
    tracer::Vethtrace,
};

/// One traced flood: received and sent pkt/s, events lost, collector CPU (one core = 1).
struct Flood {
    received: f64,
    sent: f64,
    lost: f64,
    cpu: f64,
}

/// A UDP flood traced by `tracer` (already attached), stopped after it.
fn traced(node: &Node, tracer: Vethtrace, seconds: u32) -> anyhow::Result<Flood> {
    let pid = tracer.pid();
    let before = sample(pid).unwrap_or_default();
    let result = node.iperf(true, seconds);
    let after = sample(pid).unwrap_or_default();
    let (counts, _) = tracer.stop()?;
    let result = result?;
    let counts = counts.context("vethtrace stopped without its counters")?;
    let cpu = (after.cpu_ticks - before.cpu_ticks) as f64 / clock_ticks() / f64::from(seconds);
    Ok(Flood { received: result.received_pps, sent: result.sent_pps, lost: counts.lost as f64, cpu })
}

pub(super) fn rows(node: &Node, bin: &Path, extra: &[&str], repeat: usize, seconds: u32, report: &mut Report) -> anyhow::Result<()> {
    let (mut vs_untraced, mut vs_untraced_sent, mut vs_json) = (Vec::new(), Vec::new(), Vec::new());
    let (mut lost, mut cpu, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    let capture = node.scratch.join("flood.pcapng");
    let capture_arg = capture.to_str().context("scratch path is not UTF-8")?;
    for round in 0..repeat {
        eprintln!("xtask: bench round {}/{repeat}: -w pcapng", round + 1);
        let untraced = node.iperf(true, seconds)?;
        let json = traced(node, Vethtrace::start(bin, node, "json-flood", extra)?, seconds)?;
        let args: Vec<&str> = extra.iter().copied().chain(["-w", capture_arg]).collect();
        let pcapng = traced(node, Vethtrace::start_lines_off(bin, node, "pcapng-flood", &args)?, seconds)?;
        bytes.push(fs::metadata(&capture).map(|m| m.len() as f64).unwrap_or(f64::NAN));
        let _ = fs::remove_file(&capture);
        vs_untraced.push(pcapng.received / untraced.received_pps);
        vs_untraced_sent.push(pcapng.sent / untraced.sent_pps);
        vs_json.push(pcapng.received / json.received);
        lost.push(pcapng.lost);
        cpu.push(pcapng.cpu * 100.0);
    }
    report.push(Row::new("pcapng", "udp-64: -w pcapng / untraced", "ratio", vs_untraced).target(Target::MedianAtLeast(0.97)));
    report.push(Row::new("pcapng", "udp-64: -w pcapng / untraced, sent", "ratio", vs_untraced_sent));
    report.push(Row::new("pcapng", "udp-64: -w pcapng / JSON (same rounds)", "ratio", vs_json));
    report.push(Row::new("pcapng", "-w pcapng events lost (ring full)", "events", lost).target(Target::AllAtMost(0.0)));
    report.push(Row::new("pcapng", "-w pcapng CPU (one core = 100 %)", "%", cpu));
    report.push(Row::new("pcapng", format!("-w pcapng file after a {seconds} s flood"), "B", bytes));
    Ok(())
}
