//! Per-interface traffic counted in the kernel (`TRAFFIC`, a per-CPU hash keyed by ifindex):
//! what `--metrics` serves as packets and bytes, read by the collector on a scrape, with no
//! ring record per packet.

/// One interface's counts on one CPU, by direction (index 0 ingress, 1 egress).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub packets: [u64; 2],
    /// `skb->len`, from the MAC header on.
    pub bytes: [u64; 2],
}

impl Traffic {
    /// The index of `dir` (a [`crate::dir`] value) in the arrays.
    pub const fn slot(dir: u8) -> usize {
        if dir == crate::dir::EGRESS { 1 } else { 0 }
    }
}

/// Interfaces counted at most (the size of `TRACED_IFACES`).
pub const TRAFFIC_ENTRIES: u32 = 4096;

const _: () = assert!(core::mem::size_of::<Traffic>() == 32);

#[cfg(feature = "user")]
// SAFETY: plain `#[repr(C)]` u64 arrays: every bit pattern is valid.
unsafe impl aya::Pod for Traffic {}
