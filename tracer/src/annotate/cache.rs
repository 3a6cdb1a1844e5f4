//! The annotation of a flow, made once: a flood is a few flows repeated, and every packet
//! of one flow on one interface, in one direction, with the same kernel FIB verdict, gets the
//! same annotation for as long as the mirror does not change.
//!
//! [`AnnotationCache`] keys on everything [`annotate`] reads from the event — the interface,
//! the direction, the FIB verdict and its device, the addresses, the protocol, the ports (policy
//! rules can match them) and the destination MAC (the MAC check) — and keeps the typed
//! annotation (the writers render it, once per flow and format). Any change to the mirror (a netlink notification, a re-dump, a
//! neighbour probe event) makes every entry stale: an annotation is never older than the mirror it would be
//! computed from. ARP frames (few, and annotated from their ARP fields) are not cached.

use tracer_common::{Packet, valid};

use super::annotate;
use crate::{
    events::{PacketEvent, annotation::FlowAnnotation},
    mirror::Mirror,
};

/// Flows kept at most (a scan of random ports must not make it grow without bound: ~600
/// bytes per flow); a power of two.
pub const CAPACITY: usize = 4096;

/// What [`annotate`] reads of a non-ARP packet event, packed into words: hashed and compared
/// as 7 integers, not 11 fields and three byte slices.
#[derive(Debug, Clone, Copy, Default, Eq)]
struct FlowKey([u64; 7]);

impl PartialEq for FlowKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.iter().zip(&other.0).fold(0, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

impl FlowKey {
    /// The key's set among `sets` (a power of two): a multiply-xorshift of each word.
    fn set(&self, sets: usize) -> usize {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let h = self.0.iter().fold(0, |h, w| (h ^ w).wrapping_mul(K).rotate_left(29));
        (h.wrapping_mul(K) >> 32) as usize & (sets - 1)
    }

    fn of(ev: &PacketEvent) -> Option<Self> {
        let p: &Packet = &ev.packet;
        if p.valid & valid::ARP != 0 {
            return None;
        }
        let mut b = [0u8; 56];
        b[0..4].copy_from_slice(&ev.ifindex.to_ne_bytes());
        b[4..8].copy_from_slice(&ev.fib_ifindex.to_ne_bytes());
        b[8] = ev.dir;
        b[9] = ev.fib_ret;
        b[10..12].copy_from_slice(&p.valid.to_ne_bytes());
        b[12] = p.ip_proto;
        b[14..16].copy_from_slice(&p.sport.to_ne_bytes());
        b[16..18].copy_from_slice(&p.dport.to_ne_bytes());
        b[18..24].copy_from_slice(&p.dst_mac);
        b[24..40].copy_from_slice(&p.src_ip);
        b[40..56].copy_from_slice(&p.dst_ip);
        Some(Self(std::array::from_fn(|i| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default()))))
    }
}

/// One flow's annotation, valid while the mirror is at `version`.
#[derive(Debug, Default)]
struct Slot {
    version: u64,
    key: FlowKey,
    flow: FlowAnnotation,
}

/// Annotations by flow: a two-way set-associative table of [`CAPACITY`] slots, so
/// that a lookup is one hash and at most two key compares, a new flow takes the place of the
/// older of two, and nothing is ever cleared in bulk — a slot of an older mirror version is
/// simply not a hit.
#[derive(Debug)]
pub struct AnnotationCache {
    slots: Vec<Slot>,
    /// Per set: which way was filled last (the other is replaced next).
    newer: Vec<u8>,
    /// The last uncached annotation (ARP).
    scratch: FlowAnnotation,
    pub hits: u64,
    pub misses: u64,
}

impl Default for AnnotationCache {
    fn default() -> Self {
        Self {
            slots: std::iter::repeat_with(Slot::default).take(CAPACITY).collect(),
            newer: vec![0; CAPACITY / 2],
            scratch: FlowAnnotation::default(),
            hits: 0,
            misses: 0,
        }
    }
}

impl AnnotationCache {
    /// The annotation of `ev` against `mirror` as it is now.
    pub fn get(&mut self, mirror: &Mirror, ev: &PacketEvent) -> &FlowAnnotation {
        // Versions start at 1 here, so that a default slot (version 0) is never valid.
        let version = mirror.version() + 1;
        let Some(key) = FlowKey::of(ev) else {
            self.scratch.renew(annotate(mirror, ev));
            return &self.scratch;
        };
        let set = key.set(CAPACITY / 2);
        let valid = |s: &Slot| s.version == version && s.key == key;
        let way = if valid(&self.slots[2 * set]) {
            Some(0)
        } else if valid(&self.slots[2 * set + 1]) {
            Some(1)
        } else {
            None
        };
        let way = match way {
            Some(way) => {
                self.hits += 1;
                way
            }
            None => {
                self.misses += 1;
                let way = 1 - usize::from(self.newer[set] & 1);
                let slot = &mut self.slots[2 * set + way];
                (slot.version, slot.key) = (version, key);
                slot.flow.renew(annotate(mirror, ev));
                self.newer[set] = way as u8;
                way
            }
        };
        &self.slots[2 * set + way].flow
    }

    /// Flows held for `mirror` as it is now.
    pub fn flows(&self, mirror: &Mirror) -> usize {
        self.slots.iter().filter(|s| s.version == mirror.version() + 1).count()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use tracer_common::{dir, fib};

    use super::*;
    use crate::{
        annotate::bench::{self, FIRST_CALI, UPLINK, calico_node, pod_ip, tcp_event},
        mirror::{
            neigh::{NeighState, NeighUpdate, Neighbour},
            prefix::Prefix,
            routes::{NextHop, RT_TABLE_MAIN, Route, RouteKind},
        },
    };

    /// One field of an event changed.
    type Change = fn(&mut PacketEvent);

    fn fresh(m: &Mirror, ev: &PacketEvent) -> FlowAnnotation {
        FlowAnnotation::new(annotate(m, ev))
    }

    /// Every field the annotation reads, changed one at a time, gives what a fresh
    /// annotation gives: a key that missed one would hand one flow's annotation to another.
    #[test]
    fn each_field_the_annotation_reads_is_part_of_the_key() {
        let m = calico_node(4);
        let base = tcp_event(0, pod_ip(1), dir::INGRESS, FIRST_CALI, fib::SUCCESS, FIRST_CALI + 1);
        let variants: [(&str, Change); 8] = [
            ("ifindex", |e| e.ifindex = FIRST_CALI + 2),
            ("dir", |e| e.dir = dir::EGRESS),
            ("fib_ret", |e| e.fib_ret = fib::NO_NEIGH),
            ("fib_ifindex", |e| e.fib_ifindex = UPLINK),
            ("dst", |e| e.packet.dst_ip[..4].copy_from_slice(&[93, 184, 216, 34])),
            ("dst unrouted", |e| e.packet.dst_ip[..4].copy_from_slice(&[10, 250, 0, 1])),
            ("dst_mac", |e| e.packet.dst_mac = [2, 0, 0, 0, 0, 9]),
            ("src", |e| e.packet.src_ip[..4].copy_from_slice(&[10, 244, 1, 7])),
        ];
        let mut cache = AnnotationCache::default();
        assert_eq!(cache.get(&m, &base), &fresh(&m, &base));
        let mut distinct = 0;
        for (what, change) in &variants {
            let mut ev = base;
            change(&mut ev);
            let want = fresh(&m, &ev);
            assert_eq!(cache.get(&m, &ev), &want, "after changing {what}");
            distinct += usize::from(want != fresh(&m, &base));
        }
        assert!(distinct >= 5, "only {distinct} variants changed the annotation: the test would not catch a short key");
        assert_eq!(cache.get(&m, &base), &fresh(&m, &base));
        assert_eq!(cache.hits, 1, "only the repeated base event is a hit");
    }

    /// A change to the mirror is seen by the next event of a cached flow.
    #[test]
    fn a_mirror_change_empties_the_cache() {
        let mut m = calico_node(2);
        let ev = tcp_event(0, Ipv4Addr::new(10, 250, 0, 1), dir::INGRESS, FIRST_CALI, fib::SUCCESS, UPLINK);
        let mut cache = AnnotationCache::default();
        let before = cache.get(&m, &ev).annotation.clone();
        assert_eq!(cache.get(&m, &ev).annotation, before);
        let route = Route {
            dst: Prefix::new(IpAddr::V4(Ipv4Addr::new(10, 250, 0, 0)), 16),
            table: RT_TABLE_MAIN,
            kind: RouteKind::Blackhole,
            scope: 0,
            tos: 0,
            metric: 0,
            prefsrc: None,
            nexthops: Vec::<NextHop>::new(),
        };
        m.routes.insert(route, false);
        m.touch();
        let after = cache.get(&m, &ev).annotation.clone();
        assert_ne!(after, before, "the blackhole route is not in the annotation");
        assert_eq!(after, fresh(&m, &ev).annotation);
        let neigh = Neighbour { state: NeighState::Failed, lladdr: None };
        m.neighbours
            .apply(NeighUpdate { dev: UPLINK, ip: bench::GATEWAY.into(), proxy: false, neighbour: neigh }, true);
        m.touch();
        let ev = tcp_event(0, Ipv4Addr::new(93, 184, 216, 34), dir::INGRESS, FIRST_CALI, fib::SUCCESS, UPLINK);
        assert_eq!(cache.get(&m, &ev), &fresh(&m, &ev));
        assert!(String::from_utf8_lossy(cache.get(&m, &ev).bytes(crate::output::Format::Text)).contains("FAILED"));
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let m = calico_node(2);
        let mut cache = AnnotationCache::default();
        for port in 0..(CAPACITY as u16 + 100) {
            let mut ev = tcp_event(0, pod_ip(1), dir::INGRESS, FIRST_CALI, fib::SUCCESS, FIRST_CALI + 1);
            ev.packet.sport = port;
            cache.get(&m, &ev);
            assert!(cache.flows(&m) <= CAPACITY);
        }
        assert_eq!(cache.misses, u64::from(CAPACITY as u16 + 100));
    }

    /// A few hundred flows (the bench's mix is 192) all stay: the second pass is all hits.
    #[test]
    fn a_few_hundred_flows_fit() {
        let m = calico_node(2);
        let mut cache = AnnotationCache::default();
        let flows = |cache: &mut AnnotationCache| {
            for port in 0..300 {
                let mut ev = tcp_event(0, pod_ip(1), dir::INGRESS, FIRST_CALI, fib::SUCCESS, FIRST_CALI + 1);
                ev.packet.sport = 1000 + port * 7;
                ev.ifindex = FIRST_CALI + u32::from(port % 2);
                cache.get(&m, &ev);
            }
        };
        flows(&mut cache);
        flows(&mut cache);
        assert!(cache.hits >= 290, "{} of 300 hits on the second pass", cache.hits);
        assert!(cache.flows(&m) >= 290, "{} flows held", cache.flows(&m));
    }
}
