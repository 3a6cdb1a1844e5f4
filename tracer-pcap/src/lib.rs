//! libpcap's filter compiler, statically linked (built by `cargo xtask setup` from Debian's
//! source package, see build.rs):
//! pcap-filter expressions to classic BPF for an Ethernet link, as `tcpdump` compiles them.
//!
//! Also libpcap's own cBPF interpreter ([`run`], the code behind `pcap_offline_filter`) and its
//! instruction printer ([`dump`], `tcpdump -d`), so that other implementations can be checked
//! against them.

use std::{
    ffi::{CStr, CString, c_char, c_int, c_uint},
    sync::Mutex,
};

/// One classic BPF instruction, laid out as `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

#[repr(C)]
struct BpfProgram {
    len: c_uint,
    insns: *mut Insn,
}

/// `pcap_t`, opaque.
#[repr(C)]
struct Pcap {
    _private: [u8; 0],
}

const DLT_EN10MB: c_int = 1;
/// `PCAP_NETMASK_UNKNOWN`: `ip broadcast` is then an error, as in tcpdump without an interface.
const NETMASK_UNKNOWN: u32 = 0xffff_ffff;

unsafe extern "C" {
    fn pcap_open_dead(linktype: c_int, snaplen: c_int) -> *mut Pcap;
    fn pcap_close(p: *mut Pcap);
    fn pcap_compile(p: *mut Pcap, fp: *mut BpfProgram, s: *const c_char, optimize: c_int, mask: u32) -> c_int;
    fn pcap_geterr(p: *mut Pcap) -> *mut c_char;
    fn pcap_freecode(fp: *mut BpfProgram);
    fn bpf_image(insn: *const Insn, n: c_int) -> *mut c_char;
    fn bpf_filter(insns: *const Insn, pkt: *const u8, wirelen: c_uint, buflen: c_uint) -> c_uint;
    fn pcap_lib_version() -> *const c_char;
}

/// The libpcap version the project pins (tracer-pcap/libpcap-version; build.rs links no other).
pub const LIBPCAP_VERSION: &str = include_str!("../libpcap-version").trim_ascii();

/// libpcap's own description of itself: "libpcap version " and the version.
pub fn lib_version() -> String {
    // SAFETY: returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(pcap_lib_version()) }.to_string_lossy().into_owned()
}

/// libpcap's compiler and printer keep state in globals (the printer returns a static
/// buffer): one caller at a time.
static LIBPCAP: Mutex<()> = Mutex::new(());

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    /// libpcap's own message, e.g. "can't parse filter expression: syntax error".
    #[error("{0}")]
    Pcap(String),
    #[error("the expression contains a NUL byte")]
    Nul,
    #[error("libpcap could not allocate a compiler")]
    Alloc,
}

/// Compiles `expr` for an Ethernet link with `snaplen` (the value a matching `ret` returns),
/// optimized as tcpdump does by default.
pub fn compile(expr: &str, snaplen: u32) -> Result<Vec<Insn>, CompileError> {
    let text = CString::new(expr).map_err(|_| CompileError::Nul)?;
    let snaplen = c_int::try_from(snaplen).unwrap_or(c_int::MAX);
    let _guard = LIBPCAP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // SAFETY: plain constructor; checked for NULL below and closed on every path.
    let p = unsafe { pcap_open_dead(DLT_EN10MB, snaplen) };
    if p.is_null() {
        return Err(CompileError::Alloc);
    }
    let mut prog = BpfProgram { len: 0, insns: std::ptr::null_mut() };
    // SAFETY: `p` is a live handle, `prog` a valid out-parameter, `text` NUL-terminated. On
    // success `prog` owns `len` instructions until pcap_freecode; the error string lives in `p`.
    let result = unsafe {
        if pcap_compile(p, &mut prog, text.as_ptr(), 1, NETMASK_UNKNOWN) < 0 {
            Err(CompileError::Pcap(CStr::from_ptr(pcap_geterr(p)).to_string_lossy().into_owned()))
        } else {
            let insns = std::slice::from_raw_parts(prog.insns, prog.len as usize).to_vec();
            pcap_freecode(&mut prog);
            Ok(insns)
        }
    };
    // SAFETY: `p` came from pcap_open_dead and is not used afterwards.
    unsafe { pcap_close(p) };
    result
}

/// The program as `tcpdump -d` prints it: one line per instruction.
pub fn dump(insns: &[Insn]) -> String {
    let _guard = LIBPCAP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = String::new();
    for (n, insn) in insns.iter().enumerate() {
        // SAFETY: bpf_image reads one instruction and returns a NUL-terminated static buffer,
        // copied out before the next call (under the lock).
        let line = unsafe { CStr::from_ptr(bpf_image(insn, c_int::try_from(n).unwrap_or(c_int::MAX))) };
        out.push_str(&line.to_string_lossy());
        out.push('\n');
    }
    out
}

/// Runs `insns` over `frame` (the captured bytes; `wirelen` is the length on the wire) with
/// libpcap's interpreter, the one `pcap_offline_filter` and `tcpdump -r` use. Returns the
/// program's verdict: 0 rejects, anything else accepts.
///
/// # Panics
/// When `insns` is empty (libpcap's interpreter then accepts everything; a compiled program
/// is never empty).
pub fn run(insns: &[Insn], frame: &[u8], wirelen: u32) -> u32 {
    assert!(!insns.is_empty(), "an empty program");
    let buflen = c_uint::try_from(frame.len()).unwrap_or(c_uint::MAX);
    // SAFETY: bpf_filter reads `insns` until a return (every compiled program ends in one) and
    // at most `buflen` bytes of `frame`, checking each load against `buflen`.
    unsafe { bpf_filter(insns.as_ptr(), frame.as_ptr(), wirelen, buflen) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linked_libpcap_is_the_pinned_version() {
        assert_eq!(lib_version(), format!("libpcap version {LIBPCAP_VERSION}"));
    }

    #[test]
    fn compiles_and_dumps_like_tcpdump() {
        let insns = compile("ip", 262_144).unwrap();
        assert_eq!(
            dump(&insns),
            "(000) ldh      [12]\n(001) jeq      #0x800           jt 2\tjf 3\n(002) ret      #262144\n(003) ret      #0\n"
        );
    }

    #[test]
    fn bad_expression_is_libpcap_message() {
        assert_eq!(
            compile("tcp port", 65535),
            Err(CompileError::Pcap("can't parse filter expression: syntax error".into()))
        );
        assert!(matches!(compile("port 70000", 65535), Err(CompileError::Pcap(m)) if m == "illegal port number 70000 > 65535"));
        assert_eq!(compile("ip\0", 65535), Err(CompileError::Nul));
    }

    #[test]
    fn interpreter_runs_the_program() {
        let insns = compile("ether proto 0x0806", 100).unwrap();
        let mut frame = [0u8; 42];
        frame[12] = 0x08;
        frame[13] = 0x06;
        assert_eq!(run(&insns, &frame, 42), 100);
        frame[13] = 0x00;
        assert_eq!(run(&insns, &frame, 42), 0);
        // Too short to hold the ethertype: the load fails and the frame is rejected.
        assert_eq!(run(&insns, &frame[..12], 12), 0);
    }
}
