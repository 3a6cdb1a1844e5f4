//! Builds the eBPF programs (tracer-ebpf) with the pinned nightly and bpf-linker, so that
//! `vethtrace` embeds them and runs alone. `cargo xtask setup` installs both.

use anyhow::{Context as _, anyhow};

/// Nightly that compiles tracer-ebpf; its LLVM major must match bpf-linker's (22).
/// Keep in step with `xtask/src/setup.rs`.
const EBPF_TOOLCHAIN: &str = "nightly-2026-06-20";

fn main() -> anyhow::Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = metadata
        .packages
        .into_iter()
        .find(|p| p.name.as_str() == "tracer-ebpf")
        .ok_or_else(|| anyhow!("tracer-ebpf package not found"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("tracer-ebpf manifest has no parent"))?
        .as_str()
        .to_owned();
    aya_build::build_ebpf(
        [aya_build::Package {
            name: ebpf.name.as_str(),
            root_dir: &root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(EBPF_TOOLCHAIN),
    )
    .context("building the eBPF programs failed: run `cargo xtask setup` to install the pinned nightly and bpf-linker")
}
