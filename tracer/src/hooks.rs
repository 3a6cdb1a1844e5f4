//! The kernel side of a trace, one hook family after another: the eBPF object is loaded with
//! each family's load-time layout, then each family is started — TC on the interfaces
//! ([`Attacher`], always), drops ([`DropProbe`]), the ARP/neighbour path ([`Probes`]), journeys
//! ([`JourneyProbe`]) and their hops inside the stack ([`JourneyHops`]).
//! A family other than TC is optional: it says whether this run wants it, what it needs set
//! at load, and whether its failure ends the run or is a warning ([`HookFamily`]). Adding one
//! is one more line in [`Kernel::start`].

use anyhow::Context as _;
use aya::Ebpf;
use tokio::io::{Interest, unix::AsyncFd};
use tracer_common::{HopsConfig, NeighConfig};

use crate::{
    attach::{Attacher, Backend},
    cli::{ProbeMode, TraceArgs},
    collect::Collector,
    drops::{DropProbe, DropSetup},
    ebpf::{self, LoadOptions},
    filter::Filter,
    journey::{self, JourneyHops, JourneyProbe},
    kernel::btf::{BtfError, KernelBtf},
    logging::KernelLog,
    probes::{self, ProbeError, Probes},
};

/// An optional family of hooks.
trait HookFamily: Sized {
    /// What the family needs set when the object is loaded (its kernel layouts).
    type Layout;

    /// The layout for this kernel; `None` when this run does not want the family (or, when
    /// it is not required, cannot have it: said once as a warning).
    fn prepare(args: &TraceArgs, btf: &KernelBtf) -> anyhow::Result<Option<Self::Layout>>;

    /// Loads and attaches the family's programs in an object loaded with `layout`.
    fn attach(ebpf: &mut Ebpf, args: &TraceArgs, layout: Self::Layout) -> anyhow::Result<Option<Self>>;
}

/// A family's failure: fatal when the run asked for the family (`required`), else one warning
/// line and the trace goes on without it.
fn required_or_warn<T, E>(required: bool, what: &str, context: &'static str, result: Result<T, E>) -> anyhow::Result<Option<T>>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if required => Err(anyhow::Error::new(e).context(context)),
        Err(e) => {
            log::warn!("{what}: {e}");
            Ok(None)
        }
    }
}

/// Drops: wanted unless `--no-drops`; required with `--drops`/`--summary`.
impl HookFamily for DropProbe {
    type Layout = DropSetup;

    fn prepare(args: &TraceArgs, btf: &KernelBtf) -> anyhow::Result<Option<DropSetup>> {
        if args.no_drops {
            return Ok(None);
        }
        let required = args.drops || args.summary || args.journey;
        let setup = required_or_warn(required, "drops are not traced", "tracing drops", DropSetup::prepare(btf))?;
        Ok(setup.map(with_injected_fault))
    }

    fn attach(ebpf: &mut Ebpf, args: &TraceArgs, setup: DropSetup) -> anyhow::Result<Option<Self>> {
        let required = args.drops || args.summary || args.journey;
        required_or_warn(required, "drops are not traced", "tracing drops", Self::start(ebpf, setup))
    }
}

/// Tests only: `VETHTRACE_FAULT=drop-layout` gives the drop program a wrong layout (a device's
/// namespace pointer read from its ifindex, so the read through it fails), so that the
/// reporting of in-kernel failures can be shown to work on a kernel whose real layout is right.
fn with_injected_fault(mut setup: DropSetup) -> DropSetup {
    if std::env::var_os("VETHTRACE_FAULT").is_some_and(|v| v == "drop-layout") {
        log::info!("VETHTRACE_FAULT=drop-layout: the drop program gets a wrong layout (a test)");
        setup.config.dev_nd_net = setup.config.dev_ifindex;
    }
    setup
}

/// The ARP/neighbour path: not with `--probe off`, nor with `--drops`/`--summary`, which would
/// not show its events (do not pay for them); required when a mode was asked for.
impl HookFamily for Probes {
    type Layout = Result<NeighConfig, ProbeError>;

    fn prepare(args: &TraceArgs, btf: &KernelBtf) -> anyhow::Result<Option<Self::Layout>> {
        if args.probe == ProbeMode::Off {
            return Ok(None); // said once the object is loaded and attached (Kernel::start)
        }
        let wanted = !args.drops && !args.summary && !args.journey;
        // A layout that cannot be found is reported by `attach`, with the mode that wanted it.
        Ok(wanted.then(|| probes::layout(btf).map_err(ProbeError::from)))
    }

    fn attach(ebpf: &mut Ebpf, args: &TraceArgs, layout: Self::Layout) -> anyhow::Result<Option<Self>> {
        let started = layout.and_then(|_| probes::start(ebpf, args.probe));
        let probes = required_or_warn(args.probe != ProbeMode::Auto, "the ARP/neighbour path is not traced", "--probe", started)?;
        if let Some(p) = &probes {
            log::info!("ARP/neighbour probes: {} ({})", p.mode, p.targets.join(", "));
        }
        Ok(probes)
    }
}

/// Journeys: only with `--journey`, which needs them.
impl HookFamily for JourneyProbe {
    type Layout = tracer_common::JourneyConfig;

    fn prepare(args: &TraceArgs, _: &KernelBtf) -> anyhow::Result<Option<Self::Layout>> {
        if !args.journey {
            return Ok(None);
        }
        Ok(Some(journey::config().context("--journey")?))
    }

    fn attach(ebpf: &mut Ebpf, _: &TraceArgs, _: Self::Layout) -> anyhow::Result<Option<Self>> {
        Ok(Some(JourneyProbe::start(ebpf).context("--journey")?))
    }
}

/// Journeys' hops inside the stack (forward, output, neigh, nf): only with `--journey`; from
/// kprobes or fentry, chosen as the ARP/neighbour probes are (`--probe`). Where neither
/// attaches (or with `--probe tracepoint`) journeys are TC's and the tracepoints', said once;
/// an explicit `--probe kprobe|fentry` that cannot attach ends the run.
impl HookFamily for JourneyHops {
    type Layout = Result<(NeighConfig, HopsConfig), BtfError>;

    fn prepare(args: &TraceArgs, btf: &KernelBtf) -> anyhow::Result<Option<Self::Layout>> {
        Ok(args.journey.then(|| journey::hops_layout(btf)))
    }

    fn attach(ebpf: &mut Ebpf, args: &TraceArgs, layout: Self::Layout) -> anyhow::Result<Option<Self>> {
        let required = matches!(args.probe, ProbeMode::Kprobe | ProbeMode::Fentry);
        let started = layout.map_err(ProbeError::from).and_then(|_| probes::start_hops(ebpf, args.probe));
        match started {
            Ok(p) => {
                log::info!("journeys: hops inside the stack from {} ({})", p.mode, p.targets.join(", "));
                Ok(Some(JourneyHops))
            }
            Err(e) if required => Err(anyhow::Error::new(e).context("--journey: the hops inside the stack (--probe)")),
            Err(e) => {
                log::warn!(
                    "journeys: no forward, output, neigh or nf hops: {e}; journeys are built from TC and tracepoints"
                );
                Ok(None)
            }
        }
    }
}

/// What the TC programs do: with `--drops`/`--summary` no packet is shown, so they only mark
/// the interfaces as traced (for the drop program) and send only ARP frames.
fn tc_flags(args: &TraceArgs) -> u32 {
    use tracer_common::tc_flags::{ALL, ARP, COUNT};
    let shown = !args.drops && !args.summary && !args.journey && !args.writes_no_events();
    // top counts like the metrics.
    let metrics = args.metrics.is_some() || args.top;
    // Drop hunting looks at ARP requests for the ones left unanswered (drops::arpwatch), and
    // so do the metrics' drops (ARP_UNANSWERED) when no packet is shown.
    let arp = if (args.drops || args.summary || metrics) && !args.no_drops { ARP } else { 0 };
    // metrics: every packet is counted in the kernel, shown or not (no record for it).
    let count = if metrics { COUNT } else { 0 };
    if shown { ALL | count } else { arp | count }
}

/// The programs' first failure per CPU and site, told in words through aya-log (the counts are
/// in `ERRORS`), read on a task of its own into vethtrace's log. Without it only the counts
/// are reported.
fn forward_kernel_log(ebpf: &mut Ebpf) {
    let logger = match aya_log::EbpfLogger::init_with_logger(ebpf, KernelLog) {
        Ok(l) => l,
        Err(e) => return log::debug!("no in-kernel log: {e}"),
    };
    // SAFETY: the logger owns its map fd, which stays open and unchanged while it lives, and
    // the `AsyncFd` owns the logger.
    let mut logger = match unsafe { AsyncFd::register_with_interest(logger, Interest::READABLE) } {
        Ok(l) => l,
        Err(e) => return log::debug!("no in-kernel log: {}", e.into_parts().1),
    };
    tokio::spawn(async move {
        while let Ok(mut ready) = logger.readable_mut().await {
            ready.get_inner_mut().flush();
            ready.clear_ready();
        }
    });
}

/// The loaded object and every hook family started (TC interfaces are attached later, by the
/// trace, as they match).
pub(crate) struct Kernel {
    pub(crate) ebpf: Ebpf,
    pub(crate) collector: Collector,
    pub(crate) attacher: Attacher,
    pub(crate) drops: Option<DropProbe>,
    pub(crate) probes: Option<Probes>,
    pub(crate) journeys: Option<JourneyProbe>,
}

impl Kernel {
    pub(crate) fn start(args: &TraceArgs, expression: Option<&Filter>) -> anyhow::Result<Self> {
        // Parsed once for every family's layout (a few MB of BTF), freed once loaded.
        let btf = KernelBtf::load()?;
        let drops = DropProbe::prepare(args, &btf)?;
        let neigh = Probes::prepare(args, &btf)?;
        let journey = JourneyProbe::prepare(args, &btf)?;
        let hops = JourneyHops::prepare(args, &btf)?;
        let hops_layout = hops.as_ref().and_then(|r| r.as_ref().ok().copied());
        let mut ebpf = ebpf::load(LoadOptions {
            ring_size: args.ring_size,
            snaplen: args.snaplen,
            drop_config: drops.as_ref().map(|s| s.config),
            neigh_config: neigh.as_ref().and_then(|r| r.as_ref().ok().copied()).or(hops_layout.map(|(n, _)| n)),
            hops_config: hops_layout.map(|(_, h)| h),
            journey_config: journey,
            // Without --journey the map is never written: one entry, not a preallocated 16384.
            journey_entries: if args.journey { args.journey_max } else { 1 },
            tc_flags: tc_flags(args),
            filter: expression,
            fib_cache_ns: args.fib_cache_ms * 1_000_000,
        })?;
        drop(btf);
        forward_kernel_log(&mut ebpf);
        let collector = Collector::new(&mut ebpf)?;
        let attacher = Attacher::new(&mut ebpf, Backend::choose(args.tc_mode)?, expression)?;
        let drops = drops.map(|setup| DropProbe::attach(&mut ebpf, args, setup)).transpose()?.flatten();
        let probes = neigh.map(|layout| Probes::attach(&mut ebpf, args, layout)).transpose()?.flatten();
        let journeys = journey.map(|layout| JourneyProbe::attach(&mut ebpf, args, layout)).transpose()?.flatten();
        hops.map(|layout| JourneyHops::attach(&mut ebpf, args, layout)).transpose()?;
        if args.probe == ProbeMode::Off {
            log::info!("ARP/neighbour probes: off");
        }
        Ok(Self { ebpf, collector, attacher, drops, probes, journeys })
    }
}
