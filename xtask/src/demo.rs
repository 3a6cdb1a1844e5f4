//! `cargo xtask demo`: build the release binary, then let scripts/demo.sh build a Calico-style
//! node in network namespaces, trace it and make traffic. The script removes everything it made
//! when it ends or is interrupted.

use std::process::Command;

use anyhow::bail;

use crate::{run, setup};

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    if !setup::is_root() {
        bail!("the demo builds network namespaces and loads eBPF programs: run it as root");
    }
    run::status(Command::new("cargo").args(["build", "--release", "--package", "tracer"]))?;
    run::status(Command::new("bash").arg("scripts/demo.sh").arg("target/release/vethtrace").args(args))
}
