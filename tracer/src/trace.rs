//! The default command: attach to the matching interfaces (and to those that appear later),
//! stream events until Ctrl-C/SIGTERM, then flush, detach and report counters.
//!
//! The flow: ring buffer ([`collect`]) → the pipeline ([`crate::pipeline`]: decode, place,
//! analyse, observe) → writers ([`crate::writers`]: text/JSON lines, pcapng). The session owns
//! the node's state (the mirror): netlink notifications keep it and the set of traced
//! interfaces live in the same loop, and it hands the pod index its links.

use std::{io, time::Duration};

use anyhow::Context as _;
use aya::Ebpf;
use futures::StreamExt as _;
use netlink_packet_core::NetlinkMessage;
use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    sync::watch,
};

pub use crate::pipeline::Counters;
use crate::{
    attach::Attacher,
    caps,
    cli::TraceArgs,
    collect::{self, Collector, InKernelErrors},
    drops::DropProbe,
    fibgen::FibGeneration,
    filter::Filter,
    hooks::Kernel,
    ifaces::IfaceFilter,
    metrics::{self, Interfaces, Metrics},
    mirror::{self, Dump, Mirror, MirrorError, Netlink, Notifications, Redump, RtMessage, links::LinkChange},
    output::Format,
    journey::JourneyProbe,
    pipeline::{Analyser, Pipeline, Shown, journeys::Journeys, paths::Paths},
    ruleset::{Read, RulesetModel, reader::Reader},
    pods::{self, NodeLinks, PodIndex},
    writers::{Outputs, is_closed},
};

/// The pipeline and the writers: what a drained record goes through.
struct Sink {
    pipeline: Pipeline,
    outputs: Outputs,
    /// The first write error (a drain callback cannot return one).
    failed: Option<io::Error>,
}

impl Sink {
    fn record(&mut self, node: &mut Mirror, ruleset: Option<&mut RulesetModel>, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if let Some(rec) = self.pipeline.run(node, ruleset, bytes)
            && let Err(e) = self.outputs.write(&rec)
        {
            self.failed = Some(e);
        }
    }

    /// The held netfilter drops that `ruleset` names now, written.
    fn release(&mut self, ruleset: &mut RulesetModel) {
        let Self { pipeline, outputs, failed } = self;
        pipeline.release(ruleset, &mut |rec| {
            if failed.is_none()
                && let Err(e) = outputs.write(rec)
            {
                *failed = Some(e);
            }
        });
    }

    /// Sends what the last drain wrote; `Ok(false)` when the reader went away.
    fn flush(&mut self) -> anyhow::Result<bool> {
        let result = match self.failed.take() {
            Some(e) => Err(e),
            None => self.outputs.flush(),
        };
        match result {
            Err(e) if is_closed(&e) => Ok(false),
            other => other.map(|()| true).context("writing events"),
        }
    }

    /// `--journey`: writes the journeys that timed out (all with `now_ns == u64::MAX`) and
    /// stops following their packets in the kernel.
    fn expire(&mut self, node: &Mirror, now_ns: u64, mut probe: Option<&mut JourneyProbe>) {
        let ended = self.pipeline.expire(node, now_ns);
        for (rec, (skbaddr, id)) in ended {
            if let Some(p) = probe.as_deref_mut() {
                p.forget(skbaddr, id);
            }
            if self.failed.is_none()
                && let Err(e) = self.outputs.write(&rec)
            {
                self.failed = Some(e);
            }
        }
    }

    /// At exit: the drop table to the line output (`--summary`) or to standard error.
    fn finish_summary(&mut self, to_output: bool) -> anyhow::Result<()> {
        let summary = &self.pipeline.observers.summary;
        match &mut self.outputs.lines {
            Some(lines) if to_output => {
                let mut buf = Vec::new();
                match lines.format() {
                    Format::Json => summary.write_json(&mut buf)?,
                    Format::Text => buf.extend_from_slice(summary.table().as_bytes()),
                }
                lines.extend(&buf);
                self.flush().context("writing the drop summary").map(drop)
            }
            _ => {
                if !summary.is_empty() {
                    log::info!("drops by reason, interface and flow:\n{}", summary.table().trim_end());
                }
                Ok(())
            }
        }
    }
}

/// Interfaces attached before vethtrace says it is ready; the rest are attached one at a time
/// between drains. A TCX attach waits for an RCU grace period (~20 ms here), so 500 pods would
/// otherwise keep the first event waiting ~10 s.
const FIRST_BATCH: usize = 16;
/// How long one turn of the event loop may spend attaching from the backlog.
const ATTACH_TURN: Duration = Duration::from_millis(20);

/// Interfaces known by index, which of them are traced, and which wait to be attached.
struct Tracing {
    filter: IfaceFilter,
    attacher: Attacher,
    ebpf: Ebpf,
    pending: std::collections::VecDeque<(u32, String)>,
    /// Attached since the last progress line, and the size of the backlog then.
    progress: (usize, usize),
    /// `--metrics`: told which interfaces are traced, under which name (and pod).
    metrics: Option<Interfaces>,
    /// Who is behind each interface (the metrics' `pod` label).
    pods: PodIndex,
}

impl Tracing {
    fn apply(&mut self, change: LinkChange) {
        match change {
            LinkChange::Present { index, name } => {
                let wanted = self.filter.matches(&name);
                self.pending.retain(|(i, _)| *i != index);
                if wanted && !self.attacher.is_attached(index) {
                    self.pending.push_back((index, name));
                } else if !wanted && self.attacher.is_attached(index) {
                    self.attacher.detach(index);
                    log::debug!("{name} no longer matches; detached");
                    if let Some(m) = &self.metrics {
                        m.untraced(index); // metrics
                    }
                } else if let Some(m) = &self.metrics
                    && wanted
                {
                    // metrics: a traced interface renamed, or its pod became known or changed
                    m.traced(index, &name, self.pod_label(&name).as_deref());
                }
            }
            LinkChange::Removed { index, name } => {
                self.pending.retain(|(i, _)| *i != index);
                if self.attacher.is_attached(index) {
                    log::debug!("{name} went away");
                }
                self.attacher.detach(index);
                if let Some(m) = &self.metrics {
                    m.untraced(index); // metrics
                }
            }
        }
    }

    /// The metrics' `pod` label of interface `name`: `namespace/name`, `None` when unknown.
    fn pod_label(&self, name: &str) -> Option<String> {
        self.pods.by_ifname(name).map(|p| format!("{}/{}", p.namespace, p.name))
    }

    /// Attaches the next waiting interface; `false` when none waits.
    fn attach_next(&mut self) -> bool {
        let Some((index, name)) = self.pending.pop_front() else { return false };
        match self.attacher.attach(&mut self.ebpf, index, &name) {
            Ok(()) => {
                log::debug!("tracing {name} (ifindex {index})");
                if let Some(m) = &self.metrics {
                    m.traced(index, &name, self.pod_label(&name).as_deref()); // metrics: its labels
                }
            }
            Err(e) => log::warn!("{e:#}"),
        }
        true
    }

    /// Attaches from the backlog for about `budget` (at least one).
    fn attach_for(&mut self, budget: Duration) {
        let until = std::time::Instant::now() + budget;
        while self.attach_from_backlog() && std::time::Instant::now() < until {}
    }

    /// One attach from the backlog, with a progress line every 50 and when it is done.
    fn attach_from_backlog(&mut self) -> bool {
        if !self.attach_next() {
            return false;
        }
        // Progress only for the backlog found at start (a pod that appears later is one line
        // of the log, not a progress report).
        if self.progress.1 == 0 {
            return true;
        }
        self.progress.0 += 1;
        let done = self.progress.0;
        let of = self.progress.1.max(done + self.pending.len());
        if self.pending.is_empty() || done.is_multiple_of(50) {
            log::info!("attached {done} of {of} more interface(s) ({} traced)", self.attacher.count());
        }
        if self.pending.is_empty() {
            self.progress = (0, 0);
        }
        true
    }

    /// The first interfaces at once; the rest wait for the event loop.
    fn attach_first_batch(&mut self) {
        for _ in 0..FIRST_BATCH {
            if !self.attach_next() {
                break;
            }
        }
        self.progress = (0, self.pending.len());
    }
}

/// What the pipeline hands the writers: with `--drops`/`--summary` no packet, with `--summary` no
/// drop line either, with `--journey` only journeys, and with `--output none` without `-w`
/// nothing (only counted).
fn shown(args: &TraceArgs) -> Shown {
    let quiet = args.writes_no_events() || args.journey;
    Shown { packets: !args.drops && !args.summary && !quiet, drops: !args.summary && !quiet }
}

/// Everything attached and running, ready for the event loop.
pub(crate) struct Session {
    collector: Collector,
    tracing: Tracing,
    drop_probe: Option<DropProbe>,
    /// `--journey`: the kernel's journeys under way.
    journey_probe: Option<JourneyProbe>,
    netlink: Netlink,
    notifications: Notifications,
    sink: Sink,
    /// The node's network state: interface names and everything the analysis looks up. The
    /// session is its one owner: the pod index gets its links and routes from here, at most
    /// [`LINKS_SETTLE`] after a change.
    node: Mirror,
    /// The netfilter ruleset, node state like the mirror: names the rule behind a netfilter
    /// drop (`None` when drops are not traced).
    ruleset: Option<RulesetModel>,
    /// Its reads, made off the event loop: the baseline once tracing runs, then one when
    /// netfilter drops wait for the read after them.
    ruleset_reads: Reader,
    /// In-kernel failures already reported on stderr.
    reported_errors: ErrorCounts,
    redumps: Redumps,
    /// Bumped on every netlink change: voids the kernel's cached FIB verdicts.
    fib_generation: FibGeneration,
    /// Who is behind each interface; wakes `--pod` selection when it changes.
    pods: PodIndex,
    node_links: watch::Sender<NodeLinks>,
    turns: Turns,
}

/// Changes that arrive together (a pod's link and routes) reach the pod index once.
const LINKS_SETTLE: Duration = Duration::from_millis(20);

type ErrorCounts = [u64; tracer_common::errsite::SLOTS as usize];

impl Session {
    async fn start(args: &TraceArgs, outputs: Outputs, expression: Option<&Filter>) -> anyhow::Result<Self> {
        let filter = IfaceFilter::new(&args.select.iface)?;
        // What can end the start-up comes first (privileges, BTF, the programs and the ring,
        // netlink, the metrics port), so that a failing start says one line, and that line.
        caps::check()?;
        let Kernel { mut ebpf, collector, attacher, drops: mut drop_probe, probes, journeys: journey_probe } =
            Kernel::start(args, expression)?;
        let fib_generation = FibGeneration::take(&mut ebpf)?;
        // Subscribe before the dump so that nothing falls between the two.
        let (netlink, notifications) = mirror::subscribe()?;
        let node = Mirror::load(&netlink).await?;
        // metrics: the counters and their HTTP endpoint (bound now: a port in use fails here).
        let mode = metrics::ModeInfo::new(attacher.backend().name(), probes.as_ref().map(|p| p.mode), drop_probe.is_some());
        let metrics = match args.metrics {
            Some(addr) => Some(metrics::start(addr, &mode, metrics::KernelCounts::take(&mut ebpf)?)?),
            None => None,
        };
        // Pod identity cannot fail the start (events then carry no pod): found and told last.
        let (node_links, links) = watch::channel(pods::node_links(&node));
        let (pods, pod_report) = pods::start(&args.select.pods, links).await;
        pod_report.print();
        let filter = filter.with_pods(&args.select.pod, pods.clone());
        let drop_names = drop_probe.as_mut().map(|p| std::mem::take(&mut p.names));
        let analyser = Analyser::new(drop_names, probes.as_ref().map(|p| p.mode));
        let mut pipeline = Pipeline::new(shown(args), analyser, Some(pods.clone()));
        pipeline.observers.metrics = metrics;
        pipeline.observers.top = args.top.then(crate::pipeline::tally::Tally::default); // top: its per-interface tallies
        pipeline.journeys =
            args.journey.then(|| Journeys::new(Duration::from_secs_f64(args.journey_timeout), args.journey_hops, args.journey_max));
        pipeline.observers.paths = args.journey.then(Paths::default);
        let metrics = pipeline.observers.metrics.as_ref().map(Metrics::interfaces);
        let tracing =
            Tracing { filter, attacher, ebpf, pending: Default::default(), progress: (0, 0), metrics, pods: pods.clone() };
        // The ruleset's change watch; its first read (the baseline the first netfilter drop is
        // compared with) is made off the event loop once it runs, after the ready line.
        let ruleset = drop_probe.as_ref().map(|_| RulesetModel::start());
        let mut session = Self {
            collector,
            tracing,
            drop_probe,
            journey_probe,
            netlink,
            notifications,
            sink: Sink { pipeline, outputs, failed: None },
            node,
            ruleset,
            ruleset_reads: Reader::default(),
            reported_errors: ErrorCounts::default(),
            redumps: Redumps::default(),
            fib_generation,
            pods,
            node_links,
            turns: Turns::default(),
        };
        session.apply_present_links();
        session.tracing.attach_first_batch();
        session.sync_drop_addrs();
        Ok(session)
    }

    fn sync_drop_addrs(&mut self) {
        if let Some(probe) = &mut self.drop_probe {
            let attacher = &self.tracing.attacher;
            probe.sync_addrs(&self.node, |i| attacher.is_attached(i));
        }
    }

    fn announce(&self, backend: &str) {
        let describe = self.tracing.filter.describe();
        let more = match self.tracing.pending.len() {
            0 => String::new(),
            n => format!(", {n} more being attached"),
        };
        log::info!(
            "tracing {} interface(s) matching {describe} via {backend}{more}{}; Ctrl-C to stop",
            self.tracing.attacher.count(),
            metrics::startup_note(self.sink.pipeline.observers.metrics.as_ref()), // metrics: where they are served
        );
        if self.tracing.attacher.count() == 0 {
            log::info!("no interface matches {describe} yet; waiting for one to appear");
        }
    }

    /// A netlink notification: the mirror, then the traced set; a re-dump it calls for runs
    /// in the background.
    fn on_notification(&mut self, msg: NetlinkMessage<RtMessage>) {
        self.fib_generation.bump();
        let (changes, redump) = self.node.handle(&msg);
        changes.into_iter().for_each(|change| self.tracing.apply(change));
        self.redumps.note(msg);
        if let Some(what) = redump {
            self.redumps.request(what, &self.netlink);
        }
    }

    /// A finished re-dump: taken in, then the notifications that came while it ran applied
    /// again. A failed one leaves the mirror as it was: annotations may lag, tracing goes on.
    fn on_dump(&mut self, result: Result<Dump, MirrorError>) {
        let missed = self.redumps.finish();
        match result {
            Ok(dump) => {
                self.fib_generation.bump();
                let changes = self.node.take_dump(dump);
                changes.into_iter().for_each(|change| self.tracing.apply(change));
                for msg in missed {
                    self.on_notification(msg);
                }
            }
            Err(e) => log::warn!("{e}; route/neighbour annotations may be stale"),
        }
        self.redumps.start_queued(&self.netlink);
    }

    /// A read of the ruleset is under way, or due: the baseline is not in, or netfilter drops
    /// wait for the read after them.
    fn wants_read(&self) -> bool {
        self.ruleset_reads.is_running()
            || self.sink.pipeline.waiting() > 0
            || self.ruleset.as_ref().is_some_and(RulesetModel::wants_baseline)
    }

    /// A read of the ruleset is in: the held netfilter drops it names are written.
    fn on_read(&mut self, read: Read) {
        if let Some(ruleset) = &mut self.ruleset {
            ruleset.take(read);
            self.sink.release(ruleset);
        }
    }

    /// At exit: the netfilter drops still held, named with a last read (or two: the one under
    /// way may have begun before them) and written.
    async fn name_held(&mut self) {
        if self.sink.pipeline.waiting() > 0 {
            log::debug!("{} netfilter drops held at exit: named with a last read", self.sink.pipeline.waiting());
        }
        while self.sink.pipeline.waiting() > 0 && self.ruleset.is_some() {
            let at = self.ruleset.as_ref().map_or(0, RulesetModel::next_read_ns);
            let read = self.ruleset_reads.next(at).await;
            self.on_read(read);
        }
    }

    /// Drains what is left in the ring at exit; `false` when the reader went away.
    fn drain_rest(&mut self) -> anyhow::Result<()> {
        loop {
            let n = self.collector.drain_now(|b| self.sink.record(&mut self.node, self.ruleset.as_mut(), b));
            if !self.sink.flush()? || n < collect::BATCH {
                return Ok(());
            }
        }
    }
}

/// Background re-dumps of the mirror: at most one runs; a request while it runs is queued (a
/// full one supersedes a routes one), and the notifications that arrive meanwhile are kept,
/// to be applied again once the dump is in (the dump may predate them).
#[derive(Default)]
struct Redumps {
    running: Option<tokio::task::JoinHandle<Result<Dump, MirrorError>>>,
    queued: Option<Redump>,
    since: Vec<NetlinkMessage<RtMessage>>,
}

impl Redumps {
    fn request(&mut self, what: Redump, netlink: &Netlink) {
        if self.running.is_some() {
            self.queued = self.queued.max(Some(what));
            return;
        }
        self.since.clear();
        self.running = Some(tokio::spawn(what.run(netlink.clone())));
    }

    fn note(&mut self, msg: NetlinkMessage<RtMessage>) {
        if self.running.is_some() {
            self.since.push(msg);
        }
    }

    /// The running dump's result (pending forever when none runs).
    async fn finished(&mut self) -> Result<Dump, MirrorError> {
        match &mut self.running {
            Some(task) => task.await.unwrap_or(Err(MirrorError::Closed)),
            None => std::future::pending().await,
        }
    }

    /// The dump is done: the notifications that came while it ran.
    fn finish(&mut self) -> Vec<NetlinkMessage<RtMessage>> {
        self.running = None;
        std::mem::take(&mut self.since)
    }

    fn start_queued(&mut self, netlink: &Netlink) {
        if let Some(what) = self.queued.take() {
            self.request(what, netlink);
        }
    }
}

/// Why the loop ended.
enum Stop {
    Signal,
    ReaderGone,
}

/// Signals and the deadline that end a trace.
struct Stops {
    sigint: Signal,
    sigterm: Signal,
}

/// What a run shows besides the writers' lines, told once a second and of every input it
/// waits for: `vethtrace top`'s view. Either may end the run (`Ok(false)`).
pub(crate) trait Frontend {
    type Input;
    /// The next input (pending forever when there is none to wait for).
    async fn input(&mut self) -> Self::Input;
    fn on_input(&mut self, input: Self::Input, s: &mut Session) -> anyhow::Result<bool>;
    /// After the session's own tick.
    fn on_tick(&mut self, s: &mut Session) -> anyhow::Result<bool>;
}

/// The plain trace: lines only.
struct Lines;

impl Frontend for Lines {
    type Input = ();

    async fn input(&mut self) {
        std::future::pending().await
    }

    fn on_input(&mut self, (): (), _: &mut Session) -> anyhow::Result<bool> {
        Ok(true)
    }

    fn on_tick(&mut self, _: &mut Session) -> anyhow::Result<bool> {
        Ok(true)
    }
}

async fn event_loop<F: Frontend>(s: &mut Session, front: &mut F, stops: &mut Stops, duration: Option<f64>) -> anyhow::Result<Stop> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let deadline = tokio::time::sleep(duration.map_or(Duration::MAX / 4, Duration::from_secs_f64));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            // In this order: network changes before events, so that an event is annotated with
            // the state the kernel announced before it; signals and the tick before events, so
            // that a busy ring never starves them (events are always ready under load).
            biased;
            notification = s.notifications.next() => match notification {
                Some((msg, _)) => {
                    s.on_notification(msg);
                    s.turns.node_changed();
                }
                None => anyhow::bail!("the netlink monitor closed"),
            },
            dump = s.redumps.finished(), if s.redumps.running.is_some() => {
                s.on_dump(dump);
                s.turns.node_changed();
            }
            () = tokio::time::sleep_until(s.turns.links_at.unwrap_or_else(tokio::time::Instant::now)), if s.turns.links_at.is_some() => {
                s.turns.links_at = None;
                s.node_links.send_replace(pods::node_links(&s.node));
            }
            () = s.pods.changed(), if s.tracing.filter.selects_pods() || s.tracing.metrics.is_some() => s.apply_present_links(),
            _ = stops.sigint.recv() => return Ok(Stop::Signal),
            _ = stops.sigterm.recv() => return Ok(Stop::Signal),
            () = &mut deadline => return Ok(Stop::Signal),
            () = std::future::ready(()), if s.turns.attach && !s.tracing.pending.is_empty() => s.attach_turn(),
            _ = tick.tick() => {
                s.on_tick();
                if !front.on_tick(s)? {
                    return Ok(Stop::Signal);
                }
            }
            input = front.input() => if !front.on_input(input, s)? {
                return Ok(Stop::Signal);
            },
            read = s.ruleset_reads.next(s.ruleset.as_ref().map_or(0, RulesetModel::next_read_ns)), if s.wants_read() => {
                s.on_read(read);
                if !s.sink.flush()? {
                    return Ok(Stop::ReaderGone);
                }
            }
            drained = s.collector.drain(|b| s.sink.record(&mut s.node, s.ruleset.as_mut(), b)) => {
                s.turns.attach = true;
                drained?;
                if !s.sink.flush()? {
                    return Ok(Stop::ReaderGone);
                }
            }
        }
    }
}

/// What the event loop keeps between turns.
struct Turns {
    /// Routes changed since the drop filter's addresses were last set (synced once a second,
    /// not per notification: a flood of route changes must not rescan the table each time).
    routes_dirty: bool,
    /// Events lost, as last reported.
    reported_lost: u64,
    /// Packets not followed (`--journey`), as last reported.
    reported_unfollowed: u64,
    /// The backlog of interfaces to attach takes every other turn, so that a flood never
    /// starves it and it never starves the drain.
    attach: bool,
    /// When the node's links go to the pod index next (`None`: nothing changed).
    links_at: Option<tokio::time::Instant>,
}

impl Default for Turns {
    fn default() -> Self {
        Self { routes_dirty: false, reported_lost: 0, reported_unfollowed: 0, attach: true, links_at: None }
    }
}

impl Turns {
    /// The mirror changed: the drop filter's addresses at the next tick, the pod index soon.
    fn node_changed(&mut self) {
        self.routes_dirty = true;
        self.links_at = self.links_at.or_else(|| Some(tokio::time::Instant::now() + LINKS_SETTLE));
    }
}

impl Session {
    /// Decides for every interface the mirror knows whether it is traced. Again when pods
    /// change (`--pod`: a pod's cali may be known only after the link appeared, or stop being
    /// that pod's; metrics: its `pod` label).
    fn apply_present_links(&mut self) {
        for change in self.node.present_links() {
            self.tracing.apply(change);
        }
    }

    /// One turn of attaching from the backlog; the drop filter learns the new set at its end.
    fn attach_turn(&mut self) {
        self.turns.attach = false;
        self.tracing.attach_for(ATTACH_TURN);
        if self.tracing.pending.is_empty() {
            self.sync_drop_addrs();
        }
    }

    /// Once a second: the drop filter's addresses, losses and in-kernel failures.
    fn on_tick(&mut self) {
        self.turns.attach = true;
        if std::mem::take(&mut self.turns.routes_dirty) {
            self.sync_drop_addrs();
        }
        self.turns.reported_lost = report_lost(self.collector.lost(), self.turns.reported_lost);
        if let Some(m) = &self.sink.pipeline.observers.metrics {
            m.lost(self.turns.reported_lost); // metrics
        }
        self.reported_errors = report_errors(self.collector.errors(), self.reported_errors);
        if self.journey_probe.is_some() {
            self.sink.expire(&self.node, crate::kernel::monotonic_ns(), self.journey_probe.as_mut());
            self.turns.reported_unfollowed = report_unfollowed(self.unfollowed(), self.turns.reported_unfollowed);
        }
    }
}

/// Says on stderr how many packets were not followed since the last report (`--journey`:
/// too many journeys under way); returns the new total.
fn report_unfollowed(unfollowed: u64, reported: u64) -> u64 {
    if unfollowed > reported {
        log::info!(
            "{} packets not followed ({unfollowed} in all): --journey-max journeys were under way; the oldest end at --journey-timeout",
            unfollowed - reported,
        );
    }
    unfollowed.max(reported)
}

/// What a frontend (`vethtrace top`) reads of the session.
impl Session {
    pub(crate) fn node(&self) -> &Mirror {
        &self.node
    }

    /// The interfaces traced now, by index, with their names.
    pub(crate) fn traced(&self) -> Vec<(u32, String)> {
        let attacher = &self.tracing.attacher;
        self.node.links.iter().filter(|l| attacher.is_attached(l.index)).map(|l| (l.index, l.name.clone())).collect()
    }

    pub(crate) fn pods(&self) -> &PodIndex {
        &self.pods
    }

    /// Records lost since the start (the ring was full).
    pub(crate) fn lost(&self) -> u64 {
        self.collector.lost()
    }

    /// Packets `--journey` did not follow since the start: the kernel's map of journeys under
    /// way was full, or the collector's.
    fn unfollowed(&self) -> u64 {
        self.collector.lost_journeys() + self.sink.pipeline.journeys.as_ref().map_or(0, |j| j.refused)
    }

    /// `vethtrace top`'s tallies (`None` in a plain trace).
    pub(crate) fn tally(&mut self) -> Option<&mut crate::pipeline::tally::Tally> {
        self.sink.pipeline.observers.top.as_mut()
    }

    /// How the session runs: the TC backend, the ARP/neighbour probe mode (`off`), whether
    /// drops are traced.
    pub(crate) fn modes(&self) -> (&'static str, &'static str, bool) {
        let probe = self.sink.pipeline.analyse.probe_mode().map_or("off", crate::probes::Mode::name);
        (self.tracing.attacher.backend().name(), probe, self.drop_probe.is_some())
    }

    /// The kernel's per-interface traffic counts (taken once: the caller owns them).
    pub(crate) fn take_traffic(&mut self) -> Result<metrics::kernel_counts::TrafficMap, aya::maps::MapError> {
        metrics::kernel_counts::traffic_map(&mut self.tracing.ebpf)
    }
}

/// Says on stderr which in-kernel failures were counted since the last report.
fn report_errors(now: ErrorCounts, before: ErrorCounts) -> ErrorCounts {
    for line in InKernelErrors::describe(&now, &before) {
        log::warn!("{line}: a struct layout may be wrong for this kernel; events may be missing");
    }
    now
}

/// Says on stderr how many events were lost since the last report; returns the new total.
fn report_lost(lost: u64, reported: u64) -> u64 {
    if lost > reported {
        log::info!(
            "{} events lost ({lost} in all): the ring buffer was full; try a larger --ring-size",
            lost - reported
        );
    }
    lost.max(reported)
}

pub async fn run(args: &TraceArgs, expression: Option<&Filter>) -> anyhow::Result<Counters> {
    run_with(args, expression, |_| Ok(Lines)).await
}

/// A run with `front` (made once everything is attached) shown besides the lines; `front` is
/// dropped when the loop ends, before the session reports.
pub(crate) async fn run_with<F: Frontend>(
    args: &TraceArgs,
    expression: Option<&Filter>,
    front: impl FnOnce(&mut Session) -> anyhow::Result<F>,
) -> anyhow::Result<Counters> {
    let outputs = Outputs::open(args)?;
    let mut session = Session::start(args, outputs, expression).await?;
    session.announce(session.tracing.attacher.backend().name());
    let mut front = front(&mut session)?;
    // Handlers before the ready file: a script that signals as soon as it sees the file must
    // get the flush, the detach and the counters, not the default action.
    let mut stops = Stops { sigint: signal(SignalKind::interrupt())?, sigterm: signal(SignalKind::terminate())? };
    if let Some(path) = &args.ready_file {
        let (now, more) = (session.tracing.attacher.count(), session.tracing.pending.len());
        let text = format!("ready: {now} interface(s) attached, {more} being attached\n");
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(m) = &session.sink.pipeline.observers.metrics {
        m.set_ready(); // metrics: /readyz answers 200
    }
    let stop = event_loop(&mut session, &mut front, &mut stops, args.duration).await;
    drop(front);
    let stop = stop?;
    if matches!(stop, Stop::Signal) {
        session.drain_rest()?;
        session.name_held().await;
        // Journeys still under way are written as unfinished.
        session.sink.expire(&session.node, u64::MAX, session.journey_probe.as_mut());
        session.sink.flush()?;
    }
    if session.sink.pipeline.analyse.drop_names.is_some() {
        session.sink.finish_summary(args.summary)?;
    }
    if let Some(paths) = session.sink.pipeline.observers.paths.as_ref().filter(|p| !p.is_empty()) {
        log::info!("journeys by path:\n{}", paths.table().trim_end());
    }
    session.tracing.attacher.detach_all();
    let mut counters = session.sink.pipeline.observers.counters;
    counters.lost = session.collector.lost();
    let errors = session.collector.errors();
    report_errors(errors, session.reported_errors);
    counters.kernel_errors = errors.iter().sum();
    counters.unfollowed = session.unfollowed();
    Ok(counters)
}
