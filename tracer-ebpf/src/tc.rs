//! TC classifiers on ingress and egress of every traced interface: one `PacketEvent` per frame.
//!
//! On ingress the event also carries the kernel's forwarding verdict ([`crate::fib`]).
//!
//! They only read. Both return `TC_ACT_UNSPEC` (TCX: "next"), so the packet continues to any
//! other program on the hook and then on its normal way; the verdict is never changed.

use aya_ebpf::{bindings::__sk_buff, macros::classifier, programs::TcContext, EbpfContext};
use tracer_common::{PacketEvent, dir, fib, kind};

use crate::{emit, fib as fib_lookup, parse};

/// "Continue": TC_ACT_UNSPEC on clsact, TCX_NEXT on TCX.
const TC_ACT_UNSPEC: i32 = -1;

#[classifier]
pub fn vethtrace_in(ctx: TcContext) -> i32 {
    record(&ctx, dir::INGRESS);
    TC_ACT_UNSPEC
}

#[classifier]
pub fn vethtrace_eg(ctx: TcContext) -> i32 {
    record(&ctx, dir::EGRESS);
    TC_ACT_UNSPEC
}

/// The frame under a TC program, read with `bpf_skb_load_bytes`.
struct TcFrame<'a>(&'a TcContext);

impl parse::Frame for TcFrame<'_> {
    #[inline(always)]
    fn load<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        self.0.load::<[u8; N]>(offset).ok()
    }
}

/// What the TC context knows about the skb besides its bytes.
struct SkbMeta {
    ifindex: u32,
    len: u32,
    accel_vlan: Option<u16>,
}

#[inline(always)]
fn skb_meta(ctx: &TcContext) -> SkbMeta {
    let skb = ctx.as_ptr().cast::<__sk_buff>();
    // SAFETY: the context pointer of a classifier is the verifier-checked `__sk_buff`.
    let (ifindex, len, vlan_present, vlan_tci) =
        unsafe { ((*skb).ifindex, (*skb).len, (*skb).vlan_present, (*skb).vlan_tci) };
    SkbMeta {
        ifindex,
        len,
        accel_vlan: (vlan_present != 0).then_some(vlan_tci as u16),
    }
}

#[inline(always)]
fn record(ctx: &TcContext, direction: u8) {
    let Some(mut entry) = emit::reserve::<PacketEvent>() else {
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points at a reserved record of the right size; zeroing makes every field valid.
    let ev = unsafe {
        core::ptr::write_bytes(ev, 0, 1);
        &mut *ev
    };
    let meta = skb_meta(ctx);
    ev.header = emit::header(kind::PACKET, core::mem::size_of::<PacketEvent>());
    ev.ifindex = meta.ifindex;
    ev.len = meta.len;
    ev.dir = direction;
    parse::parse(&TcFrame(ctx), &mut ev.packet, meta.accel_vlan);
    // Only ingress: on egress the kernel has already routed the frame.
    (ev.fib_ret, ev.fib_ifindex) = if direction == dir::INGRESS {
        fib_lookup::verdict(ctx, &ev.packet, meta.ifindex)
    } else {
        (fib::NOT_RUN, 0)
    };
    emit::submit(entry);
}
