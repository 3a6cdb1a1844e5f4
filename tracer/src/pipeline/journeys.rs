//! The journey stage (`--journey`): a packet's hop records put together into its journey,
//! written once its way is over — a device took it, a local socket read it, the node consumed
//! it, it was dropped (the drop record carries the journey's id), or nothing more was seen of
//! it within the timeout (then what it was probably waiting for, from the node's state).
//!
//! Journeys under way are bounded ([`MAX_PENDING`]): a journey that finds no room is not
//! followed, and counted.

use std::{borrow::Cow, collections::HashMap, time::Duration};

use tracer_common::{JOURNEY_ENTRIES, dir, fib, hop};

use super::place::{Placer, iface_name};
use crate::{
    annotate,
    drops::DropNames,
    events::{
        Captured, HopEvent, NamedDrop, PacketEvent, Place,
        annotation::Annotation,
        journey::{DROPPED_HOP, Hop, JourneyRecord, Outcome, translated},
    },
    mirror::{Mirror, neigh::NeighState, routes::RouteKind},
};

/// Journeys the collector follows at once: the kernel's map, and as many again whose end the
/// kernel has not told yet.
pub(crate) const MAX_PENDING: usize = 2 * JOURNEY_ENTRIES as usize;

/// A journey under way: its hops so far (the first is where it started) and its entry frame.
pub(crate) struct Pending {
    hops: Vec<HopEvent>,
    frame: Vec<u8>,
    origin: u8,
}

impl Pending {
    fn start(&self) -> &HopEvent {
        &self.hops[0]
    }

    /// The skb address and journey id (the collector removes a timed-out journey from the
    /// kernel's map by them).
    pub(crate) fn key(&self) -> (u64, u64) {
        (self.start().skbaddr, self.start().id)
    }
}

/// How a finished journey ended, before it is named.
pub(crate) enum End {
    /// Its last hop says (XMIT, SOCKET, CONSUMED).
    Hop,
    Dropped(Box<NamedDrop>),
    /// Freed by the function at this address, a drop that is no fault (IPv6 control traffic
    /// after it was handled).
    Freed(u64),
    /// Timed out, or still under way when tracing stopped.
    Unfinished,
}

pub(crate) struct Journeys {
    pending: HashMap<u64, Pending>,
    timeout_ns: u64,
    /// Text lists every hop (`--journey-hops`).
    verbose: bool,
    /// Journeys not followed: too many were under way.
    pub refused: u64,
}

impl Journeys {
    pub(crate) fn new(timeout: Duration, verbose: bool) -> Self {
        let timeout_ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        Self { pending: HashMap::new(), timeout_ns, verbose, refused: 0 }
    }

    /// Takes a hop in; returns the journey it ended.
    pub(crate) fn hop(&mut self, ev: HopEvent, frame: Captured<'_>) -> Option<Pending> {
        match ev.hop.hop {
            hop::RECEIVE | hop::LOCAL => {
                if self.pending.len() >= MAX_PENDING {
                    self.refused += 1;
                    return None;
                }
                let p = Pending { hops: vec![ev], frame: frame.bytes.to_vec(), origin: frame.origin };
                self.pending.insert(ev.id, p);
                None
            }
            hop::QUEUE => {
                if let Some(p) = self.pending.get_mut(&ev.id) {
                    p.hops.push(ev);
                }
                None
            }
            _ => {
                let mut p = self.pending.remove(&ev.id)?;
                p.hops.push(ev);
                Some(p)
            }
        }
    }

    /// The journey a drop ended.
    pub(crate) fn dropped(&mut self, id: u64) -> Option<Pending> {
        self.pending.remove(&id)
    }

    /// Journeys that started more than the timeout before `now_ns` (all of them with
    /// `u64::MAX`: tracing stops).
    pub(crate) fn expired(&mut self, now_ns: u64) -> Vec<Pending> {
        let timeout = self.timeout_ns;
        let old: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.start().header.ts_ns.saturating_add(timeout) < now_ns)
            .map(|(&id, _)| id)
            .collect();
        let mut out: Vec<Pending> = old.into_iter().filter_map(|id| self.pending.remove(&id)).collect();
        out.sort_by_key(|p| p.start().header.ts_ns);
        out
    }

    /// The journey's record, named against the node as it is now.
    pub(crate) fn finish(
        &self,
        p: Pending,
        end: End,
        node: &Mirror,
        place: &Placer,
        names: Option<&DropNames>,
    ) -> JourneyRecord {
        let start = *p.start();
        let entry_packet = start.packet.unwrap_or_default();
        let nat = p
            .hops
            .iter()
            .rev()
            .find(|h| h.hop.hop == hop::QUEUE)
            .and_then(|h| h.packet)
            .filter(|after| translated(&entry_packet, after));
        let ev = PacketEvent {
            header: start.header,
            ifindex: start.ifindex,
            len: start.len,
            dir: if start.hop.hop == hop::LOCAL { dir::EGRESS } else { dir::INGRESS },
            fib_ret: fib::NOT_RUN,
            packet: entry_packet,
            ..Default::default()
        };
        let routed = PacketEvent { packet: nat.unwrap_or(entry_packet), ..ev };
        let annotation = annotate::annotate(node, &routed);
        let hops = named_hops(&p.hops, node);
        let last = p.hops.last().copied().unwrap_or(start);
        let (outcome, end_ns) = match end {
            End::Hop => (hop_outcome(&p.hops, node, place, names), last.header.ts_ns),
            End::Dropped(d) => (Outcome::Dropped(d), 0),
            End::Freed(at) => (Outcome::Consumed { by: symbol(names, at) }, last.header.ts_ns),
            End::Unfinished if annotation.route_type == Some(RouteKind::Local) => (Outcome::ToNode, last.header.ts_ns),
            End::Unfinished => (Outcome::Unfinished { why: waiting(&last, &annotation, node) }, last.header.ts_ns),
        };
        let mut hops = hops;
        let end_ns = match &outcome {
            Outcome::Dropped(d) => {
                let at = d.ev.header.ts_ns;
                let iface = (d.ev.ifindex != 0).then(|| iface_name(node, d.ev.ifindex).into_owned());
                let after_ns = at.saturating_sub(start.header.ts_ns);
                hops.push(Hop { hop: DROPPED_HOP, iface, ifindex: d.ev.ifindex, after_ns });
                at
            }
            _ => end_ns,
        };
        let at = place.at(node, start.ifindex, start.header.ts_ns);
        let place = Place {
            iface: Cow::Owned(at.iface.into_owned()),
            ifindex: at.ifindex,
            ts_ns: at.ts_ns,
            wall_ns: at.wall_ns,
            pod: at.pod,
        };
        JourneyRecord {
            place,
            id: start.id,
            skbaddr: start.skbaddr,
            entry: start.hop.hop,
            ev,
            nat,
            hops,
            outcome,
            duration_ns: end_ns.saturating_sub(start.header.ts_ns),
            annotation,
            frame: p.frame,
            origin: p.origin,
            verbose: self.verbose,
        }
    }
}

/// The hops by name; a transmission is on the device it was last queued to.
fn named_hops(hops: &[HopEvent], node: &Mirror) -> Vec<Hop> {
    let t0 = hops.first().map_or(0, |h| h.header.ts_ns);
    let mut queued = 0;
    hops.iter()
        .map(|h| {
            let ifindex = match h.hop.hop {
                hop::QUEUE | hop::LOCAL => {
                    queued = h.ifindex;
                    h.ifindex
                }
                hop::XMIT => queued,
                _ => h.ifindex,
            };
            let iface = (ifindex != 0).then(|| iface_name(node, ifindex).into_owned());
            Hop { hop: h.hop.hop, iface, ifindex, after_ns: h.header.ts_ns.saturating_sub(t0) }
        })
        .collect()
}

/// What the last hop says of the end: the device that took it, a socket, the node.
fn hop_outcome(hops: &[HopEvent], node: &Mirror, place: &Placer, names: Option<&DropNames>) -> Outcome {
    let Some(last) = hops.last() else { return Outcome::Delivered };
    match last.hop.hop {
        hop::XMIT => {
            let ifindex = hops.iter().rev().find(|h| matches!(h.hop.hop, hop::QUEUE | hop::LOCAL)).map_or(0, |h| h.ifindex);
            let at = place.at(node, ifindex, last.header.ts_ns);
            Outcome::Out { iface: at.iface.into_owned(), ifindex, pod: at.pod, rc: last.rc }
        }
        hop::SOCKET => Outcome::Delivered,
        _ => Outcome::Consumed { by: symbol(names, last.location) },
    }
}

/// The function at kernel address `at` (0: unknown).
fn symbol(names: Option<&DropNames>, at: u64) -> Option<String> {
    if at == 0 {
        return None;
    }
    names.and_then(|n| n.kallsyms.resolve(at)).map(|(s, _)| s.to_owned())
}

/// What a journey that did not end was probably waiting for, from its last hop and the node.
fn waiting(last: &HopEvent, a: &Annotation, node: &Mirror) -> String {
    let held = matches!(a.neigh_state, Some(NeighState::Incomplete | NeighState::Probe | NeighState::Failed | NeighState::None));
    if let (true, Some(ip)) = (held, a.neigh_ip) {
        let dev = a.route_dev.map_or_else(String::new, |d| format!(" on {d}"));
        let state = a.neigh_state.map_or("unknown", NeighState::name);
        return format!("held for the neighbour {ip}{dev} ({state})");
    }
    let dev = if last.ifindex != 0 { iface_name(node, last.ifindex).into_owned() } else { "-".into() };
    match last.hop.hop {
        hop::QUEUE | hop::LOCAL => format!("queued on {dev}, never handed to its driver"),
        _ => format!("last seen on {dev} (received), nothing after"),
    }
}
