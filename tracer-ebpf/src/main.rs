//! vethtrace's kernel side: one module per hook family.
//!
//! - [`tc`]: TC ingress/egress classifiers on the traced veths (one event per frame), with the
//!   kernel's FIB verdict on ingress ([`fib`]).
//! - [`drop`]: skb:kfree_skb, the drops that concern a traced veth (set in [`ifaces`]).
//! - [`journey`]: packets followed through the node by their skb (`--journey`), on tracepoints;
//!   [`hops`]: their hops inside the stack where kprobes or fentry attach.
//! - [`arp`] and [`neigh`]: the host stack's ARP and neighbour path (kprobe, fentry or tp_btf,
//!   whichever the collector could attach).
//!
//! Shared pieces: [`parse`] (bounded frame parser), [`capture`] (a copied frame the parser reads),
//! [`emit`] (ring buffer, scratch records and loss counters),
//! [`kread`] (kernel reads at BTF offsets).
#![no_std]
#![no_main]

mod arp;
mod capture;
mod drop;
mod emit;
mod fib;
mod filter;
mod hops;
mod ifaces;
mod journey;
mod kread;
mod neigh;
mod skb;
mod tc;
mod traffic;
mod veth;

// The parser lives in the library so that host tests can run it on fixture frames.
use tracer_ebpf::parse;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects any program with a reachable panic path, so this is never run.
    unsafe { core::hint::unreachable_unchecked() }
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
