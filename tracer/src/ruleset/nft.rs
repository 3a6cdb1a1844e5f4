//! nftables' ruleset from `nft -j list ruleset` (libnftables' JSON, schema version 1): the
//! tables native to nftables (Calico's `ip calico`, anyone's), with handles, comments and
//! counters. Tables that iptables-nft keeps are left to [`super::iptsave`], which reads their
//! comments (nft shows iptables' comment matches as bare `xt` expressions).

use serde_json::Value;

use super::model::{Action, Backend, Chain, Rule, Table};

#[derive(Debug, thiserror::Error)]
pub(crate) enum NftJsonError {
    #[error("not nftables JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no `nftables` array in nft's output")]
    Shape,
}

/// The tables of `nft -j list ruleset`, but those `skip` names (family, table).
pub(crate) fn parse(text: &str, skip: &dyn Fn(&str, &str) -> bool) -> Result<Vec<Table>, NftJsonError> {
    let doc: Value = serde_json::from_str(text)?;
    let items = doc.get("nftables").and_then(Value::as_array).ok_or(NftJsonError::Shape)?;
    let mut tables: Vec<Table> = Vec::new();
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    for item in items {
        if let Some(t) = item.get("table") {
            let (family, name) = (s(t, "family"), s(t, "name"));
            if !skip(&family, &name) {
                let handle = t.get("handle").and_then(Value::as_u64);
                tables.push(Table { backend: Backend::Nft, family, name, handle, chains: Vec::new() });
            }
        } else if let Some(c) = item.get("chain") {
            let Some(table) = find(&mut tables, &s(c, "family"), &s(c, "table")) else { continue };
            let mut chain = Chain { name: s(c, "name"), rules: Vec::new() };
            // A base chain's drop policy drops what no rule decided, uncounted.
            if c.get("policy").and_then(Value::as_str) == Some("drop") {
                chain.rules.push(policy_rule());
            }
            table.chains.push(chain);
        } else if let Some(r) = item.get("rule") {
            let Some(table) = find(&mut tables, &s(r, "family"), &s(r, "table")) else { continue };
            let Some(chain) = table.chains.iter_mut().find(|c| c.name == s(r, "chain")) else { continue };
            let mut rule = rule(r);
            rule.position = chain.rules.iter().filter(|r| r.position != 0).count() as u32 + 1;
            // The policy stays last: it acts after every rule.
            let at = chain.rules.iter().position(|r| r.position == 0).unwrap_or(chain.rules.len());
            chain.rules.insert(at, rule);
        }
    }
    Ok(tables)
}

fn find<'a>(tables: &'a mut [Table], family: &str, name: &str) -> Option<&'a mut Table> {
    tables.iter_mut().find(|t| t.family == family && t.name == name)
}

fn policy_rule() -> Rule {
    Rule {
        handle: None,
        position: 0,
        comment: Some("chain policy drop".to_owned()),
        packets: None,
        action: Action::Drop,
        rpf: false,
        ct_invalid: false,
        text: "policy drop".to_owned(),
    }
}

/// One rule: its verdict, counter and the matches that say what kind of drop it is.
fn rule(r: &Value) -> Rule {
    let exprs = r.get("expr").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut rule = Rule {
        handle: r.get("handle").and_then(Value::as_u64),
        position: 0,
        comment: r.get("comment").and_then(Value::as_str).map(str::to_owned),
        packets: None,
        action: Action::Other,
        rpf: false,
        ct_invalid: false,
        text: serde_json::to_string(exprs).unwrap_or_default(),
    };
    for e in exprs {
        if let Some(c) = e.get("counter") {
            rule.packets = c.get("packets").and_then(Value::as_u64);
        } else if e.get("drop").is_some() {
            rule.action = Action::Drop;
        } else if e.get("reject").is_some() {
            rule.action = Action::Reject;
        } else if let Some(t) = e.get("jump").or_else(|| e.get("goto")).and_then(|j| j.get("target")) {
            rule.action = Action::Jump(t.as_str().unwrap_or_default().to_owned());
        } else if let Some(m) = e.get("match") {
            let left = m.get("left").unwrap_or(&Value::Null);
            // `fib saddr . mark . iif oif 0`: Calico's RPF check.
            rule.rpf |= left.get("fib").is_some();
            let ct_state = left.get("ct").and_then(|c| c.get("key")).and_then(Value::as_str) == Some("state");
            rule.ct_invalid |= ct_state && m.get("right").is_some_and(|v| v.to_string().contains("invalid"));
        }
    }
    rule
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
{"table": {"family": "ip", "name": "filter", "handle": 1}},
{"table": {"family": "ip", "name": "calico", "handle": 3}},
{"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
{"chain": {"family": "ip", "table": "calico", "name": "filter-FORWARD", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
{"chain": {"family": "ip", "table": "calico", "name": "filter-cali-pi-_DGlcbEzkd1cvh5X1F7M", "handle": 2}},
{"rule": {"family": "ip", "table": "calico", "chain": "filter-FORWARD", "handle": 6, "expr": [{"vmap": {"key": {"meta": {"key": "oifname"}}, "data": {"set": [["cali1", {"jump": {"target": "filter-cali-pi-_DGlcbEzkd1cvh5X1F7M"}}]]}}}]}},
{"rule": {"family": "ip", "table": "calico", "chain": "filter-cali-pi-_DGlcbEzkd1cvh5X1F7M", "handle": 3, "comment": "cali:aaaaaaaaaaaaaaaa; Policy default.x ingress", "expr": [{"counter": {"packets": 0, "bytes": 0}}]}},
{"rule": {"family": "ip", "table": "calico", "chain": "filter-cali-pi-_DGlcbEzkd1cvh5X1F7M", "handle": 4, "comment": "cali:bbbbbbbbbbbbbbbb", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "10.0.0.1"}}, {"counter": {"packets": 7, "bytes": 588}}, {"drop": null}]}},
{"rule": {"family": "ip", "table": "calico", "chain": "filter-FORWARD", "handle": 9, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "invalid"}}, {"counter": {"packets": 1, "bytes": 60}}, {"drop": null}]}}
]}"#;

    #[test]
    fn tables_chains_rules_counters_and_verdicts() {
        let tables = parse(FIXTURE, &|f, n| f == "ip" && n == "filter").unwrap();
        assert_eq!(tables.len(), 1, "iptables-nft's table is left out");
        let t = &tables[0];
        assert_eq!((t.label(), t.handle), ("ip calico".to_owned(), Some(3)));
        let fwd = t.chain("filter-FORWARD").unwrap();
        assert_eq!(fwd.rules.len(), 3);
        assert_eq!(fwd.rules[0].action, Action::Other, "a verdict map is not a drop");
        assert!(fwd.rules[1].ct_invalid && fwd.rules[1].action.drops());
        assert_eq!((fwd.rules[1].handle, fwd.rules[1].position), (Some(9), 2));
        assert_eq!((fwd.rules[2].position, fwd.rules[2].packets), (0, None), "the drop policy, last and uncounted");
        let pi = t.chain("filter-cali-pi-_DGlcbEzkd1cvh5X1F7M").unwrap();
        assert_eq!(pi.rules[0].text_comments().collect::<Vec<_>>(), ["Policy default.x ingress"]);
        assert_eq!((pi.rules[1].packets, pi.rules[1].action.clone()), (Some(7), Action::Drop));
    }
}
