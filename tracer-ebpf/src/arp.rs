//! ARP as the host stack sees it: what `arp_rcv` is handed and what `arp_xmit` sends (proxy
//! replies, the host's own requests), on traced interfaces.
//!
//! The same two hooks in each attach mode — kprobe, fentry, or tp_btf on the generic
//! `net:netif_receive_skb` / `net:net_dev_queue` tracepoints (every packet, so the skb's
//! protocol is checked first) — and one body, [`try_arp`].

use aya_ebpf::{
    macros::{btf_tracepoint, fentry, kprobe},
    programs::{BtfTracePointContext, FEntryContext, ProbeContext},
};
use tracer_common::{ArpRecord, ArpSection, SectionHeader, arp_hook, kind, proto::ETH_P_ARP, section};

use crate::{emit, kread::read, neigh};

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

#[btf_tracepoint(function = "netif_receive_skb")]
pub fn vt_arp_rcv_tp(ctx: BtfTracePointContext) -> u32 {
    let skb: *const u8 = ctx.arg(0);
    if !is_arp(skb) {
        return 0;
    }
    run(skb as u64, arp_hook::RECV, At::Data)
}

#[btf_tracepoint(function = "net_dev_queue")]
pub fn vt_arp_xmit_tp(ctx: BtfTracePointContext) -> u32 {
    let skb: *const u8 = ctx.arg(0);
    if !is_arp(skb) {
        return 0;
    }
    run(skb as u64, arp_hook::SEND, At::Network)
}

/// These two tracepoints see every packet of every device: the protocol check comes first and
/// costs one load. `skb` is a BTF-typed pointer here and the offset a load-time constant, so
/// the verifier checks the read against `struct sk_buff` and no helper call is needed.
#[inline(always)]
fn is_arp(skb: *const u8) -> bool {
    let off = neigh::protocol_offset() as usize;
    if off == 0 {
        return false;
    }
    // SAFETY: a typed read the verifier checks against the sk_buff layout in BTF.
    let protocol = unsafe { core::ptr::read_volatile(skb.wrapping_add(off).cast::<u16>()) };
    u16::from_be(protocol) == ETH_P_ARP
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
