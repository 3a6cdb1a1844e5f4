//! Project tasks: `cargo xtask <task>` (or `./x <task>` on a fresh machine).

#![warn(unreachable_pub)]

mod bench;
mod demo;
mod image;
mod libpcap;
mod run;
mod setup;
mod test;
mod vm;

use std::{path::Path, process::ExitCode};

use anyhow::Context as _;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "vethtrace project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what is missing: apt packages, libpcap (built from Debian's source package into
    /// /var/cache/vethtrace), the eBPF nightly, bpf-linker (idempotent).
    Setup,
    /// Build, then trace a Calico-style node built in network namespaces while it makes traffic.
    Demo {
        /// Extra arguments for vethtrace (e.g. `-- --output json`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Measure what tracing costs on a Calico-style node: throughput untraced / vethtrace /
    /// tcpdump, lost events, collector ceiling, attach time, CPU and RSS (root; prints a table,
    /// writes JSON to target/bench/).
    Bench(bench::Options),
    /// Every test: unit tests, the privileged integration tests (root needed), then the
    /// integration tests again on Debian 12's 6.1 and 6.12 kernels under QEMU (`vm`).
    Test,
    /// Check that every tracked file is the project's own (no vendored sources, no notices of
    /// other projects); `test` runs it first.
    ThirdPartyCheck,
    /// The integration tests on a Debian 12 kernel (6.1 or 6.12 from apt) under QEMU/TCG.
    Vm(vm::Options),
    /// The container image (FROM scratch, the static musl binary) with buildah, offline;
    /// also written as an OCI archive under target/image.
    Image,
    /// Check deploy/ offline: Kubernetes schemas (kubernetes-validate, strict) and consistency.
    DeployCheck,
}

fn main() -> ExitCode {
    match dispatch(Cli::parse().task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(task: Task) -> anyhow::Result<()> {
    match task {
        Task::Setup => setup::run(),
        Task::Demo { args } => {
            setup::run()?;
            demo::run(&args)
        }
        Task::Bench(opts) => {
            setup::run()?;
            bench::run(&opts)
        }
        Task::Test => {
            setup::run()?;
            test::run()
        }
        Task::ThirdPartyCheck => test::third_party_check(workspace()?),
        Task::Vm(opts) => {
            setup::run()?;
            vm::run(&opts)
        }
        Task::Image => {
            setup::run()?;
            image::run()
        }
        Task::DeployCheck => {
            setup::run()?;
            image::deploy_check()
        }
    }
}

/// The workspace's root (xtask sits in it).
fn workspace() -> anyhow::Result<&'static Path> {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("xtask sits in the workspace")
}
