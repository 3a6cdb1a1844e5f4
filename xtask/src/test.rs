//! `cargo xtask test`: every test. Unit tests need nothing; the integration tests in
//! tracer/tests build Calico-style nodes in network namespaces and need root. With CI=true a
//! missing privilege is a failure, never a skip (the tests check that themselves).

use std::process::Command;

use crate::run;

pub fn run() -> anyhow::Result<()> {
    // The default members: tracer-ebpf only builds for the BPF target (tracer/build.rs does it).
    run::status(Command::new("cargo").args(["test", "--no-fail-fast"]))
}
