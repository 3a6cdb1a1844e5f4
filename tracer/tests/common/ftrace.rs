//! ftrace as the drop oracle where bpftrace cannot be one (bpftrace 0.17 without BTF, as on
//! 5.10: its programs attach and never run): the kernel's own `skb:kfree_skb` event recorded in
//! a private tracefs instance, its `trace` file read at the end. What the record has is what the
//! oracle gives: the dropping function (`location`, resolved through /proc/kallsyms here, not
//! with vethtrace's code), the protocol, the reason where the kernel has one (>= 5.17); not the
//! device (the record has none). Debian's 5.10 has no histogram triggers, and its `trace` file
//! prints the real addresses.
//!
//! The instance is removed when the value is dropped, also when a test panics.

use std::{fs, path::PathBuf, thread, time::Duration};

use super::drop_oracle::{OracleDrop, kfree_skb_format};

pub struct Ftrace {
    instance: PathBuf,
    /// The event's reasons by name (`__print_symbolic` of its format); empty without reasons.
    reasons: Vec<(String, u64)>,
}

impl Ftrace {
    /// Makes the instance `vt-<tag>-<pid>` and starts recording every kfree_skb (with reasons,
    /// those at or above `first_drop_code`: the ones that are drops).
    pub fn start(tag: &str, first_drop_code: Option<u64>) -> Self {
        let (root, format) = kfree_skb_format();
        let instance = root.join("instances").join(format!("vt-{tag}-{}", std::process::id()));
        fs::create_dir(&instance).unwrap_or_else(|e| panic!("tracefs instance {}: {e}", instance.display()));
        let ft = Self { instance, reasons: reason_names(&format) };
        if let Some(code) = first_drop_code.filter(|_| !ft.reasons.is_empty()) {
            ft.write("filter", &format!("reason >= {code}"));
        }
        ft.write("enable", "1");
        ft
    }

    fn write(&self, file: &str, what: &str) {
        let path = self.instance.join("events/skb/kfree_skb").join(file);
        fs::write(&path, what).unwrap_or_else(|e| panic!("{}: {what:?}: {e}", path.display()));
    }

    /// Stops recording; every drop recorded since [`Ftrace::start`].
    pub fn stop(self) -> Vec<OracleDrop> {
        self.write("enable", "0");
        let path = self.instance.join("trace");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // "# entries-in-buffer/entries-written: 15/15   #P:2": fewer in the buffer is records lost.
        let counts = text.lines().find_map(|l| l.strip_prefix("# entries-in-buffer/entries-written: "));
        let kept = counts.and_then(|c| c.split_whitespace().next()?.split_once('/'));
        assert!(kept.is_some_and(|(a, b)| a == b), "{}: records lost or no header: {counts:?}", path.display());
        let symbols = Symbols::load();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                parse_record(l, &symbols, &self.reasons)
                    .unwrap_or_else(|| panic!("{}: cannot read {l:?}", path.display()))
            })
            .collect()
    }
}

impl Drop for Ftrace {
    fn drop(&mut self) {
        let _ = fs::write(self.instance.join("events/skb/kfree_skb/enable"), "0");
        for _ in 0..50 {
            if fs::remove_dir(&self.instance).is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        eprintln!("tracefs instance {} could not be removed", self.instance.display());
    }
}

/// `{ 2, "NOT_SPECIFIED" }` pairs of the event's print format.
fn reason_names(format: &str) -> Vec<(String, u64)> {
    format
        .split('{')
        .skip(1)
        .filter_map(|p| {
            let (code, rest) = p.split_once(',')?;
            let name = rest.trim_start().strip_prefix('"')?.split('"').next()?;
            Some((name.to_owned(), code.trim().parse().ok()?))
        })
        .collect()
}

/// One line of the `trace` file: `… kfree_skb: skbaddr=ffff… protocol=2048
/// location=ffffffff891b1aad` (5.10), or with `location=ip_error+0x7d/0x1b0 reason: NAME`.
pub fn parse_record(line: &str, symbols: &Symbols, reasons: &[(String, u64)]) -> Option<OracleDrop> {
    let fields = line.split_once("kfree_skb: ")?.1;
    let value = |key: &str| fields.split_whitespace().find_map(|w| w.strip_prefix(key));
    let location = value("location=")?;
    let symbol = match u64::from_str_radix(location, 16) {
        Ok(addr) => symbols.function(addr)?,
        Err(_) => location.split('+').next()?,
    };
    let code = match fields.split_once(" reason: ") {
        Some((_, name)) => Some(reasons.iter().find(|(n, _)| n == name.trim())?.1),
        None => None,
    };
    Some(OracleDrop { at: None, code, symbol: symbol.to_owned(), protocol: value("protocol=")?.parse().ok()? })
}

/// Kernel text symbols by address, from /proc/kallsyms.
pub struct Symbols(Vec<(u64, String)>);

impl Symbols {
    fn load() -> Self {
        Self::parse(&fs::read_to_string("/proc/kallsyms").expect("/proc/kallsyms"))
    }

    pub fn parse(text: &str) -> Self {
        let mut syms: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
                [addr, kind, name, ..] if kind.eq_ignore_ascii_case("t") => {
                    Some((u64::from_str_radix(addr, 16).ok()?, name.to_owned()))
                }
                _ => None,
            })
            .collect();
        syms.sort_unstable();
        Self(syms)
    }

    /// The function `addr` lies in.
    fn function(&self, addr: u64) -> Option<&str> {
        let at = self.0.partition_point(|(a, _)| *a <= addr).checked_sub(1)?;
        let (start, name) = &self.0[at];
        (*start != 0).then_some(name.as_str())
    }
}
