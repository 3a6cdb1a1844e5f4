//! Builds libpcap's filter compiler from the vendored sources in `libpcap/` into a static library,
//! for the target being built (glibc or musl): vethtrace stays one file that runs where libpcap
//! is not installed. No live-capture module is built (pcap-null.c), so nothing else is linked.
//!
//! grammar.c/h and scanner.c/h are generated and vendored (bison 3.8.2, flex 2.6.4):
//! `sed 's/@REENTRANT_PARSER@/%define api.pure/' grammar.y.in > grammar.y;
//! bison -p pcap_ -o grammar.c -d grammar.y;
//! flex -P pcap_ --header-file=scanner.h --nounput -oscanner.c scanner.l`.

const SOURCES: &[&str] = &[
    "bpf_dump.c",
    "bpf_filter.c",
    "bpf_image.c",
    "etherent.c",
    "fmtutils.c",
    "gencode.c",
    "grammar.c",
    "nametoaddr.c",
    "optimize.c",
    "pcap-common.c",
    "pcap-null.c",
    "pcap-util.c",
    "pcap.c",
    "savefile.c",
    "scanner.c",
    "sf-pcap.c",
    "sf-pcapng.c",
    "missing/strlcat.c",
    "missing/strlcpy.c",
];

fn main() {
    let dir = std::path::Path::new("libpcap");
    let mut build = cc::Build::new();
    build
        .include(dir)
        .define("HAVE_CONFIG_H", None)
        .define("BUILDING_PCAP", None)
        .define("pcap_EXPORTS", None)
        .define("_GNU_SOURCE", None)
        .warnings(false);
    let strerror = match std::env::var("CARGO_CFG_TARGET_ENV").as_deref() {
        Ok("gnu") => "HAVE_GNU_STRERROR_R",
        _ => "HAVE_POSIX_STRERROR_R",
    };
    build.define(strerror, None);
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl") {
        build.include(kernel_headers());
    }
    for src in SOURCES {
        build.file(dir.join(src));
    }
    build.compile("pcap");
    println!("cargo:rerun-if-changed=libpcap");
}

/// musl-gcc searches only musl's headers; bpf_filter.c also includes the kernel's UAPI headers
/// (linux/filter.h). A directory holding just those (from Debian's linux-libc-dev), so that no
/// glibc header is mixed in.
fn kernel_headers() -> std::path::PathBuf {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("uapi");
    std::fs::create_dir_all(&out).expect("creating OUT_DIR/uapi");
    for (name, target) in [
        ("linux", "/usr/include/linux"),
        ("asm", "/usr/include/x86_64-linux-gnu/asm"),
        ("asm-generic", "/usr/include/asm-generic"),
    ] {
        let link = out.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(target, &link).expect("linking a kernel header directory");
        }
    }
    out
}
