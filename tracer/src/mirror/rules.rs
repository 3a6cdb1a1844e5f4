//! Policy routing rules (`ip rule`), in priority order, and the kernel's test of one rule
//! against a flow (fib_rule_match + fib4/fib6_rule_match).

use std::net::IpAddr;

use netlink_packet_route::{
    AddressFamily,
    rule::{RuleAction, RuleAttribute, RuleFlags, RuleMessage},
};

use super::prefix::{Family, Prefix};

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleVerb {
    /// Look the destination up in this table.
    Lookup(u32),
    /// Go on at the rule with this priority.
    Goto(u32),
    Nop,
    Blackhole,
    Unreachable,
    Prohibit,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub family: Family,
    pub priority: u32,
    pub verb: RuleVerb,
    pub invert: bool,
    pub src: Option<Prefix>,
    pub dst: Option<Prefix>,
    pub tos: u8,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub fwmark: u32,
    pub fwmask: u32,
    /// `suppress_prefixlength N`: a route with a prefix this short or shorter does not count.
    pub suppress_prefixlen: Option<u8>,
    pub ip_proto: Option<u8>,
    pub sport: Option<(u16, u16)>,
    pub dport: Option<(u16, u16)>,
    pub uid: Option<(u32, u32)>,
    /// `l3mdev` (VRF) rules; a flow outside any VRF never matches them.
    pub l3mdev: bool,
}

/// What a rule is tested against.
#[derive(Debug, Clone, Copy)]
pub struct Flow<'a> {
    pub dst: IpAddr,
    pub src: Option<IpAddr>,
    /// Name of the input interface; `None` when not known (frames the host transmits).
    pub iif: Option<&'a str>,
    /// Output interface the lookup is bound to (IPv6 link-local and multicast destinations).
    pub oif: Option<u32>,
    pub tos: u8,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

impl Rule {
    pub fn from_message(msg: &RuleMessage) -> Option<Self> {
        let h = &msg.header;
        let family = match h.family {
            AddressFamily::Inet => Family::V4,
            AddressFamily::Inet6 => Family::V6,
            _ => return None,
        };
        let mut rule = Rule { invert: h.flags.contains(RuleFlags::Invert), tos: h.tos, ..Rule::lookup(family, 0, 0) };
        let mut table = u32::from(h.table);
        let mut goto = 0;
        for attr in &msg.attributes {
            match attr {
                RuleAttribute::Priority(p) => rule.priority = *p,
                RuleAttribute::Table(t) => table = *t,
                RuleAttribute::Goto(g) => goto = *g,
                RuleAttribute::Source(a) => rule.src = Some(Prefix::new(*a, h.src_len)),
                RuleAttribute::Destination(a) => rule.dst = Some(Prefix::new(*a, h.dst_len)),
                RuleAttribute::Iifname(n) => rule.iif = Some(n.clone()),
                RuleAttribute::Oifname(n) => rule.oif = Some(n.clone()),
                RuleAttribute::FwMark(m) => rule.fwmark = *m,
                RuleAttribute::FwMask(m) => rule.fwmask = *m,
                // The kernel reports "not set" as -1 (u32::MAX).
                RuleAttribute::SuppressPrefixLen(l) => rule.suppress_prefixlen = u8::try_from(*l).ok(),
                RuleAttribute::IpProtocol(p) => rule.ip_proto = Some(u8::from(*p)),
                RuleAttribute::SourcePortRange(r) => rule.sport = Some((r.start, r.end)),
                RuleAttribute::DestinationPortRange(r) => rule.dport = Some((r.start, r.end)),
                RuleAttribute::UidRange(r) => rule.uid = Some((r.start, r.end)),
                RuleAttribute::L3MDev(on) => rule.l3mdev = *on,
                _ => {}
            }
        }
        // A mark without a mask compares every bit (as the kernel fills it in).
        if rule.fwmark != 0 && rule.fwmask == 0 {
            rule.fwmask = u32::MAX;
        }
        rule.verb = match h.action {
            RuleAction::ToTable => RuleVerb::Lookup(table),
            RuleAction::Goto => RuleVerb::Goto(goto),
            RuleAction::Nop => RuleVerb::Nop,
            RuleAction::Blackhole => RuleVerb::Blackhole,
            RuleAction::Unreachable => RuleVerb::Unreachable,
            RuleAction::Prohibit => RuleVerb::Prohibit,
            _ => RuleVerb::Other,
        };
        Some(rule)
    }

    /// `from all lookup <table>` at `priority`: the shape of the rules every netns starts with.
    pub fn lookup(family: Family, priority: u32, table: u32) -> Self {
        Rule {
            family,
            priority,
            verb: RuleVerb::Lookup(table),
            invert: false,
            src: None,
            dst: None,
            tos: 0,
            iif: None,
            oif: None,
            fwmark: 0,
            fwmask: 0,
            suppress_prefixlen: None,
            ip_proto: None,
            sport: None,
            dport: None,
            uid: None,
            l3mdev: false,
        }
    }

    /// The kernel's match for a forwarded packet: mark 0 and uid 0 (no socket), no output
    /// interface yet, so `oif` rules never match.
    pub fn matches(&self, flow: &Flow<'_>) -> bool {
        let in_range = |v: u16, r: Option<(u16, u16)>| r.is_none_or(|(lo, hi)| (lo..=hi).contains(&v));
        let hit = self.iif.as_deref().is_none_or(|want| flow.iif == Some(want))
            && self.oif.is_none()
            && !self.l3mdev
            && self.fwmark & self.fwmask == 0
            && self.uid.is_none_or(|(lo, hi)| (lo..=hi).contains(&0))
            && self.ip_proto.is_none_or(|p| p == flow.proto)
            && in_range(flow.sport, self.sport)
            && in_range(flow.dport, self.dport)
            && self.src.is_none_or(|p| flow.src.is_some_and(|s| p.contains(s)))
            && self.dst.is_none_or(|p| p.contains(flow.dst))
            && (self.tos == 0 || self.tos == flow.tos);
        hit != self.invert
    }
}

/// The rules of both families, each in the order the kernel walks them.
#[derive(Debug, Default, Clone)]
pub struct Rules {
    v4: Vec<Rule>,
    v6: Vec<Rule>,
}

impl Rules {
    fn list_mut(&mut self, family: Family) -> &mut Vec<Rule> {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }

    pub fn family(&self, family: Family) -> &[Rule] {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    /// Inserts after every rule of the same priority, as the kernel does.
    pub fn insert(&mut self, rule: Rule) {
        let list = self.list_mut(rule.family);
        if list.contains(&rule) {
            return;
        }
        let at = list.iter().position(|r| r.priority > rule.priority).unwrap_or(list.len());
        list.insert(at, rule);
    }

    pub fn remove(&mut self, rule: &Rule) {
        let list = self.list_mut(rule.family);
        if let Some(at) = list.iter().position(|r| r == rule) {
            list.remove(at);
        }
    }

    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn lookup_rule(family: Family, priority: u32, table: u32) -> Rule {
        Rule::lookup(family, priority, table)
    }

    pub(crate) fn flow(dst: &str) -> Flow<'static> {
        Flow { dst: dst.parse().unwrap(), src: None, iif: None, oif: None, tos: 0, proto: 6, sport: 1000, dport: 80 }
    }

    #[test]
    fn selectors_and_invert() {
        let mut r = lookup_rule(Family::V4, 100, 10);
        r.iif = Some("cali1".into());
        r.src = Some(Prefix::new("10.244.1.0".parse().unwrap(), 24));
        let mut f = flow("8.8.8.8");
        assert!(!r.matches(&f));
        f.iif = Some("cali1");
        assert!(!r.matches(&f), "no source");
        f.src = Some("10.244.1.5".parse().unwrap());
        assert!(r.matches(&f));
        r.invert = true;
        assert!(!r.matches(&f));
        let mut marked = lookup_rule(Family::V4, 100, 10);
        marked.fwmark = 0x10;
        marked.fwmask = 0x10;
        assert!(!marked.matches(&f), "forwarded packets carry mark 0 here");
        let mut ports = lookup_rule(Family::V4, 100, 10);
        ports.dport = Some((80, 90));
        assert!(ports.matches(&f));
        ports.dport = Some((81, 90));
        assert!(!ports.matches(&f));
    }

    #[test]
    fn same_priority_keeps_insertion_order() {
        let mut rules = Rules::default();
        rules.insert(lookup_rule(Family::V4, 32766, 254));
        rules.insert(lookup_rule(Family::V4, 0, 255));
        rules.insert(lookup_rule(Family::V4, 100, 10));
        rules.insert(lookup_rule(Family::V4, 100, 11));
        let order: Vec<_> = rules.family(Family::V4).iter().map(|r| r.verb).collect();
        assert_eq!(order, [RuleVerb::Lookup(255), RuleVerb::Lookup(10), RuleVerb::Lookup(11), RuleVerb::Lookup(254)]);
        rules.remove(&lookup_rule(Family::V4, 100, 10));
        assert_eq!(rules.family(Family::V4).len(), 3);
    }
}
