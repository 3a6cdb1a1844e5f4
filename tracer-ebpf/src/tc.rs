//! TC classifiers on ingress and egress of every traced interface: one record per frame, with
//! the frame's first bytes (`--snaplen`) and, on ingress, the kernel's forwarding verdict
//! ([`crate::fib`]). The collector parses the bytes; the program parses them only for the
//! FIB lookup.
//!
//! They only read. Both return `TC_ACT_UNSPEC` (TCX: "next"), so the packet continues to any
//! other program on the hook and then on its normal way; the verdict is never changed.

use aya_ebpf::{
    EbpfContext, bindings::__sk_buff, helpers::generated::bpf_skb_load_bytes, macros::classifier, programs::TcContext,
};
use tracer_common::{
    TC_ACT_UNSPEC,
    FrameSection, Packet, SCRATCH_BYTES, SectionHeader, TcRecord, TcSection, arp_hook, dir, fib, frame_origin, kind,
    filter::jump, section, slot, tc_flags, tcf,
};

use crate::{capture::Captured, emit, fib as fib_lookup, parse};

/// Bytes copied at least, whatever the snaplen, so that the FIB lookup sees the headers.
const HEADERS: u32 = 128;

#[classifier]
pub fn vethtrace_in(ctx: TcContext) -> i32 {
    record(&ctx, dir::INGRESS, slot::INGRESS, Check::Expression(jump::JIT_INGRESS));
    TC_ACT_UNSPEC
}

#[classifier]
pub fn vethtrace_eg(ctx: TcContext) -> i32 {
    record(&ctx, dir::EGRESS, slot::EGRESS, Check::Expression(jump::JIT_EGRESS));
    TC_ACT_UNSPEC
}

/// Tail-called by the translated expression when the frame matches.
#[classifier]
pub fn vethtrace_in_m(ctx: TcContext) -> i32 {
    record(&ctx, dir::INGRESS, slot::INGRESS, Check::Matched);
    TC_ACT_UNSPEC
}

/// Tail-called by the translated expression when the frame matches.
#[classifier]
pub fn vethtrace_eg_m(ctx: TcContext) -> i32 {
    record(&ctx, dir::EGRESS, slot::EGRESS, Check::Matched);
    TC_ACT_UNSPEC
}

/// Whether the frame still has to pass the expression.
#[derive(Clone, Copy)]
enum Check {
    /// Yes: by the translated expression in this `FILTER_JUMP` slot (which does not return
    /// when it is there), else by the interpreter.
    Expression(u32),
    /// The translated expression matched it.
    Matched,
}

/// What the TC context knows about the skb besides its bytes.
pub struct SkbMeta {
    pub ifindex: u32,
    pub len: u32,
    pub gso: bool,
    pub accel_vlan: Option<u16>,
}

#[inline(always)]
fn skb_meta(ctx: &TcContext) -> SkbMeta {
    let skb = ctx.as_ptr().cast::<__sk_buff>();
    // SAFETY: the context pointer of a classifier is the verifier-checked `__sk_buff`.
    let (ifindex, len, gso_size, vlan_present, vlan_tci) =
        unsafe { ((*skb).ifindex, (*skb).len, (*skb).gso_size, (*skb).vlan_present, (*skb).vlan_tci) };
    SkbMeta { ifindex, len, gso: gso_size != 0, accel_vlan: (vlan_present != 0).then_some(vlan_tci as u16) }
}

const FIXED: usize = core::mem::size_of::<TcRecord>();

/// `skb->protocol` (network byte order in `__sk_buff`) is ETH_P_ARP.
#[inline(always)]
fn is_arp(ctx: &TcContext) -> bool {
    let skb = ctx.as_ptr().cast::<__sk_buff>();
    // SAFETY: the context pointer of a classifier is the verifier-checked `__sk_buff`.
    let protocol = unsafe { (*skb).protocol };
    protocol == u32::from(tracer_common::proto::ETH_P_ARP.to_be())
}

/// One frame's record and, when the ARP events come from TC ([`crate::arp::from_tc`]), an ARP
/// frame's ARP event, in the order of the functions it stands in for: `arp_xmit` before TC
/// egress, `arp_rcv` after TC ingress.
#[inline(always)]
fn record(ctx: &TcContext, direction: u8, slot: u32, check: Check) {
    let flags = emit::tc_flags();
    let arp = is_arp(ctx);
    let packet = flags & tc_flags::RECORD != 0 || (flags & tc_flags::ARP != 0 && arp);
    let arp_event = arp && crate::arp::from_tc();
    let counted = flags & tc_flags::COUNT != 0;
    if !(packet || arp_event || counted) {
        return;
    }
    if let Check::Expression(jit) = check
        && !crate::filter::pass_tc(ctx, jit)
    {
        return;
    }
    let meta = skb_meta(ctx);
    if counted {
        crate::traffic::count(meta.ifindex, direction, meta.len);
    }
    if arp_event && direction == dir::EGRESS {
        crate::arp::tc_event(ctx, meta.ifindex, arp_hook::SEND);
    }
    if packet {
        packet_record(ctx, direction, slot, flags, &meta, check);
    }
    if arp_event && direction == dir::INGRESS {
        crate::arp::tc_event(ctx, meta.ifindex, arp_hook::RECV);
    }
}

/// The frame's record: its first bytes and, on ingress, the FIB verdict.
#[inline(always)]
fn packet_record(ctx: &TcContext, direction: u8, slot: u32, flags: u32, meta: &SkbMeta, check: Check) {
    let Some(buf) = emit::scratch(slot) else { return };
    let snaplen = emit::snaplen();
    // The FIB lookup runs on ingress only (on egress the kernel has routed the frame already)
    // and reads the headers, copied even under a smaller snaplen.
    let lookup = direction == dir::INGRESS && flags & tc_flags::FIB != 0;
    let want = if lookup { meta.len.min(snaplen.max(HEADERS)) } else { meta.len.min(snaplen) };
    let copied = copy_frame(ctx, buf, want);
    let now_ns = emit::now_ns();
    let (fib_ret, fib_ifindex) = if lookup {
        let mut p = Packet::default();
        parse::parse(&Captured::new(buf, FIXED, copied), &mut p, meta.accel_vlan);
        fib_lookup::verdict(ctx, &p, meta, now_ns)
    } else {
        (fib::NOT_RUN, 0)
    };
    let caplen = copied.min(snaplen as usize);
    let rec = TcRecord {
        header: emit::header_at(kind::PACKET, FIXED + caplen, now_ns),
        tc_hdr: SectionHeader::new(section::TC, section::TC_VERSION, core::mem::size_of::<TcSection>()),
        tc: TcSection {
            ifindex: meta.ifindex,
            len: meta.len,
            fib_ifindex,
            dir: direction,
            fib_ret,
            flags: if meta.accel_vlan.is_some() { tcf::ACCEL_VLAN } else { 0 }
                | if matches!(check, Check::Matched) { tcf::TRANSLATED } else { 0 },
            vlan_tci: meta.accel_vlan.unwrap_or(0),
            ..TcSection::default()
        },
        frame_hdr: SectionHeader::new(
            section::FRAME,
            section::FRAME_VERSION,
            core::mem::size_of::<FrameSection>() + caplen,
        ),
        frame: FrameSection { caplen: caplen as u32, origin: frame_origin::MAC, _pad: [0; 3] },
    };
    // SAFETY: the slot holds SCRATCH_BYTES >= FIXED bytes; unaligned write of a plain struct.
    unsafe { buf.cast::<TcRecord>().write_unaligned(rec) };
    emit::output(buf, FIXED + caplen);
}

/// Copies the first `want` bytes of the frame behind the fixed part of the record; returns
/// how many were copied (0 when the copy failed).
#[inline(always)]
fn copy_frame(ctx: &TcContext, buf: *mut [u8; SCRATCH_BYTES], want: u32) -> usize {
    if want == 0 {
        return 0;
    }
    let n = emit::copy_len(want);
    // SAFETY: the slot has room for FIXED + 65536 bytes; the helper checks the skb side.
    let ret = unsafe {
        bpf_skb_load_bytes(ctx.as_ptr(), 0, buf.cast::<u8>().add(FIXED).cast(), n)
    };
    if ret == 0 {
        n as usize
    } else {
        emit::count_error(tracer_common::errsite::TC_COPY, n, ret);
        0
    }
}
