//! What applies to each workload endpoint, read from the ruleset: per `cali-tw-<iface>`
//! (ingress) and `cali-fw-<iface>` (egress) chain, the tiers in order with the policies each
//! jumps to, then the profiles — what a person reads out of `iptables -S` by hand today.

use super::{
    calico::{self, Direction, PolicyName},
    model::{Action, Backend, Ruleset, Table},
};

/// One endpoint chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndpointPolicies {
    pub iface: String,
    pub direction: Direction,
    pub backend: Backend,
    /// `ip filter`, `ip calico`.
    pub table: String,
    /// Tiers in order, each with its policies in order.
    pub tiers: Vec<(String, Vec<PolicyName>)>,
    pub profiles: Vec<PolicyName>,
}

/// Every endpoint chain of the ruleset, by interface then direction.
pub(crate) fn endpoints(ruleset: &Ruleset) -> Vec<EndpointPolicies> {
    let mut out: Vec<EndpointPolicies> = ruleset.tables.iter().flat_map(endpoints_of).collect();
    out.sort_by(|a, b| (&a.iface, a.direction.name(), &a.table).cmp(&(&b.iface, b.direction.name(), &b.table)));
    out
}

fn endpoints_of(table: &Table) -> Vec<EndpointPolicies> {
    let mut out = Vec::new();
    for chain in &table.chains {
        let name = calico::logical(table, &chain.name);
        let (direction, iface) = match (name.strip_prefix("cali-tw-"), name.strip_prefix("cali-fw-")) {
            (Some(i), _) => (Direction::Ingress, i),
            (_, Some(i)) => (Direction::Egress, i),
            _ => continue,
        };
        let mut ep = EndpointPolicies {
            iface: iface.to_owned(),
            direction,
            backend: table.backend,
            table: table.label(),
            tiers: Vec::new(),
            profiles: Vec::new(),
        };
        for rule in &chain.rules {
            if let Some(tier) = rule.text_comments().find_map(|c| c.strip_prefix("Start of tier ")) {
                ep.tiers.push((tier.to_owned(), Vec::new()));
            }
            let Action::Jump(target) = &rule.action else { continue };
            let logical = calico::logical(table, target);
            let Some(owner) = table.chain(target).and_then(|c| calico::owner(table, c)) else { continue };
            if logical.starts_with("cali-pri-") || logical.starts_with("cali-pro-") {
                ep.profiles.push(owner);
            } else if let Some((_, policies)) = ep.tiers.last_mut() {
                policies.push(owner);
            } else {
                ep.tiers.push((owner.tier.clone().unwrap_or_else(|| "?".into()), vec![owner]));
            }
        }
        out.push(ep);
    }
    out
}

impl EndpointPolicies {
    /// `security: GlobalNetworkPolicy security.x; default: NetworkPolicy prod/y, …`.
    pub(crate) fn tiers_text(&self) -> String {
        let tiers: Vec<String> = self
            .tiers
            .iter()
            .map(|(t, ps)| format!("{t}: {}", if ps.is_empty() { "-".to_owned() } else { labels(ps) }))
            .collect();
        if tiers.is_empty() { "-".to_owned() } else { tiers.join("; ") }
    }

    pub(crate) fn profiles_text(&self) -> String {
        if self.profiles.is_empty() { "-".to_owned() } else { labels(&self.profiles) }
    }
}

fn labels(ps: &[PolicyName]) -> String {
    ps.iter().map(PolicyName::label).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::iptsave;

    #[test]
    fn tiers_policies_and_profiles_per_endpoint() {
        let text = r#"*filter
:cali-tw-cali1 - [0:0]
:cali-pi-_abc - [0:0]
:cali-pi-_sec - [0:0]
:cali-pri-kns.prod - [0:0]
[0:0] -A cali-pi-_abc -m comment --comment "cali:x" -m comment --comment "Policy prod/default.deny-all ingress" -j DROP
[0:0] -A cali-pi-_sec -m comment --comment "cali:x" -m comment --comment "Policy security.block ingress" -j DROP
[0:0] -A cali-pri-kns.prod -m comment --comment "cali:x" -m comment --comment "Profile kns.prod ingress"
[0:0] -A cali-tw-cali1 -m comment --comment "Start of tier security" -j MARK --set-xmark 0x0/0x20000
[0:0] -A cali-tw-cali1 -j cali-pi-_sec
[0:0] -A cali-tw-cali1 -m comment --comment "Start of tier default" -j MARK --set-xmark 0x0/0x20000
[0:0] -A cali-tw-cali1 -j cali-pi-_abc
[0:0] -A cali-tw-cali1 -j cali-pri-kns.prod
COMMIT
"#;
        let ruleset = Ruleset { tables: iptsave::parse(text, Backend::IptablesNft, "ip") };
        let eps = endpoints(&ruleset);
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].direction, Direction::Ingress);
        assert_eq!(
            eps[0].tiers_text(),
            "security: GlobalNetworkPolicy security.block; default: NetworkPolicy prod/deny-all"
        );
        assert_eq!(eps[0].profiles_text(), "Profile kns.prod");
    }
}
