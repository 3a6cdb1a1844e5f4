//! tcpdump (the independent oracle, and the tracer vethtrace is compared with) writing one
//! interface's frames to a pcap file.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::Duration,
};

use crate::{Error, Result, node::in_ns, wait};

/// A running tcpdump; killed on drop if it is still running.
#[derive(Debug)]
pub struct Tcpdump {
    child: Child,
    pub pcap: PathBuf,
    pub stderr: PathBuf,
}

impl Tcpdump {
    /// `tcpdump -n ARGS -i IFACE -w PCAP` in namespace `ns`, its stderr to `stderr`; returns
    /// once tcpdump says it is listening (the capture is active).
    pub fn start(ns: &str, iface: &str, args: &[&str], pcap: &Path, stderr: &Path) -> Result<Self> {
        let file = fs::File::create(stderr).map_err(|source| Error::File { path: stderr.to_owned(), source })?;
        let child = in_ns(ns, "tcpdump")
            .arg("-n")
            .args(args)
            .args(["-i", iface, "-w"])
            .arg(pcap)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|source| Error::Spawn { what: "tcpdump (apt package tcpdump)".into(), source })?;
        let mut me = Self { child, pcap: pcap.to_owned(), stderr: stderr.to_owned() };
        let mut exited = None;
        let limit = Duration::from_secs(10);
        wait::wait_for(limit, Duration::from_millis(5), || {
            exited = me.child.try_wait().ok().flatten();
            me.stderr_text().contains("listening on") || exited.is_some()
        });
        match exited {
            _ if me.stderr_text().contains("listening on") => Ok(me),
            Some(status) => Err(Error::ExitedEarly { what: format!("tcpdump on {iface}"), status, output: me.stderr_text() }),
            None => Err(Error::Timeout { what: format!("tcpdump not listening on {iface}"), limit, output: me.stderr_text() }),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGINT, then waits up to `limit`; returns the packets tcpdump says the kernel dropped.
    pub fn stop(&mut self, limit: Duration) -> Result<u64> {
        self.interrupt()?;
        self.wait_stopped(limit)
    }

    /// SIGINT: tcpdump writes out what it holds and its statistics, then exits.
    pub fn interrupt(&self) -> Result<()> {
        wait::signal(self.child.id(), libc::SIGINT).map_err(|source| Error::Spawn { what: "kill -INT tcpdump".into(), source })
    }

    /// After [`Tcpdump::interrupt`]: waits up to `limit`; returns the packets tcpdump says the
    /// kernel dropped.
    pub fn wait_stopped(&mut self, limit: Duration) -> Result<u64> {
        wait::wait_exit(&mut self.child, limit)?;
        Ok(self
            .stderr_text()
            .lines()
            .find(|l| l.ends_with("dropped by kernel"))
            .and_then(|l| l.split(' ').next()?.parse().ok())
            .unwrap_or(0))
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
