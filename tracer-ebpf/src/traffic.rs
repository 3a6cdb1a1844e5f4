//! Packets and bytes per traced interface and direction, counted in the kernel (`--metrics`):
//! the collector reads the sums on a scrape, so counting needs no ring record per packet.

use aya_ebpf::{bindings::BPF_F_NO_PREALLOC, macros::map, maps::PerCpuHashMap};
use tracer_common::traffic::{TRAFFIC_ENTRIES, Traffic};

/// By ifindex; an entry appears with an interface's first frame (no preallocation: the map
/// costs what the traced interfaces use), and the collector removes it when it lets the
/// interface go.
#[map]
static TRAFFIC: PerCpuHashMap<u32, Traffic> = PerCpuHashMap::with_max_entries(TRAFFIC_ENTRIES, BPF_F_NO_PREALLOC);

/// Counts one frame of `len` bytes on `ifindex` in direction `dir`.
#[inline(always)]
pub fn count(ifindex: u32, dir: u8, len: u32) {
    let d = Traffic::slot(dir);
    if add(ifindex, d, len) {
        return;
    }
    let mut first = Traffic::default();
    first.packets[d] = 1;
    first.bytes[d] = u64::from(len);
    // Another CPU may have created the entry meanwhile (per-CPU values: this CPU's is then 0).
    if TRAFFIC.insert(&ifindex, &first, u64::from(aya_ebpf::bindings::BPF_NOEXIST)).is_err() {
        add(ifindex, d, len);
    }
}

/// Adds to this CPU's value of an existing entry; `false` when there is none.
#[inline(always)]
fn add(ifindex: u32, d: usize, len: u32) -> bool {
    let Some(t) = TRAFFIC.get_ptr_mut(&ifindex) else { return false };
    // SAFETY: this CPU's value, written only by programs on this CPU, which do not nest on a
    // TC hook; `d` is 0 or 1.
    unsafe {
        (*t).packets[d] += 1;
        (*t).bytes[d] += u64::from(len);
    }
    true
}
