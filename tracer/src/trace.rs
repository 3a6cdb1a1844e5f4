//! The default command: attach to the matching interfaces (and to those that appear later),
//! stream events until Ctrl-C/SIGTERM, then flush, detach and report counters.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    time::Duration,
};

use anyhow::Context as _;
use aya::Ebpf;
use futures::StreamExt as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    annotate,
    attach::{Attacher, Backend},
    caps,
    cli::{OutputFormat, ProbeMode, TraceArgs},
    collect::{self, Collector},
    drops::{self, DropNames, DropProbe, summary::Summary},
    ebpf,
    event::{self, Event},
    kernel::btf::KernelBtf,
    ifaces::IfaceFilter,
    mirror::{self, Mirror, links::LinkChange},
    output::{self, Format, Meta},
    probes::{self, Probes},
};

/// What a finished trace reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub events: u64,
    /// Drop events received (printed or not).
    pub drops: u64,
    pub lost: u64,
    pub undecodable: u64,
}

/// Converts kernel monotonic timestamps to wall-clock time.
#[derive(Debug, Clone, Copy)]
struct Clock {
    wall_minus_mono_ns: i128,
}

impl Clock {
    fn now() -> Self {
        let ns = |clock| {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: `ts` is a valid out-pointer for clock_gettime.
            unsafe { libc::clock_gettime(clock, &mut ts) };
            i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
        };
        Self { wall_minus_mono_ns: ns(libc::CLOCK_REALTIME) - ns(libc::CLOCK_MONOTONIC) }
    }

    fn wall(self, mono_ns: u64) -> i128 {
        i128::from(mono_ns) + self.wall_minus_mono_ns
    }
}

/// Formats decoded events into a buffer that is written out once per drain.
struct Sink {
    format: Format,
    buf: Vec<u8>,
    out: BufWriter<Box<dyn Write>>,
    clock: Clock,
    /// The node's network state: interface names and everything the annotation looks up.
    mirror: Mirror,
    counters: Counters,
    /// Which events are written (`--drops`: drops only; `--summary`: neither).
    show_packets: bool,
    show_drops: bool,
    /// `None` when drops are not traced.
    drop_names: Option<DropNames>,
    drop_summary: Summary,
    /// The ARP/neighbour probes' mode, `None` when none attached.
    probe_mode: Option<probes::Mode>,
}

impl Sink {
    fn record(&mut self, bytes: &[u8]) {
        match event::decode(bytes) {
            Ok(Event::Packet(_)) if !self.show_packets => {}
            Ok(Event::Drop(ev)) => self.record_drop(&ev),
            Ok(Event::Packet(ev)) => {
                let index_name;
                let iface = match self.mirror.links.name(ev.ifindex) {
                    Some(n) => n,
                    None => {
                        index_name = format!("if{}", ev.ifindex);
                        &index_name
                    }
                };
                let meta = Meta { iface, wall_ns: self.clock.wall(ev.header.ts_ns) };
                let annotation = annotate::annotate(&self.mirror, &ev);
                if output::write_annotated(self.format, &mut self.buf, &ev, meta, Some(&annotation)).is_ok() {
                    self.counters.events += 1;
                }
            }
            Ok(Event::Arp(ev)) => self.record_probe(ev.ifindex, ev.header.ts_ns, |f, buf, meta, mode| {
                probes::render::write_arp(f, buf, &ev, meta, mode)
            }),
            Ok(Event::Neigh(ev)) => self.record_probe(ev.ifindex, ev.header.ts_ns, |f, buf, meta, mode| {
                probes::render::write_neigh(f, buf, &ev, meta, mode)
            }),
            Err(e) => {
                self.counters.undecodable += 1;
                log::debug!("skipped a record: {e}");
            }
        }
    }

    /// An ARP or neighbour event, shown with the packets.
    fn record_probe(
        &mut self,
        ifindex: u32,
        ts_ns: u64,
        write: impl FnOnce(Format, &mut Vec<u8>, Meta<'_>, probes::Mode) -> io::Result<()>,
    ) {
        let Some(mode) = self.probe_mode else { return };
        if !self.show_packets {
            return;
        }
        let name = self.mirror.links.name(ifindex).map_or_else(|| format!("if{ifindex}"), str::to_owned);
        let meta = Meta { iface: &name, wall_ns: self.clock.wall(ts_ns) };
        if write(self.format, &mut self.buf, meta, mode).is_ok() {
            self.counters.events += 1;
        }
    }

    fn record_drop(&mut self, ev: &tracer_common::DropEvent) {
        let Some(names) = &self.drop_names else { return };
        let dev = (ev.ifindex != 0)
            .then(|| self.mirror.links.name(ev.ifindex).map_or_else(|| format!("if{}", ev.ifindex), str::to_owned));
        let named = drops::render::name(names, &self.mirror, ev, dev.as_deref());
        let iface = dev.as_deref().unwrap_or("-");
        self.drop_summary.add(named.reason_or_location(), iface, &ev.packet);
        self.counters.drops += 1;
        if self.show_drops {
            let meta = Meta { iface, wall_ns: self.clock.wall(ev.header.ts_ns) };
            if drops::render::write(self.format, &mut self.buf, &named, meta).is_ok() {
                self.counters.events += 1;
            }
        }
    }

    /// At exit: the drop table to the output (`--summary`) or to standard error.
    fn finish_summary(&mut self, to_output: bool) -> io::Result<()> {
        if !to_output {
            if !self.drop_summary.is_empty() {
                eprint!("vethtrace: drops by reason, interface and flow:\n{}", self.drop_summary.table());
            }
            return Ok(());
        }
        match self.format {
            Format::Json => self.drop_summary.write_json(&mut self.buf)?,
            Format::Text => self.buf.extend_from_slice(self.drop_summary.table().as_bytes()),
        }
        self.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }
}

/// Interfaces known by index, and which of them are traced.
struct Tracing {
    filter: IfaceFilter,
    attacher: Attacher,
    ebpf: Ebpf,
}

impl Tracing {
    fn apply(&mut self, change: LinkChange) {
        match change {
            LinkChange::Present { index, name } => {
                let wanted = self.filter.matches(&name);
                if wanted && !self.attacher.is_attached(index) {
                    match self.attacher.attach(&mut self.ebpf, index, &name) {
                        Ok(()) => log::info!("tracing {name} (ifindex {index})"),
                        Err(e) => eprintln!("vethtrace: warning: {e:#}"),
                    }
                } else if !wanted && self.attacher.is_attached(index) {
                    self.attacher.detach(index);
                    log::info!("{name} no longer matches; detached");
                }
            }
            LinkChange::Removed { index, name } => {
                if self.attacher.is_attached(index) {
                    log::info!("{name} went away");
                }
                self.attacher.detach(index);
            }
        }
    }
}

/// The ARP/neighbour probes: a failure is fatal when a mode was asked for, a warning with
/// `auto` (packets and drops are still traced).
fn start_probes(ebpf: &mut Ebpf, args: &TraceArgs, btf: &KernelBtf) -> anyhow::Result<Option<Probes>> {
    if args.probe == ProbeMode::Off {
        eprintln!("vethtrace: ARP/neighbour probes: off");
        return Ok(None);
    }
    if args.drops || args.summary {
        // Their events would not be shown: do not pay for them.
        return Ok(None);
    }
    match probes::start(ebpf, args.probe, btf) {
        Ok(p) => {
            eprintln!("vethtrace: ARP/neighbour probes: {} ({})", p.mode, p.targets.join(", "));
            Ok(Some(p))
        }
        Err(e) if args.probe != ProbeMode::Auto => Err(anyhow::Error::new(e).context("--probe")),
        Err(e) => {
            eprintln!("vethtrace: warning: the ARP/neighbour path is not traced: {e}");
            Ok(None)
        }
    }
}

fn open_output(args: &TraceArgs) -> anyhow::Result<Box<dyn Write>> {
    Ok(match &args.write {
        Some(path) => Box::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?),
        None => Box::new(io::stdout()),
    })
}

pub async fn run(args: &TraceArgs) -> anyhow::Result<Counters> {
    let filter = IfaceFilter::new(&args.iface)?;
    caps::check()?;
    let mut ebpf = ebpf::load(args.ring_size)?;
    // Parsed once for the drop and the ARP/neighbour programs' layouts (a few MB of BTF).
    let kernel_btf = KernelBtf::load()?;
    let mut collector = Collector::new(&mut ebpf)?;
    let backend = Backend::choose(args.tc_mode)?;
    let attacher = Attacher::new(&mut ebpf, backend)?;
    let mut drop_probe = if args.no_drops {
        None
    } else {
        match DropProbe::start(&mut ebpf, &kernel_btf) {
            Ok(probe) => Some(probe),
            Err(e) if args.drops || args.summary => return Err(anyhow::Error::new(e).context("tracing drops")),
            Err(e) => {
                eprintln!("vethtrace: warning: drops are not traced: {e}");
                None
            }
        }
    };
    let probes = start_probes(&mut ebpf, args, &kernel_btf)?;
    let mut tracing = Tracing { filter, attacher, ebpf };
    // Subscribe before the dump so that nothing falls between the two.
    let (netlink, mut notifications) = mirror::subscribe()?;
    let node = Mirror::load(&netlink).await?;
    let mut sink = Sink {
        format: match args.output {
            OutputFormat::Text => Format::Text,
            OutputFormat::Json => Format::Json,
        },
        buf: Vec::with_capacity(1 << 16),
        out: BufWriter::with_capacity(1 << 16, open_output(args)?),
        clock: Clock::now(),
        mirror: node,
        counters: Counters::default(),
        show_packets: !args.drops && !args.summary,
        show_drops: !args.summary,
        drop_names: drop_probe.as_mut().map(|p| std::mem::take(&mut p.names)),
        drop_summary: Summary::default(),
        probe_mode: probes.as_ref().map(|p| p.mode),
    };
    for change in sink.mirror.present_links() {
        tracing.apply(change);
    }
    if let Some(probe) = &mut drop_probe {
        probe.sync_addrs(&sink.mirror, |i| tracing.attacher.is_attached(i));
    }
    // Routes changed since the drop filter's addresses were last set (synced once a second,
    // not per notification: a flood of route changes must not rescan the table each time).
    let mut routes_dirty = false;
    let describe = tracing.filter.describe();
    eprintln!(
        "vethtrace: tracing {} interface(s) matching {describe} via {}; Ctrl-C to stop",
        tracing.attacher.count(),
        backend.name()
    );
    if tracing.attacher.count() == 0 {
        eprintln!("vethtrace: no interface matches {describe} yet; waiting for one to appear");
    }
    // Handlers before the ready file: a script that signals as soon as it sees the file must
    // get the flush, the detach and the counters, not the default action.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    if let Some(path) = &args.ready_file {
        std::fs::write(path, b"ready\n").with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let deadline = tokio::time::sleep(args.duration.map_or(Duration::MAX / 4, Duration::from_secs_f64));
    tokio::pin!(deadline);
    let mut reported_lost = 0;
    loop {
        tokio::select! {
            // In this order: network changes before events, so that an event is annotated with
            // the state the kernel announced before it; signals and the tick before events, so
            // that a busy ring never starves them (events are always ready under load).
            biased;
            notification = notifications.next() => match notification {
                // A failed re-dump leaves the mirror as it was: annotations may lag, tracing
                // goes on.
                Some((msg, _)) => match sink.mirror.handle(&netlink, msg).await {
                    Ok(changes) => {
                        routes_dirty = true;
                        changes.into_iter().for_each(|change| tracing.apply(change));
                    }
                    Err(e) => eprintln!("vethtrace: warning: {e}; route/neighbour annotations may be stale"),
                },
                None => anyhow::bail!("the netlink monitor closed"),
            },
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            () = &mut deadline => break,
            _ = tick.tick() => {
                if routes_dirty && let Some(probe) = &mut drop_probe {
                    probe.sync_addrs(&sink.mirror, |i| tracing.attacher.is_attached(i));
                    routes_dirty = false;
                }
                let lost = collector.lost();
                if lost > reported_lost {
                    eprintln!(
                        "vethtrace: {} events lost ({lost} in all): the ring buffer was full; try a larger --ring-size",
                        lost - reported_lost
                    );
                    reported_lost = lost;
                }
            }
            drained = collector.drain(|b| sink.record(b)) => {
                drained?;
                match sink.flush() {
                    // The reader went away (`vethtrace | head`): stop as on Ctrl-C.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
                    other => other.context("writing events")?,
                }
            }
        }
    }
    loop {
        let n = collector.drain_now(|b| sink.record(b));
        match sink.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
            other => other.context("writing events")?,
        }
        if n < collect::BATCH {
            break;
        }
    }
    if sink.drop_names.is_some() {
        match sink.finish_summary(args.summary) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            other => other.context("writing the drop summary")?,
        }
    }
    tracing.attacher.detach_all();
    sink.counters.lost = collector.lost();
    Ok(sink.counters)
}
