//! `cargo xtask test`: every test. Unit tests need nothing; the integration tests in
//! tracer/tests build Calico-style nodes in network namespaces and need root. With CI=true a
//! missing privilege is a failure, never a skip (the tests check that themselves).

use std::process::Command;

use crate::run;

pub fn run() -> anyhow::Result<()> {
    run::status(Command::new("cargo").args(["build", "--workspace"]))?;
    run::status(Command::new("cargo").args(["test", "--workspace", "--no-fail-fast"]))
}
