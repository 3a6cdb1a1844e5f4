//! The node's netfilter ruleset, kept like the network mirror: node state the session owns and
//! lends to the pipeline. It names the rule behind a netfilter drop (NETFILTER_DROP, or
//! `nf_hook_slow` on kernels without reasons) by the counters that moved: the kernel says a
//! netfilter hook dropped the packet, never which rule, and vethtrace never changes the
//! ruleset (no trace or LOG rules) — so it reads every rule's counter before and after the
//! drop and names the one dropping rule whose counter moved. Several moved: "could not tell",
//! with the candidates. One read serves every drop that happened before it started, so a drop
//! storm costs at most ten reads a second, not one per drop. Reads run off the event loop
//! ([`reader`]); the drops that wait for one are held by the pipeline
//! (`crate::pipeline::held`), and named here once it is in ([`RulesetModel::naming`]).
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
pub(crate) mod reader;
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
    #[error("the read stopped: {0}")]
    Stopped(String),
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

/// One read and when it ran, with its dropping rules — where each is, which rule it is across
/// reads, its counter — found once, with the read (off the event loop).
pub(crate) struct Snapshot {
    start_ns: u64,
    end_ns: u64,
    ruleset: Arc<Ruleset>,
    /// Every rule that can drop (drop or reject verdicts, base chains' drop policies).
    dropping: Vec<Dropping>,
    counters: HashMap<RuleKey, Option<u64>>,
}

/// A dropping rule of a read: its table, chain and rule indices, and its key.
struct Dropping {
    at: (usize, usize, usize),
    key: RuleKey,
}

impl Snapshot {
    pub(crate) fn new(ruleset: Ruleset, start_ns: u64, end_ns: u64) -> Self {
        let mut dropping = Vec::new();
        for (ti, t) in ruleset.tables.iter().enumerate() {
            for (ci, c) in t.chains.iter().enumerate() {
                for (ri, r) in c.rules.iter().enumerate().filter(|(_, r)| r.action.drops()) {
                    dropping.push(Dropping { at: (ti, ci, ri), key: Ruleset::key(t, c, r) });
                }
            }
        }
        let counters = dropping.iter().map(|d| (d.key.clone(), ruleset.rule(d.at).2.packets)).collect();
        Self { start_ns, end_ns, ruleset: Arc::new(ruleset), dropping, counters }
    }

    fn rules(&self) -> usize {
        self.ruleset.tables.iter().flat_map(|t| &t.chains).map(|c| c.rules.len()).sum()
    }
}

/// One read of the ruleset as it came back (from [`reader::Reader`], off the event loop): when
/// it began (CLOCK_MONOTONIC ns), and what it found.
pub(crate) struct Read {
    pub start_ns: u64,
    pub result: Result<Snapshot, RulesetError>,
}

impl Read {
    /// Reads the ruleset now: forks the tools and parses what they print (blocking, 0.02 s for
    /// a few rules, 0.2–0.3 s for 7000).
    pub(crate) fn now() -> Self {
        let start_ns = monotonic_ns();
        let result = read().map(|ruleset| Snapshot::new(ruleset, start_ns, monotonic_ns()));
        Self { start_ns, result }
    }
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

/// What naming a netfilter drop's rule takes: when it was dropped, and where (owned: the drop
/// may wait for the read after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleQuery {
    pub ts_ns: u64,
    pub dev: Option<String>,
    pub out: Option<String>,
    pub family: Option<&'static str>,
}

impl RuleQuery {
    fn devs(&self) -> DropDevs<'_> {
        DropDevs { dev: self.dev.as_deref(), out: self.out.as_deref(), family: self.family }
    }
}

/// What can be said now of a netfilter drop's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Naming {
    /// The rule (or the candidates, or why not).
    Rule(Attribution),
    /// Not yet: no read has begun after the drop (or no read at all is in).
    Wait,
    /// Never: the ruleset's tools are not installed; the drop keeps its plain cause.
    Plain,
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

/// The live model: the latest reads of the ruleset, with the changes seen between them. The
/// reads themselves are made off the event loop ([`reader::Reader`]) and taken in here.
pub(crate) struct RulesetModel {
    snapshots: Vec<Snapshot>,
    changes: Option<watch::Changes>,
    /// When the last read began, whether it worked or not: the next begins [`READ_GAP_NS`] later.
    last_start_ns: Option<u64>,
    /// When the last failed read began: a drop before it waits no more ("could not be read").
    failed_start_ns: Option<u64>,
    /// The tools are not installed (and nothing was ever read): netfilter drops keep the
    /// plain cause.
    absent: bool,
    /// Reads that failed, told once.
    warned: bool,
    /// The dropping rules that moved between the last two reads compared (their start
    /// times), found once for every drop between them.
    movers: Option<((u64, u64), Vec<Mover>)>,
}

/// The shortest time between two reads: bounds the processes a storm of netfilter drops
/// starts (at most ten reads a second) at the price of the held drops waiting up to this long
/// more for the read that names them.
const READ_GAP_NS: u64 = 100_000_000;

/// Reads kept: enough to bracket any drop still in the ring or held.
const KEPT: usize = 8;

impl RulesetModel {
    /// The change watch; no read yet (the first, the baseline the first drop is compared
    /// with, is made off the event loop once tracing runs).
    pub(crate) fn start() -> Self {
        let changes = watch::Changes::follow()
            .inspect_err(|e| {
                log::warn!(
                    "cannot follow nftables changes ({e}); a rewritten rule is told only by its counter going down"
                )
            })
            .ok();
        Self::new(changes)
    }

    /// No read yet; `changes`: the change watch, when it could be joined.
    pub(crate) fn new(changes: Option<watch::Changes>) -> Self {
        Self {
            snapshots: Vec::new(),
            changes,
            last_start_ns: None,
            failed_start_ns: None,
            absent: false,
            warned: false,
            movers: None,
        }
    }

    /// The baseline is not in yet (and can be read): a read is due.
    pub(crate) fn wants_baseline(&self) -> bool {
        self.last_start_ns.is_none() && !self.absent
    }

    /// When the next read may begin (CLOCK_MONOTONIC ns): [`READ_GAP_NS`] after the last.
    pub(crate) fn next_read_ns(&self) -> u64 {
        self.last_start_ns.map_or(0, |s| s + READ_GAP_NS)
    }

    /// Takes in a finished read.
    pub(crate) fn take(&mut self, read: Read) {
        let Read { start_ns, result } = read;
        self.last_start_ns = Some(start_ns);
        match result {
            Ok(snapshot) => {
                let tables = snapshot.ruleset.tables.len();
                log::debug!("netfilter ruleset read in {} µs ({tables} tables)", (snapshot.end_ns - start_ns) / 1000);
                if self.snapshots.is_empty() {
                    log::info!(
                        "netfilter ruleset: {tables} tables, {} rules read; drops by a rule are named by its counter",
                        snapshot.rules()
                    );
                }
                self.snapshots.push(snapshot);
                if self.snapshots.len() > KEPT {
                    self.snapshots.remove(0);
                }
                if let (Some(ch), Some(first)) = (&self.changes, self.snapshots.first()) {
                    ch.forget_before(first.start_ns);
                }
            }
            Err(e) => {
                self.failed_start_ns = Some(start_ns);
                // No tool at all (an image without them) is how the node is, not a fault.
                self.absent = e.is_missing_tool() && self.snapshots.is_empty();
                if !self.warned {
                    self.warned = true;
                    if self.absent {
                        log::info!("netfilter ruleset not read ({e}); netfilter drops are not named by rule");
                    } else {
                        log::warn!("cannot read the netfilter ruleset ({e}); netfilter drops are not named by rule");
                    }
                }
            }
        }
    }

    /// Which rule dropped the packet the kernel dropped at `q.ts_ns`, compared between the
    /// last read that ended before it and the first that began after it; [`Naming::Wait`]
    /// until that read is in.
    pub(crate) fn naming(&mut self, q: &RuleQuery) -> Naming {
        if self.absent {
            return Naming::Plain;
        }
        let ts_ns = q.ts_ns;
        if let Some(after) = self.snapshots.iter().find(|s| s.start_ns > ts_ns) {
            let Some(before) = self.snapshots.iter().rev().find(|s| s.end_ns < ts_ns) else {
                return Naming::Rule(Attribution::Unknown("no read of the ruleset before the drop"));
            };
            let pair = (before.start_ns, after.start_ns);
            let movers = match &mut self.movers {
                Some((p, movers)) if *p == pair => movers,
                slot => &mut slot.insert((pair, movers(before, after, self.changes.as_ref()))).1,
            };
            return Naming::Rule(attribution(after, movers, &q.devs()));
        }
        if self.failed_start_ns.is_some_and(|f| f > ts_ns) {
            return Naming::Rule(Attribution::Unknown("the ruleset could not be read"));
        }
        Naming::Wait
    }
}

/// A dropping rule of a read whose counter moved (or may have) since an earlier read.
#[derive(Debug, Clone, Copy)]
struct Mover {
    /// Its table, chain and rule in the later read.
    at: (usize, usize, usize),
    /// It moved (not only may have).
    moved: bool,
}

/// The dropping rules of `after` whose counters moved (or may have) since `before`, whatever
/// the drop: one pass over the rules, whose keys the reads found.
fn movers(before: &Snapshot, after: &Snapshot, changes: Option<&watch::Changes>) -> Vec<Mover> {
    let mut out = Vec::new();
    for d in &after.dropping {
        let (t, c, r) = after.ruleset.rule(d.at);
        // Whether its chain changed matters only for a counter above 0 (see `compare`).
        let changed = r.packets.is_some_and(|n| n > 0)
            && changes.is_some_and(|ch| ch.touched(&t.family, &t.name, &c.name, before.start_ns, after.end_ns));
        match compare(before.counters.get(&d.key).copied(), r.packets, changed) {
            Counted::Moved => out.push(Mover { at: d.at, moved: true }),
            Counted::Maybe => out.push(Mover { at: d.at, moved: false }),
            Counted::Still => {}
        }
    }
    out
}

/// The rule that dropped a packet on `devs`, from the rules of `after` that moved.
fn attribution(after: &Snapshot, movers: &[Mover], devs: &DropDevs<'_>) -> Attribution {
    let mut candidates = Vec::new();
    let mut moved = 0;
    for m in movers {
        let (t, c, r) = after.ruleset.rule(m.at);
        if devs.relevant(t, c) {
            moved += usize::from(m.moved);
            candidates.push(RuleRef::new(t, c, r));
        }
    }
    match candidates.len() {
        0 => Attribution::Unknown("no dropping rule's counter moved"),
        1 if moved == 1 => Attribution::Named(Box::new(candidates.remove(0))),
        _ => Attribution::Ambiguous(candidates),
    }
}

/// The dropping rules of `after` whose counters moved (or may have) since `before`.
#[cfg(test)]
fn between(before: &Snapshot, after: &Snapshot, changes: Option<&watch::Changes>, devs: &DropDevs<'_>) -> Attribution {
    attribution(after, &movers(before, after, changes), devs)
}

#[cfg(test)]
pub(crate) mod tests;
