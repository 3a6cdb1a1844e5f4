//! bpf(2) for the few things bpftool 7.1 (Debian 12's) cannot do: load and link a tiny TCX
//! program of another owner, and list the TCX programs of an interface (`bpftool net show` lists
//! TCX only from bpftool 7.3 on; this asks the kernel the same BPF_PROG_QUERY it sends).

use std::{fs, os::fd::AsRawFd as _, thread};

pub const BPF_PROG_QUERY: libc::c_long = 16;
pub const BPF_TCX_INGRESS: u32 = 46;
pub const BPF_TCX_EGRESS: u32 = 47;

/// bpf(2) with a zero-padded attribute block; the fd it returns, if any.
pub fn bpf_raw(cmd: libc::c_long, attr: &mut [u8; 128]) -> std::io::Result<i64> {
    // SAFETY: `attr` is a writable 128-byte block, larger than any attribute the commands used
    // here read or write; the kernel checks the unused tail is zero.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(r) }
}

/// bpf(2) for a command that returns a new fd.
pub fn bpf(cmd: libc::c_long, attr: &[u8; 128]) -> std::io::Result<std::os::fd::OwnedFd> {
    let fd = bpf_raw(cmd, &mut attr.to_owned())?;
    // SAFETY: a successful BPF_PROG_LOAD / BPF_LINK_CREATE returns a new fd we now own.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(i32::try_from(fd).unwrap()) })
}

pub fn put(attr: &mut [u8; 128], at: usize, bytes: &[u8]) {
    attr[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Runs `f` on a thread that has entered network namespace `ns` (ifindexes are per namespace).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = fs::File::open(format!("/run/netns/{ns}")).unwrap_or_else(|e| panic!("netns {ns}: {e}"));
    let ns = ns.to_owned();
    thread::spawn(move || {
        // SAFETY: setns on this thread only, with a namespace fd we hold open.
        assert_eq!(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns {ns}");
        f()
    })
    .join()
    .expect("netns thread")
}

/// Program ids attached by TCX to `ifindex` at `attach_type` (in the calling thread's
/// namespace); empty when the kernel has no TCX.
pub fn tcx_prog_ids(ifindex: u32, attach_type: u32) -> Vec<u32> {
    let mut ids = vec![0u32; 64];
    let mut attr = [0u8; 128];
    put(&mut attr, 0, &ifindex.to_ne_bytes());
    put(&mut attr, 4, &attach_type.to_ne_bytes());
    put(&mut attr, 16, &(ids.as_mut_ptr() as u64).to_ne_bytes());
    put(&mut attr, 24, &u32::try_from(ids.len()).unwrap().to_ne_bytes());
    match bpf_raw(BPF_PROG_QUERY, &mut attr) {
        Ok(_) => {
            let n = u32::from_ne_bytes(attr[24..28].try_into().unwrap()) as usize;
            ids.truncate(n);
            ids
        }
        Err(_) => Vec::new(),
    }
}
