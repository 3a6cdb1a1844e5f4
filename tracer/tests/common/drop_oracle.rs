//! The independent oracle of the drop tests (tests/drops.rs, tests/podside.rs): what the
//! kernel's `skb:kfree_skb` tracepoint recorded while vethtrace ran, read by another tool.
//!
//! bpftrace where it has the kernel's BTF (`bpftrace --info`: "btf: yes"; 6.1, 6.12, 6.18): it
//! names each drop's device and that device's network namespace. Without BTF bpftrace cannot
//! read `skb->dev`, and on 5.10 (bpftrace 0.17, "btf: no") its kprobe and tracepoint programs
//! attach and never run; there the oracle is ftrace's own records of the event
//! ([`super::ftrace`]), which knows the dropping function, the protocol and the reason where the
//! kernel has one, but not the device. The choice is that measured fact, not a kernel version.
//! VETHTRACE_NO_ORACLE=1 leaves the oracle out (said loudly).

use std::{collections::BTreeSet, fs, os::unix::fs::MetadataExt as _, path::PathBuf, thread, time::Duration};

use serde_json::Value;

use super::{bpftrace::Bpftrace, ftrace::Ftrace};

/// One drop the oracle saw.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OracleDrop {
    /// The device's network namespace inode and name; `None` when the oracle cannot tell
    /// (ftrace). A drop without a device reads as `(0, "")`.
    pub at: Option<(u64, String)>,
    /// The reason code (`None` on kernels without reasons).
    pub code: Option<u64>,
    /// The dropping function (`location`, resolved).
    pub symbol: String,
    /// `skb->protocol`, host order.
    pub protocol: u16,
}

/// A running oracle.
pub enum DropOracle {
    Bpftrace(Bpftrace),
    Ftrace(Ftrace),
}

impl DropOracle {
    /// Starts the oracle for a test (`tag` names its files); `None` with VETHTRACE_NO_ORACLE=1.
    pub fn start(tag: &str) -> Option<Self> {
        if std::env::var_os("VETHTRACE_NO_ORACLE").is_some_and(|v| v == "1") {
            eprintln!("{tag}: VETHTRACE_NO_ORACLE=1: NOT comparing with an oracle");
            return None;
        }
        if bpftrace_has_btf() {
            return Some(Self::Bpftrace(Bpftrace::start(tag, &bpftrace_script())));
        }
        eprintln!(
            "{tag}: bpftrace has no BTF here (bpftrace --info): the oracle is ftrace's skb/kfree_skb event (no devices)"
        );
        Some(Self::Ftrace(Ftrace::start(tag, not_specified_code())))
    }

    /// Stops it; every drop it saw.
    pub fn stop(self) -> Vec<OracleDrop> {
        match self {
            Self::Bpftrace(bt) => parse_bpftrace(&bt.stop()),
            Self::Ftrace(ft) => ft.stop(),
        }
    }
}

/// Whether bpftrace finds the kernel's BTF. `bpftrace --info` writes its report to standard
/// error.
pub fn bpftrace_has_btf() -> bool {
    let info = std::process::Command::new("bpftrace")
        .arg("--info")
        .output()
        .expect("bpftrace is the oracle of this test (apt install bpftrace; VETHTRACE_NO_ORACLE=1 to leave it out)");
    String::from_utf8_lossy(&[info.stdout, info.stderr].concat()).contains("btf: yes")
}

/// The bpftrace program: every kfree_skb that is a drop (codes below NOT_SPECIFIED are not:
/// SKB_NOT_DROPPED_YET, and SKB_CONSUMED on 6.x; without reasons, < 5.17, every kfree_skb is
/// one, frees that are not drops go through consume_skb), as `DROP netns code function
/// protocol device` (code `-` without reasons; the device last, as a drop without one prints
/// an empty name).
fn bpftrace_script() -> String {
    let has_reason = kfree_skb_has_reason();
    let filter =
        not_specified_code().filter(|_| has_reason).map_or_else(String::new, |c| format!("/args->reason >= {c}/"));
    let (code_fmt, code_arg) = if has_reason { ("%d", "args->reason, ") } else { ("-", "") };
    format!(
        r#"tracepoint:skb:kfree_skb {filter} {{
  $dev = ((struct sk_buff *)args->skbaddr)->dev;
  printf("DROP %u {code_fmt} %s %u %s\n", $dev->nd_net.net->ns.inum, {code_arg}ksym(args->location), args->protocol, $dev->name);
}}"#
    )
}

fn parse_bpftrace(text: &str) -> Vec<OracleDrop> {
    text.lines()
        .filter_map(|l| match l.strip_prefix("DROP ")?.split_whitespace().collect::<Vec<_>>()[..] {
            [netns, code, symbol, protocol, ref dev @ ..] => Some(OracleDrop {
                at: Some((netns.parse().ok()?, dev.first().map_or("", |d| d).to_owned())),
                code: if code == "-" { None } else { Some(code.parse().ok()?) },
                symbol: symbol.to_owned(),
                protocol: protocol.parse().ok()?,
            }),
            _ => None,
        })
        .collect()
}

/// NOT_SPECIFIED's code, from the tracepoint's own print format (`{ 2, "NOT_SPECIFIED" }` in
/// its __print_symbolic list: 2 on 6.18, 1 on 6.1); `None` without reasons.
pub fn not_specified_code() -> Option<u64> {
    let (_, text) = kfree_skb_format();
    let at = text.find("\"NOT_SPECIFIED\"")?;
    let open = text[..at].rfind('{')?;
    text[open + 1..at].trim().trim_end_matches(',').trim().parse().ok()
}

/// The tracefs root and the tracepoint's format file. Read again for up to 20 s when it fails:
/// once, in a fresh-clone CI run, every read failed for at least 8 s while other tests had just
/// run (tracefs mounted, the file there a minute later); the panic says how each root failed.
pub fn kfree_skb_format() -> (PathBuf, String) {
    let roots = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
    let mut errors = Vec::new();
    for _ in 0..200 {
        errors.clear();
        for root in roots {
            match fs::read_to_string(format!("{root}/events/skb/kfree_skb/format")) {
                Ok(text) => return (root.into(), text),
                Err(e) => errors.push(format!("{root}: {e}")),
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("tracefs with events/skb/kfree_skb/format (vethtrace mounts it when it starts): {}", errors.join("; "));
}

/// Whether skb:kfree_skb carries a reason (Linux >= 5.17).
pub fn kfree_skb_has_reason() -> bool {
    kfree_skb_format().1.contains(" reason;")
}

/// The inode of a named network namespace (what the kernel's `net->ns.inum` holds).
pub fn netns_inum(ns: &str) -> u64 {
    fs::metadata(format!("/run/netns/{ns}")).unwrap_or_else(|e| panic!("netns {ns}: {e}")).ino()
}

/// `skb->protocol` of a drop event, from its `ethertype`.
fn protocol(d: &Value) -> u16 {
    match d["ethertype"].as_str() {
        Some("ipv4") => 0x0800,
        Some("ipv6") => 0x86dd,
        Some("arp") => 0x0806,
        Some(hex) => hex
            .strip_prefix("0x")
            .and_then(|h| u16::from_str_radix(h, 16).ok())
            .unwrap_or_else(|| panic!("ethertype: {d:#}")),
        None => panic!("no ethertype: {d:#}"),
    }
}

/// What the oracle and vethtrace both say of a drop: reason code, dropping function, protocol.
type Key<'a> = (Option<u64>, &'a str, u16);

/// How vethtrace's drops must agree with the oracle's.
pub struct Agreement<'a> {
    /// Where the drops happened: a network namespace inode and a device.
    pub netns: u64,
    pub dev: &'a str,
    /// Functions whose drops at that place vethtrace leaves out by design.
    pub ignored: &'a [&'a str],
    /// Where the oracle names devices: the oracle's drops at that place are exactly vethtrace's
    /// (else vethtrace's are among them, as below).
    pub exact: bool,
}

impl Agreement<'_> {
    /// Checks vethtrace's drop events `ours` against the oracle's `seen`. The oracle ran the
    /// whole time vethtrace did, and longer. Every (reason, function, protocol) vethtrace
    /// reports, the oracle saw at that place; every drop of the fault the oracle saw there (in
    /// the functions and of the protocols vethtrace reported drops of), vethtrace reported, and no more of them than
    /// the oracle counted. Where the oracle cannot tell the place (ftrace), "there" is anywhere:
    /// the comparison is of functions, protocols, reasons and counts.
    pub fn check(&self, seen: &[OracleDrop], ours: &[&Value]) {
        assert!(!ours.is_empty(), "no drops of vethtrace's to compare");
        let places = seen.iter().all(|o| o.at.is_some());
        let theirs: Vec<&OracleDrop> = seen
            .iter()
            .filter(|o| o.at.as_ref().is_none_or(|(ns, dev)| *ns == self.netns && dev == self.dev))
            .filter(|o| !self.ignored.contains(&o.symbol.as_str()))
            .collect();
        let what =
            if places { format!("on {} in netns {}", self.dev, self.netns) } else { "anywhere (ftrace)".to_owned() };
        assert!(!theirs.is_empty(), "the oracle saw no drop {what}; vethtrace reported {ours:#?}");
        let theirs_set: BTreeSet<Key<'_>> = theirs.iter().map(|o| (o.code, o.symbol.as_str(), o.protocol)).collect();
        let ours_set: BTreeSet<Key<'_>> = ours
            .iter()
            .map(|d| {
                (d["reason_code"].as_u64(), d["location"].as_str().unwrap().split('+').next().unwrap(), protocol(d))
            })
            .collect();
        assert!(
            ours_set.is_subset(&theirs_set),
            "vethtrace reports drops the oracle never saw {what}: {ours_set:?} vs {theirs:#?}"
        );
        // The fault's drops: those in the functions and of the protocols vethtrace reported
        // (the oracle runs longer: the node's own ARP and neighbour discovery meet the same
        // fault before and after vethtrace's window).
        let fault: BTreeSet<(&str, u16)> = ours_set.iter().map(|(_, f, p)| (*f, *p)).collect();
        let compared: Vec<&&OracleDrop> = if self.exact && places {
            theirs.iter().collect()
        } else {
            theirs.iter().filter(|o| fault.contains(&(o.symbol.as_str(), o.protocol))).collect()
        };
        let compared_set: BTreeSet<Key<'_>> =
            compared.iter().map(|o| (o.code, o.symbol.as_str(), o.protocol)).collect();
        assert_eq!(ours_set, compared_set, "vethtrace missed drops the oracle saw {what}: {compared:#?}");
        assert!(
            compared.len() >= ours.len(),
            "the oracle saw {} drops {what}, vethtrace {}",
            compared.len(),
            ours.len()
        );
    }
}
