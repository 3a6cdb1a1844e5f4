//! The pcap-filter expression (`vethtrace EXPRESSION`), checked before any record is reserved.
//!
//! The collector compiles the expression with libpcap to classic BPF and sets it, before load,
//! into the read-only globals `FILTER_PROG` and `FILTER_LEN`; the programs run it with the
//! interpreter in [`tracer_ebpf::cbpf`]. The verifier knows those values (frozen .rodata):
//! without an expression (`FILTER_LEN` 0) it removes the check as dead code; with one it
//! checks only the paths the program can take through the interpreter, each a short straight
//! line, instead of every opcode at every step.
//!
//! What each hook gives the program as "the frame":
//! - TC: the frame as `tcpdump -i <iface>` captures it — from the MAC header, with a VLAN tag
//!   the kernel holds in skb metadata put back in place (libpcap reinserts it the same way);
//!   its length on the wire is `skb->len` (+ 4 for such a tag).
//! - Drops: the dropped skb's linear data from its MAC header (or, when that was never set,
//!   the network header behind a made-up Ethernet header that only has the ethertype); its
//!   length is that of the linear data.
//! - ARP events: the Ethernet header in front of the ARP message and the 28-byte message.

use aya_ebpf::{EbpfContext, bindings::__sk_buff, macros::map, maps::ProgramArray, programs::TcContext};
use tracer_common::{
    filter::{FILTER_MAX_INSNS, FilterInsn, FilterProg, jump},
    proto::ETH_HLEN,
};
use tracer_ebpf::{cbpf, parse::Frame};

use crate::kread::read;

/// Instructions in `FILTER_PROG`; 0 without an expression. Set by the collector at load time.
#[unsafe(no_mangle)]
static FILTER_LEN: u32 = 0;

/// The compiled expression. Set by the collector at load time.
#[unsafe(no_mangle)]
static FILTER_PROG: FilterProg = FilterProg::EMPTY;

/// The translated expression and the TC programs' second halves ([`jump`]), filled by the
/// collector after load.
#[map]
static FILTER_JUMP: ProgramArray = ProgramArray::with_max_entries(jump::SLOTS, 0);

/// Where an 802.1Q tag sits in an Ethernet frame.
const TAG_AT: usize = 12;
const TAG_LEN: usize = 4;

/// Instruction `n` (`n < FILTER_MAX_INSNS`) of the program.
#[inline(always)]
fn insn(n: usize) -> FilterInsn {
    let insns = core::ptr::addr_of!(FILTER_PROG.insns).cast::<FilterInsn>();
    // SAFETY: `n` is below the array's length (the interpreter masks it); volatile so that the
    // compiler keeps the loads the collector's values are patched into.
    unsafe { core::ptr::read_volatile(insns.add(n & (FILTER_MAX_INSNS - 1))) }
}

/// Whether the frame passes the expression: always, without one.
#[inline(always)]
fn pass<F: Frame>(f: &F, wirelen: u32) -> bool {
    // SAFETY: a plain read of a global; volatile as in [`insn`].
    let len = unsafe { core::ptr::read_volatile(&FILTER_LEN) };
    len == 0 || cbpf::matches(f, wirelen, insn, len)
}

/// The TC programs' check, on the frame as tcpdump sees it on the interface. With an
/// expression, a frame without a VLAN tag held aside goes to its translation in slot `jit`,
/// which does not come back (a match continues in the program's second half, a miss returns
/// from the program); when the slot is empty, or for a frame with such a tag (the translation
/// reads the skb's bytes as they are), the interpreter runs the expression.
#[inline(always)]
pub fn pass_tc(ctx: &TcContext, jit: u32) -> bool {
    // SAFETY: a plain read of a global; volatile as in [`insn`].
    if unsafe { core::ptr::read_volatile(&FILTER_LEN) } == 0 {
        return true;
    }
    let skb = ctx.as_ptr().cast::<__sk_buff>();
    // SAFETY: the context pointer of a classifier is the verifier-checked `__sk_buff`.
    let (len, vlan_present, vlan_tci, vlan_proto) =
        unsafe { ((*skb).len, (*skb).vlan_present, (*skb).vlan_tci, (*skb).vlan_proto) };
    if vlan_present == 0 {
        // SAFETY: a tail call with the program's own context; it returns only when the slot
        // is empty.
        unsafe { FILTER_JUMP.tail_call(ctx, jit) };
        return pass(&TcFrame { ctx, tag: None }, len);
    }
    // `vlan_proto` holds the __be16 as loaded; the tag goes on the wire in network order.
    let [p0, p1] = u16::from_be(vlan_proto as u16).to_be_bytes();
    let [t0, t1] = (vlan_tci as u16).to_be_bytes();
    pass(&TcFrame { ctx, tag: Some([p0, p1, t0, t1]) }, len + TAG_LEN as u32)
}

/// The drop program's check, on the dropped skb's linear data: `avail` bytes of kernel memory
/// at `base`, from the MAC header — or from the network header when the MAC header was never
/// set (`synthetic`: the skb's protocol), behind a made-up Ethernet header with only that
/// ethertype.
#[inline(always)]
pub fn pass_drop(base: u64, avail: u32, synthetic: Option<u16>) -> bool {
    let mem = KernelFrame { base, len: avail as usize };
    match synthetic {
        None => pass(&mem, avail),
        Some(protocol) => pass(&BehindHeader { protocol, rest: mem }, avail + ETH_HLEN as u32),
    }
}

/// The ARP programs' check: `arp` is the kernel address of an Ethernet/IPv4 ARP message.
#[inline(always)]
pub fn pass_arp(arp: u64) -> bool {
    const ARP_FRAME: usize = ETH_HLEN + 28;
    let frame = KernelFrame { base: arp.wrapping_sub(ETH_HLEN as u64), len: ARP_FRAME };
    pass(&frame, ARP_FRAME as u32)
}

/// The frame under a TC program, with the VLAN tag the skb holds aside (`tag`: TPID and TCI)
/// put back at offset 12.
struct TcFrame<'a> {
    ctx: &'a TcContext,
    tag: Option<[u8; TAG_LEN]>,
}

impl TcFrame<'_> {
    #[inline(always)]
    fn skb<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        self.ctx.load::<[u8; N]>(offset).ok()
    }
}

impl Frame for TcFrame<'_> {
    #[inline(always)]
    fn load<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let Some(tag) = self.tag else { return self.skb(offset) };
        if offset + N <= TAG_AT {
            return self.skb(offset);
        }
        if offset >= TAG_AT + TAG_LEN {
            return self.skb(offset - TAG_LEN);
        }
        // Straddles the tag: a byte at a time.
        let mut out = [0u8; N];
        for (i, byte) in out.iter_mut().enumerate() {
            let at = offset + i;
            *byte = if at < TAG_AT {
                self.skb::<1>(at)?[0]
            } else if at < TAG_AT + TAG_LEN {
                // A shift, not an index: the verifier refuses variable-offset stack reads.
                (u32::from_be_bytes(tag) >> (8 * (3 - ((at - TAG_AT) & 3)))) as u8
            } else {
                self.skb::<1>(at - TAG_LEN)?[0]
            };
        }
        Some(out)
    }
}

/// A made-up Ethernet header (zero MACs, then `protocol`) in front of a frame that starts at
/// its network header.
struct BehindHeader {
    protocol: u16,
    rest: KernelFrame,
}

impl Frame for BehindHeader {
    #[inline(always)]
    fn load<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        if offset >= ETH_HLEN {
            return self.rest.load(offset - ETH_HLEN);
        }
        let mut out = [0u8; N];
        for (i, byte) in out.iter_mut().enumerate() {
            let at = offset + i;
            // No stack array indexed by `at`: the verifier refuses variable-offset stack reads.
            let [hi, lo] = self.protocol.to_be_bytes();
            *byte = match at {
                12 => hi,
                13 => lo,
                _ if at < ETH_HLEN => 0,
                _ => self.rest.load::<1>(at - ETH_HLEN)?[0],
            };
        }
        Some(out)
    }
}

/// `len` bytes of kernel memory at `base`.
struct KernelFrame {
    base: u64,
    len: usize,
}

impl Frame for KernelFrame {
    #[inline(always)]
    fn load<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        if offset + N > self.len {
            return None;
        }
        read(self.base, offset as u32).ok()
    }
}
