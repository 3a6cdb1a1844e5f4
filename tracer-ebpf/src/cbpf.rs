//! A bounded interpreter for classic BPF, the code libpcap compiles pcap-filter expressions to,
//! over any [`Frame`]. Its semantics are those of libpcap's own `bpf_filter` (what
//! `tcpdump -r` runs): a load outside the frame, a division by zero, or a program counter
//! that leaves the program rejects the frame; `ret` accepts it when its value is not zero.
//!
//! At most [`FILTER_MAX_INSNS`] instructions run per frame, so the verifier sees a bounded
//! loop; a program still running then (only a backward-jumping `protochain` loop could) rejects
//! the frame.

use tracer_common::filter::{
    FILTER_MAX_INSNS, FilterInsn, MEMWORDS,
    op::{self, *},
};

use crate::parse::Frame;

/// The machine's registers.
struct Regs {
    a: u32,
    x: u32,
    mem: [u32; MEMWORDS],
}

/// Runs a program of `len` instructions (`insn(n)` is instruction `n`, `n < len`) over `f`,
/// whose length on the wire is `wirelen`. True when the program accepts the frame.
#[inline(always)]
pub fn matches<F: Frame>(f: &F, wirelen: u32, insn: impl Fn(usize) -> FilterInsn, len: u32) -> bool {
    let mut r = Regs { a: 0, x: 0, mem: [0; MEMWORDS] };
    let mut pc: u32 = 0;
    for _ in 0..FILTER_MAX_INSNS {
        if pc >= len {
            return false;
        }
        let insn = insn(pc as usize & (FILTER_MAX_INSNS - 1));
        pc += 1;
        let k = insn.k;
        let src = if insn.code & SRC_X != 0 { r.x } else { k };
        match op::class(insn.code) {
            LD => match load(f, insn.code, k, wirelen, &r) {
                Some(v) => r.a = v,
                None => return false,
            },
            LDX => match loadx(f, insn.code, k, wirelen, &r) {
                Some(v) => r.x = v,
                None => return false,
            },
            ST => r.mem[k as usize & (MEMWORDS - 1)] = r.a,
            STX => r.mem[k as usize & (MEMWORDS - 1)] = r.x,
            ALU => match alu(op::operation(insn.code), r.a, src) {
                Some(v) => r.a = v,
                None => return false,
            },
            JMP => match op::operation(insn.code) {
                // Wrapping: a negative offset (protochain) jumps back.
                JA => pc = pc.wrapping_add(k),
                op => match jump(op, r.a, src) {
                    Some(true) => pc += u32::from(insn.jt),
                    Some(false) => pc += u32::from(insn.jf),
                    None => return false,
                },
            },
            RET => return if op::size(insn.code) == RET_A { r.a != 0 } else { k != 0 },
            // MISC
            _ if op::misc(insn.code) == TXA => r.a = r.x,
            _ => r.x = r.a,
        }
    }
    false
}

/// `ld`: into A.
#[inline(always)]
fn load<F: Frame>(f: &F, code: u16, k: u32, wirelen: u32, r: &Regs) -> Option<u32> {
    match op::mode(code) {
        IMM => Some(k),
        ABS => packet(f, k, op::size(code)),
        IND => packet(f, r.x.checked_add(k)?, op::size(code)),
        MEM => Some(r.mem[k as usize & (MEMWORDS - 1)]),
        LEN => Some(wirelen),
        _ => None,
    }
}

/// `ldx`: into X.
#[inline(always)]
fn loadx<F: Frame>(f: &F, code: u16, k: u32, wirelen: u32, r: &Regs) -> Option<u32> {
    match op::mode(code) {
        IMM => Some(k),
        MEM => Some(r.mem[k as usize & (MEMWORDS - 1)]),
        LEN => Some(wirelen),
        // 4 * (P[k] & 0xf): an IPv4 header's length.
        MSH => Some(u32::from(f.load::<1>(k as usize)?[0] & 0x0f) << 2),
        _ => None,
    }
}

/// A big-endian load of 4, 2 or 1 bytes at `off`.
#[inline(always)]
fn packet<F: Frame>(f: &F, off: u32, size: u16) -> Option<u32> {
    let off = off as usize;
    match size {
        W => f.load::<4>(off).map(u32::from_be_bytes),
        H => f.load::<2>(off).map(|b| u32::from(u16::from_be_bytes(b))),
        B => f.load::<1>(off).map(|b| u32::from(b[0])),
        _ => None,
    }
}

/// An ALU operation on A; `None` for a division by zero or an unknown operation.
#[inline(always)]
fn alu(op: u16, a: u32, src: u32) -> Option<u32> {
    Some(match op {
        ADD => a.wrapping_add(src),
        SUB => a.wrapping_sub(src),
        MUL => a.wrapping_mul(src),
        DIV => a.checked_div(src)?,
        MOD => a.checked_rem(src)?,
        OR => a | src,
        AND => a & src,
        XOR => a ^ src,
        // As libpcap's interpreter: shifting by 32 or more gives 0.
        LSH => a.checked_shl(src).unwrap_or(0),
        RSH => a.checked_shr(src).unwrap_or(0),
        NEG => a.wrapping_neg(),
        _ => return None,
    })
}

/// A conditional jump's test; `None` for an unknown one.
#[inline(always)]
fn jump(op: u16, a: u32, src: u32) -> Option<bool> {
    match op {
        JEQ => Some(a == src),
        JGT => Some(a > src),
        JGE => Some(a >= src),
        JSET => Some(a & src != 0),
        _ => None,
    }
}
