//! vethtrace's one way to speak: every message goes through the `log` crate and leaves here,
//! on standard error, formatted by one function: `vethtrace: …` lines (the default; a warning
//! says `warning: `), or with `--log-format json` one JSON object per line,
//! `{"time","level","msg"}`, for a container's log collector.
//!
//! Which messages show: vethtrace's own from `info` up, other crates' from `warn` up, unless
//! `RUST_LOG` says otherwise (e.g. `RUST_LOG=debug`).

use std::{
    io::Write,
    sync::atomic::{AtomicBool, Ordering},
};

use crate::cli::LogFormat;

/// JSON lines instead of text (set once the flags are read; text until then).
static JSON: AtomicBool = AtomicBool::new(false);

/// What shows when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "warn,tracer=info,vethtrace=info";

/// Installs the logger, in text until [`set_format`] says otherwise; call first thing, so
/// that even a bad flag or a panic is told through it.
pub fn init() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(DEFAULT_FILTER))
        .format(|buf, record| writeln!(buf, "{}", line(record.level(), &record.args().to_string())))
        .target(env_logger::Target::Stderr)
        .try_init();
}

pub fn set_format(format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
}

/// One message, in the format in force.
fn line(level: log::Level, msg: &str) -> String {
    if JSON.load(Ordering::Relaxed) { json_line(level, msg) } else { text_line(level, msg) }
}

/// `vethtrace: …`, `vethtrace: warning: …`, `vethtrace: debug: …`.
pub fn text_line(level: log::Level, msg: &str) -> String {
    match level {
        log::Level::Warn => format!("vethtrace: warning: {msg}"),
        log::Level::Debug | log::Level::Trace => format!("vethtrace: debug: {msg}"),
        log::Level::Error | log::Level::Info => format!("vethtrace: {msg}"),
    }
}

/// `{"time":"…Z","level":"…","msg":"…"}`
pub fn json_line(level: log::Level, msg: &str) -> String {
    let time = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let level = match level {
        log::Level::Error => "error",
        log::Level::Warn => "warn",
        log::Level::Info => "info",
        log::Level::Debug | log::Level::Trace => "debug",
    };
    serde_json::json!({ "time": time, "level": level, "msg": msg }).to_string()
}

/// The eBPF programs' own messages (aya-log), as vethtrace's warnings: `in the kernel: …`.
pub(crate) struct KernelLog;

impl log::Log for KernelLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= log::Level::Warn {
            log::log!(record.level(), "in the kernel: {}: a struct layout may be wrong for this kernel", record.args());
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use log::Level;

    use super::*;

    #[test]
    fn a_text_line_names_warnings_and_debug_only() {
        assert_eq!(text_line(Level::Info, "tracing 2 interface(s)"), "vethtrace: tracing 2 interface(s)");
        assert_eq!(text_line(Level::Warn, "drops are not traced: x"), "vethtrace: warning: drops are not traced: x");
        assert_eq!(text_line(Level::Error, "no BTF"), "vethtrace: no BTF");
        assert_eq!(text_line(Level::Debug, "skipped"), "vethtrace: debug: skipped");
    }

    #[test]
    fn a_json_line_is_one_object() {
        let line = json_line(Level::Warn, "a \"quoted\"\nsecond line");
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "a \"quoted\"\nsecond line");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        let levels: Vec<String> = [Level::Error, Level::Info, Level::Trace]
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(&json_line(*l, "m")).unwrap()["level"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(levels, ["error", "info", "debug"]);
    }
}
