//! The set of traced interfaces, by ifindex: filled by the collector as it attaches TC
//! (tracer/src/attach.rs), read by hooks that see packets outside TC (drops, neighbours) to
//! keep only what concerns a traced veth.

use aya_ebpf::{macros::map, maps::HashMap};

/// Keys are ifindexes of the collector's netns; values are `tracer_common::TRACED`.
#[map]
pub static TRACED_IFACES: HashMap<u32, u8> = HashMap::with_max_entries(4096, 0);

/// Whether `ifindex` is traced.
#[inline(always)]
pub fn is_traced(ifindex: u32) -> bool {
    // SAFETY: the value is a plain u8 the collector writes whole; it is not kept.
    ifindex != 0 && unsafe { TRACED_IFACES.get(&ifindex) }.is_some()
}
