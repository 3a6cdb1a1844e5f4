//! What a ring-buffer record goes through, one stage per job:
//!
//! ```text
//! bytes ─ decode ─ place ─ analyse ─ observe ─ (shown?) ─ write
//!         events   place   analyse   observe              writers
//! ```
//!
//! - **decode** ([`crate::events::Decoder`]): the record's sections into a typed event.
//! - **place** ([`place::Placer`]): the interface's name, the pod behind it, the wall-clock time.
//! - **analyse** ([`analyse::Analyser`]): a packet's route/neighbour annotation, a drop's
//!   names and cause, the unanswered-ARP watch — the typed record.
//! - **observe** ([`observe::Observers`]): the counters, the drop summary and the metrics see
//!   every event and every named drop, shown or not, and change nothing.
//! - **write** ([`crate::writers::Outputs`]): text, JSON, pcapng.
//!
//! The node's state ([`Mirror`]) is the session's; the pipeline reads it, and takes in the one
//! change that comes through the ring itself (a neighbour probe's event) before anything reads
//! it, so that every event is analysed against the node as it was when it happened.

pub(crate) mod analyse;
pub(crate) mod observe;
pub(crate) mod place;
pub(crate) mod tally;

use crate::{
    events::{Decoded, Decoder, Event, Record},
    mirror::Mirror,
    pods::PodIndex,
    ruleset::RulesetModel,
};

pub use self::observe::Counters;
pub(crate) use self::{analyse::Analyser, observe::Observers, place::Placer};

/// Which records go on to the writers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shown {
    /// Packets and ARP/neighbour events (not with `--drops`/`--summary`).
    pub packets: bool,
    /// Drops (not with `--summary`).
    pub drops: bool,
}

pub(crate) struct Pipeline {
    decoder: Decoder,
    pub place: Placer,
    pub analyse: Analyser,
    pub observers: Observers,
    shown: Shown,
}

impl Pipeline {
    pub(crate) fn new(shown: Shown, analyse: Analyser, pods: Option<PodIndex>) -> Self {
        Self { decoder: Decoder::default(), place: Placer::new(pods), analyse, observers: Observers::default(), shown }
    }

    /// The typed record for `bytes`, or `None` when it is not shown (or not decodable: counted).
    pub(crate) fn run<'a>(
        &'a mut self,
        node: &'a mut Mirror,
        ruleset: Option<&mut RulesetModel>,
        bytes: &'a [u8],
    ) -> Option<Record<'a>> {
        let Decoded { event, frame } = match self.decoder.decode(bytes) {
            Ok(d) => d,
            Err(e) => {
                self.observers.undecodable();
                log::debug!("skipped a record: {e}");
                return None;
            }
        };
        self.observers.counters.unknown_sections = self.decoder.unknown_sections;
        self.place.refresh();
        if let Event::Neigh(ev) = &event {
            node.apply_neigh_probe(ev);
        }
        let node: &'a Mirror = node;
        self.observers.event(&event);
        let Self { place, analyse, observers, shown, .. } = self;
        let rec = match event {
            Event::Drop(ev) => {
                let (named, iface) = analyse.drop(node, ruleset, ev, &|i| place.pod_label(i))?;
                observers.drop(&named, &iface, analyse.symbol(&named.ev));
                if !shown.drops {
                    return None;
                }
                Record::Drop(Box::new(place.drop(named, iface, frame)))
            }
            Event::Packet(ev) if !shown.packets => {
                let (named, iface) = analyse.arp_finding(node, &ev)?;
                observers.drop(&named, &iface, None);
                if !shown.drops {
                    return None;
                }
                Record::Drop(Box::new(place.drop(named, iface, frame)))
            }
            _ if !shown.packets => return None,
            Event::Packet(ev) => Record::Packet(analyse.packet(node, place.at(node, ev.ifindex, ev.header.ts_ns), ev, frame)),
            Event::Arp(ev) => Record::Arp(analyse.arp(place.at(node, ev.ifindex, ev.header.ts_ns), ev)?),
            Event::Neigh(ev) => Record::Neigh(analyse.neigh(place.at(node, ev.ifindex, ev.header.ts_ns), ev)?),
        };
        observers.counters.events += 1;
        Some(rec)
    }
}
