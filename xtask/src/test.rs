//! `cargo xtask test`: every test. Unit tests need nothing; the integration tests in
//! tracer/tests build Calico-style nodes in network namespaces and need root. With CI=true a
//! missing privilege is a failure, never a skip (the tests check that themselves). Then the
//! integration tests again on Debian 12's kernels under QEMU (`cargo xtask vm`), each with the
//! part of the suite that kernel adds something to (README "Kernel support"): 6.1 (clsact, no
//! TCX; kprobes, fentry) and 6.12 (TCX with kprobes and fentry, the combination modern nodes run).
//! Then deploy/ against the Kubernetes schemas, and the container image built from the static
//! binary.

use std::process::Command;

use anyhow::bail;

use crate::{
    image, run,
    vm::{self, Line, Probe},
};

/// One VM run of the matrix: the kernel line, the probe modes the probe-dependent binaries run
/// in, and the test binaries (file stems of tracer/tests; empty: all).
struct VmRun {
    kernel: Line,
    probes: &'static [Probe],
    only: &'static [&'static str],
}

/// The VM part of the matrix. Churn, fuzz, badinput and pcapng run natively only: they test
/// vethtrace's own handling, which no kernel changes, and churn under TCG would take too long.
const MATRIX: &[VmRun] = &[
    VmRun {
        kernel: Line::V6_1,
        probes: &[Probe::All],
        only: &["kernel", "parse", "annotate", "trace", "drops", "podside", "neigh", "survive", "neighbours", "wirefuzz", "filter"],
    },
    VmRun {
        kernel: Line::V6_12,
        probes: &[Probe::Kprobe, Probe::Fentry],
        // Drops are left to 6.1 and 6.18: the tracepoint layout of 6.12 is 6.18's.
        only: &["kernel", "parse", "trace", "neigh", "survive", "neighbours", "wirefuzz"],
    },
];

pub(crate) fn run() -> anyhow::Result<()> {
    // The default members: tracer-ebpf only builds for the BPF target (tracer/build.rs does it).
    let mut failures: Vec<String> = Vec::new();
    if let Err(e) = run::status(Command::new("cargo").args(["test", "--no-fail-fast"])) {
        failures.push(format!("{e:#}"));
    }
    // Every VM runs even when something failed before: each verdict is worth having.
    for r in MATRIX {
        let opts = vm::Options {
            kernel: r.kernel,
            probe: r.probes.to_vec(),
            only: r.only.iter().map(|s| (*s).to_owned()).collect(),
            ..vm::Options::default()
        };
        if let Err(e) = vm::run(&opts) {
            failures.push(format!("{} VM: {e:#}", r.kernel.name()));
        }
    }
    if let Err(e) = image::deploy_check().and_then(|()| image::run()) {
        failures.push(format!("deploy/ and the image: {e:#}"));
    }
    if failures.is_empty() { Ok(()) } else { bail!("{}", failures.join("; and ")) }
}
