//! Running commands with their command line echoed, failing with it named.

use std::process::Command;

use anyhow::{Context as _, bail};

/// Runs `cmd`, inheriting stdio; fails when it exits non-zero.
pub(crate) fn status(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: running {}", describe(cmd));
    let status = cmd.status().with_context(|| format!("cannot start {}", describe(cmd)))?;
    if !status.success() {
        bail!("{} failed: {status}", describe(cmd));
    }
    Ok(())
}

/// Standard output of `cmd`, or an empty string when it cannot run.
pub(crate) fn stdout(cmd: &mut Command) -> String {
    cmd.output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}
