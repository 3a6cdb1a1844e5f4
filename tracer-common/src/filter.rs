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

/// Most instructions a program may have, and most the interpreter executes for one frame
/// (libpcap emits forward jumps only, except `protochain`'s loop). A power of two: the
/// interpreter masks the program counter with it.
pub const FILTER_MAX_INSNS: usize = 256;

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
