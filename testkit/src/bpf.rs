//! bpf(2) for the few things bpftool 7.1 (Debian 12's) cannot do: load a tiny TC program of
//! another owner and link it with TCX (the integration tests' other dataplane; the bench's bare
//! hook, the floor any TC program starts from), and list the TCX programs of an interface
//! (`bpftool net show` lists TCX only from bpftool 7.3 on; this asks the kernel the same
//! BPF_PROG_QUERY it sends).

use std::{
    fs, io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    thread,
};

use crate::{Error, Result};

pub const BPF_PROG_LOAD: libc::c_long = 5;
pub const BPF_PROG_QUERY: libc::c_long = 16;
pub const BPF_LINK_CREATE: libc::c_long = 28;
pub const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
pub const BPF_TCX_INGRESS: u32 = 46;
pub const BPF_TCX_EGRESS: u32 = 47;

/// bpf(2) with a zero-padded attribute block; the fd it returns, if any.
pub fn bpf_raw(cmd: libc::c_long, attr: &mut [u8; 128]) -> io::Result<i64> {
    // SAFETY: `attr` is a writable 128-byte block, larger than any attribute the commands used
    // here read or write; the kernel checks the unused tail is zero.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// bpf(2) for a command that returns a new fd.
pub fn bpf(cmd: libc::c_long, attr: &[u8; 128]) -> io::Result<OwnedFd> {
    let fd = bpf_raw(cmd, &mut attr.to_owned())?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("bpf(2) returned no fd"))?;
    // SAFETY: a successful BPF_PROG_LOAD / BPF_LINK_CREATE returns a new fd we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn put(attr: &mut [u8; 128], at: usize, bytes: &[u8]) {
    attr[at..at + bytes.len()].copy_from_slice(bytes);
}

/// One eBPF instruction, encoded.
pub fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | (u64::from(dst & 0xf) << 8)
        | (u64::from(src & 0xf) << 12)
        | (u64::from(off.cast_unsigned()) << 16)
        | (u64::from(imm.cast_unsigned()) << 32)
}

/// Loads a GPL sched_cls program named `name` (bpftool shows it).
pub fn load_sched_cls(name: &str, insns: &[u64]) -> io::Result<OwnedFd> {
    let license = c"GPL";
    let mut attr = [0u8; 128];
    put(&mut attr, 0, &BPF_PROG_TYPE_SCHED_CLS.to_ne_bytes());
    put(&mut attr, 4, &u32::try_from(insns.len()).map_err(io::Error::other)?.to_ne_bytes());
    put(&mut attr, 8, &(insns.as_ptr() as u64).to_ne_bytes());
    put(&mut attr, 16, &(license.as_ptr() as u64).to_ne_bytes());
    put(&mut attr, 48, &name.as_bytes()[..name.len().min(15)]);
    bpf(BPF_PROG_LOAD, &attr)
}

/// Links `prog` to `ifindex` (of the calling thread's namespace) at `attach_type`
/// (`BPF_TCX_INGRESS` / `BPF_TCX_EGRESS`); the link lives as long as the fd.
pub fn link_tcx(prog: &OwnedFd, ifindex: u32, attach_type: u32) -> io::Result<OwnedFd> {
    let mut attr = [0u8; 128];
    put(&mut attr, 0, &u32::try_from(prog.as_raw_fd()).map_err(io::Error::other)?.to_ne_bytes());
    put(&mut attr, 4, &ifindex.to_ne_bytes());
    put(&mut attr, 8, &attach_type.to_ne_bytes());
    bpf(BPF_LINK_CREATE, &attr)
}

/// The index of interface `name` in the calling thread's namespace.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated name.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::other(format!("no interface {name}"))),
        i => Ok(i),
    }
}

/// Runs `f` on a thread that has entered network namespace `ns` (ifindexes are per namespace).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let path = format!("/run/netns/{ns}");
    let file = fs::File::open(&path).map_err(|source| Error::File { path: path.clone().into(), source })?;
    let joined = thread::spawn(move || {
        // SAFETY: setns on this thread only, with a namespace fd we hold open.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(f())
    })
    .join();
    match joined {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(Error::File { path: path.into(), source }),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Program ids attached by TCX to `ifindex` at `attach_type` (in the calling thread's
/// namespace); empty when the kernel has no TCX.
pub fn tcx_prog_ids(ifindex: u32, attach_type: u32) -> Vec<u32> {
    let mut ids = vec![0u32; 64];
    let mut attr = [0u8; 128];
    put(&mut attr, 0, &ifindex.to_ne_bytes());
    put(&mut attr, 4, &attach_type.to_ne_bytes());
    put(&mut attr, 16, &(ids.as_mut_ptr() as u64).to_ne_bytes());
    put(&mut attr, 24, &u32::try_from(ids.len()).unwrap_or(u32::MAX).to_ne_bytes());
    match bpf_raw(BPF_PROG_QUERY, &mut attr) {
        Ok(_) => {
            let n = u32::from_ne_bytes([attr[24], attr[25], attr[26], attr[27]]) as usize;
            ids.truncate(n);
            ids
        }
        Err(_) => Vec::new(),
    }
}
