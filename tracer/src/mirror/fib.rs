//! `ip route get` on the mirror: policy rules in priority order, then longest prefix match,
//! then metric — the walk fib_rules_lookup and fib_table_lookup make.

use super::{
    Mirror,
    prefix::Family,
    routes::{NextHop, RT_TABLE_DEFAULT, RT_TABLE_LOCAL, RT_TABLE_MAIN, Route, RouteKind},
    rules::{Flow, Rule, RuleVerb},
};

/// What the FIB says about a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution<'m> {
    /// A route answered; `nexthop` is the one taken (none for refusals and local delivery
    /// without an interface).
    Route { route: &'m Route, nexthop: Option<&'m NextHop> },
    /// A rule refused before any table was consulted.
    RuleRefused { kind: RouteKind, priority: u32 },
    /// Nothing matched: the kernel answers ENETUNREACH.
    NoRoute,
}

/// A goto loop in a misconfigured rule set must not hang the collector.
const MAX_RULE_STEPS: usize = 1024;

/// Rules the kernel always starts with, for a mirror that has not seen a rule dump.
fn builtin_rules(family: Family) -> Vec<Rule> {
    [(0, RT_TABLE_LOCAL), (32766, RT_TABLE_MAIN), (32767, RT_TABLE_DEFAULT)]
        .into_iter()
        .map(|(priority, table)| Rule::lookup(family, priority, table))
        .collect()
}

impl Mirror {
    /// The route the kernel would pick for `flow`.
    pub fn route_get(&self, flow: &Flow<'_>) -> Resolution<'_> {
        let family = Family::of(flow.dst);
        let dumped = self.rules.family(family);
        let builtin;
        let rules = if dumped.is_empty() {
            builtin = builtin_rules(family);
            builtin.as_slice()
        } else {
            dumped
        };
        let mut i = 0;
        for _ in 0..MAX_RULE_STEPS {
            let Some(rule) = rules.get(i) else { break };
            i += 1;
            if !rule.matches(flow) {
                continue;
            }
            match rule.verb {
                RuleVerb::Lookup(table) => {
                    if let Some(found) = self.table_lookup(table, flow, rule) {
                        return found;
                    }
                }
                RuleVerb::Goto(target) => {
                    if let Some(at) = rules.iter().position(|r| r.priority == target) {
                        i = at;
                    }
                }
                RuleVerb::Blackhole => {
                    return Resolution::RuleRefused { kind: RouteKind::Blackhole, priority: rule.priority };
                }
                RuleVerb::Unreachable => {
                    return Resolution::RuleRefused { kind: RouteKind::Unreachable, priority: rule.priority };
                }
                RuleVerb::Prohibit => {
                    return Resolution::RuleRefused { kind: RouteKind::Prohibit, priority: rule.priority };
                }
                RuleVerb::Nop | RuleVerb::Other => {}
            }
        }
        Resolution::NoRoute
    }

    /// One table's answer, or `None` to go on with the next rule (no match, `throw`, or
    /// suppressed by `suppress_prefixlength`).
    fn table_lookup(&self, table: u32, flow: &Flow<'_>, rule: &Rule) -> Option<Resolution<'_>> {
        let index = self.routes.table(table)?.family(Family::of(flow.dst));
        let route = index.lookup(flow.dst, flow.tos, |r| {
            r.nexthops.iter().all(|n| n.dev == 0) || r.usable_nexthop(flow.oif).is_some()
        })?;
        if route.kind == RouteKind::Throw || rule.suppress_prefixlen.is_some_and(|l| route.dst.len <= l) {
            return None;
        }
        let nexthop = route.usable_nexthop(flow.oif).filter(|n| n.dev != 0);
        Some(Resolution::Route { route, nexthop })
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::mirror::{
        prefix::Prefix,
        routes::tests::route,
        rules::tests::{flow, lookup_rule},
    };

    fn node() -> Mirror {
        let mut m = Mirror::default();
        for fam in [Family::V4, Family::V6] {
            m.rules.insert(lookup_rule(fam, 0, RT_TABLE_LOCAL));
            m.rules.insert(lookup_rule(fam, 32766, RT_TABLE_MAIN));
        }
        m.rules.insert(lookup_rule(Family::V4, 32767, RT_TABLE_DEFAULT));
        let mut local = route("10.99.0.1", 32, 2, None, 0, RT_TABLE_LOCAL);
        local.kind = RouteKind::Local;
        m.routes.insert(local, false);
        m.routes.insert(route("0.0.0.0", 0, 2, Some("10.99.0.2"), 0, RT_TABLE_MAIN), false);
        m.routes.insert(route("10.99.0.0", 30, 2, None, 0, RT_TABLE_MAIN), false);
        m.routes.insert(route("10.244.1.5", 32, 5, None, 0, RT_TABLE_MAIN), false);
        m.routes.insert(route("10.244.1.6", 32, 6, None, 0, RT_TABLE_MAIN), false);
        m.routes.insert(route("fd00:244::5", 128, 5, None, 1024, RT_TABLE_MAIN), false);
        m
    }

    fn dev_of(r: Resolution<'_>) -> Option<u32> {
        match r {
            Resolution::Route { nexthop, .. } => nexthop.map(|n| n.dev),
            _ => None,
        }
    }

    #[test]
    fn pod_routes_default_and_local() {
        let m = node();
        assert_eq!(dev_of(m.route_get(&flow("10.244.1.6"))), Some(6));
        let Resolution::Route { route, nexthop } = m.route_get(&flow("1.1.1.1")) else { panic!() };
        assert_eq!((route.dst.len, nexthop.unwrap().gateway), (0, Some("10.99.0.2".parse().unwrap())));
        let Resolution::Route { route, .. } = m.route_get(&flow("10.99.0.1")) else { panic!() };
        assert_eq!((route.kind, route.table), (RouteKind::Local, RT_TABLE_LOCAL));
        assert_eq!(dev_of(m.route_get(&flow("fd00:244::5"))), Some(5));
        assert_eq!(m.route_get(&flow("fd00:244::9")), Resolution::NoRoute);
    }

    #[test]
    fn rule_priority_decides_between_tables() {
        let mut m = node();
        m.routes.insert(route("10.244.1.6", 32, 9, None, 0, 100), false);
        let mut from_pod = lookup_rule(Family::V4, 50, 100);
        from_pod.src = Some(Prefix::new("10.244.1.5".parse().unwrap(), 32));
        m.rules.insert(from_pod);
        let mut f = flow("10.244.1.6");
        assert_eq!(dev_of(m.route_get(&f)), Some(6));
        f.src = Some("10.244.1.5".parse().unwrap());
        assert_eq!(dev_of(m.route_get(&f)), Some(9));
        // Table 100 has nothing for this destination: the walk goes on to main.
        f.dst = "1.1.1.1".parse().unwrap();
        assert_eq!(dev_of(m.route_get(&f)), Some(2));
        let mut refuse = lookup_rule(Family::V4, 10, 0);
        refuse.verb = RuleVerb::Prohibit;
        refuse.iif = Some("cali5".into());
        m.rules.insert(refuse);
        assert_eq!(dev_of(m.route_get(&f)), Some(2));
        f.iif = Some("cali5");
        assert_eq!(m.route_get(&f), Resolution::RuleRefused { kind: RouteKind::Prohibit, priority: 10 });
    }

    #[test]
    fn blackhole_throw_and_suppress() {
        let mut m = node();
        let mut bh = route("10.244.1.0", 24, 0, None, 0, RT_TABLE_MAIN);
        bh.kind = RouteKind::Blackhole;
        bh.nexthops[0].dev = 0;
        m.routes.insert(bh, false);
        let Resolution::Route { route: found, nexthop } = m.route_get(&flow("10.244.1.7")) else { panic!() };
        assert_eq!((found.kind, nexthop), (RouteKind::Blackhole, None));
        // The /32 still wins over the blackhole /24.
        assert_eq!(dev_of(m.route_get(&flow("10.244.1.5"))), Some(5));

        let mut throw = route("10.244.1.0", 24, 0, None, 0, 100);
        throw.kind = RouteKind::Throw;
        m.routes.insert(throw, false);
        m.routes.insert(route("0.0.0.0", 0, 7, None, 0, 100), false);
        let mut suppress = lookup_rule(Family::V4, 40, 100);
        suppress.suppress_prefixlen = Some(0);
        m.rules.insert(suppress);
        // Table 100's default is suppressed, its throw sends the walk on: main answers.
        assert_eq!(dev_of(m.route_get(&flow("8.8.8.8"))), Some(2));
        let Resolution::Route { route: found, .. } = m.route_get(&flow("10.244.1.7")) else { panic!() };
        assert_eq!(found.kind, RouteKind::Blackhole);
    }

    #[test]
    fn goto_skips_rules_and_a_goto_loop_ends() {
        let mut m = node();
        m.routes.insert(route("10.244.1.6", 32, 9, None, 0, 100), false);
        let mut jump = lookup_rule(Family::V4, 10, 0);
        jump.verb = RuleVerb::Goto(30);
        m.rules.insert(jump);
        let mut skipped = lookup_rule(Family::V4, 20, 0);
        skipped.verb = RuleVerb::Blackhole;
        m.rules.insert(skipped);
        m.rules.insert(lookup_rule(Family::V4, 30, 100));
        assert_eq!(dev_of(m.route_get(&flow("10.244.1.6"))), Some(9));
        // A goto back to itself: the walk gives up instead of spinning.
        let mut looping = lookup_rule(Family::V4, 5, 0);
        looping.verb = RuleVerb::Goto(5);
        m.rules.insert(looping);
        assert_eq!(m.route_get(&flow("10.244.1.6")), Resolution::NoRoute);
    }

    #[test]
    fn without_a_rule_dump_the_builtin_rules_apply() {
        let mut m = node();
        m.rules.clear();
        assert_eq!(dev_of(m.route_get(&flow("10.244.1.6"))), Some(6));
        let dst: IpAddr = "10.99.0.1".parse().unwrap();
        assert!(
            matches!(m.route_get(&flow(&dst.to_string())), Resolution::Route { route, .. } if route.kind == RouteKind::Local)
        );
    }
}
