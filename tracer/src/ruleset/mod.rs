//! The node's netfilter ruleset, kept like the network mirror: node state the session owns and
//! lends to the pipeline. It names the rule behind a netfilter drop (NETFILTER_DROP, or
//! `nf_hook_slow` on kernels without reasons) by the counters that moved: the kernel says a
//! netfilter hook dropped the packet, never which rule, and vethtrace never changes the
//! ruleset (no trace or LOG rules) — so it reads every rule's counter before and after the
//! drop and names the one dropping rule whose counter moved. Several moved: "could not tell",
//! with the candidates. One read serves every drop that happened before it started, so a drop
//! storm costs one read per read's duration, not one per drop.
//!
//! Reading: `iptables-nft-save -c`/`ip6tables-nft-save -c` (iptables-nft's tables, with their
//! comment matches), `iptables-legacy-save -c` when legacy tables exist, and `nft -j list
//! table` for each table native to nftables (Calico's nftables mode) — the distributions' own
//! tools, which know every match and expression, rather than a netlink decoder of ours (that
//! would be cheaper per read: see the README's cost). [`watch`] follows
//! nf_tables' change announcements: a chain changed between two reads has counters that may
//! have started again at 0, and is never compared as if it had not.

pub(crate) mod calico;
pub(crate) mod iptsave;
pub(crate) mod model;
pub(crate) mod nft;
pub(crate) mod policies;
pub(crate) mod watch;

use std::{collections::HashMap, process::Command, sync::Arc};

use self::{
    calico::Reading,
    model::{Backend, Chain, Rule, RuleKey, Ruleset, Table},
};

#[derive(Debug, thiserror::Error)]
pub(crate) enum RulesetError {
    #[error("cannot run {cmd}: {source}")]
    Spawn {
        cmd: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{cmd} failed: {stderr}")]
    Failed { cmd: &'static str, stderr: String },
    #[error("{0}")]
    NftJson(#[from] nft::NftJsonError),
}

impl RulesetError {
    /// The tool is not installed.
    fn is_missing_tool(&self) -> bool {
        matches!(self, Self::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

pub(crate) use crate::kernel::monotonic_ns;

fn output(cmd: &'static str, args: &[&str]) -> Result<String, RulesetError> {
    let out = Command::new(cmd).args(args).output().map_err(|source| RulesetError::Spawn { cmd, source })?;
    if !out.status.success() {
        return Err(RulesetError::Failed { cmd, stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned() });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether the legacy iptables of `family` has tables (the module loaded and used).
fn legacy_in_use(proc_file: &str) -> bool {
    std::fs::read_to_string(proc_file).is_ok_and(|s| !s.trim().is_empty())
}

/// One read of the whole ruleset: iptables' tables (both backends) and nftables' own.
pub(crate) fn read() -> Result<Ruleset, RulesetError> {
    let mut tables = Vec::new();
    let mut last_err = None;
    for (cmd, family) in [("iptables-nft-save", "ip"), ("ip6tables-nft-save", "ip6")] {
        match output(cmd, &["-c"]) {
            Ok(text) => tables.extend(iptsave::parse(&text, Backend::IptablesNft, family)),
            Err(e) => last_err = Some(e),
        }
    }
    for (cmd, family, proc_file) in [
        ("iptables-legacy-save", "ip", "/proc/net/ip_tables_names"),
        ("ip6tables-legacy-save", "ip6", "/proc/net/ip6_tables_names"),
    ] {
        if legacy_in_use(proc_file) {
            tables.extend(iptsave::parse(&output(cmd, &["-c"])?, Backend::IptablesLegacy, family));
        }
    }
    // iptables-nft's tables are nf_tables tables too: nft shows them without their comments,
    // and listing them costs (0.3 s for 7000 rules): only nftables' own are listed.
    let ipt: Vec<(String, String)> = tables
        .iter()
        .filter(|t| t.backend == Backend::IptablesNft)
        .map(|t| (t.family.clone(), t.name.clone()))
        .collect();
    let skip = |f: &str, n: &str| ipt.iter().any(|(tf, tn)| tf == f && tn == n);
    let native = match output("nft", &["-j", "list", "tables"]) {
        Ok(text) => nft::parse(&text, &skip)?,
        Err(e) if tables.is_empty() => return Err(last_err.unwrap_or(e)),
        Err(e) => {
            log::debug!("nftables not read: {e}");
            Vec::new()
        }
    };
    for t in native {
        // A table deleted since it was listed is simply not there.
        match output("nft", &["-j", "list", "table", &t.family, &t.name]) {
            Ok(text) => tables.extend(nft::parse(&text, &skip)?),
            Err(e) => log::debug!("nftables table {} not read: {e}", t.label()),
        }
    }
    Ok(Ruleset { tables })
}

/// `vethtrace check`'s line: what one read finds (information: without it netfilter drops keep
/// the plain cause).
pub(crate) fn summary() -> Result<String, String> {
    let ruleset = read().map_err(|e| format!("{e}; netfilter drops are not named by rule"))?;
    let mut by_backend: Vec<(Backend, usize, usize)> = Vec::new();
    for t in &ruleset.tables {
        let rules = t.chains.iter().map(|c| c.rules.len()).sum::<usize>();
        match by_backend.iter_mut().find(|(b, ..)| *b == t.backend) {
            Some((_, tables, n)) => (*tables, *n) = (*tables + 1, *n + rules),
            None => by_backend.push((t.backend, 1, rules)),
        }
    }
    let parts: Vec<String> =
        by_backend.iter().map(|(b, t, n)| format!("{}: {t} table(s), {n} rules", b.name())).collect();
    Ok(if parts.is_empty() {
        "no rules read (nothing to name)".to_owned()
    } else {
        parts.join("; ") + "; drops by a rule are named"
    })
}

/// One read and when it ran.
struct Snapshot {
    start_ns: u64,
    end_ns: u64,
    ruleset: Arc<Ruleset>,
    counters: HashMap<RuleKey, Option<u64>>,
}

/// A rule named, where it is and what it is in Calico's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleRef {
    pub backend: Backend,
    /// `ip filter`, `ip calico`.
    pub table: String,
    pub chain: String,
    pub handle: Option<u64>,
    /// 1-based; 0 for the chain's policy.
    pub position: u32,
    pub comment: Option<String>,
    pub reading: Reading,
}

impl RuleRef {
    fn new(t: &Table, c: &Chain, r: &Rule) -> Self {
        Self {
            backend: t.backend,
            table: t.label(),
            chain: c.name.clone(),
            handle: r.handle,
            position: r.position,
            comment: r.comment.clone(),
            reading: calico::read(t, c, r),
        }
    }

    /// `ip filter cali-pi-x #2` (`handle 7` for nftables, `policy` for a chain's policy).
    pub(crate) fn label(&self) -> String {
        match (self.handle, self.position) {
            (Some(h), _) => format!("{} {} handle {h}", self.table, self.chain),
            (None, 0) => format!("{} {} policy", self.table, self.chain),
            (None, p) => format!("{} {} #{p}", self.table, self.chain),
        }
    }
}

/// Which rule dropped a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attribution {
    Named(Box<RuleRef>),
    /// Several dropping rules moved (or may have: rewritten, uncounted) since the last read.
    Ambiguous(Vec<RuleRef>),
    /// No counted dropping rule moved, or the ruleset could not be read: why.
    Unknown(&'static str),
}

/// The interfaces a drop concerns: its device and the one its destination is routed out of;
/// endpoint chains of other interfaces cannot have dropped it.
/// Tables of the other IP family cannot have dropped it either.
pub(crate) struct DropDevs<'a> {
    pub dev: Option<&'a str>,
    pub out: Option<&'a str>,
    /// `ip` or `ip6` for an IPv4 or IPv6 packet, `None` when neither.
    pub family: Option<&'static str>,
}

impl DropDevs<'_> {
    fn relevant(&self, t: &Table, c: &Chain) -> bool {
        let other_family = matches!((self.family, t.family.as_str()), (Some("ip"), "ip6") | (Some("ip6"), "ip"));
        if other_family {
            return false;
        }
        let name = calico::logical(t, &c.name);
        let iface = name.strip_prefix("cali-tw-").or_else(|| name.strip_prefix("cali-fw-"));
        iface.is_none_or(|i| self.dev == Some(i) || self.out == Some(i))
    }
}

/// Whether a dropping rule's counter moved between two reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    Moved,
    /// It may have: its chain changed, its counter went down, or it has no counter.
    Maybe,
    Still,
}

/// The counter of a rule in `after`, against `before` (`changed`: its chain changed between).
pub(crate) fn compare(before: Option<Option<u64>>, now: Option<u64>, changed: bool) -> Counted {
    match (before, now) {
        (_, None) | (Some(None), Some(_)) => Counted::Maybe,
        // A rule new since `before`: its counter started at 0 after that read.
        (None, Some(n)) => {
            if n > 0 {
                Counted::Moved
            } else {
                Counted::Still
            }
        }
        (Some(Some(b)), Some(n)) if n > b => {
            if changed {
                Counted::Maybe
            } else {
                Counted::Moved
            }
        }
        (Some(Some(b)), Some(n)) if n < b => Counted::Maybe,
        (Some(Some(_)), Some(n)) => {
            if changed && n > 0 {
                Counted::Maybe
            } else {
                Counted::Still
            }
        }
    }
}

/// The live model: the latest reads of the ruleset, with the changes seen between them.
pub(crate) struct RulesetModel {
    snapshots: Vec<Snapshot>,
    changes: Option<watch::Changes>,
    /// Reads that failed, told once.
    warned: bool,
}

/// The shortest time between two reads made for drops: bounds the processes a storm of
/// netfilter drops starts (at most ten reads a second) at the price of the collector waiting up
/// to this long for the read that names them.
const READ_GAP_NS: u64 = 100_000_000;

/// Reads kept: enough to bracket any drop still in the ring.
const KEPT: usize = 8;

impl RulesetModel {
    /// A first read (the baseline the first drop is compared with) and the change watch.
    pub(crate) fn start() -> Self {
        let changes = watch::Changes::follow()
            .inspect_err(|e| {
                log::warn!(
                    "cannot follow nftables changes ({e}); a rewritten rule is told only by its counter going down"
                )
            })
            .ok();
        let mut m = Self { snapshots: Vec::new(), changes, warned: false };
        m.refresh();
        if let Some(s) = m.snapshots.last() {
            let rules: usize = s.ruleset.tables.iter().flat_map(|t| &t.chains).map(|c| c.rules.len()).sum();
            log::info!(
                "netfilter ruleset: {} tables, {rules} rules read; drops by a rule are named by its counter",
                s.ruleset.tables.len()
            );
        }
        m
    }

    /// Reads the ruleset now.
    pub(crate) fn refresh(&mut self) {
        let start_ns = monotonic_ns();
        match read() {
            Ok(ruleset) => {
                let end_ns = monotonic_ns();
                log::debug!(
                    "netfilter ruleset read in {} µs ({} tables)",
                    (end_ns - start_ns) / 1000,
                    ruleset.tables.len()
                );
                let counters = ruleset.drop_counters();
                self.snapshots.push(Snapshot { start_ns, end_ns, ruleset: Arc::new(ruleset), counters });
                if self.snapshots.len() > KEPT {
                    self.snapshots.remove(0);
                }
                if let (Some(ch), Some(first)) = (&self.changes, self.snapshots.first()) {
                    ch.forget_before(first.start_ns);
                }
            }
            Err(e) if !self.warned => {
                self.warned = true;
                // No tool at all (an image without them) is how the node is, not a fault.
                if e.is_missing_tool() {
                    log::info!("netfilter ruleset not read ({e}); netfilter drops are not named by rule");
                } else {
                    log::warn!("cannot read the netfilter ruleset ({e}); netfilter drops are not named by rule");
                }
            }
            Err(_) => {}
        }
    }

    /// Which rule dropped the packet the kernel dropped at `ts_ns`: reads the ruleset again
    /// unless a read began after the drop.
    pub(crate) fn attribute(&mut self, ts_ns: u64, devs: &DropDevs<'_>) -> Attribution {
        if let Some(last) = self.snapshots.last().filter(|s| s.start_ns <= ts_ns) {
            // Reads at most every READ_GAP: the drops that come meanwhile wait in the ring and
            // are all served by the next read (a storm of drops costs READ_GAP's reads).
            let next = last.start_ns + READ_GAP_NS;
            let now = monotonic_ns();
            if next > now {
                std::thread::sleep(std::time::Duration::from_nanos(next - now));
            }
            self.refresh();
        } else if self.snapshots.is_empty() {
            self.refresh();
        }
        let Some(after) = self.snapshots.iter().find(|s| s.start_ns > ts_ns) else {
            return Attribution::Unknown("the ruleset could not be read");
        };
        let Some(before) = self.snapshots.iter().rev().find(|s| s.end_ns < ts_ns) else {
            return Attribution::Unknown("no read of the ruleset before the drop");
        };
        between(before, after, self.changes.as_ref(), devs)
    }
}

/// The dropping rules of `after` whose counters moved (or may have) since `before`.
fn between(before: &Snapshot, after: &Snapshot, changes: Option<&watch::Changes>, devs: &DropDevs<'_>) -> Attribution {
    let mut candidates = Vec::new();
    let mut moved = 0;
    for (t, c, r) in after.ruleset.dropping().filter(|(t, c, _)| devs.relevant(t, c)) {
        let changed = changes.is_some_and(|ch| ch.touched(&t.family, &t.name, &c.name, before.start_ns, after.end_ns));
        let key = Ruleset::key(t, c, r);
        match compare(before.counters.get(&key).copied(), r.packets, changed) {
            Counted::Moved => {
                moved += 1;
                candidates.push(RuleRef::new(t, c, r));
            }
            Counted::Maybe => candidates.push(RuleRef::new(t, c, r)),
            Counted::Still => {}
        }
    }
    match candidates.len() {
        0 => Attribution::Unknown("no dropping rule's counter moved"),
        1 if moved == 1 => Attribution::Named(Box::new(candidates.remove(0))),
        _ => Attribution::Ambiguous(candidates),
    }
}

#[cfg(test)]
mod tests;
