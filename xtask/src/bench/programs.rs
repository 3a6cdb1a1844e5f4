//! Per-program kernel cost during the UDP 64-byte flood: what each of vethtrace's programs
//! costs per run, how often it runs per forwarded packet, and the sum per forwarded packet —
//! from the kernel's own BPF run-time statistics, read with bpftool before and after the flood.
//!
//! The statistics are on only while the bench holds the descriptor `BPF_ENABLE_STATS` gave it
//! (the `kernel.bpf_stats_enabled` sysctl is left as it was); they add two clock reads to
//! every run of every program, so the flood here is not one of the ratio rows.

use std::{collections::BTreeMap, path::Path, process::Command};

use anyhow::Context as _;

use super::{
    node::Node,
    report::{Report, Row},
    tracer::Vethtrace,
};

/// (run time in ns, runs) of every loaded program whose name is one of vethtrace's.
pub(super) fn stats() -> anyhow::Result<BTreeMap<String, (u64, u64)>> {
    let out = Command::new("bpftool").args(["-j", "prog", "show"]).output().context("cannot run bpftool")?;
    let progs: serde_json::Value = serde_json::from_slice(&out.stdout).context("parsing bpftool -j prog show")?;
    let mut by_name: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for p in progs.as_array().into_iter().flatten() {
        let Some(name) = p["name"].as_str().filter(|n| n.starts_with("vethtrace_") || n.starts_with("vt_")) else { continue };
        let e = by_name.entry(name.to_owned()).or_default();
        e.0 += p["run_time_ns"].as_u64().unwrap_or(0);
        e.1 += p["run_cnt"].as_u64().unwrap_or(0);
    }
    Ok(by_name)
}

pub(super) fn rows(node: &Node, bin: &Path, extra: &[&str], repeat: usize, seconds: u32, report: &mut Report) -> anyhow::Result<()> {
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).context("BPF_ENABLE_STATS")?;
    // Per program, one (ns per run, runs per forwarded packet) per round; and the sum per
    // forwarded packet.
    let mut by_program: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut total = Vec::new();
    for round in 0..repeat {
        eprintln!("xtask: bench round {}/{repeat}: per-program cost (bpf_stats)", round + 1);
        let tracer = Vethtrace::start_discarding(bin, node, "programs", extra)?;
        let (before, packets_before) = (stats()?, node.cali_packets()?);
        let result = node.iperf(true, seconds);
        let (after, packets_after) = (stats()?, node.cali_packets()?);
        tracer.stop()?;
        result?;
        // Each forwarded packet crosses the sender's cali (rx) and the receiver's (tx).
        let forwarded = (packets_after - packets_before) as f64 / 2.0;
        let mut sum = 0.0;
        for (name, &(ns, runs)) in &after {
            let (ns0, runs0) = before.get(name).copied().unwrap_or_default();
            let (ns, runs) = ((ns - ns0) as f64, (runs - runs0) as f64);
            sum += ns;
            let per_run = if runs > 0.0 { ns / runs } else { 0.0 };
            by_program.entry(name.clone()).or_default().push((per_run, runs / forwarded));
        }
        total.push(sum / forwarded);
    }
    for (name, samples) in by_program {
        // Programs that did not run during the floods (the neighbour hooks, mostly) say nothing.
        if samples.iter().all(|&(ns, _)| ns == 0.0) {
            continue;
        }
        let (per_run, per_packet): (Vec<f64>, Vec<f64>) = samples.into_iter().unzip();
        report.push(Row::new("programs", format!("{name}: per run"), "ns", per_run));
        report.push(Row::new("programs", format!("{name}: runs per forwarded packet"), "runs", per_packet));
    }
    report.push(Row::new("programs", "all programs, per forwarded packet", "ns", total));
    Ok(())
}
