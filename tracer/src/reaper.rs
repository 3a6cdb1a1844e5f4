//! clsact filters outlive the process that added them. The reaper is a child process (vethtrace
//! itself, run as `vethtrace __reaper`) that is told over a pipe, always *before* the netlink
//! request that could leave something behind, what vethtrace is about to touch: the ids of its
//! programs, each interface it is about to attach to, and each clsact qdisc it is about to add.
//! When the pipe closes — vethtrace exited, crashed or was SIGKILLed, at any instruction — it
//! removes every bpf filter on those interfaces that runs one of those programs, then the clsact
//! qdiscs vethtrace added that nothing else uses (see [`crate::qdisc`]), and exits.
//!
//! Telling it first is what makes a kill between two syscalls harmless: a line sent after the
//! request would be lost by a kill in between, and the filter or qdisc would stay. The price is
//! a line about something that then did not happen: the sweep finds no filter of ours, and a
//! clsact add that failed (one was there) is taken back with `u` before anything else.
//!
//! It sits in its own process group and ignores SIGINT/SIGTERM/SIGHUP so that a Ctrl-C meant for
//! vethtrace cannot take it first.

use std::{
    collections::BTreeSet,
    io::{self, BufRead, Write},
    os::unix::process::CommandExt,
    process::{Child, ChildStdin, Command, Stdio},
};

/// One line of the pipe: what vethtrace is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    /// A program of vethtrace's, by kernel id: its filters are the ones to remove.
    Program(u32),
    /// About to attach to this interface.
    Attach(u32),
    /// About to add the clsact qdisc of this interface (there was none).
    AddQdisc(u32),
    /// The qdisc add failed: the one there is not vethtrace's.
    NotOurQdisc(u32),
}

impl Notice {
    fn line(self) -> String {
        let (op, n) = match self {
            Self::Program(id) => ('p', id),
            Self::Attach(ifindex) => ('i', ifindex),
            Self::AddQdisc(ifindex) => ('q', ifindex),
            Self::NotOurQdisc(ifindex) => ('u', ifindex),
        };
        format!("{op} {n}\n")
    }

    fn parse(s: &str) -> Option<Self> {
        let (op, n) = s.trim_end().split_once(' ')?;
        let n = n.parse().ok()?;
        Some(match op {
            "p" => Self::Program(n),
            "i" => Self::Attach(n),
            "q" => Self::AddQdisc(n),
            "u" => Self::NotOurQdisc(n),
            _ => return None,
        })
    }
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

    /// One unbuffered write: once it returns, the line is in the pipe and survives a SIGKILL.
    fn send(&mut self, notice: Notice) {
        if let Some(stdin) = &mut self.stdin
            && stdin.write_all(notice.line().as_bytes()).is_err()
        {
            log::warn!("the clsact reaper has gone: filters may stay behind if vethtrace is killed");
            self.stdin = None;
        }
    }

    /// `id` is one of vethtrace's programs.
    pub fn program(&mut self, id: u32) {
        self.send(Notice::Program(id));
    }

    /// vethtrace is about to attach filters to `ifindex`.
    pub fn attaching(&mut self, ifindex: u32) {
        self.send(Notice::Attach(ifindex));
    }

    /// Adds the clsact qdisc of `ifindex` with `add`, which says whether it did; the reaper hears
    /// of it before.
    pub fn adding_qdisc(&mut self, ifindex: u32, add: impl FnOnce() -> bool) {
        self.send(Notice::AddQdisc(ifindex));
        if !add() {
            self.send(Notice::NotOurQdisc(ifindex));
        }
    }
}

impl Drop for ReaperHandle {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// What the reaper has been told by the time the pipe closes.
#[derive(Debug, Default, PartialEq, Eq)]
struct Told {
    programs: BTreeSet<u32>,
    interfaces: BTreeSet<u32>,
    qdiscs: BTreeSet<u32>,
}

impl Told {
    fn note(&mut self, notice: Notice) {
        match notice {
            Notice::Program(id) => self.programs.insert(id),
            Notice::Attach(ifindex) => self.interfaces.insert(ifindex),
            Notice::AddQdisc(ifindex) => self.qdiscs.insert(ifindex),
            Notice::NotOurQdisc(ifindex) => self.qdiscs.remove(&ifindex),
        };
    }
}

/// Body of `vethtrace __reaper`.
pub fn run() -> anyhow::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installing SIG_IGN has no preconditions.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    let mut told = Told::default();
    for l in io::stdin().lock().lines() {
        let Ok(l) = l else { break };
        if let Some(notice) = Notice::parse(&l) {
            told.note(notice);
        }
    }
    let interfaces: Vec<u32> = told.interfaces.into_iter().collect();
    let qdiscs: Vec<u32> = told.qdiscs.into_iter().collect();
    if let Err(e) = crate::qdisc::clean_up(&interfaces, &told.programs, &qdiscs) {
        log::info!("a clsact filter or qdisc vethtrace added may be left: {e}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_round_trips() {
        for n in [Notice::Program(7), Notice::Attach(u32::MAX), Notice::AddQdisc(1), Notice::NotOurQdisc(2)] {
            assert_eq!(Notice::parse(&n.line()), Some(n));
        }
        assert_eq!(Notice::parse("garbage"), None);
        assert_eq!(Notice::parse("+ 1 2"), None);
        assert_eq!(Notice::parse("p x"), None);
    }

    #[test]
    fn a_failed_qdisc_add_is_taken_back() {
        let mut told = Told::default();
        for n in [Notice::AddQdisc(3), Notice::AddQdisc(4), Notice::NotOurQdisc(3), Notice::Attach(4), Notice::Program(9)] {
            told.note(n);
        }
        assert_eq!(told.qdiscs, BTreeSet::from([4]));
        assert_eq!(told.interfaces, BTreeSet::from([4]));
        assert_eq!(told.programs, BTreeSet::from([9]));
    }
}
