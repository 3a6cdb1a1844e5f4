//! Polling with a deadline, never a fixed sleep that hopes.

use std::{
    fs,
    process::{Child, ExitStatus},
    thread,
    time::{Duration, Instant},
};

use crate::{Error, Result};

/// Polls `cond` every `every` until it holds (true) or `limit` passes (false).
pub fn wait_for(limit: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(every);
    }
}

/// Waits up to `limit` for `child` to exit (polled every millisecond, so that exit times can
/// be measured); past it, kills and reaps the child and says which process it was.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Result<ExitStatus> {
    let mut status = None;
    wait_for(limit, Duration::from_millis(1), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if let Some(status) = status {
        return Ok(status);
    }
    let name = fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    Err(Error::Timeout { what: format!("process {} ({}) did not exit", child.id(), name.trim()), limit, output: String::new() })
}

/// Sends `sig` to process `pid`.
pub fn signal(pid: u32, sig: i32) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) takes no pointers; a stale pid at worst signals nothing (ESRCH).
    if unsafe { libc::kill(pid, sig) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}
