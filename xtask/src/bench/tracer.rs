//! The tracers under test, started inside the node's namespace and stopped with SIGINT:
//! vethtrace (every packet, annotation on, JSON to a file; or metrics only, nothing printed) and
//! tcpdump (one per cali, pcap to a file).

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use super::node::{Node, interrupt, wait_child, wait_for};

/// What vethtrace said when it stopped.
#[derive(Debug, Clone, Copy, Default)]
pub struct VethtraceCounts {
    pub events: u64,
    pub lost: u64,
}

/// Where a traced run's events go.
enum Output {
    /// Annotated JSON to this file (removed at the end).
    File(PathBuf),
    /// Annotated JSON to /dev/null.
    Discard,
    /// Nothing formatted: counted only, served on [`METRICS_ADDR`] (`--metrics … --output none`).
    MetricsOnly,
}

/// Where the metrics-only runs serve, inside the node's namespace.
pub const METRICS_ADDR: &str = "127.0.0.1:9464";

pub struct Vethtrace {
    child: Child,
    stderr: PathBuf,
    output: Output,
    ns: String,
    /// From spawn to the ready file.
    pub ready_after: Duration,
}

impl Vethtrace {
    /// Starts vethtrace on every `cali*` of the node, writing events to a scratch file, and
    /// waits until it has attached.
    pub fn start(bin: &Path, node: &Node, tag: &str, extra: &[&str]) -> anyhow::Result<Self> {
        Self::spawn(bin, node, tag, extra, Output::File(node.scratch.join(format!("{tag}.json"))))
    }

    /// vethtrace counting for its metrics endpoint only (`--metrics … --output none`).
    pub fn start_metrics_only(bin: &Path, node: &Node, tag: &str, extra: &[&str]) -> anyhow::Result<Self> {
        Self::spawn(bin, node, tag, extra, Output::MetricsOnly)
    }

    /// As [`Vethtrace::start`], events written to /dev/null (a long flood would fill the disk).
    pub fn start_discarding(bin: &Path, node: &Node, tag: &str, extra: &[&str]) -> anyhow::Result<Self> {
        Self::spawn(bin, node, tag, extra, Output::Discard)
    }

    fn spawn(bin: &Path, node: &Node, tag: &str, extra: &[&str], output: Output) -> anyhow::Result<Self> {
        let ready = node.scratch.join(format!("{tag}.ready"));
        let stderr = node.scratch.join(format!("{tag}.stderr"));
        let _ = fs::remove_file(&ready);
        let start = Instant::now();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &node.ns()]).arg(bin).args(["--iface", "cali*"]);
        match &output {
            Output::File(path) => cmd.args(["--output", "json", "--output-file"]).arg(path),
            Output::Discard => cmd.args(["--output", "json", "--output-file", "/dev/null"]),
            Output::MetricsOnly => cmd.args(["--output", "none", "--metrics", METRICS_ADDR]),
        };
        let mut child = cmd
            .arg("--ready-file")
            .arg(&ready)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr)?)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        if !wait_for(Duration::from_secs(60), || ready.exists() || child.try_wait().ok().flatten().is_some()) || !ready.exists() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("vethtrace did not get ready: {}", fs::read_to_string(&stderr).unwrap_or_default().trim());
        }
        let ready_after = start.elapsed();
        let _ = fs::remove_file(&ready);
        Ok(Self { child, stderr, output, ns: node.ns(), ready_after })
    }

    pub fn pid(&self) -> u32 {
        // `ip netns exec` execs the program: same pid.
        self.child.id()
    }

    /// SIGINT, then waits for the exit; returns the counters (`None` when vethtrace printed
    /// none) and how long the exit took.
    pub fn stop(mut self) -> anyhow::Result<(Option<VethtraceCounts>, Duration)> {
        // Metrics-only runs print no events: what they delivered is in their metrics.
        let delivered = match self.output {
            Output::MetricsOnly => Some(self.events_scraped()?),
            _ => None,
        };
        let start = Instant::now();
        interrupt(&self.child);
        if !wait_child(&mut self.child, Duration::from_secs(60)) {
            bail!("vethtrace did not exit within 60 s of SIGINT");
        }
        let took = start.elapsed();
        let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
        if let Output::File(output) = &self.output {
            let _ = fs::remove_file(output);
        }
        let _ = fs::remove_file(&self.stderr);
        let counts = parse_counts(&stderr).map(|c| VethtraceCounts { events: delivered.unwrap_or(c.events), ..c });
        if counts.is_none() {
            eprintln!("xtask: warning: no counters in vethtrace's stderr: {}", stderr.trim());
        }
        Ok((counts, took))
    }
}

impl Vethtrace {
    /// `vethtrace_events_total`, summed over kinds, from the endpoint (bash's /dev/tcp in the
    /// node's namespace).
    fn events_scraped(&self) -> anyhow::Result<u64> {
        let (host, port) = METRICS_ADDR.split_once(':').unwrap_or_default();
        let script = format!("exec 3<>/dev/tcp/{host}/{port} && printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3");
        let out = Command::new("ip").args(["netns", "exec", &self.ns, "bash", "-c", &script]).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let events: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("vethtrace_events_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        if events.is_empty() {
            bail!("no vethtrace_events_total from {METRICS_ADDR}: {}", text.trim());
        }
        Ok(events.iter().sum())
    }
}

/// `vethtrace: N events, N lost, N undecodable`
fn parse_counts(stderr: &str) -> Option<VethtraceCounts> {
    let line = stderr.lines().rev().find(|l| l.ends_with("undecodable"))?;
    let mut numbers = line.trim_start_matches("vethtrace: ").split(", ").map(|part| part.split(' ').next()?.parse::<u64>().ok());
    Some(VethtraceCounts { events: numbers.next()??, lost: numbers.next()?? })
}

/// One tcpdump per pod cali, each writing its own pcap.
pub struct Tcpdump {
    children: Vec<(Child, PathBuf, PathBuf)>,
}

impl Tcpdump {
    pub fn start(node: &Node, tag: &str) -> anyhow::Result<Self> {
        let mut children = Vec::new();
        for cali in &node.calis {
            let pcap = node.scratch.join(format!("{tag}-{cali}.pcap"));
            let stderr = node.scratch.join(format!("{tag}-{cali}.stderr"));
            let child = Command::new("ip")
                .args(["netns", "exec", &node.ns(), "tcpdump", "-n", "-i", cali, "-w"])
                .arg(&pcap)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&stderr)?)
                .spawn()
                .context("cannot start tcpdump (apt install tcpdump)")?;
            children.push((child, pcap, stderr));
        }
        let listening = |stderr: &Path| fs::read_to_string(stderr).is_ok_and(|s| s.contains("listening on"));
        if !wait_for(Duration::from_secs(10), || children.iter().all(|(_, _, e)| listening(e))) {
            let me = Self { children };
            let _ = me.stop();
            bail!("tcpdump did not start listening");
        }
        Ok(Self { children })
    }

    /// Stops every tcpdump; returns the packets they say the kernel dropped.
    pub fn stop(self) -> anyhow::Result<u64> {
        let mut dropped = 0;
        for (child, ..) in &self.children {
            interrupt(child);
        }
        for (mut child, pcap, stderr) in self.children {
            wait_child(&mut child, Duration::from_secs(30));
            let text = fs::read_to_string(&stderr).unwrap_or_default();
            dropped += text
                .lines()
                .find(|l| l.ends_with("dropped by kernel"))
                .and_then(|l| l.split(' ').next()?.parse::<u64>().ok())
                .unwrap_or(0);
            let _ = fs::remove_file(pcap);
            let _ = fs::remove_file(stderr);
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counters_from_the_last_stderr_line() {
        let c = super::parse_counts("vethtrace: tracing 2 interface(s)\nvethtrace: 641650 events, 39498 lost, 0 undecodable\n").unwrap();
        assert_eq!((c.events, c.lost), (641_650, 39_498));
    }
}
