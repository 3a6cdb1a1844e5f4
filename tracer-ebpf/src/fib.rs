//! The kernel's own forwarding verdict for a frame: `bpf_fib_lookup` with the frame's addresses,
//! asked on TC ingress (where the kernel is about to route it).
//!
//! Flags 0: a full lookup through the policy rules (BPF_FIB_LOOKUP_DIRECT would skip them) and
//! the neighbour table. `tot_len` stays 0 so that the kernel checks the MTU against the skb
//! itself, which is right for GSO packets too.
//!
//! The verdict is cached per CPU, keyed by everything the lookup is asked (the first 48 bytes
//! of the request: family, protocol, ports, input ifindex, flow info, addresses): a flow's
//! packets ask the same question, and the lookup is the dearest part of the ingress program.
//! An entry answers only while it is younger than `FIB_CACHE_NS` and of the current generation
//! (`FIB_GEN`, bumped by the collector on every route, rule, link, address or neighbour change
//! it sees). NO_NEIGH (resolution is under way) and FRAG_NEEDED (depends on the skb) are never
//! cached; SUCCESS answers a non-GSO packet only up to the longest one it was seen for, as the
//! kernel's MTU check would (a GSO packet always passes that check).

use aya_ebpf::{
    EbpfContext,
    bindings::bpf_fib_lookup as FibParams,
    helpers::generated::bpf_fib_lookup,
    macros::map,
    maps::{Array, PerCpuArray},
    programs::TcContext,
};
use tracer_common::{
    Packet, fib,
    proto::{AF_INET, AF_INET6},
    valid,
};

use crate::tc::SkbMeta;

/// The words of a request that make the key: everything before the output fields.
const KEY_WORDS: usize = 12;

/// A cached verdict.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Entry {
    key: [u32; KEY_WORDS],
    generation: u32,
    /// SUCCESS: the longest non-GSO packet it was seen for.
    max_len: u32,
    at_ns: u64,
    out_ifindex: u32,
    verdict: u32,
}

#[map]
static FIB_CACHE: PerCpuArray<Entry> = PerCpuArray::with_max_entries(fib::CACHE_SLOTS, 0);

/// Slot 0: the generation (see the module's text).
#[map]
static FIB_GEN: Array<u32> = Array::with_max_entries(1, 0);

/// How long an entry answers, in ns; 0 turns the cache off. Set at load.
#[unsafe(no_mangle)]
static FIB_CACHE_NS: u64 = fib::DEFAULT_CACHE_NS;

/// (verdict, egress ifindex) for an IPv4/IPv6 frame received on `skb.ifindex` at `now_ns`;
/// (`fib::NOT_RUN`, 0) for anything else.
#[inline(always)]
pub fn verdict(ctx: &TcContext, p: &Packet, skb: &SkbMeta, now_ns: u64) -> (u8, u32) {
    let Some(mut params) = request(p, skb.ifindex) else { return (fib::NOT_RUN, 0) };
    let key = key_of(&params);
    // SAFETY: a plain read of a global; volatile so that the loader's value is used.
    let lifetime = unsafe { core::ptr::read_volatile(&FIB_CACHE_NS) };
    let generation = FIB_GEN.get(0).copied().unwrap_or(0);
    let entry = if lifetime == 0 { None } else { FIB_CACHE.get_ptr_mut(slot(&key)) };
    let mut seen_len = 0;
    if let Some(e) = entry {
        // SAFETY: this CPU's entry; nothing else writes it while this program runs.
        let e = unsafe { &mut *e };
        if same(&e.key, &key) && e.generation == generation && now_ns.wrapping_sub(e.at_ns) < lifetime {
            if e.verdict != u32::from(fib::SUCCESS) || skb.gso || skb.len <= e.max_len {
                return (e.verdict as u8, e.out_ifindex);
            }
            seen_len = e.max_len;
        }
    }
    // SAFETY: `params` is a live, fully initialised bpf_fib_lookup on the stack and `plen` is
    // its size; the context is the classifier's skb.
    let ret = unsafe { bpf_fib_lookup(ctx.as_ptr(), &mut params, core::mem::size_of::<FibParams>() as i32, 0) };
    let code = match u8::try_from(ret) {
        Ok(code) if code <= fib::FRAG_NEEDED => code,
        _ => return (fib::NOT_RUN, 0),
    };
    if let Some(e) = entry
        && code != fib::NO_NEIGH
        && code != fib::FRAG_NEEDED
    {
        let max_len = if code == fib::SUCCESS && !skb.gso { seen_len.max(skb.len) } else { seen_len };
        // SAFETY: as above.
        unsafe {
            *e = Entry {
                key,
                generation,
                max_len,
                at_ns: now_ns,
                out_ifindex: params.ifindex,
                verdict: u32::from(code),
            }
        };
    }
    (code, params.ifindex)
}

/// The lookup's request for a frame received on `ifindex`; `None` unless IPv4/IPv6.
#[inline(always)]
fn request(p: &Packet, ifindex: u32) -> Option<FibParams> {
    // SAFETY: an all-zero bpf_fib_lookup is a valid "nothing set" request.
    let mut params: FibParams = unsafe { core::mem::zeroed() };
    if p.valid & valid::IPV4 != 0 {
        params.family = AF_INET;
        params.__bindgen_anon_3.ipv4_src = u32::from_ne_bytes([p.src_ip[0], p.src_ip[1], p.src_ip[2], p.src_ip[3]]);
        params.__bindgen_anon_4.ipv4_dst = u32::from_ne_bytes([p.dst_ip[0], p.dst_ip[1], p.dst_ip[2], p.dst_ip[3]]);
    } else if p.valid & valid::IPV6 != 0 {
        params.family = AF_INET6;
        params.__bindgen_anon_2.flowinfo = p.ip_id.to_be();
        params.__bindgen_anon_3.ipv6_src = words(&p.src_ip);
        params.__bindgen_anon_4.ipv6_dst = words(&p.dst_ip);
    } else {
        return None;
    }
    params.l4_protocol = p.ip_proto;
    if p.valid & valid::PORTS != 0 {
        params.sport = p.sport.to_be();
        params.dport = p.dport.to_be();
    }
    params.ifindex = ifindex;
    Some(params)
}

/// The request's first [`KEY_WORDS`] words (family … destination address).
#[inline(always)]
fn key_of(params: &FibParams) -> [u32; KEY_WORDS] {
    const _: () = assert!(core::mem::size_of::<FibParams>() >= KEY_WORDS * 4);
    // SAFETY: the request is a 4-aligned plain struct of at least KEY_WORDS words.
    unsafe { core::ptr::from_ref(params).cast::<[u32; KEY_WORDS]>().read() }
}

/// Whether two keys are equal: word by word, without a call to `bcmp`.
#[inline(always)]
fn same(a: &[u32; KEY_WORDS], b: &[u32; KEY_WORDS]) -> bool {
    let mut diff = 0;
    for i in 0..KEY_WORDS {
        diff |= a[i] ^ b[i];
    }
    diff == 0
}

/// The key's slot in the cache.
#[inline(always)]
fn slot(key: &[u32; KEY_WORDS]) -> u32 {
    let mut h: u32 = 0x9e37_79b9;
    for w in key {
        h = (h ^ w).wrapping_mul(0x0100_0193);
    }
    (h ^ (h >> 16)) & (fib::CACHE_SLOTS - 1)
}

/// An IPv6 address as the four network-order words bpf_fib_lookup takes.
#[inline(always)]
fn words(a: &[u8; 16]) -> [u32; 4] {
    [
        u32::from_ne_bytes([a[0], a[1], a[2], a[3]]),
        u32::from_ne_bytes([a[4], a[5], a[6], a[7]]),
        u32::from_ne_bytes([a[8], a[9], a[10], a[11]]),
        u32::from_ne_bytes([a[12], a[13], a[14], a[15]]),
    ]
}
