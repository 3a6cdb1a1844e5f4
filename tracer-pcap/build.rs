//! Links libpcap's filter compiler statically: the library `cargo xtask setup` (`./x setup`)
//! built from Debian's source package for the target being built (glibc or musl), without any
//! capture module, so vethtrace stays one file that runs where libpcap is not installed.
//!
//! Where: `$VETHTRACE_LIBPCAP_DIR/<target>/`, by default
//! `/var/cache/vethtrace/libpcap-<version>/<target>/` (libpcap.a and libpcap's VERSION file),
//! the version being the one pinned in `libpcap-version`.

use std::path::PathBuf;

const VERSION: &str = include_str!("libpcap-version").trim_ascii();
const DIR_ENV: &str = "VETHTRACE_LIBPCAP_DIR";

fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let root = std::env::var_os(DIR_ENV)
        .map_or_else(|| PathBuf::from(format!("/var/cache/vethtrace/libpcap-{VERSION}")), PathBuf::from);
    let dir = root.join(&target);
    let built = std::fs::read_to_string(dir.join("VERSION")).unwrap_or_default();
    if !dir.join("libpcap.a").is_file() || built.trim() != VERSION {
        let other = if built.is_empty() { String::new() } else { format!(" (it holds {})", built.trim()) };
        // One line: what is missing and the command that builds it.
        eprintln!(
            "tracer-pcap: libpcap {VERSION} for {target} is not built in {}{other}; run `./x setup` (or `cargo xtask setup`)",
            dir.display()
        );
        std::process::exit(1);
    }
    // (A failed build script always runs again: these matter once it succeeded.)
    println!("cargo:rerun-if-env-changed={DIR_ENV}");
    println!("cargo:rerun-if-changed=libpcap-version");
    println!("cargo:rerun-if-changed={}", dir.join("libpcap.a").display());
    println!("cargo:rerun-if-changed={}", dir.join("VERSION").display());
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=pcap");
}
