//! Neighbour entries on traced interfaces: state changes (`__neigh_update`, the entry's timer)
//! and packets that wait for resolution (`__neigh_event_send`).
//!
//! Each hook exists in the three attach modes. kprobe and fentry see the state before the
//! change at function entry; the timer and resolve hooks report at return (kretprobe, fexit),
//! pairing with the entry through a per-CPU slot. tp_btf has only the point after the change
//! for those two, so the state before is the last one any hook saw for that entry (`SEEN`).
//! The bodies are shared; the wrappers only pick arguments out of their context.

use aya_ebpf::{
    macros::{btf_tracepoint, fentry, fexit, kprobe, kretprobe, map},
    maps::{LruHashMap, PerCpuArray},
    programs::{BtfTracePointContext, FEntryContext, FExitContext, ProbeContext, RetProbeContext},
};
use tracer_common::{
    NeighConfig, NeighRecord, NeighSection, SectionHeader, kind, neigh_hook, neighf, nud,
    proto::AF_INET,
    section,
};

use crate::{
    emit,
    kread::{self, DevLayout, read},
};

/// The layouts of the running kernel, set at load (a load-time constant for the verifier);
/// all zero (`enabled == 0`: do nothing) until then.
#[unsafe(no_mangle)]
static NEIGH_CFG: NeighConfig = NeighConfig::DISABLED;

/// Last state seen per neighbour (by address of its `struct neighbour`).
#[map]
static SEEN: LruHashMap<u64, u8> = LruHashMap::with_max_entries(8192, 0);

/// A neighbour and its state at function entry, until the matching return.
#[derive(Clone, Copy)]
struct Pending {
    neigh: u64,
    old: u8,
}

/// Slot per hook kind (timer, resolve) in [`PENDING`].
const SLOT_TIMER: u32 = 0;
const SLOT_RESOLVE: u32 = 1;

#[map]
static PENDING: PerCpuArray<Pending> = PerCpuArray::with_max_entries(2, 0);


/// The configuration, when the collector set one at load.
#[inline(always)]
pub fn config() -> Result<NeighConfig, ()> {
    // SAFETY: a plain global; the volatile read keeps the compiler from folding the all-zero
    // default (the loader rewrites it).
    let cfg = unsafe { core::ptr::read_volatile(&raw const NEIGH_CFG) };
    if cfg.enabled != 0 { Ok(cfg) } else { Err(()) }
}

/// `dev`'s ifindex when it is traced in the collector's namespace.
#[inline(always)]
pub fn traced_dev(dev: u64, cfg: &NeighConfig) -> Result<u32, ()> {
    let layout = DevLayout { ifindex: cfg.dev_ifindex, nd_net: cfg.dev_nd_net, net_inum: cfg.net_inum };
    kread::traced_dev(dev, &layout, cfg.netns_inum)
}

// --- __neigh_update(neigh, lladdr, new, flags, nlmsg_pid, …) and neigh:neigh_update ---
// `lladdr` (a `const u8 *`) is read through the helper in the BTF-typed modes: 5.10's verifier
// refuses a context load of a pointer to anything but a struct (`arg1 type INT is not a struct`).

#[kprobe]
pub fn vt_neigh_upd_kp(ctx: ProbeContext) -> u32 {
    let arg = |n| ctx.arg::<u64>(n).unwrap_or(0);
    update(arg(0), arg(1), arg(2) as u8, arg(3) as u32, arg(4) as u32)
}

#[fentry]
pub fn vt_neigh_upd_fe(ctx: FEntryContext) -> u32 {
    update(ctx.arg(0), kread::btf_arg_scalar(&ctx, 1), ctx.arg::<u64>(2) as u8, ctx.arg::<u64>(3) as u32, ctx.arg::<u64>(4) as u32)
}

#[btf_tracepoint(function = "neigh_update")]
pub fn vt_neigh_upd_tp(ctx: BtfTracePointContext) -> u32 {
    update(ctx.arg(0), kread::btf_arg_scalar(&ctx, 1), ctx.arg::<u64>(2) as u8, ctx.arg::<u64>(3) as u32, ctx.arg::<u64>(4) as u32)
}

#[inline(always)]
fn update(neigh: u64, lladdr: u64, new: u8, flags: u32, pid: u32) -> u32 {
    let _ = try_update(neigh, lladdr, new, flags, pid);
    0
}

#[inline(always)]
fn try_update(neigh: u64, lladdr: u64, new: u8, flags: u32, pid: u32) -> Result<(), ()> {
    let cfg = &config()?;
    let ifindex = traced_dev(read(neigh, cfg.neigh_dev)?, cfg)?;
    let old: u8 = read(neigh, cfg.neigh_nud_state)?;
    let ha: [u8; 6] = read(neigh, cfg.neigh_ha)?;
    let given = if lladdr != 0 { read::<[u8; 6]>(lladdr, 0).ok() } else { None };
    remember(neigh, new);
    let new_address = given.is_some_and(|g| g != ha);
    if old == new && !new_address {
        return Ok(());
    }
    let mut flags_out = neighf::OLD_KNOWN;
    let shown = given.unwrap_or(ha);
    if given.is_some() || new & nud::VALID != 0 {
        flags_out |= neighf::HAS_LLADDR;
    }
    let ev = Report { neigh, ifindex, hook: neigh_hook::UPDATE, old, new, flags: flags_out, detail: flags, pid, lladdr: shown };
    ev.emit(cfg);
    Ok(())
}

// --- neigh_timer_handler(struct timer_list *) and neigh:neigh_timer_handler ---

#[kprobe]
pub fn vt_neigh_tmr_kp(ctx: ProbeContext) -> u32 {
    ctx.arg::<u64>(0).map_or(0, |t| enter(SLOT_TIMER, timer_neigh(t)))
}

#[kretprobe]
pub fn vt_neigh_tmr_kr(_ctx: RetProbeContext) -> u32 {
    leave_pending(SLOT_TIMER, neigh_hook::TIMER, 0, None)
}

#[fentry]
pub fn vt_neigh_tmr_fe(ctx: FEntryContext) -> u32 {
    enter(SLOT_TIMER, timer_neigh(kread::btf_arg_scalar(&ctx, 0)))
}

#[fexit]
pub fn vt_neigh_tmr_fx(ctx: FExitContext) -> u32 {
    leave_pending(SLOT_TIMER, neigh_hook::TIMER, 0, Some(timer_neigh(kread::btf_arg_scalar(&ctx, 0))))
}

#[btf_tracepoint(function = "neigh_timer_handler")]
pub fn vt_neigh_tmr_tp(ctx: BtfTracePointContext) -> u32 {
    leave(ctx.arg(0), None, neigh_hook::TIMER, 0)
}

// --- neigh:neigh_create(tbl, dev, primary_key, neigh, exempt_from_gc): tp_btf only ---

/// A new entry starts in NUD_NONE: remembered, so that the tracepoint mode can say what its
/// first resolution moved it from (kprobe and fentry read that at function entry).
#[btf_tracepoint(function = "neigh_create")]
pub fn vt_neigh_new_tp(ctx: BtfTracePointContext) -> u32 {
    let (dev, neigh): (u64, u64) = (ctx.arg(1), ctx.arg(3));
    if let Ok(cfg) = config()
        && traced_dev(dev, &cfg).is_ok()
    {
        remember(neigh, 0);
    }
    0
}

/// The neighbour that embeds timer `t` (`container_of(t, struct neighbour, timer)`).
#[inline(always)]
fn timer_neigh(t: u64) -> u64 {
    match config() {
        Ok(cfg) if t != 0 => t - u64::from(cfg.neigh_timer),
        _ => 0,
    }
}

// --- __neigh_event_send(neigh, skb, …) → rc, and neigh:neigh_event_send_done ---

#[kprobe]
pub fn vt_neigh_res_kp(ctx: ProbeContext) -> u32 {
    ctx.arg::<u64>(0).map_or(0, |n| enter(SLOT_RESOLVE, n))
}

#[kretprobe]
pub fn vt_neigh_res_kr(ctx: RetProbeContext) -> u32 {
    leave_pending(SLOT_RESOLVE, neigh_hook::RESOLVE, ctx.ret::<u64>() as u32, None)
}

#[fentry]
pub fn vt_neigh_res_fe(ctx: FEntryContext) -> u32 {
    enter(SLOT_RESOLVE, ctx.arg(0))
}

#[fexit]
pub fn vt_neigh_res_fx(ctx: FExitContext) -> u32 {
    // The return value follows the two arguments in the context; read there rather than with
    // bpf_get_func_ret, which 5.10 lacks (Linux >= 5.17).
    let rc = kread::btf_arg_scalar(&ctx, 2) as u32;
    leave_pending(SLOT_RESOLVE, neigh_hook::RESOLVE, rc, Some(ctx.arg(0)))
}

#[btf_tracepoint(function = "neigh_event_send_done")]
pub fn vt_neigh_res_tp(ctx: BtfTracePointContext) -> u32 {
    leave(ctx.arg(0), None, neigh_hook::RESOLVE, ctx.arg::<u64>(1) as u32)
}

/// Function entry: keeps the neighbour and its state for the return.
#[inline(always)]
fn enter(slot: u32, neigh: u64) -> u32 {
    let Ok(cfg) = config() else { return 0 };
    let Ok(old) = read::<u8>(neigh, cfg.neigh_nud_state) else { return 0 };
    if let Some(p) = PENDING.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot, only this CPU touches it, and not re-entrantly for one slot:
        // the timer handler runs in softirq, resolution in the transmit path with BH off.
        unsafe { *p = Pending { neigh, old } };
    }
    0
}

/// Function return: the entry's neighbour, checked against `expect` when the return sees it.
#[inline(always)]
fn leave_pending(slot: u32, hook: u8, rc: u32, expect: Option<u64>) -> u32 {
    let Some(p) = PENDING.get_ptr_mut(slot) else { return 0 };
    // SAFETY: as in `enter`.
    let pending = unsafe { core::mem::replace(&mut *p, Pending { neigh: 0, old: 0 }) };
    if pending.neigh == 0 || expect.is_some_and(|n| n != pending.neigh) {
        return 0;
    }
    leave(pending.neigh, Some(pending.old), hook, rc)
}

/// After the timer or a resolution: reports the entry when its state moved (or, for a
/// resolution, when the packet was held).
#[inline(always)]
fn leave(neigh: u64, old: Option<u8>, hook: u8, rc: u32) -> u32 {
    let _ = try_leave(neigh, old, hook, rc);
    0
}

#[inline(always)]
fn try_leave(neigh: u64, old: Option<u8>, hook: u8, rc: u32) -> Result<(), ()> {
    let cfg = &config()?;
    let ifindex = traced_dev(read(neigh, cfg.neigh_dev)?, cfg)?;
    let new: u8 = read(neigh, cfg.neigh_nud_state)?;
    let mut flags = 0;
    let old = match old {
        Some(o) => {
            flags |= neighf::OLD_KNOWN;
            Some(o)
        }
        // SAFETY: a plain u8 copied out at once.
        None => {
            let seen = unsafe { SEEN.get(&neigh) }.copied();
            if seen.is_some() {
                flags |= neighf::OLD_SEEN;
            }
            seen
        }
    };
    remember(neigh, new);
    let held = hook == neigh_hook::RESOLVE && rc != 0;
    if held {
        flags |= neighf::HELD;
    }
    if old == Some(new) && !held {
        return Ok(());
    }
    let lladdr: [u8; 6] = read(neigh, cfg.neigh_ha)?;
    if new & nud::VALID != 0 {
        flags |= neighf::HAS_LLADDR;
    }
    let old = old.unwrap_or(0);
    Report { neigh, ifindex, hook, old, new, flags, detail: rc, pid: 0, lladdr }.emit(cfg);
    Ok(())
}

/// The neighbour table's family and the entry's key address (IPv4 in the first 4 bytes).
#[inline(always)]
pub fn key_address(neigh: u64, cfg: &NeighConfig) -> (u16, [u8; 16]) {
    let family = read::<u64>(neigh, cfg.neigh_tbl).and_then(|tbl| read::<u16>(tbl, cfg.tbl_family)).unwrap_or(0);
    let key = neigh + u64::from(cfg.neigh_primary_key);
    let mut addr = [0u8; 16];
    if family == u16::from(AF_INET) {
        if let Ok(a) = read::<[u8; 4]>(key, 0) {
            addr[..4].copy_from_slice(&a);
        }
    } else if let Ok(a) = read::<[u8; 16]>(key, 0) {
        addr = a;
    }
    (family, addr)
}

#[inline(always)]
fn remember(neigh: u64, state: u8) {
    let _ = SEEN.insert(&neigh, &state, 0);
}

/// What a neighbour event carries besides what `emit` reads from the entry itself.
struct Report {
    neigh: u64,
    ifindex: u32,
    hook: u8,
    old: u8,
    new: u8,
    flags: u8,
    detail: u32,
    pid: u32,
    lladdr: [u8; 6],
}

impl Report {
    #[inline(always)]
    fn emit(&self, cfg: &NeighConfig) {
        let (family, addr) = key_address(self.neigh, cfg);
        let Some(mut entry) = emit::reserve::<NeighRecord>() else { return };
        let neigh = NeighSection {
            ifindex: self.ifindex,
            hook: self.hook,
            family: family as u8,
            old_state: self.old,
            new_state: self.new,
            flags: self.flags,
            detail: self.detail,
            pid: self.pid,
            addr,
            lladdr: self.lladdr,
            ..NeighSection::default()
        };
        entry.write(NeighRecord {
            header: emit::header(kind::NEIGH, core::mem::size_of::<NeighRecord>()),
            neigh_hdr: SectionHeader::new(section::NEIGH, section::NEIGH_VERSION, core::mem::size_of::<NeighSection>()),
            neigh,
        });
        emit::submit(entry);
    }
}
