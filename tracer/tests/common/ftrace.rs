//! ftrace as the drop oracle where bpftrace cannot be one (bpftrace 0.17 without BTF, as on
//! 5.10: its programs attach and never run): the kernel's own `skb:kfree_skb` event recorded in
//! a private tracefs instance, its `trace` file read at the end. What the record has is what the
//! oracle gives: the dropping function (`location`, resolved through /proc/kallsyms here, not
//! with vethtrace's code), the protocol, the reason where the kernel has one (>= 5.17); not the
//! device (the record has none). Debian's 5.10 has no histogram triggers, and its `trace` file
//! prints the real addresses.
//!
//! The instance is removed when the value is dropped, also when a test panics.

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    thread,
    time::Duration,
};

use super::drop_oracle::{OracleDrop, kfree_skb_format};

/// A private tracefs instance `vt-<tag>-<pid>`, removed when dropped (also on a panic).
pub struct Instance {
    path: PathBuf,
    /// Events enabled (`system/event`), disabled before the instance goes.
    events: Vec<String>,
    /// Kprobe events defined for it ([`Instance::kprobe`]), removed after it.
    kprobes: Vec<String>,
}

impl Instance {
    pub fn new(tag: &str) -> Self {
        let (root, _) = kfree_skb_format();
        let path = root.join("instances").join(format!("vt-{tag}-{}", std::process::id()));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("tracefs instance {}: {e}", path.display()));
        Self { path, events: Vec::new(), kprobes: Vec::new() }
    }

    /// Defines the kprobe event `kprobes/<name>` on `function` with the fetch arguments `args`
    /// (`kprobe_events` is the whole tracefs's: the name should be unique, and the event is
    /// removed again after the instance) and records it here.
    pub fn kprobe(&mut self, name: &str, function: &str, args: &str) {
        let events = self.path.parent().and_then(Path::parent).expect("instances/<name>").join("kprobe_events");
        let definition = format!("p:kprobes/{name} {function} {args}\n");
        let mut file = fs::OpenOptions::new().append(true).open(&events).unwrap_or_else(|e| panic!("{}: {e}", events.display()));
        file.write_all(definition.as_bytes()).unwrap_or_else(|e| panic!("{}: {definition:?}: {e}", events.display()));
        self.kprobes.push(name.to_owned());
        self.enable(&format!("kprobes/{name}"));
    }

    /// Writes `what` to the instance's file `file` (`trace_clock`, `events/skb/kfree_skb/filter`).
    pub fn write(&self, file: &str, what: &str) {
        let path = self.path.join(file);
        fs::write(&path, what).unwrap_or_else(|e| panic!("{}: {what:?}: {e}", path.display()));
    }

    /// Whether the instance has `file` (options differ between kernels).
    pub fn has(&self, file: &str) -> bool {
        self.path.join(file).exists()
    }

    /// Starts recording `event` (`system/event`).
    pub fn enable(&mut self, event: &str) {
        self.write(&format!("events/{event}/enable"), "1");
        self.events.push(event.to_owned());
    }

    /// Stops recording; the records (the `trace` file's lines but its comments). Records lost
    /// (the buffer overflowed) fail the test.
    pub fn stop(&mut self) -> Vec<String> {
        for event in std::mem::take(&mut self.events) {
            self.write(&format!("events/{event}/enable"), "0");
        }
        let path = self.path.join("trace");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // "# entries-in-buffer/entries-written: 15/15   #P:2": fewer in the buffer is records lost.
        let counts = text.lines().find_map(|l| l.strip_prefix("# entries-in-buffer/entries-written: "));
        let kept = counts.and_then(|c| c.split_whitespace().next()?.split_once('/'));
        assert!(kept.is_some_and(|(a, b)| a == b), "{}: records lost or no header: {counts:?}", path.display());
        text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(str::to_owned).collect()
    }
}

pub struct Ftrace {
    instance: Instance,
    /// The event's reasons by name (`__print_symbolic` of its format); empty without reasons.
    reasons: Vec<(String, u64)>,
}

impl Ftrace {
    /// Starts recording every kfree_skb (with reasons, those at or above `first_drop_code`:
    /// the ones that are drops) in an instance of its own.
    pub fn start(tag: &str, first_drop_code: Option<u64>) -> Self {
        let (_, format) = kfree_skb_format();
        let mut instance = Instance::new(tag);
        let reasons = reason_names(&format);
        if let Some(code) = first_drop_code.filter(|_| !reasons.is_empty()) {
            instance.write("events/skb/kfree_skb/filter", &format!("reason >= {code}"));
        }
        instance.enable("skb/kfree_skb");
        Self { instance, reasons }
    }

    /// Stops recording; every drop recorded since [`Ftrace::start`].
    pub fn stop(mut self) -> Vec<OracleDrop> {
        let symbols = Symbols::load();
        self.instance
            .stop()
            .iter()
            .map(|l| parse_record(l, &symbols, &self.reasons).unwrap_or_else(|| panic!("kfree_skb: cannot read {l:?}")))
            .collect()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        for event in &self.events {
            let _ = fs::write(self.path.join(format!("events/{event}/enable")), "0");
        }
        let mut removed = false;
        for _ in 0..50 {
            if fs::remove_dir(&self.path).is_ok() {
                removed = true;
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        if !removed {
            eprintln!("tracefs instance {} could not be removed", self.path.display());
        }
        if let Some(events) = self.path.parent().and_then(Path::parent).map(|r| r.join("kprobe_events")) {
            for name in &self.kprobes {
                let removal = fs::OpenOptions::new().append(true).open(&events).and_then(|mut f| f.write_all(format!("-:kprobes/{name}\n").as_bytes()));
                if let Err(e) = removal {
                    eprintln!("kprobe event {name} could not be removed: {e}");
                }
            }
        }
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
