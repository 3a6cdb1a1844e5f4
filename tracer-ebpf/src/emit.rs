//! The ring buffer shared by every hook, the per-CPU counter of records that did not fit, and
//! the per-CPU scratch where records with a frame are built.
//!
//! Fixed-size records (ARP, neighbour) are reserved in the ring and written in place. Records
//! that carry the frame's first bytes have a length known only at run time, and the ring's
//! reserve takes only a constant size: they are built in this CPU's scratch slot and copied
//! into the ring with `bpf_ringbuf_output` at their real length.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns},
    macros::map,
    maps::{Array, PerCpuArray, RingBuf, ring_buf::RingBufEntry},
};
use tracer_common::{
    LOST_RESERVE, errsite, LOST_SLOTS, MAX_SNAPLEN, RECORD_VERSION, RecordHeader, SCRATCH_BYTES, SCRATCH_SLOTS, WAKEUP_BYTES,
};

/// Default size; userspace sets the real one (`--ring-size`) before load.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// Records that could not be reserved because the ring was full, per CPU.
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOST_SLOTS, 0);

/// Failures by site (`tracer_common::errsite`), per CPU.
#[map]
static ERRORS: PerCpuArray<u64> = PerCpuArray::with_max_entries(errsite::SLOTS, 0);

/// Counts a failure at `site` (one of `tracer_common::errsite`); the first on each CPU is also
/// told in words through aya-log, with `detail` (the BTF offset, or the bytes asked for) and
/// the helper's error: the collector's log says what failed, not only how often.
#[inline(always)]
pub fn count_error(site: u32, detail: u32, err: i64) {
    if let Some(slot) = ERRORS.get_ptr_mut(site) {
        // SAFETY: per-CPU slot, only this CPU writes it while this program runs.
        let n = unsafe {
            *slot += 1;
            *slot
        };
        if n == 1 {
            tell_failure(site, detail, err);
        }
    }
}

/// Out of line: the hot paths carry only the call, taken once per CPU and site.
#[inline(never)]
fn tell_failure(site: u32, detail: u32, err: i64) {
    // aya-log's macros take a context they do not use (none is at hand here).
    let ctx = ();
    match site {
        errsite::KREAD => aya_log_ebpf::warn!(&ctx, "kernel read at BTF offset {} failed (error {})", detail, err),
        errsite::TC_COPY => aya_log_ebpf::warn!(&ctx, "TC copy of a frame's first {} bytes failed (error {})", detail, err),
        _ => aya_log_ebpf::warn!(&ctx, "copy of a dropped frame's first {} bytes failed (error {})", detail, err),
    }
}

/// [`SCRATCH_SLOTS`] slots per CPU (slot `cpu * SCRATCH_SLOTS + slot`); userspace sizes it for
/// the CPUs of the machine before load. Not a per-CPU map: those cap a value at 32 KiB.
#[map]
static SCRATCH: Array<[u8; SCRATCH_BYTES]> = Array::with_max_entries(SCRATCH_SLOTS, 0);

/// Bytes of each frame copied into its record (`--snaplen`), set at load.
#[unsafe(no_mangle)]
static SNAPLEN: u32 = tracer_common::DEFAULT_SNAPLEN;

/// The wake-up threshold (`tracer_common::wakeup_bytes` of the ring's size), set at load.
#[unsafe(no_mangle)]
static WAKEUP: u64 = WAKEUP_BYTES;

/// What the TC programs do (`tracer_common::tc_flags`), set at load.
#[unsafe(no_mangle)]
static TC_FLAGS: u32 = tracer_common::tc_flags::ALL;

/// The TC flags as the verifier sees them: a constant, so the unused paths are pruned.
#[inline(always)]
pub fn tc_flags() -> u32 {
    // SAFETY: as for `snaplen`.
    unsafe { core::ptr::read_volatile(&TC_FLAGS) }
}

/// The snaplen as the verifier sees it: a constant from .rodata, bounded by [`MAX_SNAPLEN`].
#[inline(always)]
pub fn snaplen() -> u32 {
    // SAFETY: a plain u32 global; the volatile read keeps the compiler from folding the
    // compile-time default (userspace rewrites it before load).
    let n = unsafe { core::ptr::read_volatile(&SNAPLEN) };
    n.min(MAX_SNAPLEN)
}

/// `n` in `1..=65536` as the verifier sees it, whatever the compiler knows of it: the volatile
/// read hides `n`'s range from LLVM, so that the mask and the `+ 1` stay in the program (LLVM
/// drops them when it can prove them redundant, and the verifier then sees an unbounded size).
#[inline(always)]
pub fn copy_len(n: u32) -> u32 {
    // SAFETY: a volatile read of a local.
    let opaque = unsafe { core::ptr::read_volatile(&n.wrapping_sub(1)) };
    (opaque & 0xffff) + 1
}

/// Reserves a record of type `T`, counting a loss when the ring is full.
#[inline(always)]
pub fn reserve<T: 'static>() -> Option<RingBufEntry<T>> {
    let entry = EVENTS.reserve::<T>(0);
    if entry.is_none() {
        count_lost();
    }
    entry
}

/// The wake-up flag for a record of `len` bytes: a wake-up only for the record that takes
/// what waits in the ring past the threshold ([`WAKEUP`]) — once per batch, not for every record after it
/// (each wake-up is an irq_work, a self-IPI: under a flood that cost as much as the copy). The
/// collector drains until the ring is nearly empty before it waits again, and polls for the
/// rest.
#[inline(always)]
fn wakeup_flags(len: usize) -> u64 {
    // SAFETY: a plain read of a global; volatile as for `snaplen`.
    let threshold = unsafe { core::ptr::read_volatile(&WAKEUP) };
    let waiting = EVENTS.query(BPF_RB_AVAIL_DATA.into());
    let flags = if waiting < threshold && waiting + len as u64 >= threshold {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    flags.into()
}

/// Submits a reserved record.
#[inline(always)]
pub fn submit<T>(entry: RingBufEntry<T>) {
    entry.submit(wakeup_flags(core::mem::size_of::<T>()));
}

/// This CPU's scratch slot `slot` (one of `tracer_common::slot`).
#[inline(always)]
pub fn scratch(slot: u32) -> Option<*mut [u8; SCRATCH_BYTES]> {
    // SAFETY: a helper without preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    SCRATCH.get_ptr_mut(cpu * SCRATCH_SLOTS + slot)
}

/// Copies the first `len` bytes of a scratch record into the ring, counting a loss when the
/// ring is full.
#[inline(always)]
pub fn output(buf: *mut [u8; SCRATCH_BYTES], len: usize) {
    // Bounded for the verifier (see `copy_len`): never more than the slot holds.
    // SAFETY: a volatile read of a local.
    let len = unsafe { core::ptr::read_volatile(&len) } & 0x1_ffff;
    if len > SCRATCH_BYTES {
        return;
    }
    // SAFETY: `buf` is a live scratch slot of SCRATCH_BYTES bytes and `len` is at most that.
    let bytes = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
    if EVENTS.output(bytes, wakeup_flags(len)).is_err() {
        count_lost();
    }
}

#[inline(always)]
fn count_lost() {
    count_lost_at(LOST_RESERVE);
}

/// Counts one loss in `LOST` slot `at` (`LOST_RESERVE`, `LOST_JOURNEYS`).
#[inline(always)]
pub fn count_lost_at(at: u32) {
    if let Some(slot) = LOST.get_ptr_mut(at) {
        // SAFETY: per-CPU slot, only this CPU writes it while this program runs.
        unsafe { *slot += 1 };
    }
}

/// The clock records are stamped with.
#[inline(always)]
pub fn now_ns() -> u64 {
    // SAFETY: a helper without preconditions.
    unsafe { bpf_ktime_get_ns() }
}

/// The header every record starts with.
#[inline(always)]
pub fn header(kind: u8, len: usize) -> RecordHeader {
    header_at(kind, len, now_ns())
}

/// The header of a record stamped `ts_ns` ([`now_ns`] read earlier in the program).
#[inline(always)]
pub fn header_at(kind: u8, len: usize, ts_ns: u64) -> RecordHeader {
    RecordHeader {
        kind,
        version: RECORD_VERSION,
        // SAFETY: a helper without preconditions.
        cpu: unsafe { bpf_get_smp_processor_id() } as u16,
        len: len as u32,
        ts_ns,
    }
}
