//! The ring buffer shared by every hook and the per-CPU counter of records that did not fit.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns},
    macros::map,
    maps::{PerCpuArray, RingBuf, ring_buf::RingBufEntry},
};
use tracer_common::{EVENT_VERSION, EventHeader, LOST_RESERVE, LOST_SLOTS};

/// Default size; userspace sets the real one (`--ring-size`) before load.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// Records that could not be reserved because the ring was full, per CPU.
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOST_SLOTS, 0);

/// Reserves a record of type `T`, counting a loss when the ring is full.
#[inline(always)]
pub fn reserve<T: 'static>() -> Option<RingBufEntry<T>> {
    let entry = EVENTS.reserve::<T>(0);
    if entry.is_none() {
        count_lost();
    }
    entry
}

/// Bytes waiting in the ring before a record wakes the collector up. Below it no wakeup is
/// sent (an irq_work and a reader wakeup per record cost more than the record under a flood);
/// the collector also polls every few milliseconds, which bounds the delay of a quiet trickle.
/// Keep in step with `POLL_INTERVAL` in tracer/src/collect.rs.
const WAKEUP_BYTES: u64 = 64 * 1024;

/// Submits a reserved record, waking the collector only once [`WAKEUP_BYTES`] are waiting.
#[inline(always)]
pub fn submit<T>(entry: RingBufEntry<T>) {
    let flags = if EVENTS.query(BPF_RB_AVAIL_DATA.into()) >= WAKEUP_BYTES {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    entry.submit(flags.into());
}

#[inline(always)]
fn count_lost() {
    if let Some(slot) = LOST.get_ptr_mut(LOST_RESERVE) {
        // SAFETY: per-CPU slot, only this CPU writes it while this program runs.
        unsafe { *slot += 1 };
    }
}

/// The header every record starts with.
#[inline(always)]
pub fn header(kind: u8, len: usize) -> EventHeader {
    EventHeader {
        kind,
        version: EVENT_VERSION,
        len: len as u16,
        // SAFETY: helpers without preconditions.
        cpu: unsafe { bpf_get_smp_processor_id() },
        ts_ns: unsafe { bpf_ktime_get_ns() },
    }
}
