//! A netfilter drop named by its rule: the cause sentence in Calico's terms
//! (`dropped by NetworkPolicy prod/deny-all (ingress to prod/api-7f…)`), from the rule the
//! ruleset model found ([`crate::ruleset`]).

use super::cause::{Cause, CauseCode};
use crate::ruleset::{
    Attribution, RuleRef,
    calico::{Direction, DropKind, PolicyName, Reading},
};

/// What a netfilter drop's record carries beyond its cause: the rule (or the candidates), and
/// the endpoint the policy applied to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyDrop {
    pub attribution: Attribution,
    /// The endpoint of the policy: its pod (`prod/api-7f…`) or its interface.
    pub endpoint: Option<String>,
}

/// The endpoint a reading applies to: the endpoint chain's interface, or for a policy chain
/// the destination's interface (ingress) or the source's (egress).
fn endpoint_iface<'a>(reading: &'a Reading, dev: Option<&'a str>, out: Option<&'a str>) -> Option<&'a str> {
    reading.endpoint.as_deref().or(match reading.direction? {
        Direction::Ingress => out,
        Direction::Egress => dev,
    })
}

/// The drop's policy facts and its cause sentence.
pub(crate) fn describe(
    attribution: Attribution,
    dev: Option<&str>,
    out: Option<&str>,
    pod_of: &dyn Fn(&str) -> Option<String>,
) -> (PolicyDrop, Cause) {
    let endpoint = match &attribution {
        Attribution::Named(r) => {
            endpoint_iface(&r.reading, dev, out).map(|i| pod_of(i).unwrap_or_else(|| i.to_owned()))
        }
        _ => None,
    };
    let text = match &attribution {
        Attribution::Named(r) => named(r, endpoint.as_deref()),
        Attribution::Ambiguous(c) => {
            let list: Vec<String> = c.iter().map(short).collect();
            format!(
                "dropped by a netfilter rule; could not tell which rule (candidates whose counters moved or may have: {})",
                list.join(", ")
            )
        }
        Attribution::Unknown(why) => format!("dropped by a netfilter rule; could not tell which rule ({why})"),
    };
    (PolicyDrop { attribution, endpoint }, Cause::new(CauseCode::Netfilter, text))
}

/// `NetworkPolicy prod/deny-all` or where the rule is.
fn short(r: &RuleRef) -> String {
    match &r.reading.policy {
        Some(p) => format!("{} [{}]", p.label(), r.label()),
        None => r.label(),
    }
}

fn names(ps: &[PolicyName]) -> String {
    ps.iter().map(PolicyName::label).collect::<Vec<_>>().join(", ")
}

fn named(r: &RuleRef, endpoint: Option<&str>) -> String {
    let reading = &r.reading;
    let towards = match (reading.direction, endpoint) {
        (Some(Direction::Ingress), Some(e)) => format!(" (ingress to {e})"),
        (Some(Direction::Egress), Some(e)) => format!(" (egress from {e})"),
        _ => String::new(),
    };
    let rule = r.label();
    match reading.kind {
        DropKind::Deny => match &reading.policy {
            Some(p) => format!("dropped by {}{towards}", p.label()),
            None => format!("dropped by Calico policy chain {}{towards}", r.chain),
        },
        DropKind::EndOfTier => {
            let tier = reading.tier.as_deref().unwrap_or("?");
            let tried = if reading.tried.is_empty() {
                "none applies".to_owned()
            } else {
                format!("tried {}", names(&reading.tried))
            };
            format!("dropped at the end of tier {tier}: no policy passed it{towards}; {tried}")
        }
        DropKind::NoProfile => format!("dropped by Calico: no profile matched{towards}"),
        DropKind::Rpf => format!("dropped by Calico's RPF check: source address spoofed ({rule})"),
        DropKind::ConntrackInvalid => format!("dropped by Calico: conntrack state INVALID{towards}"),
        DropKind::Encap => format!("dropped by Calico: encapsulated packet from a workload{towards}"),
        DropKind::RateLimit => format!("dropped by Calico's packet rate limit{towards}"),
        DropKind::Calico => format!("dropped by Calico's rule {rule}{towards}"),
        DropKind::KubeProxy => format!("dropped by kube-proxy's rule {rule}"),
        DropKind::Other => {
            format!("dropped by rule {rule}{}", r.comment.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())
        }
    }
}

/// JSON `rule`: where the rule is.
#[derive(serde::Serialize)]
struct RuleJson<'a> {
    backend: &'static str,
    table: &'a str,
    chain: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    handle: Option<u64>,
    /// 1-based; 0 for the chain's policy.
    position: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
}

impl<'a> From<&'a RuleRef> for RuleJson<'a> {
    fn from(r: &'a RuleRef) -> Self {
        Self {
            backend: r.backend.name(),
            table: &r.table,
            chain: &r.chain,
            handle: r.handle,
            position: r.position,
            comment: r.comment.as_deref(),
        }
    }
}

/// JSON `policy`: the rule in Calico's terms.
#[derive(serde::Serialize)]
struct PolicyJson<'a> {
    drop: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tried: Vec<String>,
}

/// `,"rule":{…},"policy":{…}` for a named rule, `,"rule_candidates":[…]` when several may
/// have dropped it; nothing when none is known.
pub(crate) fn put_json(out: &mut Vec<u8>, p: &PolicyDrop) -> std::io::Result<()> {
    match &p.attribution {
        Attribution::Named(r) => {
            out.extend_from_slice(b",\"rule\":");
            serde_json::to_writer(&mut *out, &RuleJson::from(&**r))?;
            let reading = &r.reading;
            let policy = reading.policy.as_ref();
            let json = PolicyJson {
                drop: reading.kind.code(),
                kind: policy.map(|p| p.kind.as_str()),
                namespace: policy.and_then(|p| p.namespace.as_deref()),
                name: policy.map(|p| p.name.as_str()),
                tier: policy.and_then(|p| p.tier.as_deref()).or(reading.tier.as_deref()),
                direction: reading.direction.map(Direction::name),
                endpoint: p.endpoint.as_deref(),
                tried: reading.tried.iter().map(PolicyName::label).collect(),
            };
            out.extend_from_slice(b",\"policy\":");
            serde_json::to_writer(&mut *out, &json)?;
        }
        Attribution::Ambiguous(c) => {
            out.extend_from_slice(b",\"rule_candidates\":");
            serde_json::to_writer(&mut *out, &c.iter().map(RuleJson::from).collect::<Vec<_>>())?;
        }
        Attribution::Unknown(_) => {}
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ruleset::model::Backend;

    /// prod/deny-all's Deny rule in a hashed iptables-nft chain.
    pub(crate) fn deny_rule() -> RuleRef {
        RuleRef {
            backend: Backend::IptablesNft,
            table: "ip filter".into(),
            chain: "cali-pi-_DGlcbEzkd1cvh5X1F7M".into(),
            handle: None,
            position: 1,
            comment: Some("cali:hMrCdUcSl8iTlfjm; Policy prod/default.deny-all ingress".into()),
            reading: Reading {
                kind: DropKind::Deny,
                policy: crate::ruleset::calico::owner_comment("Policy prod/default.deny-all ingress"),
                direction: Some(Direction::Ingress),
                endpoint: None,
                tried: Vec::new(),
                tier: None,
            },
        }
    }

    /// A netfilter drop named (deny-all, to pod `shop/web`) and one ambiguous between two rules.
    pub(crate) fn named_and_ambiguous() -> [(PolicyDrop, Cause); 2] {
        let pod = |_: &str| Some("shop/web".to_owned());
        let named = describe(Attribution::Named(Box::new(deny_rule())), Some("calib"), Some("calia"), &pod);
        let mut other = deny_rule();
        other.chain = "cali-tw-calia".into();
        other.position = 7;
        let ambiguous = describe(Attribution::Ambiguous(vec![deny_rule(), other]), Some("calib"), Some("calia"), &pod);
        [named, ambiguous]
    }

    #[test]
    fn the_cause_names_the_policy_and_the_pod_or_says_it_cannot_tell() {
        let [(named, cause), (_, unsure)] = named_and_ambiguous();
        assert_eq!(cause.text(), "dropped by NetworkPolicy prod/deny-all (ingress to shop/web)");
        assert_eq!(named.endpoint.as_deref(), Some("shop/web"));
        assert!(unsure.text().contains("could not tell which rule"), "{unsure}");
        assert!(
            unsure.text().contains("NetworkPolicy prod/deny-all [ip filter cali-pi-_DGlcbEzkd1cvh5X1F7M #1]"),
            "{unsure}"
        );
        let mut out = Vec::new();
        put_json(&mut out, &named).unwrap();
        let j: serde_json::Value = serde_json::from_slice(&[b"{", &out[1..], b"}"].concat()).unwrap();
        assert_eq!(j["rule"]["position"], 1);
        assert_eq!(j["policy"]["name"], "deny-all");
        assert_eq!(j["policy"]["direction"], "ingress");
    }
}
