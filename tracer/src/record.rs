//! Typed records: an event with everything the collector knows about it — the interface's
//! name, wall-clock time, the route/neighbour annotation, the drop's names and cause — and the
//! frame's bytes. The enrich stage ([`crate::enrich`]) makes them; the writers
//! ([`crate::writers`]) only read them.

use std::{borrow::Cow, sync::Arc};

use crate::{
    annotate::cache::Rendered,
    drops::render::NamedDrop,
    event::{ArpEvent, Captured, NeighEvent, PacketEvent},
    output::Meta,
    pods::Pod,
    probes,
};

/// Where and when, for every kind.
#[derive(Debug, Clone)]
pub(crate) struct Place<'a> {
    /// The interface's name (`if<N>` when the mirror does not know it; `-` for a drop
    /// without a device).
    pub iface: Cow<'a, str>,
    /// The interface's index (0 when none).
    pub ifindex: u32,
    /// Wall-clock time, ns since the Unix epoch.
    pub wall_ns: i128,
    /// The pod behind the interface (drops: else the pod of the packet's address).
    pub pod: Option<Arc<Pod>>,
}

impl Place<'_> {
    pub(crate) fn meta(&self) -> Meta<'_> {
        Meta { iface: &self.iface, wall_ns: self.wall_ns, pod: self.pod.as_deref() }
    }
}

/// A frame TC saw.
pub(crate) struct PacketRecord<'a> {
    pub place: Place<'a>,
    pub ev: PacketEvent,
    /// The route/neighbour annotation, rendered (shared by the packets of one flow).
    pub annotation: &'a Rendered,
    pub frame: Captured<'a>,
}

/// A packet the kernel dropped.
pub(crate) struct DropRecord<'a> {
    pub place: Place<'a>,
    pub drop: NamedDrop<'a>,
    pub frame: Captured<'a>,
}

/// An ARP packet the host stack received or sent.
pub(crate) struct ArpRecord<'a> {
    pub place: Place<'a>,
    pub ev: ArpEvent,
    pub mode: probes::Mode,
}

/// A neighbour entry that changed or held a packet.
pub(crate) struct NeighRecord<'a> {
    pub place: Place<'a>,
    pub ev: NeighEvent,
    pub mode: probes::Mode,
}

pub(crate) enum Record<'a> {
    Packet(PacketRecord<'a>),
    /// Boxed: a drop carries its names and cause, more than twice a packet's record, and every
    /// packet record would be moved at that size.
    Drop(Box<DropRecord<'a>>),
    Arp(ArpRecord<'a>),
    Neigh(NeighRecord<'a>),
}

impl Record<'_> {
    pub(crate) fn place(&self) -> &Place<'_> {
        match self {
            Record::Packet(r) => &r.place,
            Record::Drop(r) => &r.place,
            Record::Arp(r) => &r.place,
            Record::Neigh(r) => &r.place,
        }
    }
}
