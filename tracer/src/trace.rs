//! The default command: attach to the matching interfaces (and to those that appear later),
//! stream events until Ctrl-C/SIGTERM, then flush, detach and report counters.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, BufWriter, Write},
    time::Duration,
};

use anyhow::Context as _;
use aya::Ebpf;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    attach::{Attacher, Backend},
    caps,
    cli::{OutputFormat, TraceArgs},
    collect::Collector,
    ebpf,
    event::{self, Event},
    ifaces::IfaceFilter,
    links::{self, LinkChange},
    output::{self, Format, Meta},
};

/// What a finished trace reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub events: u64,
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
    names: HashMap<u32, String>,
    counters: Counters,
}

impl Sink {
    fn record(&mut self, bytes: &[u8]) {
        match event::decode(bytes) {
            Ok(Event::Packet(ev)) => {
                let index_name;
                let iface = match self.names.get(&ev.ifindex) {
                    Some(n) => n.as_str(),
                    None => {
                        index_name = format!("if{}", ev.ifindex);
                        &index_name
                    }
                };
                let meta = Meta { iface, wall_ns: self.clock.wall(ev.header.ts_ns) };
                if output::write_packet(self.format, &mut self.buf, &ev, meta).is_ok() {
                    self.counters.events += 1;
                }
            }
            Err(e) => {
                self.counters.undecodable += 1;
                log::debug!("skipped a record: {e}");
            }
        }
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
    fn apply(&mut self, change: LinkChange, names: &mut HashMap<u32, String>) {
        match change {
            LinkChange::Present { index, name } => {
                let wanted = self.filter.matches(&name);
                names.insert(index, name.clone());
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
            LinkChange::Removed { index } => {
                if self.attacher.is_attached(index) {
                    log::info!("{} went away", names.get(&index).map_or("?", String::as_str));
                }
                self.attacher.detach(index);
                names.remove(&index);
            }
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
    let mut collector = Collector::new(&mut ebpf)?;
    let backend = Backend::choose(args.tc_mode);
    let attacher = Attacher::new(&mut ebpf, backend)?;
    let mut tracing = Tracing { filter, attacher, ebpf };
    let mut sink = Sink {
        format: match args.output {
            OutputFormat::Text => Format::Text,
            OutputFormat::Json => Format::Json,
        },
        buf: Vec::with_capacity(1 << 16),
        out: BufWriter::with_capacity(1 << 16, open_output(args)?),
        clock: Clock::now(),
        names: HashMap::new(),
        counters: Counters::default(),
    };

    let (handle, mut link_messages) = links::subscribe()?;
    for change in links::dump(&handle).await? {
        tracing.apply(change, &mut sink.names);
    }
    let describe = tracing.filter.describe();
    eprintln!(
        "vethtrace: tracing {} interface(s) matching {describe} via {}; Ctrl-C to stop",
        tracing.attacher.count(),
        backend.name()
    );
    if tracing.attacher.count() == 0 {
        eprintln!("vethtrace: no interface matches {describe} yet; waiting for one to appear");
    }
    if let Some(path) = &args.ready_file {
        std::fs::write(path, b"ready\n").with_context(|| format!("cannot write {}", path.display()))?;
    }

    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let deadline = tokio::time::sleep(args.duration.map_or(Duration::MAX / 4, Duration::from_secs_f64));
    tokio::pin!(deadline);
    let mut reported_lost = 0;
    loop {
        tokio::select! {
            drained = collector.drain(|b| sink.record(b)) => {
                drained?;
                sink.flush().context("writing events")?;
            }
            change = links::next(&mut link_messages) => match change {
                Some(Some(change)) => tracing.apply(change, &mut sink.names),
                Some(None) => {}
                None => anyhow::bail!("the netlink link monitor closed"),
            },
            _ = tick.tick() => {
                let lost = collector.lost();
                if lost > reported_lost {
                    eprintln!(
                        "vethtrace: {} events lost ({lost} in all): the ring buffer was full; try a larger --ring-size",
                        lost - reported_lost
                    );
                    reported_lost = lost;
                }
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            () = &mut deadline => break,
        }
    }
    collector.drain_now(|b| sink.record(b));
    sink.flush().context("writing events")?;
    tracing.attacher.detach_all();
    sink.counters.lost = collector.lost();
    Ok(sink.counters)
}
