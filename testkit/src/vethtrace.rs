//! The real vethtrace binary as a child process: started with `--ready-file`, waited for until
//! it is attached (never a sleep), stopped by a signal.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use crate::{Error, Result, node::in_ns, wait};

/// Where a vethtrace run's files go.
#[derive(Debug, Clone)]
pub struct Files {
    /// `--ready-file`: vethtrace creates it once every program is attached.
    pub ready: PathBuf,
    /// Standard output; `None` discards it.
    pub stdout: Option<PathBuf>,
    pub stderr: PathBuf,
}

impl Files {
    /// `ready`, `stdout` and `stderr` in `dir`, each name prefixed with `tag`.
    pub fn in_dir(dir: &Path, tag: &str, keep_stdout: bool) -> Self {
        Self {
            ready: dir.join(format!("{tag}ready")),
            stdout: keep_stdout.then(|| dir.join(format!("{tag}stdout"))),
            stderr: dir.join(format!("{tag}stderr")),
        }
    }
}

/// A running vethtrace; killed and reaped on drop if it is still running.
#[derive(Debug)]
pub struct Vethtrace {
    pub child: Child,
    pub files: Files,
    started: Instant,
}

impl Vethtrace {
    /// `ip netns exec NS [WRAPPER…] BIN`: the caller adds the arguments that go before
    /// `--ready-file` (a wrapper must end by exec'ing its arguments, e.g. setpriv).
    pub fn command(ns: &str, wrapper: &[&str], bin: &Path) -> Command {
        match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = in_ns(ns, program);
                cmd.args(rest).arg(bin);
                cmd
            }
            None => in_ns(ns, bin),
        }
    }

    /// Starts `cmd --ready-file FILE ARGS` with stdin closed and stdout/stderr to `files`.
    pub fn spawn(mut cmd: Command, args: &[&str], files: Files) -> Result<Self> {
        let _ = fs::remove_file(&files.ready);
        let create = |path: &Path| fs::File::create(path).map_err(|source| Error::File { path: path.to_owned(), source });
        let stdout = match &files.stdout {
            Some(path) => Stdio::from(create(path)?),
            None => Stdio::null(),
        };
        let started = Instant::now();
        let child = cmd
            .arg("--ready-file")
            .arg(&files.ready)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(create(&files.stderr)?)
            .spawn()
            .map_err(|source| Error::Spawn { what: format!("{cmd:?}"), source })?;
        Ok(Self { child, files, started })
    }

    pub fn is_ready(&self) -> bool {
        self.files.ready.exists()
    }

    /// Waits until the ready file exists; returns the time from spawn to ready. Fails, with
    /// vethtrace's stderr, when it exits first or `limit` passes (it is then killed).
    pub fn wait_ready(&mut self, limit: Duration) -> Result<Duration> {
        let mut exited = None;
        wait::wait_for(limit, Duration::from_millis(1), || {
            exited = self.child.try_wait().ok().flatten();
            self.is_ready() || exited.is_some()
        });
        let took = self.started.elapsed();
        if self.is_ready() {
            return Ok(took);
        }
        if let Some(status) = exited {
            return Err(Error::ExitedEarly { what: "vethtrace".into(), status, output: self.stderr() });
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(Error::Timeout { what: "vethtrace not ready".into(), limit, output: self.stderr() })
    }

    /// The process id (`ip netns exec` execs vethtrace: the same pid).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: i32) -> std::io::Result<()> {
        wait::signal(self.pid(), sig)
    }

    /// Sends `sig` and waits up to `limit` for the exit status.
    pub fn stop_with(&mut self, sig: i32, limit: Duration) -> Result<ExitStatus> {
        self.signal(sig).map_err(|source| Error::Spawn { what: format!("kill -{sig} vethtrace"), source })?;
        wait::wait_exit(&mut self.child, limit)
    }

    /// What vethtrace wrote to its standard error so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.files.stderr).unwrap_or_default()
    }

    /// What vethtrace wrote to its standard output so far ("" when discarded).
    pub fn stdout(&self) -> String {
        self.files.stdout.as_ref().and_then(|p| fs::read_to_string(p).ok()).unwrap_or_default()
    }
}

impl Drop for Vethtrace {
    fn drop(&mut self) {
        // std does not signal a child it has already reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
