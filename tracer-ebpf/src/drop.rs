//! Drops: the skb:kfree_skb tracepoint, with the drop reason where the kernel has one.
//!
//! Kept in the kernel: real drops (not `SKB_CONSUMED`) of packets that concern a traced veth —
//! the skb's device is traced ([`crate::ifaces`]), or its source or destination is an address
//! routed to a traced interface (`DROP_ADDRS`, filled by the collector from its route mirror),
//! or it arrived through a traced interface (`skb_iif`: a pod's packet SNATed on the uplink).
//! Drops on devices or sockets of other network namespaces (a pod's own eth0 or sockets) are
//! skipped, and so are drops with neither (their namespace is unknown). Everything else
//! returns before a ring-buffer record is reserved.
//!
//! The record carries the dropped frame's first bytes (`--snaplen`); the collector parses them.
//! A drop of a packet on a journey (`--journey`) ends the journey: it is kept whatever its
//! device and address, and carries the journey's id; a packet on a journey freed as consumed
//! (`SKB_CONSUMED`) ends it as a journey hop ([`crate::journey`]).
//!
//! Record and struct layouts come from `DROP_CFG` (tracefs and BTF, read by the collector):
//! Rust eBPF has no CO-RE, and the kfree_skb record changed between 6.1 and 6.18.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use tracer_common::{DropConfig, DropRecord, DropSection, FrameSection, SectionHeader, dropf, frame_origin, kind, section, slot};

use crate::{
    emit, ifaces, journey,
    kread::{DevLayout, dev_netns, read},
    skb::{RecordAddr, Skb, SkbFrame, routed_to_traced},
    veth::{self, PodEnd},
};

/// The layouts of the running kernel, set at load (a load-time constant for the verifier);
/// all zero (`enabled == 0`: do nothing) until then.
#[unsafe(no_mangle)]
static DROP_CFG: DropConfig = DropConfig::DISABLED;

/// The skb and device layouts as the verifier sees them: a constant.
#[inline(always)]
pub fn config() -> DropConfig {
    // SAFETY: a plain global; the volatile read keeps the compiler from folding the all-zero
    // default (the loader rewrites it).
    unsafe { core::ptr::read_volatile(&raw const DROP_CFG) }
}

#[tracepoint]
pub fn vethtrace_drop(ctx: TracePointContext) -> u32 {
    match try_drop(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

#[inline(always)]
fn try_drop(ctx: &TracePointContext) -> Result<(), ()> {
    // When the tracepoint was hit (a stamp taken at the end would carry the program's own time).
    let ts = emit::now_ns();
    let cfg = &config();
    if cfg.enabled == 0 {
        return Ok(());
    }
    let rec = ctx.as_ptr_u64();
    let skbaddr: u64 = read(rec, cfg.rec_skbaddr)?;
    let location = read(rec, cfg.rec_location).unwrap_or(0);
    let mut flags = 0;
    let mut reason = 0;
    if cfg.rec_reason != DropConfig::NONE {
        reason = read::<u32>(rec, cfg.rec_reason)?;
        if reason == cfg.reason_consumed {
            journey::consumed(skbaddr, location, ts);
            return Ok(());
        }
        flags |= dropf::HAS_REASON;
    }
    let journey = journey::end(skbaddr, ts);
    let protocol: u16 = read(rec, cfg.rec_protocol)?;
    let skb = Skb::read(skbaddr, cfg)?;
    let Some(dev) = Device::of(&skb, skbaddr, cfg)? else { return Ok(()) };
    let ifindex = dev.ifindex;
    if skb.dev != 0 {
        flags |= dropf::HAS_DEV | dev.side;
    }
    if ifaces::is_traced(ifindex) {
        flags |= dropf::BY_DEV;
    } else if skb.l3().is_some_and(|l3| routed_to_traced(l3, protocol)) {
        flags |= dropf::BY_ADDR;
    } else if skb.dev != 0 && ifaces::is_traced(read(skbaddr, cfg.skb_iif)?) {
        // Arrived through a traced veth and dropped elsewhere in this namespace (skb_iif is
        // an ifindex of the device's namespace, checked above).
        flags |= dropf::BY_IIF;
    } else if journey == 0 {
        return Ok(());
    }
    let frame = SkbFrame::new(&skb);
    let network_origin = frame.origin == frame_origin::NETWORK;
    // A journey's packet matched where it started (NAT may have changed it since).
    if journey == 0 && !crate::filter::pass_drop(frame.base, frame.avail, network_origin.then_some(protocol)) {
        return Ok(());
    }

    let section = DropSection { location, reason, len: skb.len, protocol, flags, journey, ..dev.section() };
    emit_drop(section, &frame, ts);
    Ok(())
}

/// The dropping device as the record reports it.
struct Device {
    /// In this namespace: the device's; for the pod end of a traced veth: the traced end's.
    ifindex: u32,
    flags: u32,
    carrier: u8,
    /// [`dropf::HAS_POD`] and [`dropf::POD_SIDE`] as they apply.
    side: u8,
    pod: Option<PodEnd>,
}

impl Device {
    /// The record's device and pod fields.
    #[inline(always)]
    fn section(&self) -> DropSection {
        let pod = self.pod.as_ref();
        DropSection {
            ifindex: self.ifindex,
            dev_carrier: self.carrier,
            dev_flags: self.flags,
            pod_ifindex: pod.map_or(0, |p| p.ifindex),
            pod_flags: pod.map_or(0, |p| p.flags),
            pod_name: pod.map_or([0; 16], |p| p.name),
            pod_carrier: pod.map_or(0, |p| p.carrier),
            ..DropSection::default()
        }
    }

    /// The dropping device, `None` when the drop is not this namespace's business. A drop
    /// without a device (a socket's queue purged — a pod's socket closed with unread data —, a
    /// TCP segment rejected after the device was cleared, and the like) counts when its socket
    /// is this namespace's; with neither device nor socket the namespace is unknown, and the
    /// same pod addresses may live in other namespaces (other nodes on one host), so it does not.
    #[inline(always)]
    fn of(skb: &Skb, skbaddr: u64, cfg: &DropConfig) -> Result<Option<Self>, ()> {
        if skb.dev != 0 {
            // `None`: another namespace's device that is not the pod end of a traced veth: its
            // ifindex is not ours, and what it drops is that namespace's business.
            return Self::read(skb.dev, cfg);
        }
        let sk: u64 = read(skbaddr, cfg.skb_sk)?;
        if sk == 0 {
            return Ok(None);
        }
        let net: u64 = read(sk, cfg.sk_net)?;
        if read::<u32>(net, cfg.net_inum)? != cfg.netns_inum {
            return Ok(None);
        }
        Ok(Some(Self { ifindex: 0, flags: 0, carrier: 0, side: 0, pod: None }))
    }

    /// `None` for a device of another namespace that is not the pod end of a traced veth.
    #[inline(always)]
    fn read(dev: u64, cfg: &DropConfig) -> Result<Option<Self>, ()> {
        let own = PodEnd::read(dev, cfg)?;
        let layout = DevLayout { ifindex: cfg.dev_ifindex, nd_net: cfg.dev_nd_net, net_inum: cfg.net_inum };
        let peer = veth::peer(dev, cfg);
        let (ifindex, flags, carrier) = (own.ifindex, own.flags, own.carrier);
        if dev_netns(dev, &layout)? == cfg.netns_inum {
            // A traced veth's pod end, for the cause ("the pod's eth0 is down").
            let pod = if peer != 0 && ifaces::is_traced(ifindex) { PodEnd::read(peer, cfg).ok() } else { None };
            let side = if pod.is_some() { dropf::HAS_POD } else { 0 };
            return Ok(Some(Self { ifindex, flags, carrier, side, pod }));
        }
        // The pod end of a traced veth: its peer is a traced interface of this namespace.
        if peer == 0 || dev_netns(peer, &layout)? != cfg.netns_inum {
            return Ok(None);
        }
        let node_end: u32 = read(peer, cfg.dev_ifindex)?;
        if !ifaces::is_traced(node_end) {
            return Ok(None);
        }
        let side = dropf::HAS_POD | dropf::POD_SIDE;
        Ok(Some(Self { ifindex: node_end, flags, carrier, side, pod: Some(own) }))
    }
}

const FIXED: usize = core::mem::size_of::<DropRecord>();

/// Builds the drop record (stamped `ts`) with the frame's first bytes in this CPU's scratch slot and sends it.
/// IPv6 control traffic the kernel frees without a reason (MLD and neighbour discovery, which
/// every pod sends as it comes up) is left to the collector to set aside: it parses the frame.
#[inline(always)]
fn emit_drop(mut section: DropSection, frame: &SkbFrame, ts: u64) {
    let Some(buf) = emit::scratch(slot::DROP) else { return };
    if frame.origin == frame_origin::NETWORK {
        section.flags |= dropf::NO_MAC;
    }
    let caplen = frame.copy_to(buf, FIXED, emit::snaplen());
    let rec = DropRecord {
        header: emit::header_at(kind::DROP, FIXED + caplen, ts),
        drop_hdr: SectionHeader::new(section::DROP, section::DROP_VERSION, core::mem::size_of::<DropSection>()),
        drop: section,
        frame_hdr: SectionHeader::new(section::FRAME, section::FRAME_VERSION, core::mem::size_of::<FrameSection>() + caplen),
        frame: FrameSection { caplen: caplen as u32, origin: frame.origin, _pad: [0; 3] },
    };
    // SAFETY: the slot holds SCRATCH_BYTES >= FIXED bytes; unaligned write of a plain struct.
    unsafe { buf.cast::<DropRecord>().write_unaligned(rec) };
    emit::output(buf, FIXED + caplen);
}
