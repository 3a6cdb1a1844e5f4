//! Prometheus metrics (`--metrics ADDR:PORT`): counters kept while tracing, served over HTTP by
//! [`serve`] in the Prometheus text format, or OpenMetrics when the scraper asks for it.
//!
//! The event loop calls [`Metrics`] once per decoded record and formats nothing for it. Label
//! values are resolved once per interface, when it is traced ([`Interfaces::traced`]): the counters
//! of an interface are kept by ifindex, so an event costs one integer-keyed lookup and an
//! atomic add. Labels stay bounded: interface, pod, direction, drop reason, event kind — never
//! an address or a flow.
//!
//! The `pod` label is whatever [`Interfaces::traced`] is given (`namespace/name`, empty when
//! `None`); the trace loop passes it when it attaches an interface, and calls `traced` again
//! when the pod behind an interface becomes known or changes: the interface's series then
//! carry the new label (the old ones are removed).

mod journeys;
pub(crate) mod kernel_counts;
pub(crate) mod serve;

use std::{
    cell::RefCell,
    collections::HashMap,
    rc::Rc,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family, gauge::Gauge, info::Info},
    registry::Registry,
};
use tracer_common::{
    NeighSection, arp_hook,
    arp_op::{REPLY as ARP_REPLY, REQUEST as ARP_REQUEST},
    neigh_hook, neighf,
    nud::FAILED as NUD_FAILED,
};

pub(crate) use kernel_counts::KernelCounts;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;


/// The host's view of the interface, as in the JSON output's `dir`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types, reason = "label values are lowercase")]
pub(crate) enum Direction {
    ingress,
    egress,
}

/// Which record the ring buffer delivered.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types, reason = "label values are lowercase")]
pub(crate) enum EventKind {
    packet,
    drop,
    arp,
    neigh,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IfaceLabels {
    iface: String,
    /// `namespace/name`, empty when unknown.
    pod: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirLabels {
    iface: String,
    pod: String,
    direction: Direction,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: String,
    iface: String,
    pod: String,
}

/// A netfilter drop's rule in Calico's terms: bounded by the policies the ruleset has (and
/// capped at [`POLICY_SERIES`]), never an address or a rule's position.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PolicyLabels {
    /// `policy.drop` (`deny`, `end_of_tier`, …), `ambiguous` or `unknown`.
    pub drop: String,
    /// `NetworkPolicy`, `Profile`, …; empty when the rule belongs to none.
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// Distinct policy series at most; drops beyond are counted under `name="(other)"`.
const POLICY_SERIES: usize = 1000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: EventKind,
}

/// How vethtrace runs, for `vethtrace_mode_info`.
#[derive(Debug, Clone)]
pub(crate) struct ModeInfo {
    /// ARP/neighbour probe mode (`kprobe`, `fentry`, `tracepoint`), or `off`.
    pub probe: String,
    /// `tcx` or `clsact`.
    pub tc: String,
    /// Whether drops are traced.
    pub drops: bool,
}

impl ModeInfo {
    pub(crate) fn new(tc: &str, probe: Option<crate::probes::Mode>, drops: bool) -> Self {
        Self { probe: probe.map_or("off", crate::probes::Mode::name).to_owned(), tc: tc.to_owned(), drops }
    }
}

/// The counters, with their endpoint listening on `addr` (served from a task on the current
/// tokio runtime).
pub(crate) fn start(addr: std::net::SocketAddr, mode: &ModeInfo, counts: KernelCounts) -> Result<Metrics, serve::ServeError> {
    let mut metrics = Metrics::new(mode, counts);
    metrics.endpoint = Some(serve::start(addr, &metrics)?);
    Ok(metrics)
}

/// For the startup line: where the metrics are served.
pub(crate) fn startup_note(metrics: Option<&Metrics>) -> String {
    match metrics.and_then(|m| m.endpoint) {
        Some(addr) => format!(", metrics on http://{addr}/metrics"),
        None => String::new(),
    }
}

/// The metric families, registered once.
#[derive(Default)]
struct Families {
    packets: Family<DirLabels, Counter>,
    bytes: Family<DirLabels, Counter>,
    drops: Family<DropLabels, Counter>,
    policy_drops: Family<PolicyLabels, Counter>,
    arp_requests_received: Family<IfaceLabels, Counter>,
    arp_replies_sent: Family<IfaceLabels, Counter>,
    arp_requests_sent: Family<IfaceLabels, Counter>,
    neigh_failed: Family<IfaceLabels, Counter>,
    events: Family<KindLabels, Counter>,
    lost: Counter,
    undecodable: Counter,
    interfaces: Gauge,
}

impl Families {
    fn register(&self, registry: &mut Registry) {
        let f = self.clone_handles();
        registry.register("packets", "Frames seen by TC on a traced interface", f.packets);
        registry.register("bytes", "Bytes of those frames (skb->len, from the MAC header on)", f.bytes);
        registry.register("drops", "Packets the kernel dropped that concern a traced interface, by drop reason", f.drops);
        registry.register("policy_drops", "Netfilter drops by the Calico policy or profile (or rule owner) whose rule dropped them", f.policy_drops);
        registry.register("arp_requests_received", "ARP requests the host received", f.arp_requests_received);
        registry.register("arp_replies_sent", "ARP replies the host sent (proxy ARP on a cali)", f.arp_replies_sent);
        registry.register("arp_requests_sent", "ARP requests the host sent (resolving a pod's address)", f.arp_requests_sent);
        registry.register("neigh_failed", "Neighbour entries that went FAILED", f.neigh_failed);
        registry.register("events", "Records delivered by the ring buffer, by kind", f.events);
        registry.register("events_lost", "Records the kernel could not put in the full ring buffer", f.lost);
        registry.register("events_undecodable", "Records of an unknown kind or version, skipped", f.undecodable);
        registry.register("interfaces_traced", "Interfaces with the TC programs attached", f.interfaces);
    }

    /// Second handles on the same metrics (they are reference-counted).
    fn clone_handles(&self) -> Self {
        Self {
            packets: self.packets.clone(),
            bytes: self.bytes.clone(),
            drops: self.drops.clone(),
            policy_drops: self.policy_drops.clone(),
            arp_requests_received: self.arp_requests_received.clone(),
            arp_replies_sent: self.arp_replies_sent.clone(),
            arp_requests_sent: self.arp_requests_sent.clone(),
            neigh_failed: self.neigh_failed.clone(),
            events: self.events.clone(),
            lost: self.lost.clone(),
            undecodable: self.undecodable.clone(),
            interfaces: self.interfaces.clone(),
        }
    }
}

/// The counters of one traced interface, resolved when it was attached (packets and bytes are
/// brought up to date from the kernel's counts, [`KernelCounts`]).
struct Traffic {
    packets: [Counter; 2],
    bytes: [Counter; 2],
    arp_requests_received: Counter,
    arp_replies_sent: Counter,
    arp_requests_sent: Counter,
    neigh_failed: Counter,
}

/// What is known of one interface: its labels, its traffic counters when traced, and the
/// drop counters made so far (one per reason seen on it).
struct Iface {
    labels: IfaceLabels,
    traffic: Option<Traffic>,
    drops: Vec<(Box<str>, Counter)>,
}

/// The counters the event loop updates, and the registry the HTTP server encodes.
pub(crate) struct Metrics {
    /// Packets and bytes, counted in the kernel.
    kernel: KernelCounts,
    families: Families,
    registry: Arc<Registry>,
    ifaces: Interfaces,
    kinds: [Counter; 4],
    ready: Arc<AtomicBool>,
    /// Where the endpoint listens.
    endpoint: Option<std::net::SocketAddr>,
    /// Distinct `policy_drops` series made so far.
    policy_series: std::cell::Cell<usize>,
}

/// The interfaces' labels and counters, shared by [`Metrics`] (which counts events) and
/// whatever attaches and detaches interfaces (which says which are traced, under what name).
/// Everything runs on the tracer's one thread.
#[derive(Clone)]
pub(crate) struct Interfaces(Rc<RefCell<IfaceTable>>);

struct IfaceTable {
    families: Families,
    by_index: FastMap<u32, Iface>,
    kernel: KernelCounts,
    journeys: journeys::JourneyTimes,
}

impl Interfaces {
    /// `ifindex` is traced as `name`, behind `pod` (`namespace/name`) when known. Call again
    /// when the name or the pod changes: later events count under the new labels.
    pub(crate) fn traced(&self, ifindex: u32, name: &str, pod: Option<&str>) {
        let labels = IfaceLabels { iface: name.to_owned(), pod: pod.unwrap_or_default().to_owned() };
        let mut t = self.0.borrow_mut();
        let IfaceTable { families, by_index, kernel, journeys } = &mut *t;
        if by_index.get(&ifindex).is_some_and(|known| known.labels == labels && known.traffic.is_some()) {
            return;
        }
        let traffic = families.traffic(&labels);
        kernel.track(ifindex, traffic.packets.clone(), traffic.bytes.clone());
        match by_index.get_mut(&ifindex) {
            Some(known) if known.labels == labels => known.traffic = Some(traffic),
            _ => {
                if let Some(old) = by_index.remove(&ifindex) {
                    families.remove(&old);
                    journeys.forget(&old.labels.iface);
                }
                by_index.insert(ifindex, Iface { labels, traffic: Some(traffic), drops: Vec::new() });
            }
        }
        t.count_traced();
    }

    /// `ifindex` is no longer traced (detached, or gone): its series are removed.
    pub(crate) fn untraced(&self, ifindex: u32) {
        let mut t = self.0.borrow_mut();
        if let Some(old) = t.by_index.remove(&ifindex) {
            t.families.remove(&old);
            t.journeys.forget(&old.labels.iface);
        }
        t.kernel.untrack(ifindex);
        t.count_traced();
    }

    /// Runs `f` on the traffic counters of `ifindex` when it is traced.
    fn with_traffic(&self, ifindex: u32, f: impl FnOnce(&Traffic)) {
        if let Some(t) = self.0.borrow().by_index.get(&ifindex).and_then(|i| i.traffic.as_ref()) {
            f(t);
        }
    }
}

impl IfaceTable {
    fn count_traced(&self) {
        let n = self.by_index.values().filter(|i| i.traffic.is_some()).count();
        self.families.interfaces.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

impl Metrics {
    pub(crate) fn new(mode: &ModeInfo, kernel: KernelCounts) -> Self {
        let families = Families::default();
        let mut registry = Registry::with_prefix("vethtrace");
        families.register(&mut registry);
        registry.register(
            "mode",
            "How vethtrace traces: ARP/neighbour probe mode, TC attach mode, drops on or off",
            Info::new(vec![
                ("probe".to_owned(), mode.probe.clone()),
                ("tc".to_owned(), mode.tc.clone()),
                ("drops".to_owned(), if mode.drops { "on" } else { "off" }.to_owned()),
            ]),
        );
        registry.register(
            "build",
            "vethtrace's version",
            Info::new(vec![("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned())]),
        );
        let kind = |kind| families.events.get_or_create_owned(&KindLabels { kind });
        let kinds = [kind(EventKind::packet), kind(EventKind::drop), kind(EventKind::arp), kind(EventKind::neigh)];
        let journeys = journeys::JourneyTimes::register(&mut registry);
        let table =
            IfaceTable { families: families.clone_handles(), by_index: FastMap::default(), kernel: kernel.clone(), journeys };
        Self {
            kernel,
            families,
            registry: Arc::new(registry),
            ifaces: Interfaces(Rc::new(RefCell::new(table))),
            kinds,
            ready: Arc::new(AtomicBool::new(false)),
            endpoint: None,
            policy_series: std::cell::Cell::new(0),
        }
    }

    pub(crate) fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry)
    }

    pub(crate) fn ready_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.ready)
    }

    /// The handle that says which interfaces are traced (see [`Interfaces`]).
    pub(crate) fn interfaces(&self) -> Interfaces {
        self.ifaces.clone()
    }

    /// vethtrace is tracing (its startup line): `/readyz` answers 200 from now on.
    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// A packet record delivered (its packets and bytes are counted in the kernel).
    pub(crate) fn packet(&self) {
        self.kinds[0].inc();
    }

    /// What brings packets and bytes up to date (before `/metrics` is encoded).
    pub(crate) fn kernel_counts(&self) -> KernelCounts {
        self.kernel.clone()
    }

    /// An ARP packet the host stack received or sent (`ArpEvent::hook`, `op`).
    pub(crate) fn arp(&self, ifindex: u32, hook: u8, op: u16) {
        self.kinds[2].inc();
        self.ifaces.with_traffic(ifindex, |t| {
            match (hook, op) {
                (arp_hook::RECV, ARP_REQUEST) => t.arp_requests_received.inc(),
                (arp_hook::SEND, ARP_REPLY) => t.arp_replies_sent.inc(),
                (arp_hook::SEND, ARP_REQUEST) => t.arp_requests_sent.inc(),
                _ => 0,
            };
        });
    }

    /// A journey (`--journey`): its time from `entry` to its end, by exit device (empty when
    /// it did not leave on one) and outcome.
    pub(crate) fn journey(&self, entry: &str, exit: &str, outcome: &str, seconds: f64) {
        self.ifaces.0.borrow_mut().journeys.observe(entry, exit, outcome, seconds);
    }

    /// A neighbour event: counted when the entry went FAILED.
    pub(crate) fn neigh(&self, ev: &NeighSection) {
        self.kinds[3].inc();
        if went_failed(ev) {
            self.ifaces.with_traffic(ev.ifindex, |t| {
                t.neigh_failed.inc();
            });
        }
    }

    /// A netfilter drop named by its rule's policy.
    pub(crate) fn policy_dropped(&self, mut labels: PolicyLabels) {
        let family = &self.families.policy_drops;
        if family.get(&labels).is_none() && self.policy_series.get() >= POLICY_SERIES {
            labels = PolicyLabels { drop: labels.drop, kind: String::new(), namespace: String::new(), name: "(other)".into() };
        } else if family.get(&labels).is_none() {
            self.policy_series.set(self.policy_series.get() + 1);
        }
        family.get_or_create(&labels).inc();
    }

    /// A drop on `ifindex` (0: no device), named `iface` (used when the interface is not
    /// traced, e.g. the uplink), with the kernel's `reason` (or the dropping function on
    /// kernels without reasons).
    pub(crate) fn dropped(&self, ifindex: u32, iface: &str, reason: &str) {
        self.kinds[1].inc();
        let untraced = || Iface { labels: IfaceLabels { iface: iface.to_owned(), pod: String::new() }, traffic: None, drops: Vec::new() };
        let mut t = self.ifaces.0.borrow_mut();
        let IfaceTable { families, by_index, .. } = &mut *t;
        let entry = by_index.entry(ifindex).or_insert_with(untraced);
        if entry.traffic.is_none() && entry.labels.iface != iface {
            // An untraced interface renamed since its last drop.
            families.remove(entry);
            *entry = untraced();
        }
        if let Some((_, c)) = entry.drops.iter().find(|(r, _)| &**r == reason) {
            c.inc();
            return;
        }
        let labels = DropLabels { reason: reason.to_owned(), iface: entry.labels.iface.clone(), pod: entry.labels.pod.clone() };
        let counter = families.drops.get_or_create_owned(&labels);
        counter.inc();
        entry.drops.push((reason.into(), counter));
    }

    /// The kernel's count of records lost so far (summed over CPUs).
    pub(crate) fn lost(&self, total: u64) {
        let seen = self.families.lost.get();
        if total > seen {
            self.families.lost.inc_by(total - seen);
        }
    }

    /// A record that could not be decoded.
    pub(crate) fn undecodable(&self) {
        self.families.undecodable.inc();
    }
}

impl Families {
    fn traffic(&self, l: &IfaceLabels) -> Traffic {
        let dir = |family: &Family<DirLabels, Counter>, direction| {
            family.get_or_create_owned(&DirLabels { iface: l.iface.clone(), pod: l.pod.clone(), direction })
        };
        Traffic {
            packets: [dir(&self.packets, Direction::ingress), dir(&self.packets, Direction::egress)],
            bytes: [dir(&self.bytes, Direction::ingress), dir(&self.bytes, Direction::egress)],
            arp_requests_received: self.arp_requests_received.get_or_create_owned(l),
            arp_replies_sent: self.arp_replies_sent.get_or_create_owned(l),
            arp_requests_sent: self.arp_requests_sent.get_or_create_owned(l),
            neigh_failed: self.neigh_failed.get_or_create_owned(l),
        }
    }

    /// Removes every series of `iface`.
    fn remove(&self, iface: &Iface) {
        let l = &iface.labels;
        for direction in [Direction::ingress, Direction::egress] {
            let d = DirLabels { iface: l.iface.clone(), pod: l.pod.clone(), direction };
            self.packets.remove(&d);
            self.bytes.remove(&d);
        }
        for family in [&self.arp_requests_received, &self.arp_replies_sent, &self.arp_requests_sent, &self.neigh_failed] {
            family.remove(l);
        }
        for (reason, _) in &iface.drops {
            self.drops.remove(&DropLabels { reason: reason.to_string(), iface: l.iface.clone(), pod: l.pod.clone() });
        }
    }
}

/// A timer or update that moved the entry to FAILED (a resolution on an entry already FAILED
/// is not a new failure).
pub(crate) fn went_failed(ev: &NeighSection) -> bool {
    let old_known = ev.flags & (neighf::OLD_KNOWN | neighf::OLD_SEEN) != 0;
    ev.hook != neigh_hook::RESOLVE && ev.new_state == NUD_FAILED && !(old_known && ev.old_state == NUD_FAILED)
}

#[cfg(test)]
mod tests;
