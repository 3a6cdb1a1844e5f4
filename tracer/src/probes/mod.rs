//! The host stack's ARP and neighbour path: which attach mode works on this kernel (kprobe,
//! fentry, tp_btf), the struct layouts the programs read (BTF), and naming what they report
//! ([`render`]).
//!
//! Every mode hooks the same five places — ARP received, ARP sent, neighbour update, the
//! neighbour timer, packets waiting for resolution — so the events read the same whichever
//! one the kernel allows. kprobe and fentry links and tp_btf links are file descriptors: they
//! go away with the process, even after SIGKILL.


use std::fmt;

use aya::{
    Btf, Ebpf,
    maps::{Array, MapError},
    programs::{Program, ProgramError},
};
use tracer_common::{NeighConfig, names};

use crate::{
    cli::ProbeMode,
    kernel::{
        self,
        btf::{BtfError, KernelBtf},
    },
};


/// A way of attaching to kernel functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Kprobe,
    Fentry,
    Tracepoint,
}

impl Mode {
    /// The order `auto` tries them in.
    pub const ALL: [Mode; 3] = [Mode::Kprobe, Mode::Fentry, Mode::Tracepoint];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Kprobe => "kprobe",
            Mode::Fentry => "fentry",
            Mode::Tracepoint => "tracepoint",
        }
    }

    fn hooks(self) -> &'static [Hook] {
        match self {
            Mode::Kprobe => KPROBE,
            Mode::Fentry => FENTRY,
            Mode::Tracepoint => TRACEPOINT,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy)]
enum Attach {
    /// kprobe or kretprobe (the program's section says which).
    Kprobe,
    Fentry,
    Fexit,
    /// A BTF-typed tracepoint (`tp_btf`), by tracepoint name.
    TpBtf,
}

/// One program and the kernel functions (or tracepoint) it may attach to, first that works.
/// Return probes come before their entry probes, so that no entry is left without its return.
#[derive(Debug)]
struct Hook {
    program: &'static str,
    attach: Attach,
    targets: &'static [&'static str],
}

const fn hook(program: &'static str, attach: Attach, targets: &'static [&'static str]) -> Hook {
    Hook { program, attach, targets }
}

/// `__neigh_update` is static and may be inlined into `neigh_update`, which ARP and ND call.
const NEIGH_UPDATE: &[&str] = &["__neigh_update", "neigh_update"];

const KPROBE: &[Hook] = &[
    hook("vt_arp_rcv_kp", Attach::Kprobe, &["arp_rcv"]),
    hook("vt_arp_xmit_kp", Attach::Kprobe, &["arp_xmit"]),
    hook("vt_neigh_upd_kp", Attach::Kprobe, NEIGH_UPDATE),
    hook("vt_neigh_tmr_kr", Attach::Kprobe, &["neigh_timer_handler"]),
    hook("vt_neigh_tmr_kp", Attach::Kprobe, &["neigh_timer_handler"]),
    hook("vt_neigh_res_kr", Attach::Kprobe, &["__neigh_event_send"]),
    hook("vt_neigh_res_kp", Attach::Kprobe, &["__neigh_event_send"]),
];

const FENTRY: &[Hook] = &[
    hook("vt_arp_rcv_fe", Attach::Fentry, &["arp_rcv"]),
    hook("vt_arp_xmit_fe", Attach::Fentry, &["arp_xmit"]),
    hook("vt_neigh_upd_fe", Attach::Fentry, NEIGH_UPDATE),
    hook("vt_neigh_tmr_fx", Attach::Fexit, &["neigh_timer_handler"]),
    hook("vt_neigh_tmr_fe", Attach::Fentry, &["neigh_timer_handler"]),
    hook("vt_neigh_res_fx", Attach::Fexit, &["__neigh_event_send"]),
    hook("vt_neigh_res_fe", Attach::Fentry, &["__neigh_event_send"]),
];

/// No tracepoint marks `arp_rcv` or `arp_xmit` (the generic `net:netif_receive_skb` and
/// `net:net_dev_queue` would run a program on every packet of every device): in this mode the
/// TC programs on the traced interfaces tell the ARP frames ([`TC_ARP`]).
const TRACEPOINT: &[Hook] = &[
    hook("vt_neigh_upd_tp", Attach::TpBtf, &["neigh_update"]),
    hook("vt_neigh_tmr_tp", Attach::TpBtf, &["neigh_timer_handler"]),
    hook("vt_neigh_res_tp", Attach::TpBtf, &["neigh_event_send_done"]),
    // Only to know a new entry's first state (see tracer-ebpf/src/neigh.rs).
    hook("vt_neigh_new_tp", Attach::TpBtf, &["neigh_create"]),
];

/// Journeys' hops inside the stack (tracer-ebpf/src/hops.rs); no tracepoint marks these
/// places. `nf_hook_slow`'s return probe comes before its entry probe (as above).
const HOPS_KPROBE: &[Hook] = &[
    hook("vt_j_fwd_kp", Attach::Kprobe, &["ip_forward"]),
    hook("vt_j_out_kp", Attach::Kprobe, &["ip_output"]),
    hook("vt_j_neigh_kp", Attach::Kprobe, &["neigh_resolve_output"]),
    hook("vt_j_nf_kr", Attach::Kprobe, &["nf_hook_slow"]),
    hook("vt_j_nf_kp", Attach::Kprobe, &["nf_hook_slow"]),
];

const HOPS_FENTRY: &[Hook] = &[
    hook("vt_j_fwd_fe", Attach::Fentry, &["ip_forward"]),
    hook("vt_j_out_fe", Attach::Fentry, &["ip_output"]),
    hook("vt_j_neigh_fe", Attach::Fentry, &["neigh_resolve_output"]),
    hook("vt_j_nf_fx", Attach::Fexit, &["nf_hook_slow"]),
    hook("vt_j_nf_fe", Attach::Fentry, &["nf_hook_slow"]),
];

fn hop_hooks(mode: Mode) -> &'static [Hook] {
    match mode {
        Mode::Kprobe => HOPS_KPROBE,
        Mode::Fentry => HOPS_FENTRY,
        Mode::Tracepoint => &[],
    }
}

/// What stands in for `arp_rcv` and `arp_xmit` in tracepoint mode (tracer-ebpf/src/arp.rs).
const TC_ARP: [&str; 2] = ["TC ingress", "TC egress"];

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error("the ARP/neighbour probes need the kernel's struct layouts: {0}")]
    Btf(#[from] BtfError),
    #[error("reading the kernel's BTF for attaching: {0}")]
    AyaBtf(String),
    #[error("the eBPF object has no {0}")]
    Missing(&'static str),
    #[error("{mode}: {program} cannot attach to {targets}: {detail}")]
    Attach {
        mode: Mode,
        program: &'static str,
        targets: String,
        /// The error with its causes (aya's own message alone can be a bare path).
        detail: String,
    },
    #[error("asking the TC programs for ARP events: {0}")]
    ArpFromTc(#[from] MapError),
    #[error("no attach mode works on this kernel ({0})")]
    NoMode(String),
    #[error("--probe {0} has none (they need kprobes or fentry)")]
    NotInMode(&'static str),
}

/// The attached probes.
#[derive(Debug, Clone)]
pub(crate) struct Probes {
    pub mode: Mode,
    /// What each hook attached to, in hook order (`arp_rcv`, `arp_xmit`, `neigh_update`, …;
    /// in tracepoint mode [`TC_ARP`] for the first two).
    pub targets: Vec<&'static str>,
}

/// Configures the programs for the running kernel and attaches the first mode that works
/// (`auto`), or the one asked for.
/// The programs' layout ([`layout`]) is a load-time global: the object must have been loaded
/// with it.
pub(crate) fn start(ebpf: &mut Ebpf, wanted: ProbeMode) -> Result<Probes, ProbeError> {
    let modes: &[Mode] = match wanted {
        ProbeMode::Off => &[],
        ProbeMode::Auto => &Mode::ALL,
        ProbeMode::Kprobe => &[Mode::Kprobe],
        ProbeMode::Fentry => &[Mode::Fentry],
        ProbeMode::Tracepoint => &[Mode::Tracepoint],
    };
    first_mode(ebpf, modes, attach_mode, unload_mode)
}

/// Journeys' hops inside the stack ([`HOPS_FENTRY`], [`HOPS_KPROBE`]): the first of fentry and
/// kprobe that attaches (`auto`), or the one asked for; tracepoint mode has none. fentry first:
/// a kprobe program holds the CPU's `bpf_prog_active` while it runs, and the kernel skips every
/// tracepoint program that a softirq interrupting it would run — the journeys' own
/// net_dev_xmit among them (seen: 1.35 % of a flood's journeys without their xmit on 5.10 with
/// kprobe hops); a trampoline does not hold it.
pub(crate) fn start_hops(ebpf: &mut Ebpf, wanted: ProbeMode) -> Result<Probes, ProbeError> {
    let modes: &[Mode] = match wanted {
        ProbeMode::Auto => &[Mode::Fentry, Mode::Kprobe],
        ProbeMode::Kprobe => &[Mode::Kprobe],
        ProbeMode::Fentry => &[Mode::Fentry],
        ProbeMode::Tracepoint => return Err(ProbeError::NotInMode("tracepoint")),
        ProbeMode::Off => return Err(ProbeError::NotInMode("off")),
    };
    let attach = |ebpf: &mut Ebpf, mode: Mode, btf: &Btf| attach_hooks(ebpf, mode, hop_hooks(mode), btf);
    first_mode(ebpf, modes, attach, |ebpf, mode| unload_hooks(ebpf, hop_hooks(mode)))
}

/// The first of `modes` whose programs all attach; a mode that fails is detached again.
fn first_mode(
    ebpf: &mut Ebpf,
    modes: &[Mode],
    attach: impl Fn(&mut Ebpf, Mode, &Btf) -> Result<Vec<&'static str>, ProbeError>,
    unload: impl Fn(&mut Ebpf, Mode),
) -> Result<Probes, ProbeError> {
    let btf = attach_btf()?;
    let mut failures = Vec::new();
    for &mode in modes {
        match attach(ebpf, mode, &btf) {
            Ok(targets) => return Ok(Probes { mode, targets }),
            Err(e) => {
                unload(ebpf, mode);
                if modes.len() == 1 {
                    return Err(e);
                }
                failures.push(e.to_string());
            }
        }
    }
    Err(ProbeError::NoMode(failures.join("; ")))
}

/// The kernel's BTF as aya wants it for fentry, fexit and tp_btf targets.
pub(crate) fn attach_btf() -> Result<Btf, ProbeError> {
    Btf::from_sys_fs().map_err(|e| ProbeError::AyaBtf(e.to_string()))
}

/// Whether `mode` loads and attaches here, the ARP/neighbour path and the journeys' hops;
/// detached again at once (for `vethtrace check`).
pub(crate) fn try_mode(ebpf: &mut Ebpf, mode: Mode, btf: &Btf) -> Result<(), ProbeError> {
    let result = attach_mode(ebpf, mode, btf).and_then(|_| attach_hooks(ebpf, mode, hop_hooks(mode), btf)).map(drop);
    unload_mode(ebpf, mode);
    unload_hooks(ebpf, hop_hooks(mode));
    result
}

fn attach_mode(ebpf: &mut Ebpf, mode: Mode, btf: &Btf) -> Result<Vec<&'static str>, ProbeError> {
    let mut targets = attach_hooks(ebpf, mode, mode.hooks(), btf)?;
    if mode == Mode::Tracepoint {
        set_arp_from_tc(ebpf, true)?;
        targets.splice(0..0, TC_ARP);
    }
    Ok(targets)
}

fn attach_hooks(ebpf: &mut Ebpf, mode: Mode, hooks: &[Hook], btf: &Btf) -> Result<Vec<&'static str>, ProbeError> {
    hooks.iter().map(|h| attach_hook(ebpf, mode, h, btf)).collect()
}

/// Tells the TC programs whether to send ARP events.
fn set_arp_from_tc(ebpf: &mut Ebpf, on: bool) -> Result<(), ProbeError> {
    let map = ebpf.map_mut(names::ARP_FROM_TC_MAP).ok_or(ProbeError::Missing("ARP_FROM_TC map"))?;
    Ok(Array::<_, u32>::try_from(map)?.set(0, &u32::from(on), 0)?)
}

/// Attaches `hook` to its first target that works; the error is the last target's.
fn attach_hook(ebpf: &mut Ebpf, mode: Mode, hook: &Hook, btf: &Btf) -> Result<&'static str, ProbeError> {
    let program = ebpf.program_mut(hook.program).ok_or(ProbeError::Missing(hook.program))?;
    let mut last = None;
    for &target in hook.targets {
        match attach_one(program, hook.attach, target, btf) {
            Ok(()) => return Ok(target),
            Err(e) => last = Some(e),
        }
    }
    Err(ProbeError::Attach {
        mode,
        program: hook.program,
        targets: hook.targets.join(" or "),
        detail: last.as_ref().map_or_else(String::new, chain),
    })
}

/// `error: cause: cause…` on one line; of a verifier log only the line that says what it
/// refused (the whole log is in `RUST_LOG=debug`).
fn chain(e: &ProgramError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    log::debug!("{text}");
    one_line(&text)
}

/// The first line of `text`, plus the verifier's verdict when `text` carries its log.
fn one_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    let Some((head, _)) = first.split_once(" Verifier output:") else { return first.to_owned() };
    let bookkeeping = ["processed ", "verification time", "stack depth", "func#", "last_idx"];
    let verdict = text
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty() && !bookkeeping.iter().any(|b| l.starts_with(b)))
        .filter(|l| !l.starts_with(|c: char| c.is_ascii_digit() || c == ';'))
        .last();
    match verdict {
        Some(v) => format!("{head} (verifier: {v})"),
        None => head.to_owned(),
    }
}

fn attach_one(program: &mut Program, attach: Attach, target: &str, btf: &Btf) -> Result<(), ProgramError> {
    match (attach, program) {
        (Attach::Kprobe, Program::KProbe(p)) => {
            if p.fd().is_err() {
                p.load()?;
            }
            p.attach(target, 0).map(drop)
        }
        (Attach::Fentry, Program::FEntry(p)) => {
            p.load(target, btf)?;
            p.attach().map(drop).inspect_err(|_| drop(p.unload()))
        }
        (Attach::Fexit, Program::FExit(p)) => {
            p.load(target, btf)?;
            p.attach().map(drop).inspect_err(|_| drop(p.unload()))
        }
        (Attach::TpBtf, Program::BtfTracePoint(p)) => {
            p.load(target, btf)?;
            p.attach().map(drop).inspect_err(|_| drop(p.unload()))
        }
        _ => Err(ProgramError::UnexpectedProgramType),
    }
}

/// Detaches and unloads every program of `mode` (after a failure, or a trial).
fn unload_mode(ebpf: &mut Ebpf, mode: Mode) {
    if mode == Mode::Tracepoint {
        let _ = set_arp_from_tc(ebpf, false);
    }
    unload_hooks(ebpf, mode.hooks());
}

fn unload_hooks(ebpf: &mut Ebpf, hooks: &[Hook]) {
    for h in hooks {
        let _ = match ebpf.program_mut(h.program) {
            Some(Program::KProbe(p)) => p.unload(),
            Some(Program::FEntry(p)) => p.unload(),
            Some(Program::FExit(p)) => p.unload(),
            Some(Program::BtfTracePoint(p)) => p.unload(),
            _ => Ok(()),
        };
    }
}

/// Member offsets for the running kernel, from its BTF.
pub(crate) fn layout(btf: &KernelBtf) -> Result<NeighConfig, BtfError> {
    let skb = |m: &str| btf.member_offset("sk_buff", m);
    let dev = |m: &str| btf.member_offset("net_device", m);
    let neigh = |m: &str| btf.member_offset("neighbour", m);
    Ok(NeighConfig {
        enabled: 1,
        skb_head: skb("head")?,
        skb_data: skb("data")?,
        skb_network_header: skb("network_header")?,
        skb_dev: skb("dev")?,
        dev_ifindex: dev("ifindex")?,
        dev_nd_net: dev("nd_net")?,
        net_inum: btf.net_inum_offset()?,
        netns_inum: kernel::own_netns_inum(),
        neigh_dev: neigh("dev")?,
        neigh_nud_state: neigh("nud_state")?,
        neigh_ha: neigh("ha")?,
        neigh_primary_key: neigh("primary_key")?,
        neigh_tbl: neigh("tbl")?,
        neigh_timer: neigh("timer")?,
        tbl_family: btf.member_offset("neigh_table", "family")?,
        _pad: 0,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every program of every mode (for the check that the object has them all).
    pub(crate) fn program_names() -> impl Iterator<Item = &'static str> {
        Mode::ALL.into_iter().flat_map(|m| m.hooks().iter().chain(hop_hooks(m)).map(|h| h.program))
    }

    /// Every offset is found on the running kernel (6.18 here, 6.1 in the VM), and they agree
    /// with facts that hold on both.
    #[test]
    fn running_kernel_layout() {
        let btf = KernelBtf::load().expect("kernel BTF");
        let cfg = layout(&btf).unwrap();
        assert_eq!(cfg.skb_data, cfg.skb_head + 8);
        // primary_key is the flexible array that ends struct neighbour.
        assert!(cfg.neigh_primary_key > cfg.neigh_ha && cfg.neigh_primary_key > cfg.neigh_timer);
        assert!(cfg.neigh_tbl > 0 && cfg.neigh_dev > 0);
        assert_ne!(cfg.netns_inum, 0);
    }

    #[test]
    fn verifier_logs_become_one_line() {
        let log = "the BPF_PROG_LOAD syscall returned Invalid argument (os error 22). Verifier output: reg type unsupported for arg#0 function vt#59
0: R1=ctx(off=0,imm=0) R10=fp0
; btf_arg(self, n)
14: (1f) r8 -= r1
value -4294967295 makes ptr_ pointer be out of bounds
verification time 2779 usec
stack depth 16+0
processed 14 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 1";
        assert_eq!(
            one_line(log),
            "the BPF_PROG_LOAD syscall returned Invalid argument (os error 22). (verifier: value -4294967295 makes ptr_ pointer be out of bounds)"
        );
        assert_eq!(one_line("no such file\nmore"), "no such file");
    }

    #[test]
    fn every_mode_hooks_the_same_five_places() {
        let places = |m: Mode| {
            let mut p: Vec<_> = m
                .hooks()
                .iter()
                .map(|h| &h.program[..h.program.len() - 3])
                .filter(|p| *p != "vt_neigh_new")
                .collect();
            p.dedup();
            p
        };
        assert_eq!(places(Mode::Kprobe), places(Mode::Fentry));
        assert_eq!(places(Mode::Kprobe).len(), 5);
        // Tracepoint mode: the ARP places are TC's.
        assert_eq!(places(Mode::Kprobe)[2..], places(Mode::Tracepoint)[..]);
        assert!(places(Mode::Kprobe)[..2].iter().all(|p| p.starts_with("vt_arp_")));
    }
}
