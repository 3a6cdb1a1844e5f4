//! The ruleset as vethtrace models it: tables, chains and rules of every backend (nftables,
//! iptables-nft, iptables-legacy) in one shape, with the counters of one read.

/// Who keeps the rules: what the kernel runs them with and how vethtrace reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Backend {
    /// Native nftables (`nft -j list ruleset`): rules have handles and text comments.
    Nft,
    /// iptables over nf_tables (`iptables-nft-save -c`): no handles.
    IptablesNft,
    /// iptables' own tables (`iptables-legacy-save -c`).
    IptablesLegacy,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Nft => "nftables",
            Self::IptablesNft => "iptables-nft",
            Self::IptablesLegacy => "iptables-legacy",
        }
    }
}

/// What a rule does when it matches, as far as dropping goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Drop,
    Reject,
    /// Jump or goto into another chain of the same table.
    Jump(String),
    /// Anything else (accept, return, a mark, a verdict map, no verdict).
    Other,
}

impl Action {
    pub(crate) fn drops(&self) -> bool {
        matches!(self, Self::Drop | Self::Reject)
    }
}

/// One rule, or a base chain's policy (a pseudo-rule at the end of its chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    /// nftables' handle (`None` for iptables, whose rules are known by their text).
    pub handle: Option<u64>,
    /// 1-based place in its chain; 0 for a chain's policy.
    pub position: u32,
    /// Every comment of the rule, joined with `; ` (Felix: `cali:<hash>; <text>`).
    pub comment: Option<String>,
    /// Packets counted; `None` when the rule has no counter.
    pub packets: Option<u64>,
    pub action: Action,
    /// The reverse-path (anti-spoofing) check: `-m rpfilter --invert`, nft `fib … oif 0`.
    pub rpf: bool,
    /// Matches conntrack state INVALID.
    pub ct_invalid: bool,
    /// The rule as its tool prints it, counters left out: iptables rules have no handle, so
    /// a rule is the same rule only with the same text in the same chain.
    pub text: String,
}

impl Rule {
    /// The text comments alone, without Felix's `cali:<hash>` rule ids.
    pub(crate) fn text_comments(&self) -> impl Iterator<Item = &str> {
        self.comment.iter().flat_map(|c| c.split("; ")).filter(|c| !c.starts_with("cali:")).map(str::trim)
    }

    pub(crate) fn has_comment(&self, needle: &str) -> bool {
        self.text_comments().any(|c| c.contains(needle))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Chain {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// A table of one backend and family (`ip filter` of iptables-nft, `ip calico` of nftables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    pub backend: Backend,
    /// `ip`, `ip6`, `inet`, …
    pub family: String,
    pub name: String,
    /// nftables' table handle: a table made again numbers its rules from 1 again.
    pub handle: Option<u64>,
    pub chains: Vec<Chain>,
}

impl Table {
    pub(crate) fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// `ip filter`, `ip6 calico`.
    pub(crate) fn label(&self) -> String {
        format!("{} {}", self.family, self.name)
    }
}

/// Where a rule is, and which rule it is across reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RuleKey {
    pub backend: Backend,
    pub family: String,
    pub table: String,
    pub table_handle: Option<u64>,
    pub chain: String,
    /// nftables: the handle; iptables: the rule's text, and which of the chain's rules with
    /// that text it is (0 for the first) — not its position, which every rule inserted before
    /// it shifts while its counter stays.
    pub handle: Option<u64>,
    pub occurrence: u32,
    /// A chain's policy is its own (it has no text to tell it by).
    pub policy: bool,
    pub text: String,
}

/// The whole ruleset as one read found it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ruleset {
    pub tables: Vec<Table>,
}

/// How many rules before `rule` in `chain` have its text.
fn occurrence(chain: &Chain, rule: &Rule) -> u32 {
    let before = chain.rules.iter().take_while(|r| !std::ptr::eq(*r, rule));
    u32::try_from(before.filter(|r| r.text == rule.text).count()).unwrap_or(u32::MAX)
}

impl Ruleset {
    pub(crate) fn key(table: &Table, chain: &Chain, rule: &Rule) -> RuleKey {
        let nft = table.backend == Backend::Nft;
        RuleKey {
            backend: table.backend,
            family: table.family.clone(),
            table: table.name.clone(),
            table_handle: table.handle,
            chain: chain.name.clone(),
            handle: rule.handle,
            occurrence: if nft { 0 } else { occurrence(chain, rule) },
            policy: rule.position == 0,
            text: if nft { String::new() } else { rule.text.clone() },
        }
    }

    /// The rule at `(table, chain, rule)` indices, with its table and chain.
    pub(crate) fn rule(&self, (t, c, r): (usize, usize, usize)) -> (&Table, &Chain, &Rule) {
        let table = &self.tables[t];
        let chain = &table.chains[c];
        (table, chain, &chain.rules[r])
    }
}
