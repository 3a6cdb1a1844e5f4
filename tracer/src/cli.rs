//! Command-line interface (clap derive). Parsing only: no I/O here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Live per-packet tracer for the veth pairs that connect Kubernetes pods to their node.
#[derive(Debug, Parser)]
#[command(name = "vethtrace", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub trace: TraceArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print what this kernel offers vethtrace (BTF, ring buffer, TCX or clsact, kprobe,
    /// fentry, tracepoints, drop reasons) and which probe mode `auto` would take; exit 0 when
    /// tracing can work here.
    Check(#[command(flatten)] PodArgs),
    /// One line per cali: interface, pod (namespace/name), UID, IPs, where the pod's identity
    /// came from, the veth peer's netns id, up/down. `--watch`: then one line per change.
    Pods(PodsArgs),
    /// Per workload endpoint (each cali with Calico chains): its pod, the direction, the tiers
    /// with their policies in order and the profiles, read from the netfilter ruleset
    /// (iptables-nft, iptables-legacy or nftables).
    Policies(PoliciesArgs),
    /// A live full-screen view of the traced pods, one row per cali: packets and bytes per
    /// second each way, drops per second with the top cause, the pod address's neighbour
    /// state, proxy-ARP answered/unanswered. Without a terminal on standard output: one plain
    /// table per second.
    Top(TopArgs),
    /// Internal: removes clsact filters left behind if vethtrace dies (even by SIGKILL).
    #[command(name = "__reaper", hide = true)]
    Reaper,
    /// Internal: the collector's ceiling for `cargo xtask bench` — synthetic records through
    /// decode + annotate + format into a buffer on one core; prints one JSON line per stage.
    /// Only with the `bench` feature.
    #[cfg(feature = "bench")]
    #[command(name = "__bench-collector", hide = true)]
    BenchCollector {
        /// Records per stage.
        #[arg(long, default_value_t = 3_000_000)]
        events: u64,
        /// Pods in the synthetic node the annotation looks up.
        #[arg(long, default_value_t = 100)]
        pods: u32,
        /// Only the stages whose name is this (for profiling one of them).
        #[arg(long)]
        stage: Option<String>,
    },
}

/// Where pod identities come from (the first source that works is used).
#[derive(Debug, Clone, Args)]
pub struct PodArgs {
    /// Calico's endpoint-status directory (Felix writes one file per pod there, Calico >= 3.28).
    #[arg(long, value_name = "DIR", default_value = "/var/run/calico/endpoint-status")]
    pub calico_status_dir: PathBuf,

    /// The container runtime's CRI socket [default: containerd's, then CRI-O's].
    #[arg(long, value_name = "PATH")]
    pub cri_socket: Option<PathBuf>,

    /// kubelet's pod directories (<namespace>_<pod>_<uid>), matched by Calico's veth names.
    #[arg(long, value_name = "DIR", default_value = "/var/log/pods")]
    pub kubelet_pods_dir: PathBuf,
}

/// Options of `vethtrace pods`.
#[derive(Debug, Clone, Args)]
pub struct PodsArgs {
    /// Interfaces to list besides those a pod is known for, as shell globs.
    #[arg(short, long = "iface", value_name = "GLOB", default_value = "cali*")]
    pub iface: Vec<String>,

    /// Output format (JSON: one object per line).
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// After the table, print one line per change ("+" added, "~" changed, "-" gone; JSON:
    /// "event": "add"/"change"/"remove") until Ctrl-C.
    #[arg(long)]
    pub watch: bool,

    #[command(flatten)]
    pub pods: PodArgs,
}

/// Options of `vethtrace policies`.
#[derive(Debug, Clone, Args)]
pub struct PoliciesArgs {
    /// Endpoints to list, as shell globs on the interface name.
    #[arg(short, long = "iface", value_name = "GLOB", default_value = "cali*")]
    pub iface: Vec<String>,

    /// Output format (JSON: one object per line).
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    #[command(flatten)]
    pub pods: PodArgs,
}

/// Which interfaces a trace (or `top`) takes, and where pod identities come from.
#[derive(Debug, Clone, Args)]
pub struct Selection {
    /// Interfaces to trace, as shell globs on the name; repeat for more. Interfaces that appear
    /// later and match are traced as they come.
    #[arg(short, long = "iface", value_name = "GLOB", default_value = "cali*")]
    pub iface: Vec<String>,

    /// Trace only the cali of this pod (NAME in any namespace, or NAMESPACE/NAME); repeat for
    /// more. Combines with --iface (both must match); a pod that starts later is traced as its
    /// cali appears.
    #[arg(long = "pod", value_name = "[NAMESPACE/]NAME")]
    pub pod: Vec<PodSelector>,

    #[command(flatten)]
    pub pods: PodArgs,
}

/// Options of the default command: trace the matching interfaces.
#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(flatten)]
    pub select: Selection,

    /// Output format of the event lines: text unless `-w` is given (then none, as with
    /// tcpdump; name a format to have both).
    #[arg(short, long, value_enum)]
    pub output: Option<OutputFormat>,

    /// Write the text or JSON lines to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,

    /// Write the packets to this pcapng file (`-` for standard output), with vethtrace's
    /// findings in each packet's comment. Created 0600; an existing symlink is refused.
    #[arg(short, long, value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// With `-w`: start a new file once this one holds SIZE million bytes (1,000,000 bytes),
    /// as tcpdump's -C; files are named FILE, FILE1, FILE2, ...
    #[arg(short = 'C', long = "file-size", value_name = "SIZE", requires = "write", value_parser = clap::value_parser!(u64).range(1..))]
    pub file_size: Option<u64>,

    /// With `-C`: keep at most COUNT files, reusing the oldest name, as tcpdump's -W.
    #[arg(short = 'W', long = "file-count", value_name = "COUNT", requires = "file_size", value_parser = clap::value_parser!(u32).range(1..))]
    pub file_count: Option<u32>,

    /// Bytes of each frame the kernel copies into its record: what pcapng carries and what the
    /// text and JSON fields are parsed from.
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = tracer_common::DEFAULT_SNAPLEN, value_parser = parse_snaplen)]
    pub snaplen: u32,

    /// Exit non-zero if any event was lost (ring buffer full).
    #[arg(long)]
    pub strict: bool,

    /// Ring buffer size in bytes: a power of two, at least 4096.
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 20, value_parser = parse_ring_size)]
    pub ring_size: u32,

    /// How long the kernel reuses a flow's FIB verdict, in milliseconds (0: a lookup for every
    /// packet). Every route, rule, link, address or neighbour change vethtrace sees voids it.
    #[arg(long, value_name = "MS", default_value_t = tracer_common::fib::DEFAULT_CACHE_NS / 1_000_000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub fib_cache_ms: u64,

    /// How the TC programs attach: TCX links (Linux >= 6.6), clsact filters, or auto.
    #[arg(long, value_enum, default_value_t = TcMode::Auto)]
    pub tc_mode: TcMode,

    /// Create this file once every matching interface is attached (for scripts and tests).
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,

    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// Show only drops (packets the kernel dropped that concern a traced interface).
    #[arg(long)]
    pub drops: bool,

    /// Print no events; at exit, write the table of drops by reason, interface and flow to
    /// the output (JSON: one "drop_summary" object per row). Without it the table goes to
    /// standard error at exit.
    #[arg(long)]
    pub summary: bool,

    /// Do not trace drops (skb:kfree_skb).
    #[arg(long, conflicts_with_all = ["drops", "summary"])]
    pub no_drops: bool,

    /// Follow each packet the expression selects through the node, and write one "journey"
    /// per packet once its way is over: where it entered, where it was queued (its headers
    /// after NAT), where it left, was delivered or was dropped (with the drop's cause), and
    /// how long each step took. No packet or drop lines.
    #[arg(long, conflicts_with_all = ["drops", "summary", "no_drops"])]
    pub journey: bool,

    /// With --journey: list every hop under the journey's text line.
    #[arg(long, requires = "journey")]
    pub journey_hops: bool,

    /// With --journey: how long a packet may go unseen before its journey is written as
    /// unfinished (what it waited for, from the node's state). Longer than the kernel's
    /// neighbour resolution (3 s by default), so that packets held for a neighbour end with
    /// their drop.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, requires = "journey", value_parser = parse_timeout)]
    pub journey_timeout: f64,

    /// With --journey: how many packets may be followed at once (the kernel's map of journeys
    /// under way; the collector holds twice as many). A packet that finds it full is not
    /// followed, and counted (said on standard error once a second and at exit).
    #[arg(long, value_name = "N", default_value_t = tracer_common::JOURNEY_ENTRIES, requires = "journey",
          value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub journey_max: u32,

    /// How the ARP/neighbour probes attach: kprobe, fentry, tracepoint (tp_btf), auto (the
    /// first of those that works here), or off.
    #[arg(long, value_enum, default_value_t = ProbeMode::Auto)]
    pub probe: ProbeMode,

    /// Read the filter expression from FILE, as tcpdump -F does (`#` starts a comment).
    #[arg(short = 'F', value_name = "FILE", conflicts_with = "expression")]
    pub filter_file: Option<PathBuf>,

    /// Print the classic BPF program the kernel runs for the expression, as tcpdump -d does,
    /// and exit without attaching anything.
    #[arg(short = 'd', long)]
    pub dump_filter: bool,

    /// pcap-filter expression (man 7 pcap-filter), as tcpdump takes it: only matching frames
    /// are traced. Several words are joined with spaces.
    #[arg(value_name = "EXPRESSION")]
    pub expression: Vec<String>,

    /// Serve Prometheus metrics on ADDR:PORT (`/metrics`; `/healthz`, `/readyz` for probes).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Logs and warnings on standard error: `vethtrace: …` lines, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Set by `vethtrace top` (no flag): traffic counted in the kernel and events tallied per
    /// interface, as with `--metrics`, for its view.
    #[arg(skip)]
    pub top: bool,
}

/// Options of `vethtrace top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub select: Selection,

    /// Start with the rows whose pod (namespace/name) or interface contains TEXT (`/` changes it).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub filter: String,

    /// How the ARP/neighbour probes attach (see the trace's --probe).
    #[arg(long, value_enum, default_value_t = ProbeMode::Auto)]
    pub probe: ProbeMode,

    /// How the TC programs attach: TCX links (Linux >= 6.6), clsact filters, or auto.
    #[arg(long, value_enum, default_value_t = TcMode::Auto)]
    pub tc_mode: TcMode,

    /// Ring buffer size in bytes (drops, ARP and neighbour events): a power of two, >= 4096.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, value_parser = parse_ring_size)]
    pub ring_size: u32,

    /// Create this file once every matching interface is attached (for scripts and tests).
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,

    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// pcap-filter expression, as the trace takes it: only matching frames are counted, and
    /// only drops of matching frames tallied.
    #[arg(value_name = "EXPRESSION")]
    pub expression: Vec<String>,
}

impl TopArgs {
    /// The trace `top` runs: nothing written per event, traffic counted in the kernel.
    pub fn trace_args(&self) -> TraceArgs {
        // The trace's defaults, then what top sets.
        let mut t = Cli::parse_from(["vethtrace"]).trace;
        t.select = self.select.clone();
        t.probe = self.probe;
        t.tc_mode = self.tc_mode;
        t.ring_size = self.ring_size;
        t.ready_file.clone_from(&self.ready_file);
        t.duration = self.duration;
        t.expression.clone_from(&self.expression);
        t.output = Some(OutputFormat::None);
        t.top = true;
        t
    }
}

/// A timeout in seconds: a finite number in (0, 3600].
fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 && t <= 3600.0 => Ok(t),
        _ => Err(format!("{s:?} is not a number of seconds above 0 and at most 3600")),
    }
}

impl TraceArgs {
    /// Combinations clap cannot express; the message is for a usage error.
    pub fn check(&self) -> Result<(), String> {
        if self.output == Some(OutputFormat::None) && (self.output_file.is_some() || self.summary) {
            return Err("--output none writes no lines: it cannot be used with --output-file or --summary".into());
        }
        Ok(())
    }

    /// `--output none` and no pcapng file: nothing is written per event (only counted).
    pub fn writes_no_events(&self) -> bool {
        self.output == Some(OutputFormat::None) && self.write.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `vethtrace: …` lines.
    Text,
    /// One JSON object per line: `{"time","level","msg"}`.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbeMode {
    Auto,
    Kprobe,
    Fentry,
    Tracepoint,
    /// No ARP/neighbour probes (tracepoint mode costs a little on every packet of the node).
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One tcpdump-like line per event.
    Text,
    /// One JSON object per line (schema in the README).
    Json,
    /// No event lines (with `--metrics` and without `-w`: events are counted only).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TcMode {
    Auto,
    Tcx,
    Clsact,
}

impl TraceArgs {
    /// The event lines' format: `--output`, else text unless a pcapng file is written.
    pub fn line_format(&self) -> Option<OutputFormat> {
        match self.output {
            Some(OutputFormat::None) => None,
            Some(f) => Some(f),
            None if self.write.is_some() => None,
            None => Some(OutputFormat::Text),
        }
    }
}

fn parse_snaplen(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|_| format!("'{s}' is not a number of bytes"))?;
    if !(1..=tracer_common::MAX_SNAPLEN).contains(&n) {
        return Err(format!("{n} is not between 1 and {}", tracer_common::MAX_SNAPLEN));
    }
    Ok(n)
}

fn parse_ring_size(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|_| format!("'{s}' is not a number of bytes"))?;
    if n < 4096 || !n.is_power_of_two() {
        return Err(format!("{n} is not a power of two of at least 4096"));
    }
    Ok(n)
}

/// `--pod NAME` (any namespace) or `--pod NAMESPACE/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSelector {
    pub namespace: Option<String>,
    pub name: String,
}

impl std::str::FromStr for PodSelector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let ok = |p: &str| !p.is_empty() && !p.contains(['/', ' ', '_']);
        match s.split_once('/') {
            Some((ns, name)) if ok(ns) && ok(name) => Ok(Self { namespace: Some(ns.into()), name: name.into() }),
            None if ok(s) => Ok(Self { namespace: None, name: s.into() }),
            _ => Err(format!("'{s}' is not NAME or NAMESPACE/NAME")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("vethtrace").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_trace_cali_as_text() {
        let cli = parse(&[]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.trace.select.iface, ["cali*"]);
        assert_eq!(cli.trace.line_format(), Some(OutputFormat::Text));
        assert_eq!(cli.trace.snaplen, 128);
        assert_eq!(cli.trace.fib_cache_ms, 1);
        assert_eq!(cli.trace.tc_mode, TcMode::Auto);
        assert!(!cli.trace.strict);
    }

    #[test]
    fn repeated_ifaces_and_json() {
        let cli = parse(&["--iface", "cali*", "-i", "tap*", "--output", "json", "--strict"]).unwrap();
        assert_eq!(cli.trace.select.iface, ["cali*", "tap*"]);
        assert_eq!(cli.trace.line_format(), Some(OutputFormat::Json));
        assert!(cli.trace.strict);
    }

    #[test]
    fn pcapng_alone_prints_no_lines_unless_asked() {
        assert_eq!(parse(&["-w", "t.pcapng"]).unwrap().trace.line_format(), None);
        assert_eq!(parse(&["-w", "-", "-o", "json"]).unwrap().trace.line_format(), Some(OutputFormat::Json));
        let cli = parse(&["-w", "t.pcapng", "-C", "5", "-W", "3", "-s", "1500"]).unwrap();
        assert_eq!((cli.trace.file_size, cli.trace.file_count, cli.trace.snaplen), (Some(5), Some(3), 1500));
        assert!(parse(&["-C", "5"]).is_err(), "-C needs -w");
        assert!(parse(&["-w", "f", "-W", "3"]).is_err(), "-W needs -C");
        assert!(parse(&["-s", "0"]).is_err() && parse(&["-s", "65536"]).is_err());
    }

    #[test]
    fn ring_size_must_be_a_power_of_two() {
        assert_eq!(parse(&["--ring-size", "65536"]).unwrap().trace.ring_size, 65536);
        assert!(parse(&["--ring-size", "65535"]).is_err());
        assert!(parse(&["--ring-size", "1024"]).is_err());
        assert!(parse(&["--ring-size", "lots"]).is_err());
    }

    #[test]
    fn drop_modes() {
        let cli = parse(&["--drops"]).unwrap();
        assert!(cli.trace.drops && !cli.trace.summary && !cli.trace.no_drops);
        assert!(parse(&["--summary", "--drops"]).unwrap().trace.summary);
        assert!(parse(&["--no-drops", "--drops"]).is_err());
    }

    #[test]
    fn probe_modes_and_check() {
        assert_eq!(parse(&[]).unwrap().trace.probe, ProbeMode::Auto);
        assert_eq!(parse(&["--probe", "fentry"]).unwrap().trace.probe, ProbeMode::Fentry);
        assert_eq!(parse(&["--probe", "tracepoint"]).unwrap().trace.probe, ProbeMode::Tracepoint);
        assert_eq!(parse(&["--probe", "off"]).unwrap().trace.probe, ProbeMode::Off);
        assert!(parse(&["--probe", "uprobe"]).is_err());
        assert!(matches!(parse(&["check"]).unwrap().command, Some(Command::Check(_))));
    }

    #[test]
    fn pod_flags() {
        let cli = parse(&["--pod", "web", "--pod", "shop/db", "--cri-socket", "/x.sock"]).unwrap();
        assert_eq!(cli.trace.select.pod.len(), 2);
        assert_eq!(cli.trace.select.pod[1].namespace.as_deref(), Some("shop"));
        assert_eq!(cli.trace.select.pods.cri_socket.as_deref(), Some(std::path::Path::new("/x.sock")));
        assert!(parse(&["--pod", "a/b/c"]).is_err());
        let Some(Command::Pods(p)) = parse(&["pods", "--watch", "-o", "json"]).unwrap().command else { panic!() };
        assert!(p.watch && p.output == OutputFormat::Json);
        assert_eq!(p.pods.kubelet_pods_dir, std::path::Path::new("/var/log/pods"));
    }

    #[test]
    fn metrics_output_none_and_log_format() {
        let cli = parse(&["--metrics", "127.0.0.1:9901", "--output", "none", "--log-format", "json"]).unwrap();
        assert_eq!(cli.trace.metrics, Some("127.0.0.1:9901".parse().unwrap()));
        assert_eq!(cli.trace.output, Some(OutputFormat::None));
        assert_eq!(cli.trace.line_format(), None);
        assert!(cli.trace.writes_no_events());
        assert_eq!(cli.trace.log_format, LogFormat::Json);
        assert!(cli.trace.check().is_ok());
        assert_eq!(parse(&[]).unwrap().trace.log_format, LogFormat::Text);
        assert!(parse(&["--metrics", "9901"]).is_err(), "an address is needed");
        assert!(parse(&["--log-format", "xml"]).is_err());
        assert!(parse(&["--output", "none", "--output-file", "f"]).unwrap().trace.check().is_err());
        let pcapng = parse(&["--output", "none", "-w", "f.pcapng"]).unwrap().trace;
        assert!(pcapng.check().is_ok() && !pcapng.writes_no_events(), "-w still writes the capture");
        assert!(parse(&["--output", "none", "--summary"]).unwrap().trace.check().is_err());
    }

    #[test]
    fn unknown_flag_and_bad_output_are_errors() {
        assert!(parse(&["--nope"]).is_err());
        assert!(parse(&["--output", "xml"]).is_err());
    }
}
