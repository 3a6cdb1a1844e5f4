//! Routes of every table, indexed for longest-prefix match the way the kernel's FIB walks them.

use std::net::IpAddr;

use netlink_packet_route::{
    AddressFamily,
    route::{RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHopFlags, RouteType},
};

use super::prefix::{Family, IntMap, Prefix, key, masked};

pub(crate) const RT_TABLE_MAIN: u32 = 254;
pub(crate) const RT_TABLE_LOCAL: u32 = 255;
pub(crate) const RT_TABLE_DEFAULT: u32 = 253;

/// rtm_type, the part of it the annotation tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Unicast,
    Local,
    Broadcast,
    Anycast,
    Multicast,
    Blackhole,
    Unreachable,
    Prohibit,
    /// "Not in this table": the rule walk goes on.
    Throw,
    Other,
}

impl RouteKind {
    fn from_netlink(t: RouteType) -> Self {
        match t {
            RouteType::Unicast => Self::Unicast,
            RouteType::Local => Self::Local,
            RouteType::Broadcast => Self::Broadcast,
            RouteType::Anycast => Self::Anycast,
            RouteType::Multicast => Self::Multicast,
            RouteType::BlackHole => Self::Blackhole,
            RouteType::Unreachable => Self::Unreachable,
            RouteType::Prohibit => Self::Prohibit,
            RouteType::Throw => Self::Throw,
            _ => Self::Other,
        }
    }

    /// The word `ip route` prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unicast => "unicast",
            Self::Local => "local",
            Self::Broadcast => "broadcast",
            Self::Anycast => "anycast",
            Self::Multicast => "multicast",
            Self::Blackhole => "blackhole",
            Self::Unreachable => "unreachable",
            Self::Prohibit => "prohibit",
            Self::Throw => "throw",
            Self::Other => "other",
        }
    }

    /// Routes whose only purpose is to refuse the packet.
    pub fn is_refusal(self) -> bool {
        matches!(self, Self::Blackhole | Self::Unreachable | Self::Prohibit)
    }
}

/// rtm_scope as `ip route` names it.
pub(crate) fn scope_name(scope: u8) -> &'static str {
    match scope {
        0 => "global",
        200 => "site",
        253 => "link",
        254 => "host",
        255 => "nowhere",
        _ => "other",
    }
}

/// `main`, `local`, `default` or the number.
pub(crate) fn table_name(table: u32) -> Option<&'static str> {
    match table {
        RT_TABLE_MAIN => Some("main"),
        RT_TABLE_LOCAL => Some("local"),
        RT_TABLE_DEFAULT => Some("default"),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// Output interface; 0 for routes without one (blackhole and friends).
    pub dev: u32,
    pub gateway: Option<IpAddr>,
    /// RTNH_F_DEAD: the kernel skips it.
    pub dead: bool,
    /// RTNH_F_LINKDOWN: skipped only where ignore_routes_with_linkdown is set.
    pub linkdown: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: Prefix,
    pub table: u32,
    pub kind: RouteKind,
    pub scope: u8,
    pub tos: u8,
    /// RTA_PRIORITY (`metric` in `ip route`).
    pub metric: u32,
    pub prefsrc: Option<IpAddr>,
    /// One entry for an ordinary route, several for ECMP.
    pub nexthops: Vec<NextHop>,
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn nexthop_flags(dead: &mut bool, linkdown: &mut bool, flags: RouteNextHopFlags) {
    *dead = flags.contains(RouteNextHopFlags::Dead);
    *linkdown = flags.contains(RouteNextHopFlags::Linkdown);
}

impl Route {
    /// IPv4/IPv6 FIB entries; `None` for other families and for cached clones.
    pub fn from_message(msg: &RouteMessage) -> Option<Self> {
        let h = &msg.header;
        let unspecified: IpAddr = match h.address_family {
            AddressFamily::Inet => std::net::Ipv4Addr::UNSPECIFIED.into(),
            AddressFamily::Inet6 => std::net::Ipv6Addr::UNSPECIFIED.into(),
            _ => return None,
        };
        if h.flags.contains(RouteFlags::Cloned) {
            return None;
        }
        let mut dst = unspecified;
        let mut table = u32::from(h.table);
        let mut metric = 0;
        let mut prefsrc = None;
        let mut single = NextHop { dev: 0, gateway: None, dead: false, linkdown: false };
        nexthop_flags(
            &mut single.dead,
            &mut single.linkdown,
            RouteNextHopFlags::from_bits_retain(h.flags.bits() as u8),
        );
        let mut multipath = Vec::new();
        for attr in &msg.attributes {
            match attr {
                RouteAttribute::Destination(a) => dst = route_ip(a).unwrap_or(unspecified),
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Priority(p) => metric = *p,
                RouteAttribute::PrefSource(a) => prefsrc = route_ip(a),
                RouteAttribute::Oif(i) => single.dev = *i,
                RouteAttribute::Gateway(a) => single.gateway = route_ip(a),
                RouteAttribute::MultiPath(hops) => {
                    multipath = hops
                        .iter()
                        .map(|hop| {
                            let mut nh =
                                NextHop { dev: hop.interface_index, gateway: None, dead: false, linkdown: false };
                            nexthop_flags(&mut nh.dead, &mut nh.linkdown, hop.flags);
                            nh.gateway = hop.attributes.iter().find_map(|a| match a {
                                RouteAttribute::Gateway(g) => route_ip(g),
                                _ => None,
                            });
                            nh
                        })
                        .collect();
                }
                _ => {}
            }
        }
        let nexthops = if multipath.is_empty() { vec![single] } else { multipath };
        Some(Route {
            dst: Prefix::new(dst, h.destination_prefix_length),
            table,
            kind: RouteKind::from_netlink(h.kind),
            scope: h.scope.into(),
            tos: h.tos,
            metric,
            prefsrc,
            nexthops,
        })
    }

    pub fn family(&self) -> Family {
        self.dst.family()
    }

    /// The first next hop the kernel would take: not dead, and on `oif` when the lookup is
    /// bound to an interface. (Link-down next hops count: ignore_routes_with_linkdown is off
    /// by default and Calico does not set it.)
    pub fn usable_nexthop(&self, oif: Option<u32>) -> Option<&NextHop> {
        self.nexthops.iter().find(|nh| !nh.dead && oif.is_none_or(|o| nh.dev == o))
    }

    /// Same FIB slot: what `ip route replace` overwrites.
    fn same_slot(&self, other: &Route) -> bool {
        self.dst == other.dst && self.table == other.table && self.tos == other.tos && self.metric == other.metric
    }

    /// Same route: slot, type and first next hop, which is what a RTM_DELROUTE names.
    fn same_route(&self, other: &Route) -> bool {
        self.same_slot(other)
            && self.kind == other.kind
            && self.nexthops.first().map(|n| (n.dev, n.gateway)) == other.nexthops.first().map(|n| (n.dev, n.gateway))
    }
}

/// One family of one table: routes grouped by prefix, prefix lengths longest first.
#[derive(Debug, Default, Clone)]
pub struct PrefixIndex {
    lens: Vec<u8>,
    by_prefix: IntMap<(u8, u128), Vec<Route>>,
}

impl PrefixIndex {
    fn slot_key(route: &Route) -> (u8, u128) {
        (route.dst.len, key(route.dst.addr))
    }

    fn insert(&mut self, route: Route, replace: bool) {
        let k = Self::slot_key(&route);
        let routes = self.by_prefix.entry(k).or_default();
        if replace {
            routes.retain(|r| !r.same_slot(&route));
        } else {
            routes.retain(|r| !r.same_route(&route));
        }
        // The kernel keeps a prefix's aliases ordered by TOS (specific first), then metric.
        let at = routes
            .iter()
            .position(|r| (std::cmp::Reverse(r.tos), r.metric) > (std::cmp::Reverse(route.tos), route.metric))
            .unwrap_or(routes.len());
        routes.insert(at, route);
        if let Err(at) = self.lens.binary_search_by(|l| k.0.cmp(l)) {
            self.lens.insert(at, k.0);
        }
    }

    fn remove(&mut self, route: &Route) {
        let k = Self::slot_key(route);
        if let Some(routes) = self.by_prefix.get_mut(&k) {
            routes.retain(|r| !r.same_route(route));
            if routes.is_empty() {
                self.by_prefix.remove(&k);
                if !self.by_prefix.keys().any(|(len, _)| *len == k.0) {
                    self.lens.retain(|l| *l != k.0);
                }
            }
        }
    }

    /// Longest prefix first; within a prefix the first route whose TOS fits and that has a
    /// usable next hop (or needs none). A refusal route answers as it is.
    pub fn lookup(&self, dst: IpAddr, tos: u8, usable: impl Fn(&Route) -> bool) -> Option<&Route> {
        let family = Family::of(dst);
        let k = key(dst);
        self.lens.iter().find_map(|&len| {
            self.by_prefix
                .get(&(len, masked(k, len, family)))?
                .iter()
                .find(|r| (r.tos == 0 || r.tos == tos) && usable(r))
        })
    }

    fn routes(&self) -> impl Iterator<Item = &Route> {
        self.by_prefix.values().flatten()
    }
}

/// A routing table: one index per family.
#[derive(Debug, Default, Clone)]
pub struct Table {
    v4: PrefixIndex,
    v6: PrefixIndex,
}

impl Table {
    pub fn family(&self, family: Family) -> &PrefixIndex {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    fn family_mut(&mut self, family: Family) -> &mut PrefixIndex {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }
}

/// Every table by id.
#[derive(Debug, Default, Clone)]
pub struct Routes {
    tables: IntMap<u32, Table>,
}

impl Routes {
    /// Adds a route; `replace` when the notification carried NLM_F_REPLACE (`ip route
    /// replace/change`), which overwrites the route in the same slot.
    pub fn insert(&mut self, route: Route, replace: bool) {
        let family = route.family();
        self.tables.entry(route.table).or_default().family_mut(family).insert(route, replace);
    }

    pub fn remove(&mut self, route: &Route) {
        if let Some(t) = self.tables.get_mut(&route.table) {
            t.family_mut(route.family()).remove(route);
        }
    }

    pub fn table(&self, id: u32) -> Option<&Table> {
        self.tables.get(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.tables.values().flat_map(|t| t.v4.routes().chain(t.v6.routes()))
    }

    /// Drops every route through `dev`: the kernel flushes them without a RTM_DELROUTE when
    /// an interface goes down or away (IPv4), so the mirror must do the same by itself.
    pub fn remove_dev(&mut self, dev: u32, family: Option<Family>) {
        let doomed: Vec<Route> = self
            .iter()
            .filter(|r| family.is_none_or(|f| r.family() == f))
            .filter(|r| !r.nexthops.is_empty() && r.nexthops.iter().all(|n| n.dev == dev))
            .cloned()
            .collect();
        for r in &doomed {
            self.remove(r);
        }
    }

    pub fn clear(&mut self) {
        self.tables.clear();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A unicast route in `table`, for fixture tables.
    pub(crate) fn route(dst: &str, len: u8, dev: u32, gateway: Option<&str>, metric: u32, table: u32) -> Route {
        Route {
            dst: Prefix::new(dst.parse().unwrap(), len),
            table,
            kind: RouteKind::Unicast,
            scope: if gateway.is_some() { 0 } else { 253 },
            tos: 0,
            metric,
            prefsrc: None,
            nexthops: vec![NextHop { dev, gateway: gateway.map(|g| g.parse().unwrap()), dead: false, linkdown: false }],
        }
    }

    fn lookup<'a>(routes: &'a Routes, dst: &str) -> Option<&'a Route> {
        let dst: IpAddr = dst.parse().unwrap();
        routes.table(RT_TABLE_MAIN)?.family(Family::of(dst)).lookup(dst, 0, |r| r.usable_nexthop(None).is_some())
    }

    #[test]
    fn longest_prefix_wins_then_lowest_metric() {
        let mut rs = Routes::default();
        rs.insert(route("0.0.0.0", 0, 2, Some("10.99.0.2"), 0, RT_TABLE_MAIN), false);
        rs.insert(route("10.244.1.0", 24, 3, None, 100, RT_TABLE_MAIN), false);
        rs.insert(route("10.244.1.0", 24, 4, None, 10, RT_TABLE_MAIN), false);
        rs.insert(route("10.244.1.5", 32, 5, None, 0, RT_TABLE_MAIN), false);
        assert_eq!(lookup(&rs, "10.244.1.5").unwrap().nexthops[0].dev, 5);
        assert_eq!(lookup(&rs, "10.244.1.9").unwrap().nexthops[0].dev, 4);
        assert_eq!(lookup(&rs, "8.8.8.8").unwrap().nexthops[0].dev, 2);
        rs.remove(&route("10.244.1.0", 24, 4, None, 10, RT_TABLE_MAIN));
        assert_eq!(lookup(&rs, "10.244.1.9").unwrap().nexthops[0].dev, 3);
        rs.remove(&route("10.244.1.5", 32, 5, None, 0, RT_TABLE_MAIN));
        assert_eq!(lookup(&rs, "10.244.1.5").unwrap().nexthops[0].dev, 3);
    }

    #[test]
    fn dead_next_hops_fall_back_to_a_shorter_prefix() {
        let mut rs = Routes::default();
        rs.insert(route("0.0.0.0", 0, 2, Some("10.99.0.2"), 0, RT_TABLE_MAIN), false);
        let mut dead = route("10.244.1.5", 32, 5, None, 0, RT_TABLE_MAIN);
        dead.nexthops[0].dead = true;
        rs.insert(dead, false);
        assert_eq!(lookup(&rs, "10.244.1.5").unwrap().nexthops[0].dev, 2);
    }

    #[test]
    fn replace_overwrites_the_slot_and_add_keeps_both() {
        let mut rs = Routes::default();
        rs.insert(route("10.244.1.5", 32, 5, None, 0, RT_TABLE_MAIN), false);
        rs.insert(route("10.244.1.5", 32, 6, None, 0, RT_TABLE_MAIN), true);
        assert_eq!(rs.iter().count(), 1);
        assert_eq!(lookup(&rs, "10.244.1.5").unwrap().nexthops[0].dev, 6);
        rs.insert(route("10.244.1.5", 32, 7, None, 5, RT_TABLE_MAIN), false);
        assert_eq!(rs.iter().count(), 2);
        rs.remove_dev(6, None);
        assert_eq!(lookup(&rs, "10.244.1.5").unwrap().nexthops[0].dev, 7);
    }

    #[test]
    fn ipv6_longest_prefix_and_metric() {
        let mut rs = Routes::default();
        rs.insert(route("::", 0, 2, Some("fe80::1"), 1024, RT_TABLE_MAIN), false);
        rs.insert(route("fd00:244::", 64, 3, None, 256, RT_TABLE_MAIN), false);
        rs.insert(route("fd00:244::", 64, 4, None, 100, RT_TABLE_MAIN), false);
        rs.insert(route("fd00:244::5", 128, 5, None, 1024, RT_TABLE_MAIN), false);
        assert_eq!(lookup(&rs, "fd00:244::5").unwrap().nexthops[0].dev, 5);
        assert_eq!(lookup(&rs, "fd00:244::7").unwrap().nexthops[0].dev, 4);
        assert_eq!(lookup(&rs, "2001:db8::1").unwrap().nexthops[0].dev, 2);
        assert!(lookup(&rs, "10.0.0.1").is_none());
    }
}
