//! Installs what building and testing vethtrace needs, and says what it installs. Idempotent:
//! a second run installs nothing.

use std::process::Command;

use anyhow::bail;

use crate::{libpcap, run};

/// Nightly that compiles tracer-ebpf; its LLVM major (22) must match bpf-linker's.
/// Keep in step with `EBPF_TOOLCHAIN` in tracer/build.rs.
pub(crate) const EBPF_TOOLCHAIN: &str = "nightly-2026-06-20";
const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

/// Debian packages: LLVM for bpf-linker, libpcap's build tools, network tools for the tests and
/// the demo (tcpdump, tshark and bpftrace are the independent oracles), QEMU and busybox for the
/// kernel-matrix VM, Prometheus (the metrics test's scraper and promtool) and buildah (the
/// container image).
const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "iproute2",
    "tcpdump",
    "tshark",
    "bpftool",
    "bpftrace",
    "nftables",
    // The policy tests load Felix's rulesets with iptables-nft (and iptables-legacy).
    "iptables",
    "iperf3",
    // `vethtrace top`'s test drives the live view in a terminal multiplexer.
    "tmux",
    "iputils-ping",
    "iputils-arping",
    "netcat-openbsd",
    "socat",
    "busybox-static",
    "cpio",
    "kmod",
    "qemu-system-x86",
    // k8s-cri's build script compiles the CRI protobufs.
    "protobuf-compiler",
    // Pod-identity tests: a real containerd over the CRI, its OCI runtime and the loopback CNI
    // plugin; Python's hashlib as the oracle for Calico's veth names.
    "containerd",
    "runc",
    "containernetworking-plugins",
    "python3",
    // libpcap from Debian's source package (xtask/src/libpcap.rs), for glibc and musl:
    // dpkg-source unpacks it, bison and flex generate its parser, musl-gcc compiles the static
    // build's copy against the kernel's UAPI headers.
    "dpkg-dev",
    "bison",
    "flex",
    "make",
    "gcc",
    "musl-tools",
    "linux-libc-dev",
    "prometheus",
    "buildah",
];

/// PyPI packages, by pinned version: the offline schema check of deploy/.
const PIP_PACKAGES: &[(&str, &str)] = &[("kubernetes-validate", "1.37.0")];

pub(crate) fn run() -> anyhow::Result<()> {
    apt_packages()?;
    libpcap::run()?;
    pip_packages()?;
    ebpf_toolchain()?;
    bpf_linker()?;
    Ok(())
}

fn apt_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            !run::stdout(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .contains("install ok installed")
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!("these Debian packages are missing and installing them needs root: {}", missing.join(" "));
    }
    eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
    run::status(Command::new("apt-get").args(["update", "-q"]))?;
    run::status(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn pip_packages() -> anyhow::Result<()> {
    for (name, version) in PIP_PACKAGES {
        let shown = run::stdout(Command::new("python3").args(["-m", "pip", "show", name]));
        if shown.lines().any(|l| l == format!("Version: {version}")) {
            continue;
        }
        eprintln!("xtask: installing PyPI package {name}=={version}");
        run::status(Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("{name}=={version}"),
        ]))?;
    }
    Ok(())
}

fn ebpf_toolchain() -> anyhow::Result<()> {
    let has_rust_src = run::stdout(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        EBPF_TOOLCHAIN,
        "--installed",
    ]))
    .lines()
    .any(|l| l.starts_with("rust-src"));
    if has_rust_src {
        return Ok(());
    }
    eprintln!("xtask: installing Rust {EBPF_TOOLCHAIN} with rust-src (compiles the eBPF programs)");
    run::status(Command::new("rustup").args(["set", "auto-self-update", "disable"]))?;
    run::status(Command::new("rustup").args([
        "toolchain",
        "install",
        EBPF_TOOLCHAIN,
        "--profile",
        "minimal",
        "-c",
        "rust-src",
    ]))
}

fn bpf_linker() -> anyhow::Result<()> {
    if run::stdout(Command::new("bpf-linker").arg("--version")).contains(BPF_LINKER_VERSION) {
        return Ok(());
    }
    eprintln!("xtask: installing bpf-linker {BPF_LINKER_VERSION} built against LLVM 22 (about a minute)");
    run::status(
        Command::new("cargo")
            .args([
                "install",
                &format!("bpf-linker@{BPF_LINKER_VERSION}"),
                "--locked",
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("LLVM_PREFIX", LLVM_PREFIX),
    )
}

pub(crate) fn is_root() -> bool {
    run::stdout(Command::new("id").arg("-u")).trim() == "0"
}
