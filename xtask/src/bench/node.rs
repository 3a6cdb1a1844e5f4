//! The benchmark's world: a Calico-style node in network namespaces ([`testkit::CalicoNode`],
//! scripts/calico-node.sh), iperf3 between its pods, and the tracers under test as child
//! processes.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;
use testkit::{CalicoNode, kernel, wait};

/// Pod 2's address: the iperf3 server.
pub(super) const SERVER_IP: &str = "10.244.1.6";
const IPERF_PORT: &str = "5201";

/// The namespaces of one node, removed again when dropped (also when a measurement fails).
pub(super) struct Node {
    topo: CalicoNode,
    /// Host-side interfaces of pod1 (client) and pod2 (server).
    pub calis: [String; 2],
    /// Where tracer outputs go (deleted after every run: a UDP flood writes gigabytes).
    pub scratch: PathBuf,
}

impl Node {
    pub(super) fn up(prefix: &str, scratch: &Path) -> anyhow::Result<Self> {
        let topo = CalicoNode::up(prefix)?;
        fs::create_dir_all(scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
        let calis = [topo.cali("pod1")?, topo.cali("pod2")?];
        let node = Self { topo, calis, scratch: scratch.to_owned() };
        // The first packets resolve the gateway by proxy ARP; keep that out of the first run.
        quiet(node.topo.in_pod("pod1", "ping").args(["-c1", "-W1", SERVER_IP]));
        Ok(node)
    }

    pub(super) fn ns(&self) -> String {
        self.topo.ns()
    }

    pub(super) fn pod(&self, name: &str) -> String {
        self.topo.pod_ns(name)
    }

    /// Packets (rx + tx) counted by the kernel on the two pod calis: what a tracer on both ends
    /// must report, one event per packet per end.
    pub(super) fn cali_packets(&self) -> anyhow::Result<u64> {
        let links = kernel::link_counters(&self.ns())?;
        Ok(links.iter().filter(|l| self.calis.contains(&l.name)).map(|l| l.rx_packets + l.tx_packets).sum())
    }

    /// One iperf3 run from pod1 to pod2: TCP bulk, or UDP with 64-byte payloads as fast as
    /// the sender can (`-u -l 64 -b 0`).
    pub(super) fn iperf(&self, udp: bool, secs: u32) -> anyhow::Result<Iperf> {
        self.iperf_at(udp, secs, 0)
    }

    /// As [`Node::iperf`], at `bits_per_sec` of payload (0: as fast as it can).
    pub(super) fn iperf_at(&self, udp: bool, secs: u32, bits_per_sec: u64) -> anyhow::Result<Iperf> {
        let server_ns = self.pod("pod2");
        let mut server = Command::new("ip")
            .args(["netns", "exec", &server_ns, "iperf3", "-s", "-1", "-p", IPERF_PORT])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start iperf3 (apt install iperf3, or ./x setup)")?;
        let listening = wait_for(Duration::from_secs(5), || {
            let out = Command::new("ip")
                .args(["netns", "exec", &server_ns, "ss", "-Hltn", &format!("sport = :{IPERF_PORT}")])
                .output();
            out.is_ok_and(|o| !o.stdout.is_empty())
        });
        if !listening {
            let _ = server.kill();
            bail!("the iperf3 server in {server_ns} did not start listening");
        }
        let mut client = Command::new("ip");
        client.args(["netns", "exec", &self.pod("pod1"), "iperf3", "-c", SERVER_IP, "-p", IPERF_PORT, "-J"]);
        client.args(["-t", &secs.to_string()]);
        if udp {
            client.args(["-u", "-l", "64"]);
        }
        if udp || bits_per_sec > 0 {
            client.args(["-b", &bits_per_sec.to_string()]);
        }
        let out = client.output().context("cannot run the iperf3 client")?;
        let _ = wait::wait_exit(&mut server, Duration::from_secs(5));
        let json: Value = serde_json::from_slice(&out.stdout).context("parsing iperf3 -J output")?;
        if let Some(e) = json["error"].as_str() {
            bail!("iperf3: {e}");
        }
        let end = &json["end"];
        Ok(if udp {
            let sum = &end["sum"];
            let seconds = sum["seconds"].as_f64().unwrap_or(f64::NAN);
            let packets = sum["packets"].as_f64().unwrap_or(f64::NAN);
            let lost = sum["lost_packets"].as_f64().unwrap_or(0.0);
            Iperf { bits_per_sec: f64::NAN, sent_pps: packets / seconds, received_pps: (packets - lost) / seconds }
        } else {
            Iperf {
                bits_per_sec: end["sum_received"]["bits_per_second"].as_f64().unwrap_or(f64::NAN),
                sent_pps: f64::NAN,
                received_pps: f64::NAN,
            }
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // The namespaces go with `topo`.
        let _ = fs::remove_dir_all(&self.scratch);
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Iperf {
    /// TCP: received goodput.
    pub bits_per_sec: f64,
    /// UDP: datagrams the client sent per second.
    pub sent_pps: f64,
    /// UDP: datagrams that reached the server's socket per second.
    pub received_pps: f64,
}

fn quiet(cmd: &mut Command) {
    let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// Polls `ready` every millisecond until it holds or `timeout` passes.
pub(super) fn wait_for(timeout: Duration, ready: impl FnMut() -> bool) -> bool {
    wait::wait_for(timeout, Duration::from_millis(1), ready)
}

/// Samples a process's RSS every `every` on a thread until stopped.
pub(super) struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Vec<(f64, u64)>>,
}

impl RssSampler {
    pub(super) fn start(pid: u32, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let start = Instant::now();
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let Some(s) = kernel::sample(pid) {
                    samples.push((start.elapsed().as_secs_f64(), s.rss_bytes));
                }
                thread::sleep(every);
            }
            samples
        });
        Self { stop, handle }
    }

    /// (seconds since start, RSS bytes) samples.
    pub(super) fn stop(self) -> Vec<(f64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}
