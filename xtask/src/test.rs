//! `cargo xtask test`: every test. First a cheap check that the repository holds only the
//! project's own work (`third_party_check`). Unit tests need nothing; the integration tests in
//! tracer/tests build Calico-style nodes in network namespaces and need root. With CI=true a
//! missing privilege is a failure, never a skip (the tests check that themselves). Then the
//! integration tests again on Debian's kernels under QEMU (`cargo xtask vm`), each with the
//! part of the suite that kernel adds something to (README "Kernel support"): 5.10 (Debian 11's:
//! clsact, kprobes, fentry, no drop reasons: the whole VM suite), 6.1 (drop reasons and pod-side
//! drops on a kernel without TCX) and 6.12 (TCX with kprobes and fentry, the combination modern
//! nodes run). Then deploy/ against the Kubernetes schemas, and the container image built from
//! the static binary.

use std::{fs, path::Path, process::Command};

use anyhow::{Context as _, bail};

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

/// The VM part of the matrix. Churn, fuzz, badinput, pcapng and top run natively only: they
/// test vethtrace's own handling, which no kernel changes, and churn under TCG would take too long.
/// So does policy (naming netfilter drops by rule counters): the counters and the ruleset tools
/// are userspace's, the drop it names is the one the drops test checks on every kernel.
/// 5.10 and 6.1 share clsact, kprobes and fentry: 5.10 (the older verifier, no drop reasons,
/// no veth BTF) runs the whole VM suite, drops and podside against ftrace's kfree_skb records
/// (bpftrace 0.17 finds no BTF there and records nothing); 6.1 runs what 5.10 cannot show —
/// drops with the kernel's reasons at 6.1's record layout and pod-side drops (veth's module
/// BTF), against bpftrace, which names the devices.
const MATRIX: &[VmRun] = &[
    VmRun {
        kernel: Line::V5_10,
        probes: &[Probe::All],
        only: &[
            "kernel", "parse", "annotate", "trace", "drops", "podside", "neigh", "survive", "neighbours", "wirefuzz", "filter",
            "journey",
        ],
    },
    VmRun {
        kernel: Line::V6_1,
        // Journey is its only probe-dependent binary here: its tracepoint mode runs on 5.10 and
        // natively.
        probes: &[Probe::Kprobe, Probe::Fentry],
        only: &["kernel", "parse", "drops", "podside", "journey"],
    },
    VmRun {
        kernel: Line::V6_12,
        probes: &[Probe::Kprobe, Probe::Fentry],
        // Drops are left to 6.1 and 6.18: the tracepoint layout of 6.12 is 6.18's.
        only: &["kernel", "parse", "trace", "neigh", "survive", "neighbours", "wirefuzz", "journey"],
    },
];

pub(crate) fn run() -> anyhow::Result<()> {
    third_party_check(crate::workspace()?)?;
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

/// Lines of each tracked file searched for a notice: licence headers sit at the top.
const HEADER_LINES: usize = 30;
/// Directories that hold someone else's tree.
const VENDOR_DIRS: &[&str] = &["vendor", "vendored", "third_party", "third-party", "thirdparty"];
/// Files that come with someone else's (autotools, yacc/lex) sources.
const FOREIGN_FILES: &[&str] = &[
    "configure",
    "configure.ac",
    "configure.in",
    "aclocal.m4",
    "Makefile.in",
    "Makefile.am",
    "config.guess",
    "config.sub",
    "install-sh",
    "ltmain.sh",
];
const FOREIGN_EXTENSIONS: &[&str] = &["m4", "y", "l", "yy", "ll"];

/// The repository holds only the project's own work (its licence is the workspace's `license`
/// field; its files carry no notices). Fails on a tracked file whose first lines carry a
/// copyright notice, and on a tracked path that looks vendored: under a vendor/third_party
/// directory, a licence file below the top level, autotools or yacc/lex sources.
pub(crate) fn third_party_check(workspace: &Path) -> anyhow::Result<()> {
    let listed = Command::new("git").args(["ls-files", "-z"]).current_dir(workspace).output().context("cannot run git ls-files")?;
    if !listed.status.success() {
        bail!("git ls-files failed in {}", workspace.display());
    }
    let mut found: Vec<String> = Vec::new();
    for path in String::from_utf8_lossy(&listed.stdout).split('\0').filter(|p| !p.is_empty()) {
        if let Some(why) = foreign_path(path) {
            found.push(format!("{path}: {why}"));
        } else if let Ok(bytes) = fs::read(workspace.join(path)) {
            let text = String::from_utf8_lossy(&bytes);
            if let Some(line) = text.lines().take(HEADER_LINES).find(|l| is_notice(l)) {
                found.push(format!("{path}: {}", line.trim()));
            }
        }
    }
    if found.is_empty() {
        eprintln!("xtask: third-party check: every tracked file is the project's own");
        return Ok(());
    }
    let shown = found.iter().take(10).cloned().collect::<Vec<_>>().join("\n  ");
    bail!("third-party check: {} tracked files look like someone else's work:\n  {shown}", found.len())
}

fn foreign_path(path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.split('/').collect();
    let (name, dirs) = parts.split_last()?;
    if dirs.iter().any(|d| VENDOR_DIRS.contains(d)) {
        return Some("in a vendored tree");
    }
    let upper = name.to_ascii_uppercase();
    if !dirs.is_empty() && ["LICENSE", "LICENCE", "COPYING"].iter().any(|l| upper.starts_with(l)) {
        return Some("another project's licence file");
    }
    let extension = name.rsplit_once('.').map(|(_, e)| e);
    if FOREIGN_FILES.contains(name) || extension.is_some_and(|e| FOREIGN_EXTENSIONS.contains(&e)) {
        return Some("autotools or yacc/lex source");
    }
    None
}

/// A copyright notice: the word with "(c)", "©" or a year, an SPDX copyright tag, or "all
/// rights reserved".
fn is_notice(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    let has_year = l.as_bytes().windows(4).any(|w| (w.starts_with(b"19") || w.starts_with(b"20")) && w.iter().all(u8::is_ascii_digit));
    (l.contains("copyright") && (l.contains("(c)") || l.contains('©') || has_year))
        || l.contains("spdx-filecopyrighttext")
        || l.contains("all rights reserved")
}
