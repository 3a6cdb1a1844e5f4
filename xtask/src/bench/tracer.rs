//! The tracers under test, started inside the node's namespace and stopped with SIGINT:
//! vethtrace (every packet, annotation on, JSON to a file; or metrics only, nothing printed) and
//! tcpdump (one per cali, pcap to a file).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use testkit::{ExitCounters, Files};

use super::node::Node;

/// Where a traced run's events go.
enum Output {
    /// Annotated JSON to this file (removed at the end).
    File(PathBuf),
    /// Annotated JSON to /dev/null.
    Discard,
    /// Nothing formatted: counted only, served on [`METRICS_ADDR`] (`--metrics … --output none`).
    MetricsOnly,
    /// No text or JSON lines: the caller's arguments pick the output (`-w FILE.pcapng`).
    LinesOff,
}

/// Where the metrics-only runs serve, inside the node's namespace.
pub(super) const METRICS_ADDR: &str = "127.0.0.1:9464";

pub(super) struct Vethtrace {
    process: testkit::Vethtrace,
    output: Output,
    ns: String,
    /// From spawn to the ready file.
    pub ready_after: Duration,
}

impl Vethtrace {
    /// Starts vethtrace on every `cali*` of the node, writing events to a scratch file, and
    /// waits until it has attached.
    pub(super) fn start(bin: &Path, node: &Node, tag: &str, extra: &[&str]) -> anyhow::Result<Self> {
        Self::spawn(bin, node, tag, extra, Output::File(node.scratch.join(format!("{tag}.json"))))
    }

    /// vethtrace counting for its metrics endpoint only (`--metrics … --output none`).
    pub(super) fn start_metrics_only(bin: &Path, node: &Node, tag: &str, extra: &[&str]) -> anyhow::Result<Self> {
        Self::spawn(bin, node, tag, extra, Output::MetricsOnly)
    }

    /// As [`Vethtrace::start`], events written to /dev/null (a long flood would fill the disk).
    pub(super) fn start_discarding(bin: &Path, node: &Node, tag: &str, extra: &[&str]) -> anyhow::Result<Self> {
        Self::spawn(bin, node, tag, extra, Output::Discard)
    }

    /// Without `--output`: the caller's `extra` says where events go (`-w FILE` alone writes
    /// pcapng only).
    pub(super) fn start_lines_off(bin: &Path, node: &Node, tag: &str, extra: &[&str]) -> anyhow::Result<Self> {
        Self::spawn(bin, node, tag, extra, Output::LinesOff)
    }

    fn spawn(bin: &Path, node: &Node, tag: &str, extra: &[&str], output: Output) -> anyhow::Result<Self> {
        let mut cmd = testkit::Vethtrace::command(&node.ns(), &[], bin);
        cmd.args(["--iface", "cali*"]);
        match &output {
            Output::File(path) => cmd.args(["--output", "json", "--output-file"]).arg(path),
            Output::Discard => cmd.args(["--output", "json", "--output-file", "/dev/null"]),
            Output::MetricsOnly => cmd.args(["--output", "none", "--metrics", METRICS_ADDR]),
            Output::LinesOff => &mut cmd,
        };
        let files = Files::in_dir(&node.scratch, &format!("{tag}."), false);
        let mut process = testkit::Vethtrace::spawn(cmd, extra, files).with_context(|| format!("cannot start {}", bin.display()))?;
        let ready_after = process.wait_ready(Duration::from_secs(60)).context("vethtrace did not get ready")?;
        let _ = fs::remove_file(&process.files.ready);
        Ok(Self { process, output, ns: node.ns(), ready_after })
    }

    pub(super) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// SIGINT, then waits for the exit; returns the counters (`None` when vethtrace printed
    /// none) and how long the exit took.
    pub(super) fn stop(mut self) -> anyhow::Result<(Option<ExitCounters>, Duration)> {
        // Metrics-only runs print no events: what they counted is in their metrics.
        let delivered = match self.output {
            Output::MetricsOnly => Some(self.packets_scraped()?),
            _ => None,
        };
        let start = Instant::now();
        self.process.stop_with(libc::SIGINT, Duration::from_secs(60)).context("vethtrace did not exit after SIGINT")?;
        let took = start.elapsed();
        let stderr = self.process.stderr();
        if let Output::File(output) = &self.output {
            let _ = fs::remove_file(output);
        }
        let _ = fs::remove_file(&self.process.files.stderr);
        let counts = ExitCounters::parse(&stderr).map(|c| ExitCounters { events: delivered.unwrap_or(c.events), ..c });
        if counts.is_none() {
            eprintln!("xtask: warning: no counters in vethtrace's stderr: {}", stderr.trim());
        }
        Ok((counts, took))
    }
}

impl Vethtrace {
    /// `vethtrace_packets_total`, summed over interfaces and directions (counted in the kernel),
    /// from the endpoint (bash's /dev/tcp in the node's namespace).
    fn packets_scraped(&self) -> anyhow::Result<u64> {
        let (host, port) = METRICS_ADDR.split_once(':').unwrap_or_default();
        let script = format!("exec 3<>/dev/tcp/{host}/{port} && printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3");
        let out = Command::new("ip").args(["netns", "exec", &self.ns, "bash", "-c", &script]).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let packets: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("vethtrace_packets_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        if packets.is_empty() {
            bail!("no vethtrace_packets_total from {METRICS_ADDR}: {}", text.trim());
        }
        Ok(packets.iter().sum())
    }
}

/// One tcpdump per pod cali, each writing its own pcap.
pub(super) struct Tcpdump {
    children: Vec<testkit::Tcpdump>,
}

impl Tcpdump {
    pub(super) fn start(node: &Node, tag: &str) -> anyhow::Result<Self> {
        let mut children = Vec::new();
        for cali in &node.calis {
            let pcap = node.scratch.join(format!("{tag}-{cali}.pcap"));
            let stderr = node.scratch.join(format!("{tag}-{cali}.stderr"));
            children.push(testkit::Tcpdump::start(&node.ns(), cali, &[], &pcap, &stderr)?);
        }
        Ok(Self { children })
    }

    /// Stops every tcpdump; returns the packets they say the kernel dropped.
    pub(super) fn stop(self) -> anyhow::Result<u64> {
        let mut dropped = 0;
        for child in &self.children {
            child.interrupt()?;
        }
        for mut child in self.children {
            dropped += child.wait_stopped(Duration::from_secs(30)).unwrap_or(0);
            let _ = fs::remove_file(&child.pcap);
            let _ = fs::remove_file(&child.stderr);
        }
        Ok(dropped)
    }
}
