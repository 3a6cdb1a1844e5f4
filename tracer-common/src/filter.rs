//! The pcap-filter expression as the kernel runs it: libpcap's classic BPF program, one
//! [`FilterInsn`] per instruction (the layout of `struct bpf_insn`), in the load-time global
//! `FILTER_PROG`, with its length in `FILTER_LEN` (0: no expression). Both are read-only data
//! the verifier knows: without an expression the check is dead code, and with one it follows
//! only the program's own paths through the interpreter.

/// Slots of the `FILTER_JUMP` program array. The attached TC program tail-calls the expression
/// translated to eBPF (`JIT_*`), which on a match tail-calls the program's second half
/// (`MATCHED_*`); on a miss it returns. An empty `JIT_*` slot (no expression, or one the
/// translator could not take) and a frame with a VLAN tag held aside in the skb go through the
/// interpreter instead.
pub mod jump {
    pub const JIT_INGRESS: u32 = 0;
    pub const JIT_EGRESS: u32 = 1;
    pub const MATCHED_INGRESS: u32 = 2;
    pub const MATCHED_EGRESS: u32 = 3;
    pub const SLOTS: u32 = 4;
}

/// Classic BPF opcode fields (`linux/bpf_common.h`, `linux/filter.h`), shared by the
/// in-kernel interpreter and the translator to eBPF: an instruction's class is `code & 0x07`
/// ([`class`]), a load's size `code & 0x18` ([`size`]) and mode `code & 0xe0` ([`mode`]), an
/// ALU or jump operation `code & 0xf0` ([`operation`]).
pub mod op {
    pub const LD: u16 = 0x00;
    pub const LDX: u16 = 0x01;
    pub const ST: u16 = 0x02;
    pub const STX: u16 = 0x03;
    pub const ALU: u16 = 0x04;
    pub const JMP: u16 = 0x05;
    pub const RET: u16 = 0x06;
    pub const MISC: u16 = 0x07;

    pub const W: u16 = 0x00;
    pub const H: u16 = 0x08;
    pub const B: u16 = 0x10;

    pub const IMM: u16 = 0x00;
    pub const ABS: u16 = 0x20;
    pub const IND: u16 = 0x40;
    pub const MEM: u16 = 0x60;
    pub const LEN: u16 = 0x80;
    pub const MSH: u16 = 0xa0;

    pub const ADD: u16 = 0x00;
    pub const SUB: u16 = 0x10;
    pub const MUL: u16 = 0x20;
    pub const DIV: u16 = 0x30;
    pub const OR: u16 = 0x40;
    pub const AND: u16 = 0x50;
    pub const LSH: u16 = 0x60;
    pub const RSH: u16 = 0x70;
    pub const NEG: u16 = 0x80;
    pub const MOD: u16 = 0x90;
    pub const XOR: u16 = 0xa0;

    pub const JA: u16 = 0x00;
    pub const JEQ: u16 = 0x10;
    pub const JGT: u16 = 0x20;
    pub const JGE: u16 = 0x30;
    pub const JSET: u16 = 0x40;

    /// The operand is X, not `k`.
    pub const SRC_X: u16 = 0x08;
    /// `ret A` (in the size bits); otherwise `ret #k`.
    pub const RET_A: u16 = 0x10;
    /// `txa` (`code & 0xf8`); otherwise `tax`.
    pub const TXA: u16 = 0x80;

    #[inline(always)]
    pub const fn class(code: u16) -> u16 {
        code & 0x07
    }

    #[inline(always)]
    pub const fn size(code: u16) -> u16 {
        code & 0x18
    }

    #[inline(always)]
    pub const fn mode(code: u16) -> u16 {
        code & 0xe0
    }

    #[inline(always)]
    pub const fn operation(code: u16) -> u16 {
        code & 0xf0
    }

    /// `tax`/`txa`: which of the two (`code & 0xf8`).
    #[inline(always)]
    pub const fn misc(code: u16) -> u16 {
        code & 0xf8
    }
}

/// Most instructions a program may have, and most the interpreter executes for one frame
/// (libpcap emits forward jumps only, except `protochain`'s loop). A power of two: the
/// interpreter masks the program counter with it.
pub const FILTER_MAX_INSNS: usize = 256;

/// Words of the classic program's scratch memory (`M[]`, `BPF_MEMWORDS`).
pub const MEMWORDS: usize = 16;

/// One classic BPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The whole program (`FILTER_PROG`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FilterProg {
    pub insns: [FilterInsn; FILTER_MAX_INSNS],
}

impl FilterProg {
    pub const EMPTY: Self = Self { insns: [FilterInsn { code: 0, jt: 0, jf: 0, k: 0 }; FILTER_MAX_INSNS] };
}

impl Default for FilterProg {
    fn default() -> Self {
        Self::EMPTY
    }
}

const _: () = assert!(core::mem::size_of::<FilterInsn>() == 8);
const _: () = assert!(FILTER_MAX_INSNS.is_power_of_two());

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]` integers without padding: every bit pattern is valid.
    unsafe impl aya::Pod for super::FilterInsn {}
    // SAFETY: an array of the above.
    unsafe impl aya::Pod for super::FilterProg {}
}
