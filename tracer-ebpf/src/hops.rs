//! Journeys' hops inside the stack (`--journey`, where kprobes or fentry attach): places no
//! tracepoint marks, reported only for skbs already on a journey ([`journey::following`]: one
//! hash lookup per call; nothing else is done for packets nobody follows).
//!
//! - `ip_forward(skb)`: the node decided to forward it;
//! - `ip_output(net, sk, skb)`: IPv4 output after routing, before POSTROUTING (the route's
//!   device read from the skb's dst: `skb->dev` is still the input device there);
//! - `neigh_resolve_output(neigh, skb)`: sent through a neighbour entry that is not (or no
//!   longer) confirmed — its key and state. A confirmed entry with a cached header is used
//!   inline (`neigh_hh_output`), with no function to hook;
//! - `nf_hook_slow(skb, state, entries, i)`: a verdict other than accept. The hook and family
//!   are kept per task at entry (`NF_PENDING`, by pid_tgid); a drop frees the skb inside the
//!   call, and the drop program, which ends the journey there, reports the hop first
//!   ([`nf_dropped`]); a stolen packet is reported at the return (kretprobe, or fexit reading
//!   the return after the four arguments: 5.10 has no `bpf_get_func_ret`).
//!
//! Each hook has a kprobe and an fentry program; the collector attaches one family.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::{fentry, fexit, kprobe, kretprobe, map},
    maps::HashMap,
    programs::{FEntryContext, FExitContext, ProbeContext, RetProbeContext},
};
use tracer_common::{HopsConfig, hop, nf_verdict};

use crate::{
    drop, emit,
    journey::{self, Hop},
    kread::{btf_arg_scalar, read},
    neigh,
};

/// The offsets the hops read, set at load; all zero (off) until then.
#[unsafe(no_mangle)]
static HOPS_CFG: HopsConfig = HopsConfig::DISABLED;

/// A followed skb inside `nf_hook_slow`, by task (pid_tgid), until its return.
#[derive(Clone, Copy)]
struct NfPending {
    id: u64,
    skbaddr: u64,
    hook: u8,
    pf: u8,
}

#[map]
static NF_PENDING: HashMap<u64, NfPending> = HashMap::with_max_entries(1024, 0);

#[inline(always)]
fn config() -> Result<HopsConfig, ()> {
    // SAFETY: a plain global; the volatile read keeps the compiler from folding the all-zero
    // default (the loader rewrites it).
    let cfg = unsafe { core::ptr::read_volatile(&raw const HOPS_CFG) };
    if cfg.enabled != 0 { Ok(cfg) } else { Err(()) }
}

/// The calling task's id: the key of [`NF_PENDING`].
#[inline(always)]
fn task() -> u64 {
    bpf_get_current_pid_tgid()
}

// --- ip_forward(skb) ---

#[kprobe]
pub fn vt_j_fwd_kp(ctx: ProbeContext) -> u32 {
    forward(ctx.arg(0).unwrap_or(0))
}

#[fentry]
pub fn vt_j_fwd_fe(ctx: FEntryContext) -> u32 {
    forward(btf_arg_scalar(&ctx, 0))
}

#[inline(always)]
fn forward(skbaddr: u64) -> u32 {
    let _ = try_forward(skbaddr);
    0
}

#[inline(always)]
fn try_forward(skbaddr: u64) -> Result<(), ()> {
    let ts = emit::now_ns();
    let id = journey::following(skbaddr).ok_or(())?;
    let dev: u64 = read(skbaddr, drop::config().skb_dev)?;
    device_hop(Hop { ts, id, skbaddr, hop: hop::FORWARD, ..Hop::default() }, dev)
}

/// `hop` on device `dev` (0: none), with the skb's length.
#[inline(always)]
fn device_hop(mut hop: Hop, dev: u64) -> Result<(), ()> {
    let cfg = drop::config();
    hop.ifindex = if dev == 0 { 0 } else { read(dev, cfg.dev_ifindex)? };
    hop.len = read(hop.skbaddr, cfg.skb_len)?;
    journey::emit_hop(hop);
    Ok(())
}

// --- ip_output(net, sk, skb) ---

#[kprobe]
pub fn vt_j_out_kp(ctx: ProbeContext) -> u32 {
    output(ctx.arg(2).unwrap_or(0))
}

#[fentry]
pub fn vt_j_out_fe(ctx: FEntryContext) -> u32 {
    output(btf_arg_scalar(&ctx, 2))
}

#[inline(always)]
fn output(skbaddr: u64) -> u32 {
    let _ = try_output(skbaddr);
    0
}

#[inline(always)]
fn try_output(skbaddr: u64) -> Result<(), ()> {
    let ts = emit::now_ns();
    let id = journey::following(skbaddr).ok_or(())?;
    let hc = config()?;
    // The low bit of _skb_refdst says whether the route is referenced (SKB_DST_NOREF).
    let dst = read::<u64>(skbaddr, hc.skb_refdst)? & !1;
    let dev: u64 = if dst == 0 { 0 } else { read(dst, hc.dst_dev)? };
    device_hop(Hop { ts, id, skbaddr, hop: hop::OUTPUT, ..Hop::default() }, dev)
}

// --- neigh_resolve_output(neigh, skb) ---

#[kprobe]
pub fn vt_j_neigh_kp(ctx: ProbeContext) -> u32 {
    through_neighbour(ctx.arg(0).unwrap_or(0), ctx.arg(1).unwrap_or(0))
}

#[fentry]
pub fn vt_j_neigh_fe(ctx: FEntryContext) -> u32 {
    through_neighbour(btf_arg_scalar(&ctx, 0), btf_arg_scalar(&ctx, 1))
}

#[inline(always)]
fn through_neighbour(neigh: u64, skbaddr: u64) -> u32 {
    let _ = try_neighbour(neigh, skbaddr);
    0
}

#[inline(always)]
fn try_neighbour(neighbour: u64, skbaddr: u64) -> Result<(), ()> {
    let ts = emit::now_ns();
    let id = journey::following(skbaddr).ok_or(())?;
    let cfg = neigh::config()?;
    let dev: u64 = read(neighbour, cfg.neigh_dev)?;
    let ifindex = read(dev, cfg.dev_ifindex)?;
    let state = read(neighbour, cfg.neigh_nud_state)?;
    let (family, addr) = neigh::key_address(neighbour, &cfg);
    let len = read(skbaddr, drop::config().skb_len)?;
    let family = family as u8;
    journey::emit_hop(Hop { ts, id, skbaddr, ifindex, len, hop: hop::NEIGH, family, state, addr, ..Hop::default() });
    Ok(())
}

// --- nf_hook_slow(skb, state, entries, i) → 1 accept, 0 stolen, < 0 dropped ---

#[kprobe]
pub fn vt_j_nf_kp(ctx: ProbeContext) -> u32 {
    nf_enter(ctx.arg(0).unwrap_or(0), ctx.arg(1).unwrap_or(0))
}

#[kretprobe]
pub fn vt_j_nf_kr(ctx: RetProbeContext) -> u32 {
    nf_leave(ctx.ret::<u64>() as i32)
}

#[fentry]
pub fn vt_j_nf_fe(ctx: FEntryContext) -> u32 {
    nf_enter(btf_arg_scalar(&ctx, 0), btf_arg_scalar(&ctx, 1))
}

#[fexit]
pub fn vt_j_nf_fx(ctx: FExitContext) -> u32 {
    nf_leave(btf_arg_scalar(&ctx, 4) as i32)
}

#[inline(always)]
fn nf_enter(skbaddr: u64, state: u64) -> u32 {
    let _ = try_nf_enter(skbaddr, state);
    0
}

#[inline(always)]
fn try_nf_enter(skbaddr: u64, state: u64) -> Result<(), ()> {
    let id = journey::following(skbaddr).ok_or(())?;
    let hc = config()?;
    let pending = NfPending { id, skbaddr, hook: read(state, hc.nf_state_hook)?, pf: read(state, hc.nf_state_pf)? };
    NF_PENDING.insert(&task(), &pending, 0).map_err(|_| ())
}

/// At the return: a stolen (or queued) packet is a hop; a drop was reported by the drop program
/// ([`nf_dropped`]), which removed the entry.
#[inline(always)]
fn nf_leave(ret: i32) -> u32 {
    let ts = emit::now_ns();
    let key = task();
    // SAFETY: the value is copied out at once.
    let Some(p) = (unsafe { NF_PENDING.get(&key) }).copied() else { return 0 };
    let _ = NF_PENDING.remove(&key);
    if ret == 0 {
        emit_nf(&p, nf_verdict::STOLEN, ts);
    }
    0
}

/// Called by the drop program as it ends journey `id`: when the task is inside `nf_hook_slow`
/// for this skb, netfilter's verdict dropped it — its hop goes before the drop record.
#[inline(always)]
pub fn nf_dropped(skbaddr: u64, id: u64, ts: u64) {
    let key = task();
    // SAFETY: the value is copied out at once.
    let Some(p) = (unsafe { NF_PENDING.get(&key) }).copied() else { return };
    if p.skbaddr != skbaddr || p.id != id {
        return;
    }
    let _ = NF_PENDING.remove(&key);
    emit_nf(&p, nf_verdict::DROP, ts);
}

#[inline(always)]
fn emit_nf(p: &NfPending, verdict: i32, ts: u64) {
    let hop = Hop { ts, id: p.id, skbaddr: p.skbaddr, rc: verdict, hop: hop::NF, family: p.pf, state: p.hook, ..Hop::default() };
    journey::emit_hop(hop);
}
