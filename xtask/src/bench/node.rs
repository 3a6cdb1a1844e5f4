//! The benchmark's world: a Calico-style node in network namespaces (scripts/calico-node.sh),
//! iperf3 between its pods, and the tracers under test as child processes.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;

/// Pod 2's address: the iperf3 server.
pub const SERVER_IP: &str = "10.244.1.6";
const IPERF_PORT: &str = "5201";

/// The namespaces of one node, removed again when dropped (also when a measurement fails).
pub struct Node {
    pub prefix: String,
    /// Host-side interfaces of pod1 (client) and pod2 (server).
    pub calis: [String; 2],
    /// Where tracer outputs go (deleted after every run: a UDP flood writes gigabytes).
    pub scratch: PathBuf,
}

impl Node {
    pub fn up(prefix: &str, scratch: &Path) -> anyhow::Result<Self> {
        script(prefix, &["up"])?;
        let cali = |pod| -> anyhow::Result<String> {
            let out = Command::new("bash").args(["scripts/calico-node.sh", "cali", pod]).env("VT_PREFIX", prefix).output()?;
            Ok(String::from_utf8(out.stdout)?.trim().to_owned())
        };
        fs::create_dir_all(scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
        let node = Self { prefix: prefix.to_owned(), calis: [cali("pod1")?, cali("pod2")?], scratch: scratch.to_owned() };
        // The first packets resolve the gateway by proxy ARP; keep that out of the first run.
        quiet(Command::new("ip").args(["netns", "exec", &node.pod("pod1"), "ping", "-c1", "-W1", SERVER_IP]));
        Ok(node)
    }

    pub fn ns(&self) -> String {
        format!("{}node", self.prefix)
    }

    pub fn pod(&self, name: &str) -> String {
        format!("{}p-{name}", self.prefix)
    }

    /// Packets (rx + tx) counted by the kernel on the two pod calis: what a tracer on both ends
    /// must report, one event per packet per end.
    pub fn cali_packets(&self) -> anyhow::Result<u64> {
        let out = Command::new("ip").args(["-n", &self.ns(), "-s", "-j", "link", "show"]).output()?;
        let links: Value = serde_json::from_slice(&out.stdout).context("parsing ip -s -j link show")?;
        let mut sum = 0;
        for link in links.as_array().into_iter().flatten() {
            if self.calis.iter().any(|c| link["ifname"] == c.as_str()) {
                let stats = &link["stats64"];
                sum += stats["rx"]["packets"].as_u64().unwrap_or(0) + stats["tx"]["packets"].as_u64().unwrap_or(0);
            }
        }
        Ok(sum)
    }

    /// One iperf3 run from pod1 to pod2: TCP bulk, or UDP with 64-byte payloads as fast as
    /// the sender can (`-u -l 64 -b 0`).
    pub fn iperf(&self, udp: bool, secs: u32) -> anyhow::Result<Iperf> {
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
            client.args(["-u", "-l", "64", "-b", "0"]);
        }
        let out = client.output().context("cannot run the iperf3 client")?;
        let _ = wait_child(&mut server, Duration::from_secs(5));
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
        let _ = script(&self.prefix, &["down"]);
        let _ = fs::remove_dir_all(&self.scratch);
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Iperf {
    /// TCP: received goodput.
    pub bits_per_sec: f64,
    /// UDP: datagrams the client sent per second.
    pub sent_pps: f64,
    /// UDP: datagrams that reached the server's socket per second.
    pub received_pps: f64,
}

pub fn script(prefix: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("bash")
        .arg("scripts/calico-node.sh")
        .args(args)
        .env("VT_PREFIX", prefix)
        .status()
        .context("cannot run scripts/calico-node.sh")?;
    if !status.success() {
        bail!("scripts/calico-node.sh {} failed: {status}", args.join(" "));
    }
    Ok(())
}

fn quiet(cmd: &mut Command) {
    let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// Polls `ready` every millisecond until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ready() {
            return true;
        }
        thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Waits for `child` to exit; kills it after `timeout`. True when it exited by itself.
pub fn wait_child(child: &mut Child, timeout: Duration) -> bool {
    let exited = wait_for(timeout, || child.try_wait().ok().flatten().is_some());
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    exited
}

pub fn interrupt(child: &Child) {
    quiet(Command::new("kill").args(["-INT", &child.id().to_string()]));
}

/// CPU time (user + system) and resident memory of a process, sampled from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
}

pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse::<u64>().ok()?;
    Some(ProcSample { cpu_ticks: ticks, rss_bytes: rss_kb * 1024 })
}

/// Clock ticks per second of /proc/<pid>/stat times.
pub fn clock_ticks() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().ok();
    out.and_then(|o| String::from_utf8(o.stdout).ok()).and_then(|s| s.trim().parse().ok()).unwrap_or(100.0)
}

/// Samples a process's RSS every `every` on a thread until stopped.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Vec<(f64, u64)>>,
}

impl RssSampler {
    pub fn start(pid: u32, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let start = Instant::now();
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let Some(s) = sample(pid) {
                    samples.push((start.elapsed().as_secs_f64(), s.rss_bytes));
                }
                thread::sleep(every);
            }
            samples
        });
        Self { stop, handle }
    }

    /// (seconds since start, RSS bytes) samples.
    pub fn stop(self) -> Vec<(f64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}
