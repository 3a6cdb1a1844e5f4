//! The enrich stage: a ring-buffer record in, a typed [`Record`] out — decoded, named from the
//! mirror (interface names), timed on the wall clock, annotated with the route and neighbour,
//! drops named (reason, location, cause) and counted for the summary.
//!
//! It decides nothing about formats: the writers do that with the record.

use std::{borrow::Cow, sync::Arc};

use crate::{
    annotate::cache::AnnotationCache,
    drops::{self, DropNames, arpwatch::ArpWatch, summary::Summary},
    events::{
        ArpRecord, Decoded, Decoder, DropEvent, DropRecord, Event, NamedDrop, NeighRecord, PacketEvent, PacketRecord,
        Place, Record,
    },
    metrics::{self, Metrics},
    mirror::Mirror,
    pods::{Pod, PodIndex, PodReader},
    probes,
};

/// What a finished trace reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Records handed to the writers.
    pub events: u64,
    /// Drop events received (shown or not).
    pub drops: u64,
    pub lost: u64,
    pub undecodable: u64,
    /// Sections of a kind or version this build does not know, skipped.
    pub unknown_sections: u64,
    /// Failures the eBPF programs counted (`tracer_common::errsite`), all sites.
    pub kernel_errors: u64,
    /// Packet records whose frame the expression's translation matched (the rest, with an
    /// expression: the interpreter's).
    pub translated: u64,
}

/// Converts kernel monotonic timestamps to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    wall_minus_mono_ns: i128,
}

impl Clock {
    pub(crate) fn now() -> Self {
        let ns = |clock| {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: `ts` is a valid out-pointer for clock_gettime.
            unsafe { libc::clock_gettime(clock, &mut ts) };
            i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
        };
        Self { wall_minus_mono_ns: ns(libc::CLOCK_REALTIME) - ns(libc::CLOCK_MONOTONIC) }
    }

    pub(crate) fn wall(self, mono_ns: u64) -> i128 {
        i128::from(mono_ns) + self.wall_minus_mono_ns
    }
}

/// Which records go on to the writers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shown {
    /// Packets and ARP/neighbour events (not with `--drops`/`--summary`).
    pub packets: bool,
    /// Drops (not with `--summary`).
    pub drops: bool,
}

pub(crate) struct Enricher {
    /// The node's network state: interface names and everything the annotation looks up.
    pub mirror: Mirror,
    clock: Clock,
    decoder: Decoder,
    pub counters: Counters,
    shown: Shown,
    /// `None` when drops are not traced.
    pub drop_names: Option<DropNames>,
    pub drop_summary: Summary,
    /// The ARP/neighbour probes' mode, `None` when none attached.
    probe_mode: Option<probes::Mode>,
    /// Who is behind each interface.
    pods: Option<PodReader>,
    /// `--metrics`: counters updated for every record, shown or not, before anything else.
    pub metrics: Option<Metrics>,
    /// Drop hunting: the pods' ARP requests the node leaves unanswered.
    arp_watch: ArpWatch,
    /// Packets' annotations, rendered once per flow while the mirror stays the same.
    pub annotations: AnnotationCache,
}

impl Enricher {
    pub(crate) fn new(
        mirror: Mirror,
        shown: Shown,
        drop_names: Option<DropNames>,
        probe_mode: Option<probes::Mode>,
    ) -> Self {
        Self {
            mirror,
            clock: Clock::now(),
            decoder: Decoder::default(),
            counters: Counters::default(),
            shown,
            drop_names,
            drop_summary: Summary::default(),
            probe_mode,
            pods: None,
            metrics: None,
            arp_watch: ArpWatch::default(),
            annotations: AnnotationCache::default(),
        }
    }

    /// Names the pod of every event from `index`.
    pub(crate) fn with_pods(mut self, index: PodIndex) -> Self {
        self.pods = Some(PodReader::new(index));
        self
    }

    /// The typed record for `bytes`, or `None` when it is not shown (or not decodable: counted).
    pub(crate) fn enrich<'a>(&'a mut self, bytes: &'a [u8]) -> Option<Record<'a>> {
        let decoded = match self.decoder.decode(bytes) {
            Ok(d) => d,
            Err(e) => {
                self.counters.undecodable += 1;
                if let Some(m) = &self.metrics {
                    m.undecodable(); // metrics
                }
                log::debug!("skipped a record: {e}");
                return None;
            }
        };
        self.counters.unknown_sections = self.decoder.unknown_sections;
        if let Some(pods) = &mut self.pods {
            pods.refresh();
        }
        let Decoded { event, frame } = decoded;
        metrics::count(self.metrics.as_ref(), &event); // metrics: packets, ARP, neighbours
        match &event {
            Event::Neigh(ev) => self.mirror.apply_neigh_probe(ev),
            Event::Packet(ev) if ev.translated => self.counters.translated += 1,
            _ => {}
        }
        match event {
            Event::Drop(ev) => self.drop(ev, frame),
            Event::Packet(ev) if !self.shown.packets => self.arp_finding(&ev, frame),
            _ if !self.shown.packets => None,
            Event::Packet(ev) => {
                self.counters.events += 1;
                let place = place(&self.mirror, self.pods.as_ref(), self.clock, ev.ifindex, ev.header.ts_ns);
                let annotation = self.annotations.get(&self.mirror, &ev);
                Some(Record::Packet(PacketRecord { place, ev, annotation, frame }))
            }
            Event::Arp(ev) => {
                let mode = self.probe_mode?;
                self.counters.events += 1;
                Some(Record::Arp(ArpRecord { place: self.place(ev.ifindex, ev.header.ts_ns), ev, mode }))
            }
            Event::Neigh(ev) => {
                let mode = self.probe_mode?;
                self.counters.events += 1;
                Some(Record::Neigh(NeighRecord { place: self.place(ev.ifindex, ev.header.ts_ns), ev, mode }))
            }
        }
    }

    fn place(&self, ifindex: u32, ts_ns: u64) -> Place<'_> {
        place(&self.mirror, self.pods.as_ref(), self.clock, ifindex, ts_ns)
    }

    fn drop<'a>(&'a mut self, ev: DropEvent, frame: crate::events::Captured<'a>) -> Option<Record<'a>> {
        let names = self.drop_names.as_ref()?;
        if names.is_ipv6_control_noise(&ev) || drops::podside::is_pod_noise(names, &ev) {
            return None;
        }
        let dev = (ev.ifindex != 0).then(|| iface_name(&self.mirror, ev.ifindex));
        let unanswered = self.arp_watch.last_unanswered(ev.ifindex);
        let named = drops::name::name_with(names, &self.mirror, &ev, dev.as_deref(), unanswered);
        let symbol = names.symbol(&ev);
        sink!(self).deliver(named, dev.unwrap_or(Cow::Borrowed("-")), symbol, frame)
    }

    /// ARP_UNANSWERED: a pod's ARP request on a traced cali the node leaves unanswered
    /// (drops mode: the TC programs send ARP frames only).
    fn arp_finding<'a>(&'a mut self, ev: &PacketEvent, frame: crate::events::Captured<'a>) -> Option<Record<'a>> {
        self.drop_names.as_ref()?;
        let finding = self.arp_watch.observe(&self.mirror, ev)?;
        let dev = iface_name(&self.mirror, ev.ifindex);
        let named = drops::podside::finding_drop(ev, &finding, &dev);
        sink!(self).deliver(named, dev, None, frame)
    }
}

/// Where a named drop goes: the summary, the metrics, the counters, and a record when drops
/// are shown. Borrowed field by field from the [`Enricher`], beside the mirror the drop reads.
struct Sink<'s> {
    summary: &'s mut Summary,
    counters: &'s mut Counters,
    metrics: Option<&'s Metrics>,
    shown: Shown,
    pods: Option<&'s PodReader>,
    clock: Clock,
}

macro_rules! sink {
    ($e:expr) => {
        Sink {
            summary: &mut $e.drop_summary,
            counters: &mut $e.counters,
            metrics: $e.metrics.as_ref(),
            shown: $e.shown,
            pods: $e.pods.as_ref(),
            clock: $e.clock,
        }
    };
}
use sink;

impl Sink<'_> {
    fn deliver<'a>(
        self,
        named: NamedDrop<'a>,
        iface: Cow<'a, str>,
        symbol: Option<&str>,
        frame: crate::events::Captured<'a>,
    ) -> Option<Record<'a>> {
        let ev = named.ev;
        self.summary.add(named.reason_or_location(), &iface, &ev.packet);
        if let Some(m) = self.metrics {
            // metrics: the reason, or the dropping function on kernels without reasons.
            m.dropped(ev.ifindex, &iface, named.reason.as_deref().or(symbol).unwrap_or("unknown"));
        }
        self.counters.drops += 1;
        if !self.shown.drops {
            return None;
        }
        self.counters.events += 1;
        let pod = self.drop_pod(&iface, &ev.packet);
        let ts_ns = ev.header.ts_ns;
        let place = Place { iface, ifindex: ev.ifindex, ts_ns, wall_ns: self.clock.wall(ts_ns), pod };
        Some(Record::Drop(Box::new(DropRecord { place, drop: named, frame })))
    }

    /// A drop's pod: the device's, else the one whose address the packet carries.
    fn drop_pod(&self, iface: &str, packet: &tracer_common::Packet) -> Option<Arc<Pod>> {
        let pods = self.pods?;
        let view = crate::packet::PacketView(packet);
        pods.by_ifname(iface)
            .or_else(|| view.src_ip().and_then(|ip| pods.by_ip(ip)))
            .or_else(|| view.dst_ip().and_then(|ip| pods.by_ip(ip)))
    }
}

/// Where and when an event on `ifindex` at `ts_ns` happened.
fn place<'a>(mirror: &'a Mirror, pods: Option<&PodReader>, clock: Clock, ifindex: u32, ts_ns: u64) -> Place<'a> {
    let iface = iface_name(mirror, ifindex);
    let pod = pods.and_then(|p| p.by_ifname(&iface));
    Place { iface, ifindex, ts_ns, wall_ns: clock.wall(ts_ns), pod }
}

/// The interface's name in the mirror, or `if<N>`.
fn iface_name(mirror: &Mirror, ifindex: u32) -> Cow<'_, str> {
    mirror.links.name(ifindex).map_or_else(|| Cow::Owned(format!("if{ifindex}")), Cow::Borrowed)
}
