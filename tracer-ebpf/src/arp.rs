//! ARP as the host stack sees it: what `arp_rcv` is handed and what `arp_xmit` sends (proxy
//! replies, the host's own requests), on traced interfaces.
//!
//! kprobe and fentry mode hook those two functions, and one body reads the skb there,
//! [`try_arp`]. Tracepoint mode has no tracepoint of its own on that path (the generic
//! `net:netif_receive_skb` / `net:net_dev_queue` would run a program on every packet of every
//! device): there the TC programs, which run on the traced interfaces anyway, tell the ARP
//! frames they see ([`from_tc`]) — received on TC ingress, just before the stack hands them
//! to `arp_rcv`; sent on TC egress, on the way out of `arp_xmit`'s `dev_queue_xmit`.

use aya_ebpf::{
    EbpfContext,
    helpers::generated::bpf_skb_load_bytes,
    macros::{fentry, kprobe, map},
    maps::Array,
    programs::{FEntryContext, ProbeContext, TcContext},
};
use tracer_common::{ArpRecord, ArpSection, SectionHeader, arp_hook, kind, proto::ETH_HLEN, section};

use crate::{emit, kread::read, neigh};

/// Slot 0 is non-zero when the ARP events come from the TC programs (tracepoint mode); the
/// collector sets it once that mode attached (it is chosen after load, so not .rodata).
#[map]
static ARP_FROM_TC: Array<u32> = Array::with_max_entries(1, 0);

/// Ethernet/IPv4 ARP: htype 1, ptype 0x0800, hlen 6, plen 4.
const ARP_ETHER_IPV4: [u8; 6] = [0, 1, 8, 0, 6, 4];

/// Where the ARP header starts in the skb at the hook.
#[derive(Clone, Copy)]
enum At {
    /// `skb->data`: received packets, after the Ethernet header was pulled.
    Data,
    /// `skb->head + skb->network_header`: sent packets, with the Ethernet header pushed.
    Network,
}

#[kprobe]
pub fn vt_arp_rcv_kp(ctx: ProbeContext) -> u32 {
    ctx.arg::<u64>(0).map_or(0, |skb| run(skb, arp_hook::RECV, At::Data))
}

#[kprobe]
pub fn vt_arp_xmit_kp(ctx: ProbeContext) -> u32 {
    ctx.arg::<u64>(0).map_or(0, |skb| run(skb, arp_hook::SEND, At::Network))
}

#[fentry]
pub fn vt_arp_rcv_fe(ctx: FEntryContext) -> u32 {
    run(ctx.arg(0), arp_hook::RECV, At::Data)
}

#[fentry]
pub fn vt_arp_xmit_fe(ctx: FEntryContext) -> u32 {
    run(ctx.arg(0), arp_hook::SEND, At::Network)
}

/// Whether the TC programs are to tell the ARP frames they see (tracepoint mode). Looked up
/// only for ARP frames.
#[inline(always)]
pub fn from_tc() -> bool {
    ARP_FROM_TC.get(0).is_some_and(|v| *v != 0)
}

/// The ARP event of an ARP frame at TC on traced `ifindex` (`hook` RECV on ingress, SEND on
/// egress). The frame already passed the expression.
#[inline(always)]
pub fn tc_event(ctx: &TcContext, ifindex: u32, hook: u8) {
    let mut arp = [0u8; 28];
    // The message starts behind the Ethernet header.
    // SAFETY: `arp` is a live 28-byte buffer on the stack; the helper checks the skb side.
    let ret = unsafe { bpf_skb_load_bytes(ctx.as_ptr(), ETH_HLEN as u32, arp.as_mut_ptr().cast(), 28) };
    if ret == 0 && arp[..6] == ARP_ETHER_IPV4 {
        write(ifindex, hook, &arp);
    }
}

#[inline(always)]
fn run(skb: u64, hook: u8, at: At) -> u32 {
    match try_arp(skb, hook, at) {
        Ok(()) | Err(()) => 0,
    }
}

#[inline(always)]
fn try_arp(skb: u64, hook: u8, at: At) -> Result<(), ()> {
    let cfg = &neigh::config()?;
    let ifindex = neigh::traced_dev(read(skb, cfg.skb_dev)?, cfg)?;
    let base: u64 = match at {
        At::Data => read(skb, cfg.skb_data)?,
        At::Network => read::<u64>(skb, cfg.skb_head)? + u64::from(read::<u16>(skb, cfg.skb_network_header)?),
    };
    let arp: [u8; 28] = read(base, 0)?;
    if arp[..6] != ARP_ETHER_IPV4 || !crate::filter::pass_arp(base) {
        return Ok(());
    }
    write(ifindex, hook, &arp);
    Ok(())
}

#[inline(always)]
fn write(ifindex: u32, hook: u8, arp: &[u8; 28]) {
    let Some(mut entry) = emit::reserve::<ArpRecord>() else { return };
    let arp = ArpSection {
        ifindex,
        hook,
        op: u16::from_be_bytes([arp[6], arp[7]]),
        sha: [arp[8], arp[9], arp[10], arp[11], arp[12], arp[13]],
        spa: [arp[14], arp[15], arp[16], arp[17]],
        tha: [arp[18], arp[19], arp[20], arp[21], arp[22], arp[23]],
        tpa: [arp[24], arp[25], arp[26], arp[27]],
        ..ArpSection::default()
    };
    entry.write(ArpRecord {
        header: emit::header(kind::ARP, core::mem::size_of::<ArpRecord>()),
        arp_hdr: SectionHeader::new(section::ARP, section::ARP_VERSION, core::mem::size_of::<ArpSection>()),
        arp,
    });
    emit::submit(entry);
}
