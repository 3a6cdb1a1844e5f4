//! The pieces of a privileged vethtrace run that tracer's integration tests and
//! `cargo xtask bench` both need, written once:
//!
//! - [`CalicoNode`]: a Calico-style node in network namespaces (scripts/calico-node.sh),
//!   removed on drop;
//! - [`Vethtrace`]: the real binary inside the node's namespace, started with `--ready-file`
//!   and waited for, stopped by a signal; [`ExitCounters`] from its last stderr line;
//! - [`Tcpdump`]: one tcpdump writing a pcap, waited for until it is listening;
//! - [`wait`]: polling with a deadline, waiting for a child with a limit, signals;
//! - [`kernel`]: what the kernel counts (`ip -s -j link`, /proc);
//! - [`bpf`]: bpf(2) for a tiny TC program of another owner, linked with TCX.
//!
//! Everything returns [`Error`]: the tests panic on it (a missing privilege fails a test, it
//! never skips), xtask turns it into its error line.

pub mod bpf;
mod counters;
pub mod kernel;
mod node;
mod tcpdump;
mod vethtrace;
pub mod wait;

use std::{path::PathBuf, process::ExitStatus, time::Duration};

pub use counters::ExitCounters;
pub use node::{CalicoNode, in_ns, output, script_path};
pub use tcpdump::Tcpdump;
pub use vethtrace::{Files, Vethtrace};

/// What went wrong in the harness (not in the code under test).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start {what}: {source}")]
    Spawn { what: String, source: std::io::Error },
    #[error("{what} failed: {status}\n{output}")]
    Failed { what: String, status: ExitStatus, output: String },
    #[error("{what} exited before it was ready: {status}\n{output}")]
    ExitedEarly { what: String, status: ExitStatus, output: String },
    #[error("{what} within {limit:?}\n{output}")]
    Timeout { what: String, limit: Duration, output: String },
    #[error("cannot parse {what}: {detail}")]
    Parse { what: String, detail: String },
    #[error("{path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;
