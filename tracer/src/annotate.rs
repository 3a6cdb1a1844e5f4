//! Route and neighbour annotation: for every IP event the route the kernel would take for its
//! destination (from the [`Mirror`]), the neighbour entry of that route's next hop, the
//! kernel's own verdict at packet time (`bpf_fib_lookup` on ingress), and short notes for the
//! things people hunt for on a Calico node.
//!
//! Everything here reads the mirror; nothing talks to the kernel.

#[cfg(any(test, feature = "bench"))]
pub mod bench;
pub mod cache;

use std::{fmt::Write as _, net::IpAddr};

use tracer_common::{arp_op, dir};

use crate::{
    events::{
        PacketEvent,
        annotation::{Annotation, Dev, FibVerdict, NoteCode},
    },
    mirror::{
        Mirror,
        fib::Resolution,
        neigh::NeighState,
        prefix::Family,
        routes::{NextHop, Route, RouteKind, scope_name},
        rules::Flow,
    },
    packet::{Arp, Mac, PacketView},
};

/// The route and neighbour for one destination, before any check looks at them.
struct Lookup<'m> {
    resolution: Resolution<'m>,
    /// The next hop's neighbour address and entry (for unicast routes only).
    neighbour: Option<(IpAddr, &'m NextHop, NeighState, Option<Mac>)>,
}

/// Annotates one packet event.
pub fn annotate(mirror: &Mirror, ev: &PacketEvent) -> Annotation {
    let view = PacketView(&ev.packet);
    let mut a = Annotation::default();
    if let Some(arp) = view.arp() {
        annotate_arp(mirror, ev, arp, &mut a);
        return a;
    }
    let Some(dst) = view.dst_ip() else { return a };
    let iif = (ev.dir == dir::INGRESS).then(|| mirror.links.name(ev.ifindex)).flatten();
    let scoped = is_scoped(dst) || view.src_ip().is_some_and(|s| Family::of(s) == Family::V6 && is_scoped(s));
    let flow = Flow {
        dst,
        src: view.src_ip(),
        iif,
        // Link-local and multicast destinations are looked up on the interface itself.
        oif: is_scoped(dst).then_some(ev.ifindex),
        tos: 0,
        proto: view.ip_proto().unwrap_or_default(),
        sport: view.ports().map_or(0, |p| p.0),
        dport: view.ports().map_or(0, |p| p.1),
    };
    let lookup = look_up(mirror, &flow);
    describe(mirror, &lookup, &mut a);
    describe_fib(mirror, ev, &mut a);
    note_refusal(&lookup, dst, &mut a);
    note_broken_neighbour(mirror, &lookup, &mut a);
    if ev.dir == dir::EGRESS && !scoped {
        note_wrong_egress(mirror, ev, &lookup, &mut a);
        note_dst_mac(ev, &lookup, &mut a);
    }
    if !scoped {
        note_fib_disagreement(mirror, ev, &lookup, &mut a);
    }
    a
}

/// IPv6 link-local and multicast (and IPv4 multicast/broadcast): bound to one interface, never
/// forwarded by bpf_fib_lookup.
fn is_scoped(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_multicast() || a.is_unicast_link_local(),
    }
}

fn look_up<'m>(mirror: &'m Mirror, flow: &Flow<'_>) -> Lookup<'m> {
    let resolution = mirror.route_get(flow);
    let neighbour = match resolution {
        Resolution::Route { route, nexthop: Some(nh) } if route.kind == RouteKind::Unicast => {
            let ip = nh.gateway.unwrap_or(flow.dst);
            let entry = mirror.neighbours.get(nh.dev, ip);
            Some((ip, nh, entry.map_or(NeighState::None, |n| n.state), entry.and_then(|n| n.lladdr)))
        }
        _ => None,
    };
    Lookup { resolution, neighbour }
}

/// Fills the route_* and neigh_* fields.
fn describe<'m>(mirror: &'m Mirror, lookup: &Lookup<'m>, a: &mut Annotation) {
    match lookup.resolution {
        Resolution::Route { route, nexthop } => describe_route(mirror, route, nexthop, a),
        Resolution::RuleRefused { kind, priority } => {
            a.route_type = Some(kind);
            a.note(NoteCode::RuleRefuses, format!("rule {priority} says {}", kind.name()));
        }
        Resolution::NoRoute => {}
    }
    if let Some((ip, _, state, lladdr)) = lookup.neighbour {
        a.neigh_ip = Some(ip);
        a.neigh_state = Some(state);
        a.neigh_lladdr = lladdr;
    }
}

fn describe_route(mirror: &Mirror, route: &Route, nexthop: Option<&NextHop>, a: &mut Annotation) {
    a.route_dst = Some(route.dst);
    a.route_type = Some(route.kind);
    a.route_scope = Some(scope_name(route.scope));
    a.route_table = Some(route.table);
    a.route_dev = nexthop.map(|n| Dev::new(mirror, n.dev));
    a.route_gw = nexthop.and_then(|n| n.gateway);
}

fn describe_fib(mirror: &Mirror, ev: &PacketEvent, a: &mut Annotation) {
    let Some(verdict) = FibVerdict::from_ret(ev.fib_ret) else {
        return;
    };
    a.fib = Some(verdict);
    a.fib_dev = verdict.has_dev().then(|| Dev::new(mirror, ev.fib_ifindex));
}

fn note_refusal(lookup: &Lookup<'_>, dst: IpAddr, a: &mut Annotation) {
    match lookup.resolution {
        Resolution::Route { route, .. } if route.kind.is_refusal() => {
            a.note(NoteCode::RouteRefuses, format!("route {} {} drops it", route.kind.name(), route.dst));
        }
        Resolution::NoRoute => a.note(NoteCode::NoRoute, format!("no route to {dst}")),
        _ => {}
    }
}

fn note_broken_neighbour(mirror: &Mirror, lookup: &Lookup<'_>, a: &mut Annotation) {
    if let Some((ip, nh, state, _)) = lookup.neighbour
        && state.is_broken()
    {
        a.note(NoteCode::NeighBroken, format!("neigh {ip} on {} is {}", Dev::new(mirror, nh.dev), state.name()));
    }
    if let Some((ip, _, NeighState::Incomplete | NeighState::None, _)) = lookup.neighbour
        && a.fib == Some(FibVerdict::NoNeighbour)
    {
        a.note(NoteCode::NeighNoAnswerYet, format!("the kernel has no answer from {ip} yet"));
    }
}

/// The host sent the frame out of a different interface than the route names.
fn note_wrong_egress(mirror: &Mirror, ev: &PacketEvent, lookup: &Lookup<'_>, a: &mut Annotation) {
    if let Some((_, nh, _, _)) = lookup.neighbour
        && nh.dev != ev.ifindex
    {
        a.note(
            NoteCode::WrongDevice,
            format!("left on {} but the route says dev {}", Dev::new(mirror, ev.ifindex), Dev::new(mirror, nh.dev)),
        );
    }
}

/// A unicast frame whose destination MAC is not what the neighbour table holds for the next hop.
fn note_dst_mac(ev: &PacketEvent, lookup: &Lookup<'_>, a: &mut Annotation) {
    let Some((ip, nh, _, Some(lladdr))) = lookup.neighbour else {
        return;
    };
    let dst_mac = Mac(ev.packet.dst_mac);
    let group = dst_mac.0[0] & 1 != 0;
    if nh.dev == ev.ifindex && !group && dst_mac != lladdr {
        a.note(NoteCode::DstMacMismatch, format!("dst MAC {dst_mac} is not neigh {ip}'s {lladdr}"));
    }
}

/// What bpf_fib_lookup should have said if the mirror were exact.
fn expected_fib(mirror: &Mirror, ev: &PacketEvent, lookup: &Lookup<'_>, family: Family) -> (FibVerdict, Option<u32>) {
    if mirror.sysctls.forwarding(family, ev.ifindex) == Some(false) {
        return (FibVerdict::ForwardingDisabled, None);
    }
    match lookup.resolution {
        Resolution::RuleRefused { kind, .. } => (refusal_verdict(kind), None),
        Resolution::Route { route, .. } if route.kind.is_refusal() => (refusal_verdict(route.kind), None),
        _ => match lookup.neighbour {
            Some((_, nh, state, _)) if state.is_valid() => (FibVerdict::Success, Some(nh.dev)),
            Some((_, nh, _, _)) => (FibVerdict::NoNeighbour, Some(nh.dev)),
            None => (FibVerdict::NotForwarded, None),
        },
    }
}

fn refusal_verdict(kind: RouteKind) -> FibVerdict {
    match kind {
        RouteKind::Blackhole => FibVerdict::Blackhole,
        RouteKind::Unreachable => FibVerdict::Unreachable,
        _ => FibVerdict::Prohibit,
    }
}

/// The kernel's verdict at packet time against the mirror's answer now.
fn note_fib_disagreement(mirror: &Mirror, ev: &PacketEvent, lookup: &Lookup<'_>, a: &mut Annotation) {
    let (Some(actual), Some(dst)) = (a.fib, PacketView(&ev.packet).dst_ip()) else {
        return;
    };
    let (expected, expected_dev) = expected_fib(mirror, ev, lookup, Family::of(dst));
    let actual_dev = actual.has_dev().then_some(ev.fib_ifindex);
    let same_route =
        |e: FibVerdict| matches!(e, FibVerdict::Success | FibVerdict::NoNeighbour) && expected_dev == actual_dev;
    let agree = match actual {
        FibVerdict::UnsupportedLwt => true,
        FibVerdict::FragNeeded => same_route(expected),
        _ => actual == expected && expected_dev == actual_dev,
    };
    if agree {
        return;
    }
    if same_route(expected) && same_route(actual) {
        // Same route, the neighbour changed between the packet and now (the first packet to a
        // next hop is what starts its resolution).
        a.note(
            NoteCode::FibNeighChanged,
            format!("kernel fib {} at packet time, neigh now {}", actual.name(), neigh_state_name(lookup)),
        );
        return;
    }
    let mut note = format!("kernel fib {}", actual.name());
    if let Some(d) = actual_dev {
        let _ = write!(note, " {}", Dev::new(mirror, d));
    }
    let _ = write!(note, " but the mirror says {}", expected.name());
    if let Some(d) = expected_dev {
        let _ = write!(note, " {}", Dev::new(mirror, d));
    }
    note.push_str(" (mirror lagged or policy routing differs)");
    a.note(NoteCode::FibDiffers, note);
}

fn neigh_state_name(lookup: &Lookup<'_>) -> &'static str {
    lookup.neighbour.map_or("none", |n| n.2.name())
}

/// ARP: the route for the address asked about, and the proxy-ARP and reply-MAC checks.
fn annotate_arp(mirror: &Mirror, ev: &PacketEvent, arp: Arp, a: &mut Annotation) {
    match (arp.op, ev.dir) {
        (arp_op::REQUEST, dir::INGRESS) => {
            let flow = Flow {
                dst: IpAddr::V4(arp.tpa),
                src: Some(IpAddr::V4(arp.spa)),
                iif: mirror.links.name(ev.ifindex),
                oif: None,
                tos: 0,
                proto: 0,
                sport: 0,
                dport: 0,
            };
            let lookup = look_up(mirror, &flow);
            describe(mirror, &lookup, a);
            note_proxy_arp(mirror, ev.ifindex, arp, &lookup, a);
        }
        (arp_op::REPLY, dir::EGRESS) => note_arp_reply_mac(mirror, ev.ifindex, arp, a),
        _ => {}
    }
}

/// Whether the kernel's proxy ARP (arp_process → arp_fwd_proxy) can answer a request that
/// arrived on `dev`: forwarding and proxy_arp on, and a unicast route for the target that
/// leaves through another interface. Without a default route, 169.254.1.1 has none: the known
/// Calico failure (projectcalico/calico#3270).
fn note_proxy_arp(mirror: &Mirror, dev: u32, arp: Arp, lookup: &Lookup<'_>, a: &mut Annotation) {
    let on = Dev::new(mirror, dev);
    let target = IpAddr::V4(arp.tpa);
    let route_dev = match lookup.resolution {
        Resolution::Route { route, .. } if route.kind == RouteKind::Local => return,
        Resolution::Route { route, nexthop: Some(nh) } if route.kind == RouteKind::Unicast => Some(nh.dev),
        _ => None,
    };
    match route_dev {
        None => a.note(
            NoteCode::ProxyArpNoRoute,
            format!("no route to {target} lets proxy ARP answer on {on} (no default route?)"),
        ),
        Some(d) if d == dev => a.note(
            NoteCode::ProxyArpRoutedBack,
            format!("the route to {target} points back out {on}: proxy ARP stays silent"),
        ),
        Some(_) => {
            if mirror.sysctls.proxy_arp(dev) == Some(false) && !mirror.neighbours.is_proxied(dev, target) {
                a.note(NoteCode::ProxyArpOff, format!("proxy_arp is off on {on}: {target} will not be answered"));
            }
            if mirror.sysctls.forwarding(Family::V4, dev) == Some(false) {
                a.note(NoteCode::ForwardingOff, format!("forwarding is off on {on}: proxy ARP stays silent"));
            }
        }
    }
}

fn note_arp_reply_mac(mirror: &Mirror, dev: u32, arp: Arp, a: &mut Annotation) {
    let Some(own) = mirror.links.get(dev).and_then(|l| l.mac) else {
        return;
    };
    if arp.sha != own {
        a.note(
            NoteCode::ArpReplyMac,
            format!("ARP reply carries {} but {}'s MAC is {own}", arp.sha, Dev::new(mirror, dev)),
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::Ipv4Addr;

    use tracer_common::{fib, valid};

    use super::{
        bench::{CALI_MAC, FIRST_CALI, UPLINK, calico_node, pod_ip, pod_mac, tcp_event},
        *,
    };
    use crate::mirror::{
        neigh::{NeighUpdate, Neighbour},
        prefix::Prefix,
        routes::{NextHop, RT_TABLE_MAIN},
        sysctl::{DevConf, NetconfMessage},
    };

    const POD0: u32 = FIRST_CALI;
    const POD1: u32 = FIRST_CALI + 1;

    fn notes_of(a: &Annotation) -> String {
        a.notes.join(" | ")
    }

    /// The annotation's JSON fields as the product writes them, as one object.
    pub(crate) fn json_of(a: &Annotation) -> serde_json::Value {
        let mut fields = b"{\"x\":1".to_vec();
        a.write_json_fields(&mut fields).unwrap();
        fields.push(b'}');
        let mut v: serde_json::Value = serde_json::from_slice(&fields).unwrap();
        v.as_object_mut().unwrap().remove("x");
        v
    }

    #[test]
    fn pod_to_pod_text_and_json() {
        let m = calico_node(4);
        let ev = tcp_event(0, pod_ip(1), dir::INGRESS, POD0, fib::SUCCESS, POD1);
        let a = annotate(&m, &ev);
        assert_eq!(
            a.to_string(),
            format!(
                " | route 10.244.1.6 dev cali00000a1b2c4 scope link, neigh 10.244.1.6 REACHABLE {}, fib success cali00000a1b2c4",
                pod_mac(1)
            )
        );
        let j = json_of(&a);
        assert_eq!(j["route_dst"], "10.244.1.6");
        assert_eq!(j["route_type"], "unicast");
        assert_eq!(j["route_dev"], "cali00000a1b2c4");
        assert_eq!(j["route_scope"], "link");
        assert_eq!(j["route_table"], 254);
        assert!(j.get("route_gw").is_none());
        assert_eq!(j["neigh_ip"], "10.244.1.6");
        assert_eq!(j["neigh_state"], "REACHABLE");
        assert_eq!(j["fib"], "success");
        assert_eq!(j["fib_dev"], "cali00000a1b2c4");
        assert_eq!(j["notes"], serde_json::json!([]));
    }

    #[test]
    fn outside_traffic_goes_via_the_gateway() {
        let m = calico_node(2);
        let a = annotate(&m, &tcp_event(0, Ipv4Addr::new(1, 1, 1, 1), dir::INGRESS, POD0, fib::SUCCESS, UPLINK));
        assert!(a.to_string().starts_with(" | route default via 10.99.0.2 dev eth0, neigh 10.99.0.2 REACHABLE"), "{a}");
        assert!(a.notes.is_empty());
    }

    #[test]
    fn frame_left_on_the_wrong_cali() {
        let m = calico_node(3);
        let mut ev = tcp_event(0, pod_ip(1), dir::EGRESS, FIRST_CALI + 2, fib::NOT_RUN, 0);
        ev.packet.dst_mac = pod_mac(1).0;
        let a = annotate(&m, &ev);
        assert_eq!(notes_of(&a), "left on cali00000a1b2c5 but the route says dev cali00000a1b2c4");
        assert_eq!(a.note_codes, [NoteCode::WrongDevice]);
    }

    #[test]
    fn destination_mac_differs_from_the_neighbour() {
        let m = calico_node(2);
        let mut ev = tcp_event(0, pod_ip(1), dir::EGRESS, POD1, fib::NOT_RUN, 0);
        ev.packet.dst_mac = [0x02, 0, 0, 0, 0, 0x99];
        let a = annotate(&m, &ev);
        assert_eq!(notes_of(&a), format!("dst MAC 02:00:00:00:00:99 is not neigh 10.244.1.6's {}", pod_mac(1)));
        ev.packet.dst_mac = [0xff; 6];
        assert!(annotate(&m, &ev).notes.is_empty(), "broadcast is not a mismatch");
    }

    #[test]
    fn failed_neighbour_is_noted_and_agrees_with_no_neigh() {
        let mut m = calico_node(2);
        let failed = Neighbour { state: NeighState::Failed, lladdr: None };
        m.neighbours.apply(NeighUpdate { dev: POD1, ip: pod_ip(1).into(), proxy: false, neighbour: failed }, true);
        let a = annotate(&m, &tcp_event(0, pod_ip(1), dir::INGRESS, POD0, fib::NO_NEIGH, POD1));
        assert_eq!(notes_of(&a), "neigh 10.244.1.6 on cali00000a1b2c4 is FAILED");
        assert_eq!(a.note_codes, [NoteCode::NeighBroken]);
        assert!(a.to_string().contains("neigh 10.244.1.6 FAILED, fib no_neigh cali00000a1b2c4 ⚠ neigh"), "{a}");
    }

    #[test]
    fn refusal_routes_and_rules() {
        let mut m = calico_node(2);
        let mut blackhole = bench_route("10.250.0.0", 16);
        blackhole.kind = RouteKind::Blackhole;
        m.routes.insert(blackhole, false);
        let a = annotate(&m, &tcp_event(0, Ipv4Addr::new(10, 250, 0, 1), dir::INGRESS, POD0, fib::BLACKHOLE, 0));
        assert_eq!(notes_of(&a), "route blackhole 10.250.0.0/16 drops it");
        assert_eq!(a.note_codes, [NoteCode::RouteRefuses]);
        assert_eq!(json_of(&a)["fib"], "blackhole");
        let mut rule = crate::mirror::rules::Rule::lookup(Family::V4, 100, 0);
        rule.verb = crate::mirror::rules::RuleVerb::Prohibit;
        rule.dst = Some(Prefix::new("10.66.0.0".parse().unwrap(), 16));
        m.rules.insert(rule);
        let a = annotate(&m, &tcp_event(0, Ipv4Addr::new(10, 66, 0, 1), dir::INGRESS, POD0, fib::PROHIBIT, 0));
        assert_eq!(notes_of(&a), "rule 100 says prohibit");
        assert_eq!(a.note_codes, [NoteCode::RuleRefuses]);
        assert!(a.to_string().starts_with(" | route prohibit by rule, fib prohibit"), "{a}");
    }

    fn bench_route(dst: &str, len: u8) -> Route {
        Route {
            dst: Prefix::new(dst.parse().unwrap(), len),
            table: RT_TABLE_MAIN,
            kind: RouteKind::Unicast,
            scope: 0,
            tos: 0,
            metric: 0,
            prefsrc: None,
            nexthops: vec![NextHop { dev: 0, gateway: None, dead: false, linkdown: false }],
        }
    }

    #[test]
    fn fib_disagreement_is_reported() {
        let m = calico_node(3);
        // The kernel sent it elsewhere than the mirror's route says.
        let a = annotate(&m, &tcp_event(0, pod_ip(1), dir::INGRESS, POD0, fib::SUCCESS, FIRST_CALI + 2));
        assert_eq!(
            notes_of(&a),
            "kernel fib success cali00000a1b2c5 but the mirror says success cali00000a1b2c4 (mirror lagged or policy routing differs)"
        );
        // Same route, the neighbour resolved in between.
        let a = annotate(&m, &tcp_event(0, pod_ip(1), dir::INGRESS, POD0, fib::NO_NEIGH, POD1));
        assert_eq!(notes_of(&a), "kernel fib no_neigh at packet time, neigh now REACHABLE");
        assert_eq!(a.note_codes, [NoteCode::FibNeighChanged]);
    }

    fn arp(op: u16, direction: u8, ifindex: u32, sha: Mac, spa: Ipv4Addr, tpa: Ipv4Addr) -> PacketEvent {
        let mut ev = tcp_event(0, tpa, direction, ifindex, fib::NOT_RUN, 0);
        ev.packet = tracer_common::Packet {
            valid: valid::L2 | valid::ARP,
            ethertype: 0x0806,
            arp_op: op,
            arp_sha: sha.0,
            arp_spa: spa.octets(),
            arp_tpa: tpa.octets(),
            ..Default::default()
        };
        ev
    }

    const GW: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

    #[test]
    fn proxy_arp_checks() {
        let mut m = calico_node(2);
        let request = arp(1, dir::INGRESS, POD0, pod_mac(0), pod_ip(0), GW);
        let a = annotate(&m, &request);
        assert!(a.notes.is_empty(), "{:?}", a.notes);
        assert!(a.to_string().starts_with(" | route default via 10.99.0.2 dev eth0"), "{a}");

        let off = DevConf { proxy_neigh: Some(false), ..DevConf::default() };
        m.sysctls.apply(NetconfMessage { family: Family::V4, ifindex: POD0 as i32, conf: off });
        assert_eq!(
            notes_of(&annotate(&m, &request)),
            "proxy_arp is off on cali00000a1b2c3: 169.254.1.1 will not be answered"
        );

        let mut default = bench_route("0.0.0.0", 0);
        default.nexthops[0] =
            NextHop { dev: UPLINK, gateway: Some("10.99.0.2".parse().unwrap()), dead: false, linkdown: false };
        m.routes.remove(&default);
        assert_eq!(
            notes_of(&annotate(&m, &request)),
            "no route to 169.254.1.1 lets proxy ARP answer on cali00000a1b2c3 (no default route?)"
        );
    }

    #[test]
    fn arp_reply_with_a_foreign_mac() {
        let m = calico_node(2);
        let good = arp(2, dir::EGRESS, POD0, CALI_MAC, GW, pod_ip(0));
        assert!(annotate(&m, &good).notes.is_empty());
        let bad = arp(2, dir::EGRESS, POD0, Mac([2, 0, 0, 0, 0, 1]), GW, pod_ip(0));
        assert_eq!(
            notes_of(&annotate(&m, &bad)),
            "ARP reply carries 02:00:00:00:00:01 but cali00000a1b2c3's MAC is ee:ee:ee:ee:ee:ee"
        );
    }

    #[test]
    fn ipv6_link_local_is_looked_up_on_its_own_interface() {
        let mut m = calico_node(2);
        for dev in [POD0, POD1] {
            let mut r = bench_route("fe80::", 64);
            r.nexthops[0].dev = dev;
            r.metric = 256;
            m.routes.insert(r, false);
        }
        let mut ev = tcp_event(0, pod_ip(1), dir::EGRESS, POD1, fib::NOT_RUN, 0);
        ev.packet.valid = valid::L2 | valid::IPV6;
        ev.packet.dst_ip = "fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
        ev.packet.src_ip = "fe80::2".parse::<std::net::Ipv6Addr>().unwrap().octets();
        let a = annotate(&m, &ev);
        assert_eq!(a.route_dev.map(|d| d.index), Some(POD1));
        assert!(a.notes.is_empty(), "{:?}", a.notes);
    }
}
