//! A dropping rule in Calico's terms (Felix 3.29–3.32, iptables and nftables modes): which
//! policy or profile it belongs to, in which direction for which endpoint, and what kind of
//! drop it is. Chain names and comments as Felix writes them (see the README's "Which policy
//! dropped it").

use super::model::{Action, Backend, Chain, Rule, Table};

crate::codes::stable_codes! {
    /// What kind of netfilter drop (JSON `policy.drop`).
    DropKind {
        /// An explicit Deny rule of a policy or profile.
        Deny => "deny",
        /// The end of a tier: no policy of the tier passed the packet.
        EndOfTier => "end_of_tier",
        NoProfile => "no_profile",
        /// Calico's anti-spoofing reverse-path check (raw PREROUTING).
        Rpf => "rpf",
        ConntrackInvalid => "conntrack_invalid",
        /// A workload's IP-in-IP or VXLAN packet.
        Encap => "encap",
        RateLimit => "rate_limit",
        /// Another of Calico's rules (unknown interface, workload to host, CIDR block…).
        Calico => "calico",
        KubeProxy => "kube_proxy",
        /// Anyone else's rule.
        Other => "other",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ingress => "ingress",
            Self::Egress => "egress",
        }
    }
}

/// A Calico policy or profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyName {
    /// `NetworkPolicy`, `GlobalNetworkPolicy`, `KubernetesNetworkPolicy`, `Profile`, …
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub tier: Option<String>,
}

impl PolicyName {
    /// `NetworkPolicy prod/deny-all`.
    pub(crate) fn label(&self) -> String {
        match &self.namespace {
            Some(ns) if self.kind != "Profile" => format!("{} {ns}/{}", self.kind, self.name),
            _ => format!("{} {}", self.kind, self.name),
        }
    }
}

/// A dropping rule read in Calico's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reading {
    pub kind: DropKind,
    pub policy: Option<PolicyName>,
    pub direction: Option<Direction>,
    /// The workload interface of a `cali-tw-`/`cali-fw-` chain.
    pub endpoint: Option<String>,
    /// End of tier / no profile: the policies (profiles) the packet went through first.
    pub tried: Vec<PolicyName>,
    /// The tier of an end-of-tier drop.
    pub tier: Option<String>,
}

/// The chain's name without the nftables-mode table prefix (`filter-cali-tw-x` -> `cali-tw-x`).
pub(crate) fn logical(table: &Table, chain: &str) -> String {
    if table.backend == Backend::Nft && table.name.starts_with("calico") {
        for p in ["filter-", "raw-", "mangle-", "nat-"] {
            if let Some(rest) = chain.strip_prefix(p) {
                return rest.to_owned();
            }
        }
    }
    chain.to_owned()
}

/// Reads a dropping rule of `chain` in `table`.
pub(crate) fn read(table: &Table, chain: &Chain, rule: &Rule) -> Reading {
    let name = logical(table, &chain.name);
    let mut r =
        Reading { kind: DropKind::Other, policy: None, direction: None, endpoint: None, tried: Vec::new(), tier: None };
    if let Some((dir, _)) = policy_chain(&name) {
        r.direction = Some(dir);
        r.policy = owner(table, chain);
        r.kind = DropKind::Deny;
    } else if let Some((dir, iface)) = endpoint_chain(&name) {
        r.direction = Some(dir);
        r.endpoint = Some(iface.to_owned());
        endpoint_drop(table, chain, rule, &mut r);
    } else if rule.rpf && name.starts_with("cali-") {
        r.kind = DropKind::Rpf;
    } else if rule.ct_invalid && name.starts_with("cali-") {
        r.kind = DropKind::ConntrackInvalid;
    } else if name.starts_with("cali-") {
        r.kind = DropKind::Calico;
    } else if name.starts_with("KUBE-") || table.name == "kube-proxy" {
        r.kind = DropKind::KubeProxy;
    }
    r
}

/// `cali-pi-`/`cali-pri-` (ingress), `cali-po-`/`cali-pro-` (egress): the direction and the id.
fn policy_chain(name: &str) -> Option<(Direction, &str)> {
    [
        ("cali-pi-", Direction::Ingress),
        ("cali-pri-", Direction::Ingress),
        ("cali-po-", Direction::Egress),
        ("cali-pro-", Direction::Egress),
    ]
    .into_iter()
    .find_map(|(p, d)| name.strip_prefix(p).map(|id| (d, id)))
}

/// `cali-tw-<iface>` (to the workload: ingress), `cali-fw-<iface>` (from it: egress).
fn endpoint_chain(name: &str) -> Option<(Direction, &str)> {
    name.strip_prefix("cali-tw-")
        .map(|i| (Direction::Ingress, i))
        .or_else(|| name.strip_prefix("cali-fw-").map(|i| (Direction::Egress, i)))
}

/// A drop in an endpoint chain: end of tier, no profile, conntrack INVALID, encapsulation,
/// rate limit, by its comment.
fn endpoint_drop(table: &Table, chain: &Chain, rule: &Rule, r: &mut Reading) {
    r.kind = if rule.ct_invalid {
        DropKind::ConntrackInvalid
    } else if rule.has_comment("no policies passed packet") {
        let (tier, tried) = tier_of(table, chain, rule);
        r.tier = rule
            .text_comments()
            .find_map(|c| Some(c.strip_prefix("End of tier ")?.split_once(". ")?.0.to_owned()))
            .or(tier);
        r.tried = tried;
        DropKind::EndOfTier
    } else if rule.has_comment("no profiles matched") {
        r.tried = tried_before(table, chain, rule, |_| false).1;
        DropKind::NoProfile
    } else if rule.has_comment("encapped packets") {
        DropKind::Encap
    } else if rule.has_comment("packet rate limit") {
        DropKind::RateLimit
    } else {
        DropKind::Calico
    };
}

/// The tier whose end `rule` is and the policies it tried: the jumps since `Start of tier`.
fn tier_of(table: &Table, chain: &Chain, rule: &Rule) -> (Option<String>, Vec<PolicyName>) {
    tried_before(table, chain, rule, |r| r.text_comments().any(|c| c.starts_with("Start of tier ")))
}

/// The policies or profiles jumped to before `rule` in `chain`, from the last rule for which
/// `start` holds (and that rule's tier).
fn tried_before(
    table: &Table,
    chain: &Chain,
    rule: &Rule,
    start: impl Fn(&Rule) -> bool,
) -> (Option<String>, Vec<PolicyName>) {
    let before = chain.rules.iter().take_while(|r| r.position != rule.position && r.position != 0);
    let mut tier = None;
    let mut tried = Vec::new();
    for r in before {
        if start(r) {
            tier = r.text_comments().find_map(|c| c.strip_prefix("Start of tier ").map(str::to_owned));
            tried.clear();
        }
        if let Action::Jump(target) = &r.action
            && policy_chain(&logical(table, target)).is_some()
            && let Some(p) = table.chain(target).and_then(|c| owner(table, c))
        {
            tried.push(p);
        }
    }
    (tier, tried)
}

/// The owner of a policy or profile chain: its first rule's comment (`Policy prod/default.x
/// ingress`, 3.32's `NetworkPolicy prod/x ingress`), else the id in the chain's name when it is
/// not hashed.
pub(crate) fn owner(table: &Table, chain: &Chain) -> Option<PolicyName> {
    let first = chain.rules.iter().find(|r| r.position == 1);
    first.and_then(|r| r.text_comments().find_map(owner_comment)).or_else(|| {
        let name = logical(table, &chain.name);
        from_id(policy_chain(&name)?.1)
    })
}

/// `Policy prod/default.deny-all ingress`, `Profile kns.prod egress`,
/// `GlobalNetworkPolicy default.foo ingress`.
pub(crate) fn owner_comment(c: &str) -> Option<PolicyName> {
    let mut words = c.split(' ');
    let kind = words.next()?;
    let name = words.next()?;
    if !matches!(words.next()?, "ingress" | "egress") || words.next().is_some() {
        return None;
    }
    match kind {
        "Profile" => Some(profile(name)),
        "Policy" => Some(v329_policy(name)),
        k if k.ends_with("Policy") => Some(split_ns(k, name, None)),
        _ => None,
    }
}

/// `kns.prod` (the namespace's profile), `ksa.prod.sa` (a service account's).
fn profile(name: &str) -> PolicyName {
    let namespace = name.strip_prefix("kns.").or_else(|| name.strip_prefix("ksa.").and_then(|r| r.split('.').next()));
    PolicyName { kind: "Profile".into(), namespace: namespace.map(str::to_owned), name: name.into(), tier: None }
}

/// 3.29–3.31: `<ns>/<tier>.<name>` (a namespaced policy; Kubernetes': `<ns>/knp.default.<name>`)
/// or `<tier>.<name>` (global). The default tier's prefix is left out of the name.
fn v329_policy(name: &str) -> PolicyName {
    let (ns, rest) = match name.split_once('/') {
        Some((ns, rest)) => (Some(ns), rest),
        None => (None, name),
    };
    if let Some(k) = rest.strip_prefix("knp.default.") {
        return PolicyName {
            kind: "KubernetesNetworkPolicy".into(),
            namespace: ns.map(Into::into),
            name: k.into(),
            tier: Some("default".into()),
        };
    }
    let kind = if ns.is_some() { "NetworkPolicy" } else { "GlobalNetworkPolicy" };
    let tier = rest.split_once('.').map(|(t, _)| t.to_owned());
    let shown = if tier.as_deref() == Some("default") { &rest["default.".len()..] } else { rest };
    PolicyName { kind: kind.into(), namespace: ns.map(Into::into), name: shown.into(), tier }
}

fn split_ns(kind: &str, name: &str, tier: Option<String>) -> PolicyName {
    let (ns, n) = match name.split_once('/') {
        Some((ns, n)) => (Some(ns.to_owned()), n),
        None => (None, name),
    };
    PolicyName { kind: kind.to_owned(), namespace: ns, name: n.to_owned(), tier }
}

/// A chain's id when it is not hashed (hashed ones start with `_`): 3.32's
/// `<kind>/[<ns>/]<name>`, 3.29–3.31's `<tier>/<name>`, profiles' `kns.<ns>`.
fn from_id(id: &str) -> Option<PolicyName> {
    if id.starts_with('_') || id.is_empty() {
        return None;
    }
    if id.starts_with("kns.") || id.starts_with("ksa.") {
        return Some(profile(id));
    }
    let (first, rest) = id.split_once('/')?;
    let kind = match first {
        "np" => "NetworkPolicy",
        "gnp" => "GlobalNetworkPolicy",
        "knp" => "KubernetesNetworkPolicy",
        "kcnp" => "KubernetesClusterNetworkPolicy",
        "snp" => "StagedNetworkPolicy",
        "sgnp" => "StagedGlobalNetworkPolicy",
        _ => {
            let mut p = v329_policy(rest);
            p.tier = Some(first.to_owned());
            return Some(p);
        }
    };
    Some(split_ns(kind, rest, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_comments_of_each_version() {
        let p = owner_comment("Policy prod/default.deny-all ingress").unwrap();
        assert_eq!((p.label(), p.tier.as_deref()), ("NetworkPolicy prod/deny-all".to_owned(), Some("default")));
        let p = owner_comment("Policy security.block-all egress").unwrap();
        assert_eq!(
            (p.label(), p.tier.as_deref()),
            ("GlobalNetworkPolicy security.block-all".to_owned(), Some("security"))
        );
        let p = owner_comment("Policy prod/knp.default.web ingress").unwrap();
        assert_eq!(p.label(), "KubernetesNetworkPolicy prod/web");
        let p = owner_comment("GlobalNetworkPolicy default.foo ingress").unwrap();
        assert_eq!(p.label(), "GlobalNetworkPolicy default.foo");
        let p = owner_comment("NetworkPolicy prod/deny-all egress").unwrap();
        assert_eq!(p.label(), "NetworkPolicy prod/deny-all");
        let p = owner_comment("Profile kns.prod ingress").unwrap();
        assert_eq!((p.label(), p.namespace.as_deref()), ("Profile kns.prod".to_owned(), Some("prod")));
        assert!(owner_comment("Start of tier default").is_none());
        assert!(owner_comment("Return if policy accepted").is_none());
    }

    /// Whose rule it is, outside Calico's endpoint and policy chains.
    #[test]
    fn owners_of_other_rules() {
        use super::super::iptsave;
        let text = "*filter\n:KUBE-SERVICES - [0:0]\n:cali-wl-to-host - [0:0]\n:mine - [0:0]\n\
            [0:0] -A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -j REJECT\n\
            [0:0] -A cali-wl-to-host -m comment --comment \"cali:x\" -j DROP\n\
            [0:0] -A mine -m comment --comment \"kube-ish\" -j DROP\nCOMMIT\n";
        let tables = iptsave::parse(text, Backend::IptablesNft, "ip");
        let kind = |chain: &str| {
            let c = tables[0].chain(chain).unwrap();
            read(&tables[0], c, &c.rules[0]).kind
        };
        assert_eq!(kind("KUBE-SERVICES"), DropKind::KubeProxy);
        assert_eq!(kind("cali-wl-to-host"), DropKind::Calico);
        assert_eq!(kind("mine"), DropKind::Other, "a comment does not make a rule kube-proxy's");
        let mut nft = tables[0].clone();
        (nft.backend, nft.name) = (Backend::Nft, "kube-proxy".into());
        let c = nft.chain("mine").unwrap();
        assert_eq!(read(&nft, c, &c.rules[0]).kind, DropKind::KubeProxy, "kube-proxy's nftables table");
    }

    #[test]
    fn unhashed_chain_ids() {
        assert_eq!(from_id("np/prod/deny-all").unwrap().label(), "NetworkPolicy prod/deny-all");
        assert_eq!(from_id("gnp/default.foo").unwrap().label(), "GlobalNetworkPolicy default.foo");
        let p = from_id("default/prod/default.deny-all").unwrap();
        assert_eq!((p.label(), p.tier.as_deref()), ("NetworkPolicy prod/deny-all".to_owned(), Some("default")));
        assert_eq!(from_id("kns.prod").unwrap().label(), "Profile kns.prod");
        assert!(from_id("_DGlcbEzkd1cvh5X1F7M").is_none());
    }
}
