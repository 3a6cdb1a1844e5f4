//! A `struct sk_buff` as the tracepoint programs (drops, journeys) read it: its fields at BTF
//! offsets (`DROP_CFG`), its linear data from the MAC header (or the network header), and
//! whether it concerns a traced interface by address (`DROP_ADDRS`, filled by the collector from
//! its route mirror).

use core::ffi::c_void;

use aya_ebpf::{
    helpers::generated::bpf_probe_read_kernel,
    macros::map,
    maps::{LpmTrie, lpm_trie::Key},
    programs::TracePointContext,
};
use tracer_common::{
    DropConfig, SCRATCH_BYTES, frame_origin,
    proto::{ETH_HLEN, ETH_P_IP, ETH_P_IPV6},
};

use crate::{
    emit,
    kread::{self, read},
};

/// Prefixes routed to traced interfaces, as IPv6 (IPv4 mapped into ::ffff:0:0/96).
#[map]
static DROP_ADDRS: LpmTrie<[u8; 16], u8> = LpmTrie::with_max_entries(65536, 0);

/// `skb->mac_header`/`network_header` when unset (`(typeof(skb->mac_header))~0U`).
const HEADER_UNSET: u16 = 0xffff;

/// The skb fields the programs need.
pub struct Skb {
    pub head: u64,
    pub tail: u32,
    pub len: u32,
    pub mac: u16,
    pub network: u16,
    /// `skb->dev` when it is a device ([`device_of`]), else 0.
    pub dev: u64,
}

impl Skb {
    #[inline(always)]
    pub fn read(skbaddr: u64, cfg: &DropConfig) -> Result<Self, ()> {
        Ok(Self {
            head: read(skbaddr, cfg.skb_head)?,
            tail: read(skbaddr, cfg.skb_tail)?,
            len: read(skbaddr, cfg.skb_len)?,
            mac: read(skbaddr, cfg.skb_mac_header)?,
            network: read(skbaddr, cfg.skb_network_header)?,
            dev: device_of(read(skbaddr, cfg.skb_dev)?, cfg),
        })
    }

    /// The network header's kernel address: where the network header is set, else behind
    /// the MAC header (a received frame before `__netif_receive_skb_core` resets it).
    #[inline(always)]
    pub fn l3(&self) -> Option<u64> {
        if self.network != HEADER_UNSET {
            Some(self.head + u64::from(self.network))
        } else if self.mac != HEADER_UNSET {
            Some(self.head + u64::from(self.mac) + ETH_HLEN as u64)
        } else {
            None
        }
    }
}

/// `skb->dev` when it is a device: a datagram freed from a closed socket's queue carries the
/// socket's `dev_scratch` in that word (not an address), and is a drop without a device.
#[inline(always)]
fn device_of(dev: u64, cfg: &DropConfig) -> u64 {
    if dev != 0 && kread::readable(dev + u64::from(cfg.dev_nd_net)) { dev } else { 0 }
}

/// Whether the packet's source or destination (its network header at `l3`, of ethertype
/// `protocol`) lies in a prefix routed to a traced interface.
#[inline(always)]
pub fn routed_to_traced(l3: u64, protocol: u16) -> bool {
    let mut key = Key::new(128, [0u8; 16]);
    match protocol {
        ETH_P_IP => {
            let Ok(addrs) = read::<[u8; 8]>(l3, 12) else { return false };
            key.data[10] = 0xff;
            key.data[11] = 0xff;
            key.data[12..16].copy_from_slice(&addrs[..4]);
            if DROP_ADDRS.get(&key).is_some() {
                return true;
            }
            key.data[12..16].copy_from_slice(&addrs[4..]);
            DROP_ADDRS.get(&key).is_some()
        }
        ETH_P_IPV6 => {
            let Ok(src) = read::<[u8; 16]>(l3, 8) else { return false };
            key.data = src;
            if DROP_ADDRS.get(&key).is_some() {
                return true;
            }
            let Ok(dst) = read::<[u8; 16]>(l3, 24) else { return false };
            key.data = dst;
            DROP_ADDRS.get(&key).is_some()
        }
        _ => false,
    }
}

/// The skb's linear data, from its MAC header — or, when the MAC header was never set
/// (locally generated packets dropped before L2), from its network header.
pub struct SkbFrame {
    /// Kernel address of the first byte, 0 when there is nothing to read.
    pub base: u64,
    /// Bytes readable from `base`.
    pub avail: u32,
    /// One of `frame_origin`.
    pub origin: u8,
}

impl SkbFrame {
    #[inline(always)]
    pub fn new(skb: &Skb) -> Self {
        let (start, origin) = if skb.mac != HEADER_UNSET {
            (skb.mac, frame_origin::MAC)
        } else if skb.network != HEADER_UNSET {
            (skb.network, frame_origin::NETWORK)
        } else {
            return Self { base: 0, avail: 0, origin: frame_origin::MAC };
        };
        let avail = skb.tail.saturating_sub(u32::from(start));
        Self { base: skb.head + u64::from(start), avail, origin }
    }

    /// Copies up to `snaplen` bytes into `buf` from byte `at` on (behind a record's fixed
    /// part); returns how many.
    #[inline(always)]
    pub fn copy_to(&self, buf: *mut [u8; SCRATCH_BYTES], at: usize, snaplen: u32) -> usize {
        let want = self.avail.min(snaplen);
        if self.base == 0 || want == 0 {
            return 0;
        }
        let n = emit::copy_len(want);
        // SAFETY: the slot has room for a record's fixed part (at most 128 bytes) + 65536
        // bytes; bpf_probe_read_kernel checks the kernel address and fails instead of faulting.
        let ret = unsafe { bpf_probe_read_kernel(buf.cast::<u8>().add(at).cast(), n, self.base as *const c_void) };
        if ret == 0 {
            n as usize
        } else {
            emit::count_error(tracer_common::errsite::DROP_COPY, n, ret);
            0
        }
    }
}

/// The tracepoint record's address as an integer (for offset arithmetic).
pub trait RecordAddr {
    fn as_ptr_u64(&self) -> u64;
}

impl RecordAddr for TracePointContext {
    #[inline(always)]
    fn as_ptr_u64(&self) -> u64 {
        aya_ebpf::EbpfContext::as_ptr(self) as u64
    }
}
