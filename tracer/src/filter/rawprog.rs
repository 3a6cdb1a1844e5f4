//! Loading a program from instructions made at run time (aya loads programs from an object
//! file only), putting it into a program array, and running it on a frame with
//! `BPF_PROG_TEST_RUN`: three `bpf(2)` commands behind one small unsafe call.

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
};

use super::translate::EbpfInsn;

const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
/// Verifier log kept when a load fails.
const LOG_SIZE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the kernel refused the translated filter ({source}); verifier log: {log}")]
    Refused {
        #[source]
        source: io::Error,
        log: String,
    },
}

/// The first fields of `union bpf_attr` for `BPF_PROG_LOAD`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// The fields of `union bpf_attr` for `BPF_PROG_TEST_RUN` up to `repeat`/`duration`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
}

/// `union bpf_attr` for `BPF_MAP_UPDATE_ELEM`.
#[repr(C)]
#[derive(Default)]
struct MapUpdateAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Puts the program `prog_fd` into slot `index` of the program array `map` (aya takes only
/// programs it loaded itself).
pub fn set_slot(map: BorrowedFd<'_>, index: u32, prog_fd: RawFd) -> io::Result<()> {
    let value = u32::try_from(prog_fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut attr = MapUpdateAttr {
        map_fd: map.as_raw_fd() as u32,
        key: std::ptr::from_ref(&index) as u64,
        value: std::ptr::from_ref(&value) as u64,
        ..MapUpdateAttr::default()
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
}

/// `bpf(cmd, attr, size_of attr)`.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a `#[repr(C)]` prefix of `union bpf_attr` for `cmd`, valid for its whole
    // size; the kernel reads (and for some commands writes) only that many bytes, and every
    // pointer in it points at memory that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size_of::<T>()) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// Lifts RLIMIT_MEMLOCK to infinity; whether it was below that before (so that a retry can help).
fn raise_memlock_limit() -> bool {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read or write only the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &raw mut limit) != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
            return false;
        }
        let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
        libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const unlimited) == 0
    }
}

/// A loaded classifier program.
#[derive(Debug)]
pub struct RawProgram(OwnedFd);

impl RawProgram {
    /// Loads `insns` as a `BPF_PROG_TYPE_SCHED_CLS` program named `name` (up to 15 bytes).
    pub fn load_classifier(insns: &[EbpfInsn], name: &str) -> Result<Self, LoadError> {
        let license = CString::from(c"GPL");
        let mut log = vec![0u8; LOG_SIZE];
        let mut prog_name = [0u8; 16];
        let n = name.len().min(15);
        prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_SCHED_CLS,
            insn_cnt: u32::try_from(insns.len()).unwrap_or(u32::MAX),
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            prog_name,
            ..ProgLoadAttr::default()
        };
        match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => return Ok(Self::own(fd)),
            // Before 5.11 BPF memory counts against RLIMIT_MEMLOCK (64 KiB by default on 5.10):
            // raised as aya does for its own loads, then tried again.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && raise_memlock_limit() => {
                if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr) {
                    return Ok(Self::own(fd));
                }
            }
            Err(_) => {}
        }
        // Again with the verifier's log, for the error.
        attr.log_level = 1;
        attr.log_size = LOG_SIZE as u32;
        attr.log_buf = log.as_mut_ptr() as u64;
        match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => Ok(Self::own(fd)),
            Err(source) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                Err(LoadError::Refused { source, log: String::from_utf8_lossy(&log[..end]).into_owned() })
            }
        }
    }

    fn own(fd: libc::c_long) -> Self {
        // SAFETY: a successful BPF_PROG_LOAD returns a new file descriptor that nothing else owns.
        Self(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }

    /// Runs the program once on `frame` (more than an Ethernet header: the kernel refuses less);
    /// its return value.
    pub fn test_run(&self, frame: &[u8]) -> io::Result<u32> {
        let mut attr = TestRunAttr {
            prog_fd: self.0.as_raw_fd() as u32,
            data_size_in: u32::try_from(frame.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
            data_in: frame.as_ptr() as u64,
            repeat: 1,
            ..TestRunAttr::default()
        };
        bpf(BPF_PROG_TEST_RUN, &mut attr)?;
        Ok(attr.retval)
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.0
    }
}
