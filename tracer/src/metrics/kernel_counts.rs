//! Packets and bytes by interface and direction, as the TC programs count them in the kernel
//! (`TRAFFIC`, per CPU): summed and added to the Prometheus counters when `/metrics` is read,
//! so that counting costs no ring record per packet and a scrape sees every frame counted
//! until that moment.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use aya::{
    Ebpf,
    maps::{MapData, MapError, PerCpuHashMap},
};
use prometheus_client::metrics::counter::Counter;
use tracer_common::{names::TRAFFIC_MAP, traffic::Traffic};

/// An interface's counters and the kernel's sums already added to them.
struct Counted {
    packets: [Counter; 2],
    bytes: [Counter; 2],
    added: Traffic,
}

/// Where the kernel's counts are read: the `TRAFFIC` map (a test gives a table of its own).
pub(crate) trait Sums: Send {
    /// `ifindex`'s counts summed over CPUs (zero when it has none yet).
    fn sum(&self, ifindex: u32) -> Traffic;
    /// Forgets `ifindex`'s counts.
    fn forget(&mut self, ifindex: u32);
}

impl Sums for PerCpuHashMap<MapData, u32, Traffic> {
    fn sum(&self, ifindex: u32) -> Traffic {
        let mut sum = Traffic::default();
        if let Ok(per_cpu) = self.get(&ifindex, 0) {
            for t in per_cpu.iter() {
                for d in 0..2 {
                    sum.packets[d] += t.packets[d];
                    sum.bytes[d] += t.bytes[d];
                }
            }
        }
        sum
    }

    fn forget(&mut self, ifindex: u32) {
        let _ = self.remove(&ifindex);
    }
}

/// The `TRAFFIC` map as userspace reads it.
pub(crate) type TrafficMap = PerCpuHashMap<MapData, u32, Traffic>;

/// Takes the `TRAFFIC` map out of the loaded object (once: its taker owns it).
pub(crate) fn traffic_map(ebpf: &mut Ebpf) -> Result<TrafficMap, MapError> {
    let map = ebpf.take_map(TRAFFIC_MAP).ok_or_else(|| MapError::InvalidName { name: TRAFFIC_MAP.to_owned() })?;
    PerCpuHashMap::try_from(map)
}

struct Table {
    map: Box<dyn Sums>,
    ifaces: HashMap<u32, Counted, foldhash::fast::RandomState>,
}

/// Shared by the event loop (which says which interfaces are counted, under which counters)
/// and the HTTP endpoint (which brings the counters up to date before it encodes them).
#[derive(Clone)]
pub(crate) struct KernelCounts(Arc<Mutex<Table>>);

impl KernelCounts {
    /// Takes the `TRAFFIC` map out of the loaded object.
    pub(crate) fn take(ebpf: &mut Ebpf) -> Result<Self, MapError> {
        Ok(Self::with(Box::new(traffic_map(ebpf)?)))
    }

    pub(crate) fn with(map: Box<dyn Sums>) -> Self {
        Self(Arc::new(Mutex::new(Table { map, ifaces: HashMap::default() })))
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// From now on `ifindex`'s frames go to these counters (the counts so far went to the
    /// counters it had before, if any).
    pub(crate) fn track(&self, ifindex: u32, packets: [Counter; 2], bytes: [Counter; 2]) {
        let mut t = self.table();
        // A new interface's frames all count, those seen before it was attached included (its
        // entry is new); an interface counted before keeps its place.
        let added = t.ifaces.remove(&ifindex).map_or_else(Traffic::default, |old| old.added);
        t.ifaces.insert(ifindex, Counted { packets, bytes, added });
    }

    /// `ifindex` is no longer traced: its entry leaves the map (a later interface of the same
    /// index starts from zero).
    pub(crate) fn untrack(&self, ifindex: u32) {
        let mut t = self.table();
        t.ifaces.remove(&ifindex);
        t.map.forget(ifindex);
    }

    /// Adds what the kernel counted since the last call to each interface's counters.
    pub(crate) fn refresh(&self) {
        let mut t = self.table();
        let Table { map, ifaces } = &mut *t;
        for (ifindex, c) in ifaces.iter_mut() {
            let now = map.sum(*ifindex);
            for d in 0..2 {
                c.packets[d].inc_by(since(now.packets[d], c.added.packets[d]));
                c.bytes[d].inc_by(since(now.bytes[d], c.added.bytes[d]));
            }
            c.added = now;
        }
    }
}

/// What a monotonic count gained: all of `now` when it went back (the entry was made anew).
fn since(now: u64, before: u64) -> u64 {
    if now >= before { now - before } else { now }
}

#[cfg(test)]
mod tests {
    use super::since;

    #[test]
    fn a_count_made_anew_counts_from_zero() {
        assert_eq!(since(10, 4), 6);
        assert_eq!(since(4, 4), 0);
        assert_eq!(since(3, 9), 3);
    }
}
