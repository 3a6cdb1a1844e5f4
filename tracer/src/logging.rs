//! Logs and warnings on standard error, in one place: `vethtrace: …` lines (the default), or
//! with `--log-format json` one JSON object per line, `{"time","level","msg"}`, for a
//! container's log collector.
//!
//! In JSON mode every line reaches the same form whoever writes it: records of the `log` crate
//! are encoded directly; lines written to standard error in any other way (`eprintln!` across
//! the collector) go through a pipe that replaces file descriptor 2, and a thread turns each
//! `vethtrace: …` message into an object (`warning:` gives level `warn`). [`finish`] puts the
//! real standard error back once everything written so far is out.

use std::{
    fs::File,
    io::{self, Read, Write},
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    sync::{Mutex, OnceLock, mpsc},
    thread,
    time::Duration,
};

use crate::cli::LogFormat;

/// A message's severity, as the `level` key writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
        }
    }

    fn from_log(level: log::Level) -> Self {
        match level {
            log::Level::Error => Self::Error,
            log::Level::Warn => Self::Warn,
            log::Level::Info => Self::Info,
            log::Level::Debug | log::Level::Trace => Self::Debug,
        }
    }
}

/// JSON mode: the real standard error, and the thread reading the pipe that replaced it.
struct Json {
    stderr: Mutex<File>,
    capture: Mutex<Option<Capture>>,
}

struct Capture {
    done: mpsc::Receiver<()>,
}

static JSON: OnceLock<Json> = OnceLock::new();

/// Sets up logging (`RUST_LOG` filters the `log` crate's records, `warn` by default).
pub fn init(format: LogFormat) {
    let mut logger = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"));
    if format == LogFormat::Text || JSON.get().is_some() {
        logger.format_timestamp(None).init();
        return;
    }
    match start_json() {
        Ok(json) => {
            let json = JSON.get_or_init(|| json);
            logger
                .format(|buf, record| writeln!(buf, "{}", json_line(Level::from_log(record.level()), &record.args().to_string())))
                .target(env_logger::Target::Pipe(Box::new(RealStderr)))
                .init();
            // Only now: the thread writes to `JSON`.
            if let Err(e) = spawn_capture(json) {
                emit(Level::Warn, &format!("--log-format json: lines written to stderr directly stay plain text: {e}"));
            }
        }
        Err(e) => {
            logger.format_timestamp(None).init();
            eprintln!("vethtrace: warning: --log-format json is not available: {e}");
        }
    }
}

fn start_json() -> io::Result<Json> {
    let stderr = File::from(io::stderr().as_fd().try_clone_to_owned()?);
    Ok(Json { stderr: Mutex::new(stderr), capture: Mutex::new(None) })
}

fn spawn_capture(json: &'static Json) -> io::Result<()> {
    let (mut reader, writer) = io::pipe()?;
    redirect_stderr(OwnedFd::from(writer).as_fd())?;
    let (done_tx, done) = mpsc::channel();
    thread::Builder::new().name("vethtrace-log".into()).spawn(move || {
        let mut pending = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => pending.extend_from_slice(&chunk[..n]),
            }
            if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                let complete: Vec<u8> = pending.drain(..=end).collect();
                write_messages(json, &String::from_utf8_lossy(&complete));
            }
        }
        write_messages(json, &String::from_utf8_lossy(&pending));
        let _ = done_tx.send(());
    })?;
    *json.capture.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Capture { done });
    Ok(())
}

/// Points file descriptor 2 at `fd`.
fn redirect_stderr(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: dup2 on two open descriptors; descriptor 2 is replaced atomically and `fd`
    // stays owned by the caller.
    if unsafe { libc::dup2(fd.as_raw_fd(), libc::STDERR_FILENO) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// JSON mode: puts the real standard error back and waits (a second at most) until every
/// line written before is out. Call before the last messages of the process.
pub fn finish() {
    let Some(json) = JSON.get() else { return };
    let Some(capture) = json.capture.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() else {
        return;
    };
    let real = json.stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if redirect_stderr(real.as_fd()).is_ok() {
        drop(real);
        // EOF comes once no one else holds the pipe (a child may: then stop waiting).
        let _ = capture.done.recv_timeout(Duration::from_secs(1));
    }
}

/// One message: `vethtrace: [warning: ]…` in text, an object in JSON.
pub fn emit(level: Level, msg: &str) {
    match JSON.get() {
        Some(json) => {
            let mut out = json.stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = writeln!(out, "{}", json_line(level, msg));
        }
        None if level == Level::Warn => eprintln!("vethtrace: warning: {msg}"),
        None => eprintln!("vethtrace: {msg}"),
    }
}

/// The eBPF programs' own messages (aya-log), as vethtrace's warnings: `in the kernel: …`.
pub(crate) struct KernelLog;

impl log::Log for KernelLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = match Level::from_log(record.level()) {
            Level::Debug | Level::Info => return,
            level => level,
        };
        emit(level, &format!("in the kernel: {}: a struct layout may be wrong for this kernel", record.args()));
    }

    fn flush(&self) {}
}

/// The `log` crate's records in JSON mode go straight to the real standard error.
struct RealStderr;

impl Write for RealStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match JSON.get() {
            Some(json) => json.stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner).write(buf),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_messages(json: &Json, text: &str) {
    let mut out = json.stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for (level, msg) in messages(text) {
        let _ = writeln!(out, "{}", json_line(level, &msg));
    }
}

/// Splits text written to standard error into messages: each starts with `vethtrace: ` (lines
/// without it continue the message before, as a table does) and its level comes from its words.
pub fn messages(text: &str) -> Vec<(Level, String)> {
    let mut out: Vec<(Level, String)> = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("vethtrace: ") {
            Some(rest) => {
                let (level, msg) = match rest.strip_prefix("warning: ") {
                    Some(msg) => (Level::Warn, msg),
                    None if rest.starts_with("internal error") => (Level::Error, rest),
                    None => (Level::Info, rest),
                };
                out.push((level, msg.to_owned()));
            }
            None => match out.last_mut() {
                Some((_, msg)) => {
                    msg.push('\n');
                    msg.push_str(line);
                }
                None => out.push((Level::Info, line.to_owned())),
            },
        }
    }
    out
}

/// `{"time":"…Z","level":"…","msg":"…"}`
pub fn json_line(level: Level, msg: &str) -> String {
    let time = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    serde_json::json!({ "time": time, "level": level.name(), "msg": msg }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_take_their_level_and_continuation_lines() {
        let text = "vethtrace: tracing 2 interface(s)\nvethtrace: warning: drops are not traced: x\n\
                    vethtrace: drops by reason:\nNEIGH_FAILED cali1 3\nQDISC_DROP cali2 1\n";
        let m = messages(text);
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(m[0], (Level::Info, "tracing 2 interface(s)".to_owned()));
        assert_eq!(m[1], (Level::Warn, "drops are not traced: x".to_owned()));
        assert_eq!(m[2], (Level::Info, "drops by reason:\nNEIGH_FAILED cali1 3\nQDISC_DROP cali2 1".to_owned()));
        assert_eq!(messages("stray\n"), vec![(Level::Info, "stray".to_owned())]);
    }

    #[test]
    fn a_json_line_is_one_object() {
        let line = json_line(Level::Warn, "a \"quoted\"\nsecond line");
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "a \"quoted\"\nsecond line");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}
