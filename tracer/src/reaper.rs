//! clsact filters outlive the process that added them. The reaper is a child process (vethtrace
//! itself, run as `vethtrace __reaper`) that is told over a pipe about every filter as it is
//! added and removed. When the pipe closes — vethtrace exited, crashed or was SIGKILLed — it
//! removes the filters still listed, then the clsact qdiscs vethtrace added that nothing else
//! uses (see [`crate::qdisc`]), and exits. It sits in its own process group and ignores
//! SIGINT/SIGTERM/SIGHUP so that a Ctrl-C meant for vethtrace cannot take it first.

use std::{
    collections::BTreeSet,
    io::{self, BufRead, Write},
    os::unix::process::CommandExt,
    process::{Child, ChildStdin, Command, Stdio},
};

use aya::programs::{
    Link,
    tc::{SchedClassifierLink, TcHandle},
};

/// One clsact filter: interface, parent, priority, handle.
type Filter = (u32, u32, u16, u32);

fn line(op: char, (ifindex, parent, prio, handle): Filter) -> String {
    format!("{op} {ifindex} {parent} {prio} {handle}\n")
}

fn parse_line(s: &str) -> Option<(char, Filter)> {
    let mut it = s.split_whitespace();
    let op = it.next()?.chars().next()?;
    let f = (it.next()?.parse().ok()?, it.next()?.parse().ok()?, it.next()?.parse().ok()?, it.next()?.parse().ok()?);
    Some((op, f))
}

/// The parent's end: tells the reaper what to clean up.
pub struct ReaperHandle {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ReaperHandle {
    pub fn spawn() -> io::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("__reaper")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin })
    }

    fn send(&mut self, msg: &str) {
        if let Some(stdin) = &mut self.stdin
            && stdin.write_all(msg.as_bytes()).is_err()
        {
            log::warn!("the clsact reaper has gone: filters may stay behind if vethtrace is killed");
            self.stdin = None;
        }
    }

    pub fn track(&mut self, ifindex: u32, parent: TcHandle, prio: u16, handle: TcHandle) {
        self.send(&line('+', (ifindex, parent.into(), prio, handle.into())));
    }

    /// vethtrace added the clsact qdisc of `ifindex` (there was none): remove it at the end.
    pub fn own_qdisc(&mut self, ifindex: u32) {
        self.send(&line('q', (ifindex, 0, 0, 0)));
    }

    pub fn untrack(&mut self, ifindex: u32, parent: TcHandle, prio: u16, handle: TcHandle) {
        self.send(&line('-', (ifindex, parent.into(), prio, handle.into())));
    }
}

impl Drop for ReaperHandle {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Body of `vethtrace __reaper`.
pub fn run() -> anyhow::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installing SIG_IGN has no preconditions.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    let mut live = BTreeSet::new();
    let mut qdiscs = Vec::new();
    for l in io::stdin().lock().lines() {
        let Ok(l) = l else { break };
        match parse_line(&l) {
            Some(('+', f)) => {
                live.insert(f);
            }
            Some(('-', f)) => {
                live.remove(&f);
            }
            Some(('q', (ifindex, ..))) => qdiscs.push(ifindex),
            _ => {}
        }
    }
    for (ifindex, parent, prio, handle) in live {
        if let Ok(link) = SchedClassifierLink::attached(ifindex, parent.into(), prio, handle.into(), None) {
            let _ = link.detach();
        }
    }
    if let Err(e) = crate::qdisc::remove_unused_clsact(&qdiscs) {
        eprintln!("vethtrace: a clsact qdisc vethtrace added may be left: {e}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_round_trips() {
        let f = (7, 0xffff_fff2, 49151, 1);
        assert_eq!(parse_line(&line('+', f)), Some(('+', f)));
        assert_eq!(parse_line("garbage"), None);
        assert_eq!(parse_line("+ 1 2"), None);
    }
}
