//! libpcap for tracer-pcap: built once per target from Debian's source package (the version
//! pinned in tracer-pcap/libpcap-version, with Debian's patches) into a cache outside the tree,
//! where tracer-pcap/build.rs links it statically. Only the filter compiler is wanted, so
//! configure leaves every capture module and optional library out (`--with-pcap=null`): the
//! archive needs nothing but libc, for glibc and for the static musl build alike.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, bail};

use crate::{run, setup::is_root};

/// The version tracer-pcap/build.rs checks too.
const VERSION: &str = include_str!("../../tracer-pcap/libpcap-version").trim_ascii();
/// Overrides the cache directory (tracer-pcap/build.rs reads it too).
const DIR_ENV: &str = "VETHTRACE_LIBPCAP_DIR";
/// The targets vethtrace is built for, each with its C compiler.
const TARGETS: &[(&str, &str)] = &[("x86_64-unknown-linux-gnu", "cc"), ("x86_64-unknown-linux-musl", "musl-gcc")];
/// Everything optional off: no capture module, no libnl/dbus/rdma/bluetooth/usb/netmap, no
/// remote capture, no shared library.
const CONFIGURE: &[&str] = &[
    "--disable-shared",
    "--with-pcap=null",
    "--without-libnl",
    "--disable-dbus",
    "--disable-rdma",
    "--disable-bluetooth",
    "--disable-usb",
    "--disable-netmap",
    "--disable-remote",
    "--without-dag",
    "--without-septel",
    "--without-snf",
    "--without-turbocap",
    "--without-dpdk",
    // The netfilter (NFLOG) module has no switch of its own.
    "ac_cv_netfilter_can_compile=no",
];
const DEB_SRC: &str = "/etc/apt/sources.list.d/vethtrace-deb-src.sources";

/// `$VETHTRACE_LIBPCAP_DIR`, or /var/cache/vethtrace/libpcap-<version>: one directory per
/// target below it, holding libpcap.a and libpcap's VERSION file.
fn cache_dir() -> PathBuf {
    std::env::var_os(DIR_ENV)
        .map_or_else(|| PathBuf::from(format!("/var/cache/vethtrace/libpcap-{VERSION}")), PathBuf::from)
}

fn is_built(dir: &Path) -> bool {
    dir.join("libpcap.a").is_file() && fs::read_to_string(dir.join("VERSION")).is_ok_and(|v| v.trim() == VERSION)
}

pub(crate) fn run() -> anyhow::Result<()> {
    let cache = cache_dir();
    let missing: Vec<&(&str, &str)> = TARGETS.iter().filter(|(t, _)| !is_built(&cache.join(t))).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let dsc = source_package(&cache.join("source"))?;
    for (target, cc) in missing {
        build(&dsc, &cache.join(target), target, cc)?;
    }
    Ok(())
}

/// Debian's source package (downloaded once): its .dsc.
fn source_package(dir: &Path) -> anyhow::Result<PathBuf> {
    if let Some(dsc) = find_dsc(dir)? {
        return Ok(dsc);
    }
    if !is_root() {
        bail!("libpcap {VERSION} is not built in {} yet and building it needs root (apt-get source)", cache_dir().display());
    }
    deb_src()?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!("xtask: downloading Debian's source package of libpcap into {}", dir.display());
    // In a directory of root's the _apt user cannot write to: download as root.
    run::status(
        Command::new("apt-get")
            .args(["source", "-q", "--download-only", "-o", "APT::Sandbox::User=root", "libpcap"])
            .current_dir(dir),
    )?;
    find_dsc(dir)?.with_context(|| {
        let got: Vec<String> = fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        format!("Debian's source package is not libpcap {VERSION} (tracer-pcap/libpcap-version); downloaded: {}", got.join(" "))
    })
}

/// `libpcap_<version>-<debian revision>.dsc` in `dir`.
fn find_dsc(dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let prefix = format!("libpcap_{VERSION}-");
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".dsc") {
            return Ok(Some(dir.join(name)));
        }
    }
    Ok(None)
}

/// A `deb-src` entry for Debian's archive (this release, main), at the mirror the machine's
/// own `deb` entry uses, unless apt knows the source already.
fn deb_src() -> anyhow::Result<()> {
    if run::stdout(Command::new("apt-cache").args(["showsrc", "libpcap"])).contains("Version:") {
        return Ok(());
    }
    let release = fs::read_to_string("/etc/os-release")?;
    let codename = release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .context("no VERSION_CODENAME in /etc/os-release")?
        .trim_matches('"')
        .to_owned();
    // e.g. " 500 http://…/debian bookworm/main amd64 Packages"
    let policy = run::stdout(Command::new("apt-cache").arg("policy"));
    let mirror = policy
        .lines()
        .filter(|l| l.contains(&format!(" {codename}/main ")) && l.trim_end().ends_with("Packages"))
        .find_map(|l| l.split_whitespace().nth(1))
        .with_context(|| format!("no apt source for Debian {codename} main to take the mirror from"))?;
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    let signed_by = if Path::new(keyring).is_file() { format!("Signed-By: {keyring}\n") } else { String::new() };
    eprintln!("xtask: adding a deb-src entry for Debian {codename} main ({DEB_SRC}): libpcap is built from its source package");
    fs::write(DEB_SRC, format!("Types: deb-src\nURIs: {mirror}\nSuites: {codename}\nComponents: main\n{signed_by}"))?;
    run::status(Command::new("apt-get").args(["update", "-q"]))
}

/// Unpacks the source package (dpkg-source applies Debian's patches), configures it for
/// `target` with `cc` and builds libpcap.a only, then puts it and VERSION into `out`.
fn build(dsc: &Path, out: &Path, target: &str, cc: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    eprintln!("xtask: building libpcap {VERSION} from Debian's source package for {target} into {} (about 10–20 s)", out.display());
    let work = out.with_extension("build");
    if work.exists() {
        fs::remove_dir_all(&work)?;
    }
    fs::create_dir_all(&work)?;
    let src = work.join("libpcap");
    quiet(Command::new("dpkg-source").arg("-x").arg(dsc).arg(&src), &work.join("dpkg-source.log"))?;
    let mut cflags = String::from("-O2 -fPIC");
    if target.ends_with("musl") {
        cflags.push_str(&format!(" -I{}", kernel_headers(&work)?.display()));
    }
    quiet(
        Command::new("./configure").args(CONFIGURE).env("CC", cc).env("CFLAGS", &cflags).current_dir(&src),
        &work.join("configure.log"),
    )?;
    quiet(Command::new("make").args(["-j2", "libpcap.a"]).current_dir(&src), &work.join("make.log"))?;
    let built = fs::read_to_string(src.join("VERSION"))?;
    if built.trim() != VERSION {
        bail!("the source package built libpcap {}, not {VERSION}", built.trim());
    }
    fs::create_dir_all(out)?;
    fs::copy(src.join("VERSION"), out.join("VERSION"))?;
    // libpcap.a last, through a rename: a half-written archive is never found.
    fs::copy(src.join("libpcap.a"), out.join("libpcap.a.new"))?;
    fs::rename(out.join("libpcap.a.new"), out.join("libpcap.a"))?;
    fs::remove_dir_all(&work)?;
    eprintln!("xtask: libpcap {VERSION} for {target} built in {} s", started.elapsed().as_secs());
    Ok(())
}

/// Runs `cmd` with its output in `log`; on failure the log's end is shown and the log kept.
fn quiet(cmd: &mut Command, log: &Path) -> anyhow::Result<()> {
    let file = fs::File::create(log)?;
    cmd.stdout(file.try_clone()?).stderr(Stdio::from(file));
    if let Err(e) = run::status(cmd) {
        let text = fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        for line in tail.iter().rev() {
            eprintln!("  {line}");
        }
        return Err(e.context(format!("see {}", log.display())));
    }
    Ok(())
}

/// musl-gcc searches only musl's headers; libpcap's bpf_filter.c and bpf_image.c also include
/// the kernel's UAPI headers (linux/filter.h). A directory holding just those (from Debian's
/// linux-libc-dev), so that no glibc header is mixed in.
fn kernel_headers(work: &Path) -> anyhow::Result<PathBuf> {
    let dir = work.join("uapi");
    fs::create_dir_all(&dir)?;
    for (name, target) in [
        ("linux", "/usr/include/linux"),
        ("asm", "/usr/include/x86_64-linux-gnu/asm"),
        ("asm-generic", "/usr/include/asm-generic"),
    ] {
        std::os::unix::fs::symlink(target, dir.join(name)).context("linking a kernel header directory")?;
    }
    Ok(dir)
}
