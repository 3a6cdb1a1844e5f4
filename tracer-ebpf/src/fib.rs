//! The kernel's own forwarding verdict for a frame: `bpf_fib_lookup` with the frame's addresses,
//! asked on TC ingress (where the kernel is about to route it).
//!
//! Flags 0: a full lookup through the policy rules (BPF_FIB_LOOKUP_DIRECT would skip them) and
//! the neighbour table. `tot_len` stays 0 so that the kernel checks the MTU against the skb
//! itself, which is right for GSO packets too.

use aya_ebpf::{
    EbpfContext, bindings::bpf_fib_lookup as FibParams, helpers::generated::bpf_fib_lookup, programs::TcContext,
};
use tracer_common::{
    Packet, fib,
    proto::{AF_INET, AF_INET6},
    valid,
};

/// (verdict, egress ifindex) for an IPv4/IPv6 frame received on `ifindex`;
/// (`fib::NOT_RUN`, 0) for anything else.
#[inline(always)]
pub fn verdict(ctx: &TcContext, p: &Packet, ifindex: u32) -> (u8, u32) {
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
        return (fib::NOT_RUN, 0);
    }
    params.l4_protocol = p.ip_proto;
    if p.valid & valid::PORTS != 0 {
        params.sport = p.sport.to_be();
        params.dport = p.dport.to_be();
    }
    params.ifindex = ifindex;
    // SAFETY: `params` is a live, fully initialised bpf_fib_lookup on the stack and `plen` is
    // its size; the context is the classifier's skb.
    let ret = unsafe { bpf_fib_lookup(ctx.as_ptr(), &mut params, core::mem::size_of::<FibParams>() as i32, 0) };
    match u8::try_from(ret) {
        Ok(code) if code <= fib::FRAG_NEEDED => (code, params.ifindex),
        _ => (fib::NOT_RUN, 0),
    }
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
