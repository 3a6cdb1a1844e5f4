//! The tracers under test, started inside the node's namespace and stopped with SIGINT:
//! vethtrace (every packet, annotation on, JSON to a file) and tcpdump (one per cali, pcap to a
//! file).

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

pub struct Vethtrace {
    child: Child,
    stderr: PathBuf,
    /// The events file, removed at the end; `None` when events go to /dev/null.
    output: Option<PathBuf>,
    /// From spawn to the ready file.
    pub ready_after: Duration,
}

impl Vethtrace {
    /// Starts vethtrace on every `cali*` of the node, writing events to a scratch file, and
    /// waits until it has attached.
    pub fn start(bin: &Path, node: &Node, tag: &str, extra: &[&str]) -> anyhow::Result<Self> {
        Self::spawn(bin, node, tag, extra, Some(node.scratch.join(format!("{tag}.json"))))
    }

    /// As [`Vethtrace::start`], events written to /dev/null (a long flood would fill the disk).
    pub fn start_discarding(bin: &Path, node: &Node, tag: &str, extra: &[&str]) -> anyhow::Result<Self> {
        Self::spawn(bin, node, tag, extra, None)
    }

    fn spawn(bin: &Path, node: &Node, tag: &str, extra: &[&str], output: Option<PathBuf>) -> anyhow::Result<Self> {
        let ready = node.scratch.join(format!("{tag}.ready"));
        let stderr = node.scratch.join(format!("{tag}.stderr"));
        let _ = fs::remove_file(&ready);
        let start = Instant::now();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &node.ns()])
            .arg(bin)
            .args(["--iface", "cali*", "--output", "json", "--output-file"])
            .arg(output.as_deref().unwrap_or(Path::new("/dev/null")))
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
        Ok(Self { child, stderr, output, ready_after })
    }

    pub fn pid(&self) -> u32 {
        // `ip netns exec` execs the program: same pid.
        self.child.id()
    }

    /// SIGINT, then waits for the exit; returns the counters (`None` when vethtrace printed
    /// none) and how long the exit took.
    pub fn stop(mut self) -> anyhow::Result<(Option<VethtraceCounts>, Duration)> {
        let start = Instant::now();
        interrupt(&self.child);
        if !wait_child(&mut self.child, Duration::from_secs(60)) {
            bail!("vethtrace did not exit within 60 s of SIGINT");
        }
        let took = start.elapsed();
        let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
        if let Some(output) = &self.output {
            let _ = fs::remove_file(output);
        }
        let _ = fs::remove_file(&self.stderr);
        let counts = parse_counts(&stderr);
        if counts.is_none() {
            eprintln!("xtask: warning: no counters in vethtrace's stderr: {}", stderr.trim());
        }
        Ok((counts, took))
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
