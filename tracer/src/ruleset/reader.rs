//! Reads of the ruleset off the event loop. A read forks the tools and parses what they print
//! (0.2–0.3 s for 7000 rules): made on the event loop, the ring buffer would wait that long.
//! Each read is a blocking task of tokio's pool (`spawn_blocking`), awaited by the event loop
//! like the mirror's re-dumps: at most one runs, at most one every `READ_GAP_NS`, and its
//! result goes back to the session, which owns the model ([`super::RulesetModel::take`]).

use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Read, RulesetError, monotonic_ns};

/// The read under way, if any.
#[derive(Default)]
pub(crate) struct Reader {
    /// When it was started (CLOCK_MONOTONIC ns), and its task.
    running: Option<(u64, JoinHandle<Read>)>,
}

impl Reader {
    pub(crate) fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The read under way when it is done; when none is, one begun at `at_ns` (CLOCK_MONOTONIC
    /// ns; at once when that has passed). Cancel-safe: a read begun stays with the reader
    /// until it is awaited again.
    pub(crate) async fn next(&mut self, at_ns: u64) -> Read {
        if self.running.is_none() {
            let wait = at_ns.saturating_sub(monotonic_ns());
            if wait > 0 {
                tokio::time::sleep(Duration::from_nanos(wait)).await;
            }
        }
        let (started_ns, task) =
            self.running.get_or_insert_with(|| (monotonic_ns(), tokio::task::spawn_blocking(Read::now)));
        let done = task.await;
        let started_ns = *started_ns;
        self.running = None;
        done.unwrap_or_else(|e| Read { start_ns: started_ns, result: Err(RulesetError::Stopped(e.to_string())) })
    }
}
