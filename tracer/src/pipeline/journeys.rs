//! The journey stage (`--journey`): a packet's hop records put together into its journey,
//! written once its way is over — a device took it, a local socket read it, the node consumed
//! it, it was dropped (the drop record carries the journey's id), or nothing more was seen of
//! it within the timeout (then what it was probably waiting for, from the node's state).
//!
//! Journeys under way are bounded ([`Journeys::room`]): a journey that finds no room is not
//! followed, and counted.

use std::{borrow::Cow, collections::HashMap, time::Duration};

use tracer_common::{Packet, dir, fib, hop};

use super::place::{Placer, iface_name};
use crate::{
    annotate,
    drops::DropNames,
    events::{
        Captured, HopEvent, NamedDrop, PacketEvent, Place,
        annotation::Annotation,
        journey::{DROPPED_HOP, Hop, HopDetail, JourneyRecord, Outcome, hop_name as hop_name_of, translated},
    },
    mirror::{Mirror, neigh::NeighState, routes::RouteKind},
};

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

    /// Its headers where it was last queued, when NAT changed them since it entered.
    fn translated(&self) -> Option<Packet> {
        let entry = self.start().packet.unwrap_or_default();
        let queued = self.hops.iter().rev().find(|h| h.hop.hop == hop::QUEUE).and_then(|h| h.packet)?;
        translated(&entry, &queued).then_some(queued)
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
    /// Journeys the collector follows at once: the kernel's map (`--journey-max`), and as many
    /// again whose end the kernel has not told yet.
    room: usize,
    timeout_ns: u64,
    /// Text lists every hop (`--journey-hops`).
    verbose: bool,
    /// Journeys not followed: too many were under way.
    pub refused: u64,
}

impl Journeys {
    /// Journeys that end within `timeout`, `kernel_entries` followed at once in the kernel.
    pub(crate) fn new(timeout: Duration, verbose: bool, kernel_entries: u32) -> Self {
        let timeout_ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let room = 2 * kernel_entries as usize;
        Self { pending: HashMap::new(), room, timeout_ns, verbose, refused: 0 }
    }

    /// Takes a hop in; returns the journey it ended.
    pub(crate) fn hop(&mut self, ev: HopEvent, frame: Captured<'_>) -> Option<Pending> {
        match ev.hop.hop {
            hop::RECEIVE | hop::LOCAL => {
                if self.pending.len() >= self.room {
                    self.refused += 1;
                    return None;
                }
                let p = Pending { hops: vec![ev], frame: frame.bytes.to_vec(), origin: frame.origin };
                self.pending.insert(ev.id, p);
                None
            }
            // Hops on the way: the journey goes on.
            hop::QUEUE | hop::FORWARD | hop::OUTPUT | hop::NEIGH | hop::NF => {
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
        let nat = p.translated();
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
        let mut hops = named_hops(&p.hops, node);
        let last = p.hops.last().copied().unwrap_or(start);
        let (outcome, end_ns) = match end {
            End::Hop => (hop_outcome(&p.hops, node, place, names), last.header.ts_ns),
            End::Dropped(d) => {
                // The drop is the last hop, on its device.
                let (at, ifindex) = (d.ev.header.ts_ns, d.ev.ifindex);
                let iface = (ifindex != 0).then(|| iface_name(node, ifindex).into_owned());
                let after_ns = at.saturating_sub(start.header.ts_ns);
                hops.push(Hop { hop: DROPPED_HOP, iface, ifindex, after_ns, detail: HopDetail::None });
                (Outcome::Dropped(d), at)
            }
            End::Freed(at) => (Outcome::Consumed { by: symbol(names, at) }, last.header.ts_ns),
            End::Unfinished if annotation.route_type == Some(RouteKind::Local) => (Outcome::ToNode, last.header.ts_ns),
            End::Unfinished => (Outcome::Unfinished { why: waiting(&last, &annotation, node) }, last.header.ts_ns),
        };
        JourneyRecord {
            place: owned_place(place.at(node, start.ifindex, start.header.ts_ns)),
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

/// A place that borrows nothing (a journey outlives the records it was made of).
fn owned_place(at: Place<'_>) -> Place<'static> {
    Place { iface: Cow::Owned(at.iface.into_owned()), ifindex: at.ifindex, ts_ns: at.ts_ns, wall_ns: at.wall_ns, pod: at.pod }
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
            let after_ns = h.header.ts_ns.saturating_sub(t0);
            Hop { hop: h.hop.hop, iface, ifindex, after_ns, detail: HopDetail::of(&h.hop) }
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
        hop::NEIGH => format!("sent through its neighbour on {dev}, never queued"),
        hop::FORWARD | hop::OUTPUT => format!("routed ({}), nothing after", hop_name_of(last.hop.hop)),
        hop::NF => "at a netfilter hook, nothing after".to_owned(),
        _ => format!("last seen on {dev} (received), nothing after"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::Ipv4Addr;

    use tracer_common::{JOURNEY_ENTRIES, JourneySection};

    use super::*;
    use crate::{annotate::bench, events::Stamp};

    /// A hop of journey `id` at `ts_ns` µs… on `ifindex`, with the headers of a TCP segment from
    /// pod 0 to `dst` where the hop carries a frame.
    pub(crate) fn hop_at(id: u64, hop: u8, ts_ns: u64, ifindex: u32, dst: Option<Ipv4Addr>) -> HopEvent {
        let packet = dst.map(|d| bench::tcp_event(0, d, dir::INGRESS, ifindex, fib::NOT_RUN, 0).packet);
        let hop = JourneySection { id, skbaddr: 0xffff_8881_0000_0000 + id, ifindex, len: 60, hop, ..Default::default() };
        HopEvent { header: Stamp { ts_ns, cpu: 0 }, hop, packet }
    }

    fn frame() -> Captured<'static> {
        Captured { bytes: &[0xee; 14], origin: 0 }
    }

    /// Pod 0 → pod 1: received on the first cali, queued to the second, handed to it.
    pub(crate) fn pod_to_pod(node: &Mirror) -> JourneyRecord {
        let mut j = Journeys::new(Duration::from_secs(5), false, JOURNEY_ENTRIES);
        let (c0, c1, dst) = (bench::FIRST_CALI, bench::FIRST_CALI + 1, bench::pod_ip(1));
        assert!(j.hop(hop_at(7, hop::RECEIVE, 1_000, c0, Some(dst)), frame()).is_none());
        assert!(j.hop(hop_at(7, hop::QUEUE, 4_000, c1, Some(dst)), frame()).is_none());
        let ended = j.hop(hop_at(7, hop::XMIT, 9_200, 0, None), frame()).expect("the transmission ends it");
        fixed_time(j.finish(ended, End::Hop, node, &Placer::new(None), None))
    }

    /// The record at a fixed wall-clock time (the placer's clock is the machine's).
    fn fixed_time(mut r: JourneyRecord) -> JourneyRecord {
        r.place.wall_ns = 1_700_000_000_123_456_789;
        r
    }

    /// Pod 0 → a destination the drop names: received on the first cali, then dropped.
    pub(crate) fn dropped(node: &Mirror, drop: NamedDrop) -> JourneyRecord {
        let mut j = Journeys::new(Duration::from_secs(5), false, JOURNEY_ENTRIES);
        j.hop(hop_at(8, hop::RECEIVE, 1_000, bench::FIRST_CALI, Some(Ipv4Addr::new(10, 77, 0, 1))), frame());
        let ended = j.dropped(8).unwrap();
        fixed_time(j.finish(ended, End::Dropped(Box::new(drop)), node, &Placer::new(None), None))
    }

    #[test]
    fn a_forwarded_packet_leaves_on_the_device_it_was_queued_to() {
        let node = bench::calico_node(2);
        let r = pod_to_pod(&node);
        let Outcome::Out { iface, ifindex, rc, .. } = &r.outcome else { panic!("not out") };
        assert_eq!((iface.as_str(), *ifindex, *rc), ("cali00000a1b2c4", bench::FIRST_CALI + 1, 0));
        assert_eq!(r.duration_ns, 8_200);
        assert!(r.nat.is_none());
        let hops: Vec<(u8, Option<&str>, u64)> = r.hops.iter().map(|h| (h.hop, h.iface.as_deref(), h.after_ns)).collect();
        let c1 = Some("cali00000a1b2c4");
        assert_eq!(hops, [(hop::RECEIVE, Some("cali00000a1b2c3"), 0), (hop::QUEUE, c1, 3_000), (hop::XMIT, c1, 8_200)]);
        assert_eq!(r.annotation.route_dev.map(|d| d.index), Some(bench::FIRST_CALI + 1));
        assert_eq!(r.place.iface, "cali00000a1b2c3");
    }

    #[test]
    fn a_destination_rewritten_on_the_way_is_nat_and_routes_the_packet() {
        let node = bench::calico_node(2);
        let mut j = Journeys::new(Duration::from_secs(5), false, JOURNEY_ENTRIES);
        let service = Ipv4Addr::new(10, 96, 0, 10);
        j.hop(hop_at(1, hop::RECEIVE, 0, bench::FIRST_CALI, Some(service)), frame());
        j.hop(hop_at(1, hop::QUEUE, 10, bench::FIRST_CALI + 1, Some(bench::pod_ip(1))), frame());
        let ended = j.hop(hop_at(1, hop::XMIT, 20, 0, None), frame()).unwrap();
        let r = j.finish(ended, End::Hop, &node, &Placer::new(None), None);
        let nat = r.nat.expect("the queued headers differ");
        assert_eq!(crate::packet::PacketView(&nat).dst_ip(), Some(bench::pod_ip(1).into()));
        assert_eq!(r.annotation.route_dev.map(|d| d.index), Some(bench::FIRST_CALI + 1), "routed by the translated address");
    }

    #[test]
    fn hops_of_journeys_not_followed_are_ignored_and_a_drop_ends_one() {
        let mut j = Journeys::new(Duration::from_secs(5), false, JOURNEY_ENTRIES);
        assert!(j.hop(hop_at(3, hop::QUEUE, 0, 1, None), frame()).is_none());
        assert!(j.hop(hop_at(3, hop::XMIT, 0, 1, None), frame()).is_none());
        assert!(j.dropped(3).is_none());
        j.hop(hop_at(4, hop::RECEIVE, 0, 1, Some(bench::pod_ip(1))), frame());
        assert!(j.dropped(4).is_some());
        assert!(j.dropped(4).is_none(), "ended once");
    }

    #[test]
    fn journeys_time_out_oldest_first_and_all_at_the_end() {
        let mut j = Journeys::new(Duration::from_secs(1), false, JOURNEY_ENTRIES);
        for (id, at) in [(1, 2_000_000_000), (2, 500_000_000), (3, 1_900_000_000)] {
            j.hop(hop_at(id, hop::RECEIVE, at, 1, Some(bench::pod_ip(1))), frame());
        }
        let old: Vec<u64> = j.expired(2_600_000_000).iter().map(|p| p.key().1).collect();
        assert_eq!(old, [2], "only what started more than 1 s before");
        let rest: Vec<u64> = j.expired(u64::MAX).iter().map(|p| p.key().1).collect();
        assert_eq!(rest, [3, 1]);
        assert!(j.expired(u64::MAX).is_empty());
    }

    #[test]
    fn a_held_packet_that_times_out_says_which_neighbour_it_waits_for() {
        let mut node = bench::calico_node(2);
        let dst = Ipv4Addr::new(10, 244, 1, 99);
        let dev = bench::FIRST_CALI + 1;
        node.routes.insert(bench::unicast(dst.into(), 32, dev, None, 254, RouteKind::Unicast, 253), false);
        let mut j = Journeys::new(Duration::from_secs(1), false, JOURNEY_ENTRIES);
        j.hop(hop_at(9, hop::RECEIVE, 0, bench::FIRST_CALI, Some(dst)), frame());
        let p = j.expired(u64::MAX).pop().unwrap();
        let r = j.finish(p, End::Unfinished, &node, &Placer::new(None), None);
        let Outcome::Unfinished { why } = &r.outcome else { panic!("not unfinished") };
        assert_eq!(why, "held for the neighbour 10.244.1.99 on cali00000a1b2c4 (none)");
    }

    #[test]
    fn too_many_journeys_under_way_are_refused_and_counted() {
        let mut j = Journeys::new(Duration::from_secs(1), false, 10);
        for id in 0..=20 {
            j.hop(hop_at(id, hop::RECEIVE, 0, 1, None), frame());
        }
        assert_eq!((j.pending.len(), j.refused), (20, 1));
    }

    /// A hop inside the stack (kprobe/fentry) of journey `id`, its neighbour's or netfilter
    /// verdict's fields (`family`, `state`, `rc`, `addr`) set by `set` as the kernel sets them.
    fn inner_hop(id: u64, hop: u8, ts_ns: u64, ifindex: u32, set: impl FnOnce(&mut JourneySection)) -> HopEvent {
        let mut ev = hop_at(id, hop, ts_ns, ifindex, None);
        set(&mut ev.hop);
        ev
    }

    #[test]
    fn hops_inside_the_stack_go_on_and_are_named_in_order() {
        use tracer_common::{nf_verdict, nud, proto};

        use crate::events::Render as _;
        let node = bench::calico_node(2);
        let (c0, c1, dst) = (bench::FIRST_CALI, bench::FIRST_CALI + 1, bench::pod_ip(1));
        let mut key = [0; 16];
        key[..4].copy_from_slice(&dst.octets());
        let mut j = Journeys::new(Duration::from_secs(5), true, JOURNEY_ENTRIES);
        j.hop(hop_at(7, hop::RECEIVE, 1_000, c0, Some(dst)), frame());
        for h in [
            hop_at(7, hop::FORWARD, 2_000, c0, None),
            hop_at(7, hop::OUTPUT, 3_000, c1, None),
            inner_hop(7, hop::NEIGH, 3_500, c1, |s| (s.family, s.state, s.addr) = (proto::AF_INET, nud::STALE, key)),
            hop_at(7, hop::QUEUE, 4_000, c1, Some(dst)),
        ] {
            assert!(j.hop(h, frame()).is_none(), "a hop on the way does not end the journey");
        }
        let ended = j.hop(hop_at(7, hop::XMIT, 9_200, 0, None), frame()).unwrap();
        let r = j.finish(ended, End::Hop, &node, &Placer::new(None), None);
        let names: Vec<&str> = r.hops.iter().map(|h| crate::events::journey::hop_name(h.hop)).collect();
        assert_eq!(names, ["receive", "forward", "output", "neigh", "queue", "xmit"]);
        let mut text = Vec::new();
        r.put_text(&mut text);
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains(&format!(" µs  neigh cali00000a1b2c4 {dst} STALE")), "{text}");
        let mut json = Vec::new();
        r.put_json(&mut json).unwrap();
        let json = String::from_utf8(json).unwrap();
        assert!(json.contains(r#""hop":"neigh","iface":"cali00000a1b2c4""#) && json.contains(r#""neigh_state":"STALE""#), "{json}");

        // A netfilter drop: its hop comes before the drop record, which ends the journey.
        let mut j = Journeys::new(Duration::from_secs(5), true, JOURNEY_ENTRIES);
        j.hop(hop_at(8, hop::RECEIVE, 1_000, c0, Some(dst)), frame());
        // NFPROTO_IPV4 (2), NF_INET_FORWARD (2).
        let nf = inner_hop(8, hop::NF, 2_000, 0, |s| (s.family, s.state, s.rc) = (2, 2, nf_verdict::DROP));
        assert!(j.hop(nf, frame()).is_none());
        let p = j.dropped(8).unwrap();
        let r = j.finish(p, End::Unfinished, &node, &Placer::new(None), None);
        let mut text = Vec::new();
        r.put_text(&mut text);
        assert!(String::from_utf8(text).unwrap().contains(" µs  nf FORWARD drop"));
        let mut json = Vec::new();
        r.put_json(&mut json).unwrap();
        let json = String::from_utf8(json).unwrap();
        assert!(json.contains(r#"{"hop":"nf","nf_family":"ipv4","nf_hook":"FORWARD","verdict":"drop","t_us":1.0}"#), "{json}");
    }
}
