//! `cargo xtask vm`: the integration tests on another kernel — Debian 12's 6.1 by default (no
//! TCX, so the TC path falls back to clsact; kprobes and fentry work there, unlike on the build
//! machines) — under QEMU with TCG (KVM does not work on these machines).
//!
//! How: the kernel package comes from apt and is unpacked once into `.vm/`. vethtrace (release)
//! and the integration-test binaries are built static for musl into `target/vm`. The initramfs is
//! tiny: busybox, xtask/vm/init.sh as /init, the modules that mount a virtio-9p share, and a
//! config. The share is the host's root, read-only: the tests call the host's own ip, tc,
//! tcpdump, bpftool, bpftrace, bash..., so the VM's userland is exactly the one the native suite
//! ran with, and nothing has to be copied (bpftrace alone drags in ~150 MB of LLVM). The init
//! script runs every test binary with `--test-threads=1`, prints `VETHTRACE-VM: PASS` or
//! `VETHTRACE-VM: FAIL …` and powers off; this side relays the console and judges by that line.

mod cpio;
mod kernel;

use std::{
    fmt::Write as _,
    fs,
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::ValueEnum;
use serde_json::Value;

pub(crate) use kernel::Line;
use kernel::Kernel;

const MUSL: &str = "x86_64-unknown-linux-musl";
const INIT: &str = include_str!("../vm/init.sh");
const VERDICT: &str = "VETHTRACE-VM: ";
/// What the initramfs loads to mount the host's root: virtio-pci and 9p.
const BOOT_MODULES: &[&str] = &["virtio_pci", "9pnet_virtio", "9p"];
/// Loaded in the VM before the tests (the kernel asks for the rest, e.g. nft_*, itself): veth
/// pairs, clsact and its BPF classifier/action, nftables for the drop tests, the token bucket
/// that holds the journey flood's datagrams.
const TEST_MODULES: &[&str] = &["veth", "sch_ingress", "cls_bpf", "act_bpf", "nf_tables", "sch_tbf"];

/// Which probe family the probe-dependent tests (those reading VETHTRACE_PROBE) use.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub(crate) enum Probe {
    Kprobe,
    Fentry,
    Tracepoint,
    /// Each of the above in turn (the rest of the suite runs once).
    All,
}

impl Probe {
    fn modes(self) -> Vec<&'static str> {
        match self {
            Self::Kprobe => vec!["kprobe"],
            Self::Fentry => vec!["fentry"],
            Self::Tracepoint => vec!["tracepoint"],
            Self::All => vec!["kprobe", "fentry", "tracepoint"],
        }
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct Options {
    /// Debian kernel line: the newest package of it apt knows (5.10: in Debian 11's archive) is booted.
    #[arg(long, value_enum, default_value_t = Line::V6_1)]
    pub kernel: Line,
    /// Debian kernel package to boot instead (overrides --kernel).
    #[arg(long, value_name = "PACKAGE")]
    pub kernel_package: Option<String>,
    /// Probe families for the tests that read VETHTRACE_PROBE (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    pub probe: Vec<Probe>,
    /// Only these integration-test binaries (comma-separated file stems) [default: all].
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub only: Vec<String>,
    /// Give up (and fail) when the VM has not finished after this many minutes.
    #[arg(long, default_value_t = 45, value_name = "MINUTES")]
    pub timeout: u64,
    /// Instead of the tests, run this shell command in the VM (bash -c; $VETHTRACE_BIN is set);
    /// its exit status is the verdict.
    #[arg(long, value_name = "COMMAND")]
    pub exec: Option<String>,
    /// Arguments for every test binary, e.g. `-- clsact` (a name filter) or `-- --nocapture`.
    #[arg(last = true)]
    pub test_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kernel: Line::V6_1,
            kernel_package: None,
            probe: vec![Probe::All],
            only: Vec::new(),
            timeout: 45,
            exec: None,
            test_args: Vec::new(),
        }
    }
}

/// An integration-test binary and whether it reads VETHTRACE_PROBE.
struct TestBinary {
    name: String,
    path: PathBuf,
    probe_dependent: bool,
}

pub(crate) fn run(opts: &Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let workspace = crate::workspace()?;
    let target = workspace.join("target/vm");
    let kernel = Kernel::get(opts.kernel_package.as_deref(), opts.kernel, &workspace.join(".vm"))?;
    let (vethtrace, mut tests) = build(workspace, &target)?;
    if !opts.only.is_empty() {
        if let Some(unknown) = opts.only.iter().find(|n| !tests.iter().any(|t| &&t.name == n)) {
            bail!("--only {unknown}: no integration-test binary of that name");
        }
        tests.retain(|t| opts.only.contains(&t.name));
    }
    // One per run: two runs in one tree (engineers, CI) must not boot each other's config.
    let initramfs = target.join(format!("initramfs-{}.cpio", std::process::id()));
    let config = config(workspace, &kernel, &vethtrace, &tests, opts)?;
    fs::write(&initramfs, initramfs_bytes(&kernel, &config)?)
        .with_context(|| format!("cannot write {}", initramfs.display()))?;
    let names = |probe_dependent: bool| {
        let n: Vec<&str> =
            tests.iter().filter(|t| t.probe_dependent == probe_dependent).map(|t| t.name.as_str()).collect();
        if n.is_empty() { "none".to_owned() } else { n.join(", ") }
    };
    eprintln!(
        "xtask: test binaries: {}; once per probe ({}): {}",
        names(false),
        modes(&opts.probe).join(", "),
        names(true)
    );
    let built = started.elapsed();
    eprintln!(
        "xtask: booting {} ({}) under QEMU/TCG; built in {:.0} s",
        kernel.package,
        kernel.release,
        built.as_secs_f64()
    );
    let outcome = boot_until_init(&kernel, &initramfs, Duration::from_secs(opts.timeout * 60));
    let _ = fs::remove_file(&initramfs);
    eprintln!(
        "xtask: vm on {}: {} s in the VM, {} s in all",
        kernel.release,
        (started.elapsed() - built).as_secs(),
        started.elapsed().as_secs()
    );
    outcome.with_context(|| format!("integration tests on {}", kernel.release))
}

/// `cargo <args>` for the tracer package, static for musl, into `target`.
fn musl_cargo(workspace: &Path, target: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(args)
        .args(["--target", MUSL, "--package", "tracer", "--message-format=json-render-diagnostics"])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(workspace);
    cmd
}

/// vethtrace, release, static for musl (what the VM runs and the container image holds).
pub(crate) fn static_vethtrace(workspace: &Path, target: &Path) -> anyhow::Result<PathBuf> {
    Ok(executables(&mut musl_cargo(workspace, target, &["build", "--release", "--bin", "vethtrace"]))?
        .into_iter()
        .find(|e| e.kind == "bin")
        .context("cargo built no vethtrace binary")?
        .path)
}

/// Static musl builds: vethtrace (release, as it would be shipped) and the integration tests.
fn build(workspace: &Path, target: &Path) -> anyhow::Result<(PathBuf, Vec<TestBinary>)> {
    let cargo = |args: &[&str]| musl_cargo(workspace, target, args);
    let vethtrace = static_vethtrace(workspace, target)?;
    // A binary whose test file (or the shared harness) reads VETHTRACE_PROBE runs once per probe.
    let reads_probe = |src: &Path| fs::read_to_string(src).is_ok_and(|s| s.contains("VETHTRACE_PROBE"));
    let harness_reads_probe = reads_probe(&workspace.join("tracer/tests/common/mod.rs"));
    // A test file that says VETHTRACE_HOST_ONLY tests userspace only (nothing a kernel changes)
    // with programs the VM's initramfs root cannot host: it runs natively, not here.
    let host_only = |src: &Path| fs::read_to_string(src).is_ok_and(|s| s.contains("VETHTRACE_HOST_ONLY"));
    let tests: Vec<TestBinary> = executables(&mut cargo(&["test", "--no-run", "--test", "*"]))?
        .into_iter()
        .filter(|e| e.kind == "test" && !host_only(&e.src))
        .map(|e| TestBinary { probe_dependent: harness_reads_probe || reads_probe(&e.src), name: e.name, path: e.path })
        .collect();
    if tests.is_empty() {
        bail!("cargo built no integration-test binary for {MUSL}");
    }
    Ok((vethtrace, tests))
}

/// An executable cargo built, from its JSON messages.
struct Executable {
    /// Target name: the test file's stem for an integration test.
    name: String,
    /// "bin", "test", ...
    kind: String,
    src: PathBuf,
    path: PathBuf,
}

fn executables(cmd: &mut Command) -> anyhow::Result<Vec<Executable>> {
    eprintln!("xtask: running cargo {} (static, into target/vm)", {
        cmd.get_args().take(4).map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    });
    let out = cmd.stderr(Stdio::inherit()).output().context("cannot run cargo")?;
    if !out.status.success() {
        bail!("the static {MUSL} build failed: {}", out.status);
    }
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["executable"].is_string())
        .map(|msg| Executable {
            name: text(&msg["target"]["name"]),
            kind: text(&msg["target"]["kind"][0]),
            src: PathBuf::from(text(&msg["target"]["src_path"])),
            path: PathBuf::from(text(&msg["executable"])),
        })
        .collect())
}

/// `'…'` for the shell, whatever the text holds.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().with_context(|| format!("{} is not UTF-8", p.display()))
}

/// /vm/config, sourced by init.sh: paths (the same inside the VM: the host's root is shared) and
/// the list of test runs.
fn config(
    workspace: &Path,
    kernel: &Kernel,
    vethtrace: &Path,
    tests: &[TestBinary],
    opts: &Options,
) -> anyhow::Result<String> {
    let boot_modules: Vec<String> = kernel
        .modules()?
        .load_order(BOOT_MODULES)?
        .iter()
        .map(|p| module_file_name(p))
        .collect::<anyhow::Result<_>>()?;
    let test_modules: Vec<&str> = {
        let mods = kernel.modules()?;
        TEST_MODULES.iter().copied().filter(|m| mods.is_available(m)).collect()
    };
    let mut c = String::new();
    let mut var = |name: &str, value: &str| writeln!(c, "{name}={}", quote(value));
    var("VM_BOOT_MODULES", &boot_modules.join(" "))?;
    var("VM_MODULES_ROOT", path_str(&kernel.root)?)?;
    var("VM_MODULES", &test_modules.join(" "))?;
    var("VM_WORKSPACE", path_str(workspace)?)?;
    var("VM_WORKDIR", path_str(&workspace.join("tracer"))?)?;
    var("VM_VETHTRACE", path_str(vethtrace)?)?;
    var("VM_SCRIPTS", path_str(&workspace.join("scripts"))?)?;
    var("VM_EXEC", opts.exec.as_deref().unwrap_or_default())?;
    var("VM_TEST_ARGS", &opts.test_args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "))?;
    writeln!(c, "vm_runs() {{")?;
    for (test, probe) in runs(tests, &opts.probe) {
        writeln!(c, "  vm_test {} {} {}", quote(&test.name), quote(probe), quote(path_str(&test.path)?))?;
    }
    writeln!(c, "}}")?;
    Ok(c)
}

/// The whole suite once; the probe-dependent binaries once per probe family, with
/// VETHTRACE_PROBE set ("" for the others).
fn runs<'t>(tests: &'t [TestBinary], probes: &[Probe]) -> Vec<(&'t TestBinary, &'static str)> {
    let modes = modes(probes);
    let mut runs: Vec<_> = tests.iter().filter(|t| !t.probe_dependent).map(|t| (t, "")).collect();
    for t in tests.iter().filter(|t| t.probe_dependent) {
        runs.extend(modes.iter().map(|m| (t, *m)));
    }
    runs
}

/// The probe modes of `probes`, each once, in order.
fn modes(probes: &[Probe]) -> Vec<&'static str> {
    let mut modes: Vec<&'static str> = Vec::new();
    for m in probes.iter().flat_map(|p| p.modes()) {
        if !modes.contains(&m) {
            modes.push(m);
        }
    }
    modes
}

/// The file name a module gets in the initramfs (always uncompressed there).
fn module_file_name(path: &Path) -> anyhow::Result<String> {
    let name = path.file_name().and_then(|n| n.to_str()).context("module file name")?;
    Ok(format!("{}.ko", name.split(".ko").next().unwrap_or(name)))
}

/// Module bytes, decompressed if the package ships .ko.xz or .ko.zst (busybox insmod reads
/// plain ELF only).
fn module_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        "xz"
    } else if name.ends_with(".zst") {
        "zstd"
    } else {
        return fs::read(path).with_context(|| format!("cannot read {name}"));
    };
    let out = Command::new(tool).arg("-dc").arg(path).output().with_context(|| format!("cannot run {tool}"))?;
    if !out.status.success() {
        bail!("{tool} -dc {name} failed");
    }
    Ok(out.stdout)
}

fn initramfs_bytes(kernel: &Kernel, config: &str) -> anyhow::Result<Vec<u8>> {
    let busybox = fs::read("/usr/bin/busybox").context("no /usr/bin/busybox (apt package busybox-static)")?;
    let mut archive = cpio::Archive::default();
    archive.file("/init", 0o755, INIT.as_bytes());
    archive.dir("/vm");
    archive.file("/vm/busybox", 0o755, &busybox);
    archive.file("/vm/config", 0o644, config.as_bytes());
    archive.dir("/vm/modules");
    for module in kernel.modules()?.load_order(BOOT_MODULES)? {
        archive.file(&format!("/vm/modules/{}", module_file_name(&module)?), 0o644, &module_bytes(&module)?);
    }
    Ok(archive.finish())
}

/// How many times a boot that dies before /init runs is tried in all. Under multi-threaded TCG
/// the guest kernel can oops while it patches its own text at boot (an `int3` left by
/// text_poke, seen by the other vCPU; nothing of the project has run yet): that is the emulator,
/// and a new boot gets past it. A failure once init.sh has started is never retried.
const BOOT_TRIES: u32 = 3;

/// init.sh's first line: the kernel got as far as running it.
const INIT_STARTED: &str = "vm: kernel ";

/// What a VM run ended with.
enum Boot {
    /// The verdict of init.sh (Ok for PASS).
    Verdict(anyhow::Result<()>),
    /// The kernel died before init.sh printed a line.
    DiedBeforeInit(String),
}

/// Boots until init.sh runs (at most BOOT_TRIES times), then judges by its verdict.
fn boot_until_init(kernel: &Kernel, initramfs: &Path, limit: Duration) -> anyhow::Result<()> {
    for attempt in 1..=BOOT_TRIES {
        match boot(kernel, initramfs, limit)? {
            Boot::Verdict(verdict) => return verdict,
            Boot::DiedBeforeInit(why) if attempt < BOOT_TRIES => {
                eprintln!("xtask: {why} before /init ran (boot {attempt} of {BOOT_TRIES}); booting again")
            }
            Boot::DiedBeforeInit(why) => bail!("{why} before /init ran, in each of {BOOT_TRIES} boots"),
        }
    }
    unreachable!("the last attempt returns")
}

/// Boots the VM once, relays its console, and judges by the verdict line init.sh prints last.
fn boot(kernel: &Kernel, initramfs: &Path, limit: Duration) -> anyhow::Result<Boot> {
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "2048"])
        .arg("-kernel")
        .arg(kernel.vmlinuz())
        .arg("-initrd")
        .arg(initramfs)
        // panic=-1 with -no-reboot: a kernel panic ends QEMU instead of hanging until the timeout.
        .args(["-append", "console=ttyS0 panic=-1 quiet", "-no-reboot"])
        .args(["-nic", "none", "-display", "none", "-monitor", "none", "-serial", "stdio"])
        .args(["-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut child = qemu.spawn().context("cannot start qemu-system-x86_64 (apt package qemu-system-x86)")?;
    let console = child.stdout.take().context("qemu stdout")?;
    let (lines, console_lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(console).split(b'\n') {
            let Ok(line) = line else { break };
            if lines.send(String::from_utf8_lossy(&line).into_owned()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + limit;
    let mut verdict = None;
    let mut init_started = false;
    let mut stdout = std::io::stdout().lock();
    loop {
        match console_lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                let line = printable(&line);
                let _ = writeln!(stdout, "{line}");
                init_started |= line.starts_with(INIT_STARTED);
                if let Some(v) = line.strip_prefix(VERDICT) {
                    verdict = Some(v.to_owned());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the VM did not finish within {} min (raise it with --timeout)", limit.as_secs() / 60);
            }
        }
    }
    let status = child.wait()?;
    Ok(match verdict.as_deref() {
        Some("PASS") => Boot::Verdict(Ok(())),
        Some(failed) => Boot::Verdict(Err(anyhow::anyhow!(
            "failed in the VM: {}",
            failed.trim_start_matches("FAIL").trim()
        ))),
        None if !init_started => Boot::DiedBeforeInit(format!("the VM kernel stopped (qemu {status})")),
        None => Boot::Verdict(Err(anyhow::anyhow!(
            "the VM stopped without a verdict (qemu {status}; a kernel panic? see the console above)"
        ))),
    })
}

/// The console line without carriage returns and terminal escapes (SeaBIOS clears the screen,
/// libtest colours its results on a tty).
fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters final-byte (0x40..=0x7e); other escapes: ESC + one char.
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_drops_escapes() {
        assert_eq!(printable("\u{1b}c\u{1b}[?7l\u{1b}[2JSeaBIOS\r"), "SeaBIOS");
        assert_eq!(printable("test x ... \u{1b}[32mok\u{1b}[m"), "test x ... ok");
    }

    #[test]
    fn probe_dependent_binaries_run_once_per_probe() {
        let t = |name: &str, probe_dependent| TestBinary { name: name.into(), path: name.into(), probe_dependent };
        let tests = [t("trace", false), t("neigh", true)];
        let names = |probes: &[Probe]| {
            runs(&tests, probes).iter().map(|(t, p)| format!("{}:{p}", t.name)).collect::<Vec<_>>()
        };
        assert_eq!(names(&[Probe::All]), ["trace:", "neigh:kprobe", "neigh:fentry", "neigh:tracepoint"]);
        assert_eq!(names(&[Probe::Fentry]), ["trace:", "neigh:fentry"]);
        assert_eq!(names(&[Probe::Kprobe, Probe::Fentry, Probe::Kprobe]), ["trace:", "neigh:kprobe", "neigh:fentry"]);
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
