//! Journeys (`--journey`): each packet the expression selects, followed through the node by
//! its skb's address from where it entered to where it left or died.
//!
//! Every hook is a tracepoint, so journeys work on every kernel vethtrace runs on (kprobes and
//! fentry are not needed):
//! - net:netif_receive_skb — the node received the packet on a device of its namespace: a
//!   journey starts when the device is traced or the packet's source or destination is routed
//!   to a traced interface (the uplink's packets for pods), and the expression selects it;
//! - net:net_dev_queue — a followed packet is queued on a device (its headers after routing and
//!   NAT go with the hop); a packet nobody follows that the node's own stack sends starts a
//!   journey there, under the same conditions;
//! - net:net_dev_xmit — handed to the driver: the journey ends (it left the namespace: a veth
//!   hands it to the pod, the uplink to the wire); when the kernel ran no program there (see
//!   [`seen_beyond`]), the pod's receive or reuse of the skb ends it instead;
//! - skb:consume_skb (and skb:kfree_skb with `SKB_CONSUMED`, in [`crate::drop`]) — freed after
//!   use in the node: the journey ends;
//! - skb:skb_copy_datagram_iovec — a local socket read it: the journey ends;
//! - skb:kfree_skb — dropped: the drop record ends the journey ([`crate::drop`]).
//!
//! Where kprobes or fentry attach, [`crate::hops`] adds hops inside the stack (forwarding,
//! output, the neighbour, netfilter verdicts) to the journeys this map holds.
//!
//! `JOURNEYS` maps a followed skb to its journey's id. It is bounded: a packet that finds it
//! full is not followed, and counted (`LOST_JOURNEYS`). An entry whose end the kernel does not
//! trace (an skb freed with `__kfree_skb`) is removed by the collector when the journey times
//! out; an skb address reused meanwhile starts a new journey over it.

use aya_ebpf::{
    helpers::bpf_get_smp_processor_id,
    macros::{map, tracepoint},
    maps::HashMap,
    programs::TracePointContext,
};
use tracer_common::{
    DropConfig, FrameSection, JOURNEY_ENTRIES, JourneyConfig, JourneyFrameRecord, JourneyRecord, JourneySection,
    LOST_JOURNEYS, SectionHeader, frame_origin, hop, kind, section, slot,
};

use crate::{
    drop, emit, ifaces,
    kread::{DevLayout, dev_netns, read},
    skb::{RecordAddr, Skb, SkbFrame, routed_to_traced},
};

/// Where the tracepoints' records hold the skb, set at load; all zero (off) until then.
#[unsafe(no_mangle)]
static JOURNEY_CFG: JourneyConfig = JourneyConfig::DISABLED;

/// Journeys under way: skb address → journey id.
#[map]
static JOURNEYS: HashMap<u64, u64> = HashMap::with_max_entries(JOURNEY_ENTRIES, 0);

#[inline(always)]
fn config() -> JourneyConfig {
    // SAFETY: a plain global; the volatile read keeps the compiler from folding the all-zero
    // default (the loader rewrites it).
    unsafe { core::ptr::read_volatile(&raw const JOURNEY_CFG) }
}

#[tracepoint]
pub fn vethtrace_j_rcv(ctx: TracePointContext) -> u32 {
    match try_receive(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

#[tracepoint]
pub fn vethtrace_j_queue(ctx: TracePointContext) -> u32 {
    match try_queue(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

#[tracepoint]
pub fn vethtrace_j_xmit(ctx: TracePointContext) -> u32 {
    match try_xmit(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

#[tracepoint]
pub fn vethtrace_j_consume(ctx: TracePointContext) -> u32 {
    let ts = emit::now_ns();
    let jc = config();
    if jc.enabled == 0 {
        return 0;
    }
    let rec = ctx.as_ptr_u64();
    let Ok(skbaddr) = read::<u64>(rec, jc.consume_skbaddr) else { return 0 };
    let location =
        if jc.consume_location == DropConfig::NONE { 0 } else { read(rec, jc.consume_location).unwrap_or(0) };
    consumed(skbaddr, location, ts);
    0
}

#[tracepoint]
pub fn vethtrace_j_socket(ctx: TracePointContext) -> u32 {
    let ts = emit::now_ns();
    let jc = config();
    if jc.enabled == 0 {
        return 0;
    }
    if let Ok(skbaddr) = read::<u64>(ctx.as_ptr_u64(), jc.copy_skbaddr)
        && let Some(id) = take(skbaddr)
    {
        emit_hop(Hop { ts, id, skbaddr, hop: hop::SOCKET, ..Hop::default() });
    }
    0
}

/// A followed packet freed after use (`location`: by which function, 0 when unknown) at
/// `ts` ends its journey.
#[inline(always)]
pub fn consumed(skbaddr: u64, location: u64, ts: u64) {
    if let Some(id) = take(skbaddr) {
        emit_hop(Hop { ts, id, skbaddr, location, hop: hop::CONSUMED, ..Hop::default() });
    }
}

/// A followed skb at a device of another namespace (a pod received it, or reuses it): it left
/// the node through the device it was last queued on, and the kernel ran no program at its
/// net:net_dev_xmit — it skips tracepoint programs in a softirq that interrupted a BPF
/// program on the CPU, as a qdisc's timer's transmission can. The journey ends as out, now.
#[inline(always)]
fn seen_beyond(skbaddr: u64, ts: u64) {
    if let Some(id) = take(skbaddr) {
        emit_hop(Hop { ts, id, skbaddr, hop: hop::XMIT, ..Hop::default() });
    }
}

/// The journey of an skb dropped at `ts` (0: none), which the drop ends. A drop by netfilter's
/// verdict is first a hop of its own (the hook that dropped it, [`crate::hops`]).
#[inline(always)]
pub fn end(skbaddr: u64, ts: u64) -> u64 {
    let Some(id) = take(skbaddr) else { return 0 };
    crate::hops::nf_dropped(skbaddr, id, ts);
    id
}

/// The journey `skbaddr` is on, if any (one hash lookup).
#[inline(always)]
pub fn following(skbaddr: u64) -> Option<u64> {
    if config().enabled == 0 {
        return None;
    }
    // SAFETY: the value is copied out at once.
    unsafe { JOURNEYS.get(&skbaddr) }.copied()
}

/// The journey `skbaddr` is on, removed from the map.
#[inline(always)]
fn take(skbaddr: u64) -> Option<u64> {
    if config().enabled == 0 {
        return None;
    }
    // SAFETY: the value is copied out at once; a concurrent delete only frees it after RCU.
    let id = unsafe { JOURNEYS.get(&skbaddr) }.copied()?;
    let _ = JOURNEYS.remove(&skbaddr);
    Some(id)
}

#[inline(always)]
fn try_receive(ctx: &TracePointContext) -> Result<(), ()> {
    let ts = emit::now_ns();
    let jc = config();
    if jc.enabled == 0 {
        return Ok(());
    }
    let cfg = drop::config();
    let skbaddr: u64 = read(ctx.as_ptr_u64(), jc.rcv_skbaddr)?;
    let skb = Skb::read(skbaddr, &cfg)?;
    let Ok(ifindex) = own_device(&skb, &cfg) else {
        seen_beyond(skbaddr, ts);
        return Ok(());
    };
    start(Hop { ts, skbaddr, ifindex, len: skb.len, hop: hop::RECEIVE, ..Hop::default() }, &skb)
}

#[inline(always)]
fn try_queue(ctx: &TracePointContext) -> Result<(), ()> {
    let ts = emit::now_ns();
    let jc = config();
    if jc.enabled == 0 {
        return Ok(());
    }
    let cfg = drop::config();
    let skbaddr: u64 = read(ctx.as_ptr_u64(), jc.queue_skbaddr)?;
    let skb = Skb::read(skbaddr, &cfg)?;
    // SAFETY: the value is copied out at once.
    match unsafe { JOURNEYS.get(&skbaddr) }.copied() {
        Some(id) => {
            let ifindex = if skb.dev == 0 {
                0
            } else if let Ok(ifindex) = own_device(&skb, &cfg) {
                ifindex
            } else {
                // Queued by a pod: the packet left, and the pod reuses its skb.
                seen_beyond(skbaddr, ts);
                return Ok(());
            };
            let hop = Hop { ts, id, skbaddr, ifindex, len: skb.len, hop: hop::QUEUE, ..Hop::default() };
            emit_hop_frame(hop, &SkbFrame::new(&skb));
            Ok(())
        }
        None => {
            // Received (skb_iif set) with no socket of the node's (forwarded) and not followed:
            // not selected where it entered, or no room then. Only the node's own packets start
            // here (a socket's, or ARP, which has none and arrived on no interface).
            if read::<u64>(skbaddr, cfg.skb_sk)? == 0 && read::<u32>(skbaddr, cfg.skb_iif)? != 0 {
                return Ok(());
            }
            let ifindex = own_device(&skb, &cfg)?;
            start(Hop { ts, skbaddr, ifindex, len: skb.len, hop: hop::LOCAL, ..Hop::default() }, &skb)
        }
    }
}

#[inline(always)]
fn try_xmit(ctx: &TracePointContext) -> Result<(), ()> {
    let ts = emit::now_ns();
    let jc = config();
    if jc.enabled == 0 {
        return Ok(());
    }
    let rec = ctx.as_ptr_u64();
    let skbaddr: u64 = read(rec, jc.xmit_skbaddr)?;
    if let Some(id) = take(skbaddr) {
        // The skb may be gone already (the driver owns it): nothing is read from it. The
        // device is the last QUEUE hop's.
        let rc: i32 = read(rec, jc.xmit_rc)?;
        emit_hop(Hop { ts, id, skbaddr, rc, hop: hop::XMIT, ..Hop::default() });
    }
    Ok(())
}

/// The skb's device's ifindex when the device is of the collector's namespace.
#[inline(always)]
fn own_device(skb: &Skb, cfg: &DropConfig) -> Result<u32, ()> {
    if skb.dev == 0 {
        return Err(());
    }
    let layout = DevLayout { ifindex: cfg.dev_ifindex, nd_net: cfg.dev_nd_net, net_inum: cfg.net_inum };
    if dev_netns(skb.dev, &layout)? != cfg.netns_inum {
        return Err(());
    }
    read(skb.dev, cfg.dev_ifindex)
}

/// Starts a journey at `hop` ([`hop::RECEIVE`] or [`hop::LOCAL`], its skb, device and time
/// set) for a packet that concerns a traced interface and that the expression selects.
#[inline(always)]
fn start(mut hop: Hop, skb: &Skb) -> Result<(), ()> {
    let frame = SkbFrame::new(skb);
    if frame.origin != frame_origin::MAC || frame.avail < 14 {
        return Ok(());
    }
    let ethertype = u16::from_be(read::<u16>(frame.base, 12)?);
    if !ifaces::is_traced(hop.ifindex) && !skb.l3().is_some_and(|l3| routed_to_traced(l3, ethertype)) {
        return Ok(());
    }
    if !crate::filter::pass_drop(frame.base, frame.avail, None) {
        return Ok(());
    }
    // SAFETY: a helper without preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    // Unique per packet: no CPU starts two journeys in the same nanosecond.
    hop.id = (hop.ts << 8) | u64::from(cpu & 0xff);
    if JOURNEYS.insert(&hop.skbaddr, &hop.id, 0).is_err() {
        emit::count_lost_at(LOST_JOURNEYS);
        return Ok(());
    }
    emit_hop_frame(hop, &frame);
    Ok(())
}

/// A hop's fields.
#[derive(Default)]
pub struct Hop {
    /// When the tracepoint was hit (read first thing: under an interpreter, as in a VM without
    /// a JIT, the program's own work takes long enough to skew a stamp taken at the end).
    pub ts: u64,
    pub id: u64,
    pub skbaddr: u64,
    pub location: u64,
    pub ifindex: u32,
    pub len: u32,
    pub rc: i32,
    pub hop: u8,
    /// [`hop::NEIGH`] and [`hop::NF`] only (see [`JourneySection`]).
    pub family: u8,
    pub state: u8,
    pub addr: [u8; 16],
}

impl Hop {
    #[inline(always)]
    fn record(&self, len: usize) -> JourneyRecord {
        JourneyRecord {
            header: emit::header_at(kind::JOURNEY, len, self.ts),
            journey_hdr: SectionHeader::new(
                section::JOURNEY,
                section::JOURNEY_VERSION,
                core::mem::size_of::<JourneySection>(),
            ),
            journey: JourneySection {
                id: self.id,
                skbaddr: self.skbaddr,
                location: self.location,
                ifindex: self.ifindex,
                len: self.len,
                rc: self.rc,
                hop: self.hop,
                family: self.family,
                state: self.state,
                _pad: 0,
                addr: self.addr,
            },
        }
    }
}

/// A hop without a frame, reserved in the ring.
#[inline(always)]
pub fn emit_hop(hop: Hop) {
    let Some(mut entry) = emit::reserve::<JourneyRecord>() else { return };
    entry.write(hop.record(core::mem::size_of::<JourneyRecord>()));
    emit::submit(entry);
}

const FIXED: usize = core::mem::size_of::<JourneyFrameRecord>();

/// A hop with the frame's first bytes, built in this CPU's scratch slot (shared with the drop
/// program: tracepoint programs never nest on a CPU).
#[inline(always)]
fn emit_hop_frame(hop: Hop, frame: &SkbFrame) {
    let Some(buf) = emit::scratch(slot::DROP) else { return };
    let caplen = frame.copy_to(buf, FIXED, emit::snaplen());
    let rec = JourneyFrameRecord {
        hop: hop.record(FIXED + caplen),
        frame_hdr: SectionHeader::new(
            section::FRAME,
            section::FRAME_VERSION,
            core::mem::size_of::<FrameSection>() + caplen,
        ),
        frame: FrameSection { caplen: caplen as u32, origin: frame.origin, _pad: [0; 3] },
    };
    // SAFETY: the slot holds SCRATCH_BYTES >= FIXED bytes; unaligned write of a plain struct.
    unsafe { buf.cast::<JourneyFrameRecord>().write_unaligned(rec) };
    emit::output(buf, FIXED + caplen);
}
