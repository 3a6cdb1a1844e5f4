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
//! - **journeys** ([`journeys::Journeys`], `--journey`): hop records put together into each
//!   packet's journey, written when it ends (a drop with a journey id ends one).
//! - **observe** ([`observe::Observers`]): the counters, the drop summary and the metrics see
//!   every event and every named drop, shown or not, and change nothing.
//! - **write** ([`crate::writers::Outputs`]): text, JSON, pcapng.
//!
//! The node's state ([`Mirror`]) is the session's; the pipeline reads it, and takes in the one
//! change that comes through the ring itself (a neighbour probe's event) before anything reads
//! it, so that every event is analysed against the node as it was when it happened.

pub(crate) mod analyse;
pub(crate) mod journeys;
pub(crate) mod observe;
pub(crate) mod paths;
pub(crate) mod place;
pub(crate) mod tally;

use crate::{
    events::{Decoded, Decoder, Event, Record},
    mirror::Mirror,
    pods::PodIndex,
    ruleset::RulesetModel,
};

use self::journeys::End;
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
    /// `--journey`: the journeys under way.
    pub journeys: Option<journeys::Journeys>,
    shown: Shown,
}

impl Pipeline {
    pub(crate) fn new(shown: Shown, analyse: Analyser, pods: Option<PodIndex>) -> Self {
        let observers = Observers::default();
        Self { decoder: Decoder::default(), place: Placer::new(pods), analyse, observers, journeys: None, shown }
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
        let Self { place, analyse, observers, shown, journeys, .. } = self;
        let rec = match event {
            Event::Hop(ev) => {
                let journeys = journeys.as_mut()?;
                let ended = journeys.hop(ev, frame)?;
                journey_record(journeys, ended, End::Hop, node, place, analyse, observers)
            }
            Event::Drop(ev) if ev.journey != 0 && journeys.is_some() => {
                // IPv6 control traffic freed without a reason after it was handled is no fault
                // (`Analyser::drop` leaves it out): its journey ends consumed.
                let end = match analyse.drop(node, ruleset, ev, &|i| place.pod_label(i)) {
                    Some((named, iface)) => {
                        observers.drop(&named, &iface, analyse.symbol(&named.ev));
                        End::Dropped(Box::new(named))
                    }
                    None => End::Freed(ev.location),
                };
                let journeys = journeys.as_mut()?;
                let ended = journeys.dropped(ev.journey)?;
                journey_record(journeys, ended, end, node, place, analyse, observers)
            }
            Event::Drop(ev) => {
                let (named, iface) = analyse.drop(node, ruleset, ev, &|i| place.pod_label(i))?;
                let symbol = analyse.symbol(&named.ev);
                drop_record(observers, place, *shown, (named, iface, symbol), frame)?
            }
            Event::Packet(ev) if !shown.packets => {
                let finding = analyse.arp_finding(node, &ev)?;
                drop_record(observers, place, *shown, (finding.0, finding.1, None), frame)?
            }
            _ if !shown.packets => return None,
            Event::Packet(ev) => Record::Packet(analyse.packet(node, place.at(node, ev.ifindex, ev.header.ts_ns), ev, frame)),
            Event::Arp(ev) => Record::Arp(analyse.arp(place.at(node, ev.ifindex, ev.header.ts_ns), ev)?),
            Event::Neigh(ev) => Record::Neigh(analyse.neigh(place.at(node, ev.ifindex, ev.header.ts_ns), ev)?),
        };
        observers.counters.events += 1;
        Some(rec)
    }

    /// `--journey`: the journeys that started more than the timeout before `now_ns` (all with
    /// `u64::MAX`), as records, each with its skb address and id.
    pub(crate) fn expire(&mut self, node: &Mirror, now_ns: u64) -> Vec<(Record<'static>, (u64, u64))> {
        let Self { journeys, place, analyse, observers, .. } = self;
        let Some(journeys) = journeys else { return Vec::new() };
        let ended = journeys.expired(now_ns);
        observers.counters.events += ended.len() as u64;
        ended
            .into_iter()
            .map(|p| {
                let key = p.key();
                (journey_record(journeys, p, End::Unfinished, node, place, analyse, observers), key)
            })
            .collect()
    }
}

/// A named drop (or ARP finding) observed, and its record when drops are shown.
fn drop_record<'a>(
    observers: &mut Observers,
    place: &Placer,
    shown: Shown,
    (named, iface, symbol): (crate::events::NamedDrop, std::borrow::Cow<'a, str>, Option<&str>),
    frame: crate::events::Captured<'a>,
) -> Option<Record<'a>> {
    observers.drop(&named, &iface, symbol);
    shown.drops.then(|| Record::Drop(Box::new(place.drop(named, iface, frame))))
}

/// A journey that ended, named, observed and made a record.
fn journey_record(
    journeys: &journeys::Journeys,
    ended: journeys::Pending,
    end: End,
    node: &Mirror,
    place: &Placer,
    analyse: &Analyser,
    observers: &mut Observers,
) -> Record<'static> {
    let journey = journeys.finish(ended, end, node, place, analyse.drop_names.as_ref());
    observers.journey(&journey);
    Record::Journey(Box::new(journey))
}
