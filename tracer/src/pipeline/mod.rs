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
//! The node's state ([`Mirror`], [`RulesetModel`]) is the session's; the pipeline reads it, and
//! takes in the one change that comes through the ring itself (a neighbour probe's event)
//! before anything reads it, so that every event is analysed against the node as it was when
//! it happened.
//!
//! A netfilter drop whose rule can be named only by a read of the ruleset that has not begun
//! or not ended yet is held ([`held`]) until the session hands the read in, then named and
//! written ([`Pipeline::release`]); the other records go on meanwhile.

pub(crate) mod analyse;
pub(crate) mod held;
pub(crate) mod journeys;
pub(crate) mod observe;
pub(crate) mod paths;
pub(crate) mod place;
pub(crate) mod tally;

use std::borrow::Cow;

use crate::{
    events::{Captured, Decoded, Decoder, Event, NamedDrop, Record, journey::Outcome},
    mirror::Mirror,
    pods::PodIndex,
    ruleset::{Naming, RuleQuery, RulesetModel},
};

use self::{
    held::{HELD_MAX, Held, HeldDrop, HeldQueue},
    journeys::End,
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
    /// `--journey`: the journeys under way.
    pub journeys: Option<journeys::Journeys>,
    shown: Shown,
    /// Netfilter drops waiting for the read of the ruleset after them.
    held: HeldQueue<HeldDrop>,
}

impl Pipeline {
    pub(crate) fn new(shown: Shown, analyse: Analyser, pods: Option<PodIndex>) -> Self {
        let observers = Observers::default();
        let held = HeldQueue::new(HELD_MAX);
        Self { decoder: Decoder::default(), place: Placer::new(pods), analyse, observers, journeys: None, shown, held }
    }

    /// The netfilter drops waiting for a read of the ruleset.
    pub(crate) fn waiting(&self) -> usize {
        self.held.len()
    }

    /// The typed record for `bytes`, or `None` when it is not shown (or not decodable: counted;
    /// or a netfilter drop held until the read of the ruleset after it: see [`Self::release`]).
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
        let Self { place, analyse, observers, shown, journeys, held, .. } = self;
        let rec = match event {
            Event::Hop(ev) => {
                let journeys = journeys.as_mut()?;
                let ended = journeys.hop(ev, frame)?;
                journey_record(journeys, ended, End::Hop, node, place, analyse, observers)
            }
            Event::Drop(ev) if ev.journey != 0 && journeys.is_some() => {
                let journeys = journeys.as_mut()?;
                // IPv6 control traffic freed without a reason after it was handled is no fault
                // (`Analyser::drop` leaves it out): its journey ends consumed.
                let end = match analyse.drop(node, ev) {
                    Some((mut named, iface)) => {
                        if let Some(query) = name_or_wait(ruleset, held, observers, node, place, analyse, &mut named) {
                            let what = held_journey(journeys, ev.journey, named, node, place, analyse);
                            held.hold(HeldDrop { query, iface: iface.into_owned(), what });
                            return None;
                        }
                        observers.drop(&named, &iface, analyse.symbol(&named.ev));
                        End::Dropped(Box::new(named))
                    }
                    None => End::Freed(ev.location),
                };
                let ended = journeys.dropped(ev.journey)?;
                journey_record(journeys, ended, end, node, place, analyse, observers)
            }
            Event::Drop(ev) => {
                let (mut named, iface) = analyse.drop(node, ev)?;
                if let Some(query) = name_or_wait(ruleset, held, observers, node, place, analyse, &mut named) {
                    let frame = shown.drops.then(|| (frame.bytes.to_vec(), frame.origin));
                    let what = Held::Drop { named: Box::new(named), frame };
                    held.hold(HeldDrop { query, iface: iface.into_owned(), what });
                    return None;
                }
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
        Some(counted(observers, rec))
    }

    /// The held netfilter drops that `ruleset` can name now (the read after them is in), in
    /// their order: named, observed, and their records handed to `write`.
    pub(crate) fn release(&mut self, ruleset: &mut RulesetModel, write: &mut dyn FnMut(&Record<'_>)) {
        let Self { place, analyse, observers, shown, held, .. } = self;
        let mut ready = |d: &HeldDrop| match ruleset.naming(&d.query) {
            Naming::Wait => None,
            n => Some(n),
        };
        while let Some((HeldDrop { query, iface, mut what }, naming)) = held.next_ready(&mut ready) {
            if let (Naming::Rule(attribution), Some(named)) = (naming, what.drop_mut()) {
                analyse::name_rule(named, attribution, &query, &|i| place.pod_label(i));
            }
            match what {
                Held::Journey(j) => {
                    if let Outcome::Dropped(d) = &j.outcome {
                        observers.drop(d, &iface, analyse.symbol(&d.ev));
                    }
                    observers.journey(&j);
                    write(&counted(observers, Record::Journey(j)));
                }
                Held::Drop { named, frame } => {
                    let symbol = analyse.symbol(&named.ev);
                    let (bytes, origin) = frame.as_ref().map_or((&[][..], 0), |(b, o)| (&b[..], *o));
                    let frame = Captured { bytes, origin };
                    if let Some(rec) = drop_record(observers, place, *shown, (*named, Cow::Owned(iface), symbol), frame) {
                        write(&counted(observers, rec));
                    }
                }
            }
        }
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

/// A record handed to the writers, counted.
fn counted<'a>(observers: &mut Observers, rec: Record<'a>) -> Record<'a> {
    observers.counters.events += 1;
    rec
}

/// A netfilter drop's rule, named when the reads around the drop are in (its cause then in
/// its policy's terms). `Some`: the drop waits for the read after it, and is to be held —
/// unless [`HELD_MAX`] drops wait already: then it keeps its plain cause, counted.
fn name_or_wait(
    ruleset: Option<&mut RulesetModel>,
    held: &HeldQueue<HeldDrop>,
    observers: &mut Observers,
    node: &Mirror,
    place: &Placer,
    analyse: &Analyser,
    named: &mut NamedDrop,
) -> Option<RuleQuery> {
    let ruleset = ruleset?;
    let query = analyse.rule_query(node, named)?;
    // Behind a held drop, every netfilter drop waits: they are written in their order.
    let naming = if held.is_empty() { ruleset.naming(&query) } else { Naming::Wait };
    match naming {
        Naming::Rule(attribution) => analyse::name_rule(named, attribution, &query, &|i| place.pod_label(i)),
        Naming::Plain => {}
        Naming::Wait if held.is_full() => {
            if observers.counters.not_held == 0 {
                log::warn!(
                    "{HELD_MAX} netfilter drops wait for a read of the ruleset; more are written without their rule (counted at exit)"
                );
            }
            observers.counters.not_held += 1;
        }
        Naming::Wait => return Some(query),
    }
    None
}

/// A netfilter drop that waits for a read, held with the journey `id` it ends (made now); alone
/// when that journey is not known (then it is only observed).
fn held_journey(
    journeys: &mut journeys::Journeys,
    id: u64,
    named: NamedDrop,
    node: &Mirror,
    place: &Placer,
    analyse: &Analyser,
) -> Held {
    let named = Box::new(named);
    match journeys.dropped(id) {
        Some(p) => Held::Journey(Box::new(journeys.finish(p, End::Dropped(named), node, place, analyse.drop_names.as_ref()))),
        None => Held::Drop { named, frame: None },
    }
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
