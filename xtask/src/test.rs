//! `cargo xtask test`: every test. Unit tests need nothing; the integration tests in
//! tracer/tests build Calico-style nodes in network namespaces and need root. With CI=true a
//! missing privilege is a failure, never a skip (the tests check that themselves). Then the
//! integration tests again on Debian's 6.1 kernel under QEMU (`cargo xtask vm`): another kernel,
//! with clsact instead of TCX, and kprobes/fentry, which this machine's kernel lacks. Then
//! deploy/ against the Kubernetes schemas, and the container image built from the static binary.

use std::process::Command;

use anyhow::bail;

use crate::{image, run, vm};

pub fn run() -> anyhow::Result<()> {
    // The default members: tracer-ebpf only builds for the BPF target (tracer/build.rs does it).
    let native = run::status(Command::new("cargo").args(["test", "--no-fail-fast"]));
    // The VM runs even when the native suite failed: both verdicts are worth having.
    let on_vm = vm::run(&vm::Options::default());
    let deploy = image::deploy_check().and_then(|()| image::run());
    let failed: Vec<String> = [native, on_vm, deploy].into_iter().filter_map(Result::err).map(|e| format!("{e:#}")).collect();
    if !failed.is_empty() {
        bail!("{}", failed.join("; and "));
    }
    Ok(())
}
