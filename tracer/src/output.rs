//! What every printer shares: the formats, the wall-clock time, and the byte writers
//! ([`write`]) and JSON key macros the kinds' printers (`crate::events`) write with, into a
//! reusable buffer that the caller flushes once per ring-buffer drain.

pub mod write;

use time::OffsetDateTime;

/// `,"name":` as one write (one update of the buffer's length, not three).
macro_rules! key {
    ($out:expr, $name:literal) => {
        $crate::output::write::put($out, concat!(",\"", $name, "\":"))
    };
}
pub(crate) use key;

/// `,"name":"…"` — the key and the opening quote as one write, `$body` writing the value.
macro_rules! key_quoted {
    ($out:expr, $name:literal, |$o:ident| $body:expr) => {{
        $crate::output::write::put($out, concat!(",\"", $name, "\":\""));
        let $o: &mut Vec<u8> = $out;
        $body;
        $o.push(b'"');
    }};
}
pub(crate) use key_quoted;

/// A `,"key":N` pair.
macro_rules! put_number {
    ($out:expr, $name:literal, $n:expr) => {{
        $crate::output::key!($out, $name);
        $crate::output::write::put_u64($out, $n);
    }};
}
pub(crate) use put_number;

/// `"key":"word"` for a known name, `"key":"N"` otherwise (the serde derive's `String`s).
macro_rules! put_name {
    ($out:expr, $name:literal, $word:expr, |$o:ident| $number:expr) => {
        $crate::output::key_quoted!($out, $name, |$o| match $word {
            Some(w) => $crate::output::write::put($o, w),
            None => $number,
        })
    };
}
pub(crate) use put_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub(crate) fn wall_time(wall_ns: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(wall_ns).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
