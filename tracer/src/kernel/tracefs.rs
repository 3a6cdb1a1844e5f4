//! Tracepoint record layouts from tracefs `format` files. The layouts differ between kernels
//! (skb:kfree_skb gained `rx_sk` in 6.x, moving `protocol` and `reason`), so they are read at
//! run time and handed to the programs as globals.

use std::{
    collections::HashMap,
    ffi::CString,
    fs,
    path::{Path, PathBuf},
};

const ROOTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error("tracefs is not mounted and mounting it at /sys/kernel/tracing failed: {0}")]
    Mount(std::io::Error),
    #[error("tracepoint {0} does not exist on this kernel")]
    NoEvent(String),
    #[error("tracepoint {event} has no field {field}")]
    NoField { event: String, field: String },
}

/// One field of a tracepoint record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub offset: u32,
    pub size: u32,
    pub signed: bool,
}

/// The fields of one tracepoint, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Format {
    pub event: String,
    pub fields: HashMap<String, Field>,
}

impl Format {
    pub fn field(&self, name: &str) -> Result<Field, TracefsError> {
        self.fields
            .get(name)
            .copied()
            .ok_or_else(|| TracefsError::NoField { event: self.event.clone(), field: name.into() })
    }

    /// Parses the text of a `format` file.
    pub fn parse(event: &str, text: &str) -> Self {
        let fields = text
            .lines()
            .filter_map(|l| parse_field(l.trim()))
            .collect();
        Self { event: event.into(), fields }
    }
}

/// `field:void * skbaddr; offset:8; size:8; signed:0;` (tab-separated) → ("skbaddr", Field).
fn parse_field(line: &str) -> Option<(String, Field)> {
    let mut parts = line.split(';').map(str::trim);
    let decl = parts.next()?.strip_prefix("field:")?;
    let mut value = |key: &str| parts.next()?.strip_prefix(key)?.parse::<u32>().ok();
    let offset = value("offset:")?;
    let size = value("size:")?;
    let signed = value("signed:")? != 0;
    // The name is the last word of the declaration, without any array suffix.
    let name = decl.rsplit([' ', '*']).next()?.split('[').next()?.to_owned();
    Some((name, Field { offset, size, signed }))
}

/// The tracefs root, mounting it when nothing is mounted (inside `ip netns exec`, /sys is a
/// fresh sysfs without tracefs).
pub fn root() -> Result<PathBuf, TracefsError> {
    if let Some(found) = ROOTS.iter().map(Path::new).find(|r| r.join("events").is_dir()) {
        return Ok(found.to_path_buf());
    }
    let target = CString::new(ROOTS[0]).expect("static path has no NUL");
    // SAFETY: plain mount(2) with valid NUL-terminated strings and no data.
    let rc = unsafe {
        libc::mount(c"tracefs".as_ptr(), target.as_ptr(), c"tracefs".as_ptr(), 0, std::ptr::null())
    };
    if rc != 0 {
        return Err(TracefsError::Mount(std::io::Error::last_os_error()));
    }
    Ok(PathBuf::from(ROOTS[0]))
}

/// Reads `events/<system>/<name>/format`.
pub fn format(system: &str, name: &str) -> Result<Format, TracefsError> {
    let event = format!("{system}:{name}");
    let path = root()?.join("events").join(system).join(name).join("format");
    let text = fs::read_to_string(&path).map_err(|_| TracefsError::NoEvent(event.clone()))?;
    Ok(Format::parse(&event, &text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// skb:kfree_skb as Linux 6.18 prints it.
    const KFREE_SKB_6_18: &str = "name: kfree_skb
ID: 1637
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;
\tfield:void * rx_sk;\toffset:24;\tsize:8;\tsigned:0;
\tfield:unsigned short protocol;\toffset:32;\tsize:2;\tsigned:0;
\tfield:enum skb_drop_reason reason;\toffset:36;\tsize:4;\tsigned:0;

print fmt: \"skbaddr=%p\"
";

    #[test]
    fn parses_fields_and_offsets() {
        let f = Format::parse("skb:kfree_skb", KFREE_SKB_6_18);
        assert_eq!(f.field("skbaddr").unwrap(), Field { offset: 8, size: 8, signed: false });
        assert_eq!(f.field("protocol").unwrap().offset, 32);
        assert_eq!(f.field("reason").unwrap(), Field { offset: 36, size: 4, signed: false });
        assert_eq!(f.field("common_pid").unwrap(), Field { offset: 4, size: 4, signed: true });
        assert!(matches!(f.field("nope"), Err(TracefsError::NoField { .. })));
    }

    #[test]
    fn array_fields_lose_their_suffix() {
        let (name, field) = parse_field("field:u8 lladdr[32];\toffset:12;\tsize:32;\tsigned:0;").unwrap();
        assert_eq!(name, "lladdr");
        assert_eq!(field.size, 32);
        assert_eq!(parse_field("print fmt: \"x\""), None);
    }
}
