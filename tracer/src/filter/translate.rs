//! Classic BPF (what libpcap compiles an expression to) translated to eBPF for a TC classifier,
//! so that the kernel's JIT runs the expression as machine code instead of the programs'
//! interpreter ([`tracer_ebpf::cbpf`]) stepping through it.
//!
//! The semantics are libpcap's `bpf_filter` (what `tcpdump -r` runs), as the interpreter's:
//! a load outside the frame, a division by zero or a jump past the end rejects the frame;
//! shifts by 32 or more give 0; `ret` accepts when its value is not zero.
//!
//! The frame is the skb from its MAC header, `skb->len` long. A load within the linear head is
//! a direct packet read (bounds-checked against `data_end`); one behind it, in paged data, is a
//! `bpf_skb_load_bytes`. A VLAN tag the skb holds aside is not part of this view: callers run
//! the interpreter for such frames (see tracer-ebpf filter.rs).
//!
//! Registers: r6 the context, r7 A, r8 X, r9 `skb->data`; `M[]` on the stack at r10-64, the
//! slow path's bounce buffer at r10-72. A and X live in 32-bit registers (32-bit ALU and jump
//! operations zero-extend and compare the low 32 bits), as in cBPF.

use tracer_common::{
    TC_ACT_UNSPEC,
    filter::{FilterInsn, MEMWORDS, op as c},
};

/// What the program does with a frame the expression accepts (a rejected frame returns
/// `TC_ACT_UNSPEC`, the next program's turn, in both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMatch {
    /// Returns 1 (rejects return 0): for `BPF_PROG_TEST_RUN`.
    Return,
    /// Tail-calls `index` of the program array whose fd is `map_fd`; returns `TC_ACT_UNSPEC`
    /// if that fails.
    TailCall { map_fd: i32, index: u32 },
}

/// How loads read the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loads {
    /// Direct reads in the linear head, `bpf_skb_load_bytes` behind it.
    Direct,
    /// `bpf_skb_load_bytes` always (tests: the path paged data takes).
    Helper,
}

/// The program cannot be translated; the interpreter runs it instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("instruction {0}: unknown classic BPF opcode {1:#06x}")]
    Opcode(usize, u16),
    #[error("instruction {0}: jumps backwards")]
    BackwardJump(usize),
}

/// One eBPF instruction, as `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EbpfInsn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// eBPF classes, sizes, modes, operations.
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const ALU: u8 = 0x04;
const JMP: u8 = 0x05;
const JMP32: u8 = 0x06;
const ALU64: u8 = 0x07;
const SIZE_W: u8 = 0x00;
const SIZE_H: u8 = 0x08;
const SIZE_B: u8 = 0x10;
const SIZE_DW: u8 = 0x18;
const MODE_IMM: u8 = 0x00;
const MODE_MEM: u8 = 0x60;
const SRC_K: u8 = 0x00;
const SRC_X: u8 = 0x08;
const OP_ADD: u8 = 0x00;
const OP_LSH: u8 = 0x60;
const OP_AND: u8 = 0x50;
const OP_MOV: u8 = 0xb0;
const OP_END: u8 = 0xd0;
const JA: u8 = 0x00;
const JEQ: u8 = 0x10;
const JGT: u8 = 0x20;
const JGE: u8 = 0x30;
const JSET: u8 = 0x40;
const JNE: u8 = 0x50;
const JLT: u8 = 0xa0;
const OP_NEG: u8 = 0x80;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;
const PSEUDO_MAP_FD: u8 = 1;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const CTX: u8 = 6;
const A: u8 = 7;
const X: u8 = 8;
const DATA: u8 = 9;
const FP: u8 = 10;

/// `struct __sk_buff` fields read.
const SKB_LEN: i16 = 0;
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;
/// Helpers.
const BPF_SKB_LOAD_BYTES: i32 = 26;
const BPF_TAIL_CALL: i32 = 12;
/// Stack: `M[i]` at `MEM_AT + 4 i`, the bounce buffer at `BOUNCE_AT`.
const MEM_AT: i16 = -64;
const BOUNCE_AT: i16 = -72;
/// Longest offset a direct read takes (the verifier bounds a variable packet offset); further
/// loads go through the helper.
const DIRECT_MAX_OFF: i32 = 0xffff;

/// Where a jump goes: a classic instruction (by index, translated or not yet), or one of the
/// two endings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Classic(usize),
    Accept,
    Reject,
    /// A local label inside one instruction's translation (index into `Emitter::labels`).
    Local(usize),
}

/// Builds the program: eBPF instructions, with jumps to targets fixed up at the end.
struct Emitter {
    out: Vec<EbpfInsn>,
    /// (instruction index, target) of every jump to fix.
    fixups: Vec<(usize, Target)>,
    /// Start of each classic instruction's translation.
    starts: Vec<usize>,
    labels: Vec<Option<usize>>,
    loads: Loads,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> EbpfInsn {
    EbpfInsn { code, regs: dst | (src << 4), off, imm }
}

impl Emitter {
    fn put(&mut self, i: EbpfInsn) {
        self.out.push(i);
    }

    /// `dst = imm` (32-bit: zero-extended).
    fn mov32_k(&mut self, dst: u8, imm: u32) {
        self.put(insn(ALU | OP_MOV | SRC_K, dst, 0, 0, imm as i32));
    }

    fn mov64_x(&mut self, dst: u8, src: u8) {
        self.put(insn(ALU64 | OP_MOV | SRC_X, dst, src, 0, 0));
    }

    fn mov32_x(&mut self, dst: u8, src: u8) {
        self.put(insn(ALU | OP_MOV | SRC_X, dst, src, 0, 0));
    }

    fn add64_k(&mut self, dst: u8, imm: i32) {
        self.put(insn(ALU64 | OP_ADD | SRC_K, dst, 0, 0, imm));
    }

    fn ldx(&mut self, size: u8, dst: u8, src: u8, off: i16) {
        self.put(insn(LDX | MODE_MEM | size, dst, src, off, 0));
    }

    fn stx(&mut self, size: u8, dst: u8, src: u8, off: i16) {
        self.put(insn(STX | MODE_MEM | size, dst, src, off, 0));
    }

    /// A jump (class `class`, operation `op`) comparing `dst` with `imm` or `src`, to `to`.
    fn jump(&mut self, class: u8, op: u8, dst: u8, operand: Operand, to: Target) {
        let (s, src, imm) = match operand {
            Operand::K(k) => (SRC_K, 0, k as i32),
            Operand::Reg(r) => (SRC_X, r, 0),
        };
        self.fixups.push((self.out.len(), to));
        self.put(insn(class | op | s, dst, src, 0, imm));
    }

    fn goto(&mut self, to: Target) {
        self.jump(JMP, JA, 0, Operand::K(0), to);
    }

    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.out.len());
    }

    /// `dst = be(size bytes of the frame at r2)` (r2: a 64-bit offset), or to reject when the
    /// frame is shorter. Clobbers r0-r5.
    fn load_frame(&mut self, dst: u8, size: u8) {
        let bytes: i32 = match size {
            SIZE_W => 4,
            SIZE_H => 2,
            _ => 1,
        };
        let done = self.label();
        if self.loads == Loads::Direct {
            let slow = self.label();
            // r3 = data + off, bounded for the verifier; r4 = its end, against data_end.
            self.jump(JMP, JGT, R2, Operand::K(DIRECT_MAX_OFF as u32), Target::Local(slow));
            self.mov64_x(R3, DATA);
            self.put(insn(ALU64 | OP_ADD | SRC_X, R3, R2, 0, 0));
            self.mov64_x(R4, R3);
            self.add64_k(R4, bytes);
            self.ldx(SIZE_W, R5, CTX, SKB_DATA_END);
            self.jump(JMP, JGT, R4, Operand::Reg(R5), Target::Local(slow));
            self.ldx(size, dst, R3, 0);
            self.byte_swap(dst, size);
            self.goto(Target::Local(done));
            self.bind(slow);
        }
        // Past the end of the frame: rejected. Else the helper reads it (paged data).
        self.mov64_x(R4, R2);
        self.add64_k(R4, bytes);
        self.ldx(SIZE_W, R5, CTX, SKB_LEN);
        self.jump(JMP, JGT, R4, Operand::Reg(R5), Target::Reject);
        self.mov64_x(R1, CTX);
        self.mov64_x(R3, FP);
        self.add64_k(R3, i32::from(BOUNCE_AT));
        self.mov32_k(R4, bytes as u32);
        self.put(insn(JMP | CALL, 0, 0, 0, BPF_SKB_LOAD_BYTES));
        self.jump(JMP, JNE, R0, Operand::K(0), Target::Reject);
        self.ldx(size, dst, FP, BOUNCE_AT);
        self.byte_swap(dst, size);
        self.bind(done);
    }

    /// Network to host order, zero-extended to 64 bits.
    fn byte_swap(&mut self, dst: u8, size: u8) {
        match size {
            SIZE_W => self.put(insn(ALU | OP_END | SRC_X, dst, 0, 0, 32)),
            SIZE_H => self.put(insn(ALU | OP_END | SRC_X, dst, 0, 0, 16)),
            _ => {}
        }
    }

    /// Jump targets as offsets (a target past the program's end rejects), without the
    /// instructions no path reaches: the verifier refuses a program that has any.
    fn finish(mut self, accept: usize, reject: usize) -> Vec<EbpfInsn> {
        let mut dest = vec![None; self.out.len()];
        for (at, to) in std::mem::take(&mut self.fixups) {
            dest[at] = Some(match to {
                Target::Classic(n) => self.starts.get(n).copied().unwrap_or(reject),
                Target::Accept => accept,
                Target::Reject => reject,
                Target::Local(l) => self.labels[l].expect("every label is bound"),
            });
        }
        let live = reachable(&self.out, &dest);
        // new_at[i]: where instruction i goes (live ones only).
        let mut new_at = Vec::with_capacity(self.out.len());
        let mut n = 0usize;
        for &l in &live {
            new_at.push(n);
            n += usize::from(l);
        }
        let mut out = Vec::with_capacity(n);
        for (at, i) in self.out.iter().enumerate().filter(|(at, _)| live[*at]) {
            let mut i = *i;
            if let Some(d) = dest[at] {
                i.off = i16::try_from(new_at[d] as isize - new_at[at] as isize - 1).expect("programs are short");
            }
            out.push(i);
        }
        out
    }
}

/// Which instructions some path from the first reaches, given each jump's destination.
fn reachable(prog: &[EbpfInsn], dest: &[Option<usize>]) -> Vec<bool> {
    let mut live = vec![false; prog.len()];
    let mut todo = vec![0usize];
    while let Some(at) = todo.pop() {
        if at >= prog.len() || live[at] {
            continue;
        }
        live[at] = true;
        let i = prog[at];
        let class = i.code & 0x07;
        let op = i.code & 0xf0;
        if i.code == LD | MODE_IMM | SIZE_DW {
            // Two slots.
            live[at + 1] = true;
            todo.push(at + 2);
            continue;
        }
        if matches!(class, JMP | JMP32) && op != CALL {
            if op == EXIT {
                continue;
            }
            todo.extend(dest[at]);
            if op == JA && class == JMP {
                continue;
            }
        }
        todo.push(at + 1);
    }
    live
}

#[derive(Debug, Clone, Copy)]
enum Operand {
    K(u32),
    Reg(u8),
}

/// Translates `prog` (at most a few thousand instructions: libpcap's output) into eBPF.
pub fn translate(prog: &[FilterInsn], on_match: OnMatch, loads: Loads) -> Result<Vec<EbpfInsn>, TranslateError> {
    let mut e = Emitter { out: Vec::new(), fixups: Vec::new(), starts: Vec::new(), labels: Vec::new(), loads };
    prologue(&mut e, uses_memory(prog));
    for (n, i) in prog.iter().enumerate() {
        e.starts.push(e.out.len());
        one(&mut e, n, *i)?;
    }
    // Running off the end rejects, as in libpcap.
    e.goto(Target::Reject);
    let accept = e.out.len();
    match on_match {
        OnMatch::Return => {
            e.mov32_k(R0, 1);
            e.put(insn(JMP | EXIT, 0, 0, 0, 0));
        }
        OnMatch::TailCall { map_fd, index } => {
            e.mov64_x(R1, CTX);
            e.put(insn(LD | MODE_IMM | SIZE_DW, R2, PSEUDO_MAP_FD, 0, map_fd));
            e.put(insn(0, 0, 0, 0, 0));
            e.mov32_k(R3, index);
            // A failed tail call falls through to the reject ending: `TC_ACT_UNSPEC`.
            e.put(insn(JMP | CALL, 0, 0, 0, BPF_TAIL_CALL));
        }
    }
    let reject = e.out.len();
    let miss = if on_match == OnMatch::Return { 0 } else { TC_ACT_UNSPEC };
    e.put(insn(ALU64 | OP_MOV | SRC_K, R0, 0, 0, miss));
    e.put(insn(JMP | EXIT, 0, 0, 0, 0));
    Ok(e.finish(accept, reject))
}

fn uses_memory(prog: &[FilterInsn]) -> bool {
    prog.iter().any(|i| {
        let class = c::class(i.code);
        matches!(class, c::ST | c::STX) || (matches!(class, c::LD | c::LDX) && c::mode(i.code) == c::MEM)
    })
}

/// r6 = ctx, A = X = 0, r9 = data; `M[]` zeroed when the program uses it (the verifier refuses
/// reads of stack never written).
fn prologue(e: &mut Emitter, memory: bool) {
    e.mov64_x(CTX, R1);
    e.mov32_k(A, 0);
    e.mov32_k(X, 0);
    e.ldx(SIZE_W, DATA, CTX, SKB_DATA);
    if memory {
        for w in (0..MEMWORDS as i16).step_by(2) {
            e.put(insn(ST | MODE_MEM | SIZE_DW, FP, 0, MEM_AT + 4 * w, 0));
        }
    }
    // The bounce buffer, so that a 1- or 2-byte read of it is of written stack.
    e.put(insn(ST | MODE_MEM | SIZE_DW, FP, 0, BOUNCE_AT, 0));
}

fn mem_slot(k: u32) -> i16 {
    MEM_AT + 4 * (k as usize & (MEMWORDS - 1)) as i16
}

/// One classic instruction.
fn one(e: &mut Emitter, n: usize, i: FilterInsn) -> Result<(), TranslateError> {
    match c::class(i.code) {
        c::LD | c::LDX => load(e, i).ok_or(TranslateError::Opcode(n, i.code))?,
        c::ST => e.stx(SIZE_W, FP, A, mem_slot(i.k)),
        c::STX => e.stx(SIZE_W, FP, X, mem_slot(i.k)),
        c::ALU => alu(e, i).ok_or(TranslateError::Opcode(n, i.code))?,
        c::JMP => jump(e, n, i)?,
        c::RET => {
            if c::size(i.code) == c::RET_A {
                e.jump(JMP32, JNE, A, Operand::K(0), Target::Accept);
                e.goto(Target::Reject);
            } else {
                e.goto(if i.k != 0 { Target::Accept } else { Target::Reject });
            }
        }
        c::MISC if c::misc(i.code) == c::TXA => e.mov32_x(A, X),
        c::MISC => e.mov32_x(X, A),
        _ => return Err(TranslateError::Opcode(n, i.code)),
    }
    Ok(())
}

/// `ld` into A or `ldx` into X; `None` for an unknown mode or size.
fn load(e: &mut Emitter, i: FilterInsn) -> Option<()> {
    let dst = if c::class(i.code) == c::LD { A } else { X };
    match (c::class(i.code), c::mode(i.code)) {
        (_, c::IMM) => e.mov32_k(dst, i.k),
        (_, c::MEM) => e.ldx(SIZE_W, dst, FP, mem_slot(i.k)),
        (_, c::LEN) => e.ldx(SIZE_W, dst, CTX, SKB_LEN),
        (c::LD, c::ABS | c::IND) => {
            let size = match c::size(i.code) {
                c::W => SIZE_W,
                c::H => SIZE_H,
                c::B => SIZE_B,
                _ => return None,
            };
            // r2 = k (+ X): 64-bit, so that the sum cannot wrap.
            e.mov32_k(R2, i.k);
            if c::mode(i.code) == c::IND {
                e.put(insn(ALU64 | OP_ADD | SRC_X, R2, X, 0, 0));
            }
            e.load_frame(A, size);
        }
        // X = 4 * (P[k] & 0xf): an IPv4 header's length.
        (c::LDX, c::MSH) if c::size(i.code) == c::B => {
            e.mov32_k(R2, i.k);
            e.load_frame(X, SIZE_B);
            e.put(insn(ALU | OP_AND | SRC_K, X, 0, 0, 0x0f));
            e.put(insn(ALU | OP_LSH | SRC_K, X, 0, 0, 2));
        }
        _ => return None,
    }
    Some(())
}

/// `ja`, or a conditional jump on A (32-bit compares, as cBPF's).
fn jump(e: &mut Emitter, n: usize, i: FilterInsn) -> Result<(), TranslateError> {
    let to = |off: u32| Target::Classic(n + 1 + off as usize);
    let op = c::operation(i.code);
    if op == c::JA {
        if i.k > i32::MAX as u32 {
            return Err(TranslateError::BackwardJump(n));
        }
        e.goto(to(i.k));
        return Ok(());
    }
    let operand = if i.code & c::SRC_X != 0 { Operand::Reg(X) } else { Operand::K(i.k) };
    let ebpf_op = match op {
        c::JEQ => JEQ,
        c::JGT => JGT,
        c::JGE => JGE,
        c::JSET => JSET,
        _ => return Err(TranslateError::Opcode(n, i.code)),
    };
    e.jump(JMP32, ebpf_op, A, operand, to(u32::from(i.jt)));
    if i.jf != 0 {
        e.goto(to(u32::from(i.jf)));
    }
    Ok(())
}

/// An ALU operation on A; `None` for an unknown one.
fn alu(e: &mut Emitter, i: FilterInsn) -> Option<()> {
    let op = c::operation(i.code);
    let by_x = i.code & c::SRC_X != 0;
    let operand = if by_x { Operand::Reg(X) } else { Operand::K(i.k) };
    let ebpf_op: u8 = match op {
        c::ADD | c::SUB | c::MUL | c::DIV | c::OR | c::AND | c::LSH | c::RSH | c::MOD | c::XOR => op as u8,
        c::NEG => {
            e.put(insn(ALU | OP_NEG, A, 0, 0, 0));
            return Some(());
        }
        _ => return None,
    };
    // A division by zero rejects; a shift by 32 or more gives 0.
    match (op, operand) {
        (c::DIV | c::MOD, Operand::K(0)) => {
            e.goto(Target::Reject);
            return Some(());
        }
        (c::DIV | c::MOD, Operand::Reg(r)) => e.jump(JMP32, JEQ, r, Operand::K(0), Target::Reject),
        (c::LSH | c::RSH, Operand::K(k)) if k >= 32 => {
            e.mov32_k(A, 0);
            return Some(());
        }
        (c::LSH | c::RSH, Operand::Reg(r)) => {
            let shift = e.label();
            let done = e.label();
            e.jump(JMP32, JLT, r, Operand::K(32), Target::Local(shift));
            e.mov32_k(A, 0);
            e.goto(Target::Local(done));
            e.bind(shift);
            e.put(insn(ALU | ebpf_op | SRC_X, A, r, 0, 0));
            e.bind(done);
            return Some(());
        }
        _ => {}
    }
    match operand {
        Operand::K(k) => e.put(insn(ALU | ebpf_op | SRC_K, A, 0, 0, k as i32)),
        Operand::Reg(r) => e.put(insn(ALU | ebpf_op | SRC_X, A, r, 0, 0)),
    }
    Some(())
}
