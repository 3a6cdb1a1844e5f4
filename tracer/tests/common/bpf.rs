//! bpf(2) helpers ([`testkit::bpf`]), with the tests' way of failing: a panic.

pub use testkit::bpf::{BPF_TCX_EGRESS, BPF_TCX_INGRESS, ifindex, insn, link_tcx, load_sched_cls, tcx_prog_ids};

/// Runs `f` on a thread that has entered network namespace `ns` (ifindexes are per namespace).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    testkit::bpf::in_netns(ns, f).unwrap_or_else(|e| panic!("netns {ns}: {e}"))
}
