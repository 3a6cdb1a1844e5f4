//! The ring buffer side of the collector: wait for readiness, drain everything, count losses.

use aya::{
    Ebpf,
    maps::{MapData, PerCpuArray, RingBuf},
};
use tokio::io::unix::AsyncFd;
use tracer_common::{
    LOST_JOURNEYS, LOST_RESERVE, errsite,
    names::{ERRORS_MAP, EVENTS_MAP, LOST_MAP},
};

#[derive(Debug, thiserror::Error)]
pub(crate) enum CollectError {
    #[error("the eBPF object has no map {0}")]
    MissingMap(&'static str),
    #[error("opening map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("waiting on the ring buffer: {0}")]
    Io(#[from] std::io::Error),
}

pub(crate) struct Collector {
    ring: AsyncFd<RingBuf<MapData>>,
    lost: PerCpuArray<MapData, u64>,
    errors: InKernelErrors,
    /// The programs wake the collector only once enough bytes wait (tracer-ebpf emit.rs);
    /// this poll picks up a quiet trickle.
    poll: tokio::time::Interval,
    /// The last drain filled a batch: more records wait.
    behind: bool,
}

/// How often the ring is read without a wakeup: the longest a lone event waits.
pub(crate) const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(tracer_common::POLL_INTERVAL_MS);

impl Collector {
    /// Takes the ring buffer and the loss counters out of the object.
    pub(crate) fn new(ebpf: &mut Ebpf) -> Result<Self, CollectError> {
        let map = |name: &'static str, ebpf: &mut Ebpf| ebpf.take_map(name).ok_or(CollectError::MissingMap(name));
        let ring = RingBuf::try_from(map(EVENTS_MAP, ebpf)?)
            .map_err(|source| CollectError::Map { name: EVENTS_MAP, source })?;
        let lost = PerCpuArray::try_from(map(LOST_MAP, ebpf)?)
            .map_err(|source| CollectError::Map { name: LOST_MAP, source })?;
        let errors = InKernelErrors::take(ebpf)?;
        // SAFETY: the ring buffer owns its map fd, which stays open and unchanged for as long as
        // the `RingBuf` lives, and the `AsyncFd` owns the `RingBuf`.
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| CollectError::Io(e.into_parts().1))?;
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Self { ring, lost, errors, poll, behind: false })
    }

    /// Waits until records are ready, then hands up to [`BATCH`] of them to `each`.
    /// Returns how many were drained.
    ///
    /// Under a flood the ring never runs empty: an unbounded drain would grow the caller's
    /// output buffer with the whole flood (148 MB RSS seen) and starve its other work. After a
    /// full batch the next call goes on without waiting: the programs wake the collector once
    /// per batch of bytes that come to wait ([`tracer_common::wakeup_bytes`]), not for every record, so a
    /// collector that waited with records left could sleep until the next poll.
    pub(crate) async fn drain(&mut self, mut each: impl FnMut(&[u8])) -> Result<usize, CollectError> {
        if self.behind {
            // Still yield to the runtime's other tasks now and then, as a wait would.
            tokio::task::consume_budget().await;
        } else {
            tokio::select! {
                // Cleared before the drain: a wake-up after it marks the ring ready again.
                guard = self.ring.readable_mut() => guard?.clear_ready(),
                _ = self.poll.tick() => {}
            }
        }
        let n = drain_ring(self.ring.get_mut(), &mut each, BATCH);
        self.behind = n == BATCH;
        Ok(n)
    }

    /// Drains up to [`BATCH`] records without waiting (at exit: call until it returns less).
    pub(crate) fn drain_now(&mut self, mut each: impl FnMut(&[u8])) -> usize {
        drain_ring(self.ring.get_mut(), &mut each, BATCH)
    }

    /// Failures the programs counted, by `errsite` slot.
    pub(crate) fn errors(&self) -> [u64; errsite::SLOTS as usize] {
        self.errors.read()
    }

    /// Records the kernel could not reserve, summed over CPUs.
    pub(crate) fn lost(&self) -> u64 {
        self.lost.get(&LOST_RESERVE, 0).map(|per_cpu| per_cpu.iter().sum()).unwrap_or(0)
    }

    /// Packets not followed since the start: the kernel's journey map was full (`--journey`).
    pub(crate) fn lost_journeys(&self) -> u64 {
        self.lost.get(&LOST_JOURNEYS, 0).map(|per_cpu| per_cpu.iter().sum()).unwrap_or(0)
    }
}

/// The programs' failure counters (`tracer_common::errsite`).
pub(crate) struct InKernelErrors(PerCpuArray<MapData, u64>);

impl InKernelErrors {
    /// Takes the counters out of the object.
    pub(crate) fn take(ebpf: &mut Ebpf) -> Result<Self, CollectError> {
        let map = ebpf.take_map(ERRORS_MAP).ok_or(CollectError::MissingMap(ERRORS_MAP))?;
        PerCpuArray::try_from(map).map(Self).map_err(|source| CollectError::Map { name: ERRORS_MAP, source })
    }

    /// The counts by slot, summed over CPUs.
    pub(crate) fn read(&self) -> [u64; errsite::SLOTS as usize] {
        let mut out = [0; errsite::SLOTS as usize];
        for (slot, n) in out.iter_mut().enumerate() {
            *n = self.0.get(&(slot as u32), 0).map(|per_cpu| per_cpu.iter().sum()).unwrap_or(0);
        }
        out
    }

    /// One line per slot that counted failures since `before`.
    pub(crate) fn describe(now: &[u64], before: &[u64]) -> Vec<String> {
        now.iter()
            .zip(before)
            .zip(errsite::NAMES)
            .filter(|((n, b), _)| n > b)
            .map(|((n, b), name)| format!("{} {name} failed in the kernel ({n} in all)", n - b))
            .collect()
    }
}

/// Records handed out per drain: bounds the output buffer (about 600 bytes per JSON line)
/// between two writes.
pub(crate) const BATCH: usize = 2048;

fn drain_ring(ring: &mut RingBuf<MapData>, each: &mut impl FnMut(&[u8]), limit: usize) -> usize {
    let mut n = 0;
    while n < limit
        && let Some(item) = ring.next()
    {
        each(&item);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::InKernelErrors;

    #[test]
    fn only_sites_that_failed_since_the_last_report_are_described() {
        let lines = InKernelErrors::describe(&[5, 0, 2], &[5, 0, 0]);
        assert_eq!(lines, ["2 dropped-frame copies failed in the kernel (2 in all)"]);
        assert!(InKernelErrors::describe(&[1, 1, 1], &[1, 1, 1]).is_empty());
    }
}
