//! The mirror fed arbitrary and mutated rtnetlink messages: whatever the socket delivers, the
//! mirror neither panics nor answers a lookup with a panic. Valid notifications (link, address,
//! route, rule, neighbour, netconf) are serialized, bytes flipped, dropped and inserted, decoded
//! as the socket decodes them (`NetlinkMessage::<RtMessage>::deserialize`) and applied in a row.
//!
//! Cases: PROPTEST_CASES, else 20 000 sequences of up to 12 messages (README "Tests": the long run).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage as M,
    address::{AddressAttribute, AddressMessage},
    link::{LinkAttribute, LinkMessage},
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage},
    route::{RouteAddress, RouteAttribute, RouteMessage},
    rule::{RuleAttribute, RuleMessage},
};
use proptest::{collection::vec, prelude::*, test_runner::Config};

use super::{Mirror, RtMessage, rules::Flow};

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// One valid notification of each kind the mirror keeps, for interface `dev`.
fn seeds(dev: u32) -> Vec<M> {
    let mut link = LinkMessage::default();
    link.header.index = dev;
    link.attributes = vec![LinkAttribute::IfName(format!("cali{dev:011x}")), LinkAttribute::Mtu(1500), LinkAttribute::Link(dev + 1)];
    let mut addr = AddressMessage::default();
    addr.header.family = AddressFamily::Inet;
    addr.header.prefix_len = 24;
    addr.header.index = dev;
    addr.attributes = vec![AddressAttribute::Address(IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1)))];
    let mut route = RouteMessage::default();
    route.header.address_family = AddressFamily::Inet6;
    route.header.destination_prefix_length = 64;
    route.attributes = vec![
        RouteAttribute::Destination(RouteAddress::Inet6(Ipv6Addr::new(0xfd00, 0x244, 0, 0, 0, 0, 0, 0))),
        RouteAttribute::Oif(dev),
    ];
    let mut route4 = RouteMessage::default();
    route4.header.address_family = AddressFamily::Inet;
    route4.header.destination_prefix_length = 32;
    route4.attributes = vec![RouteAttribute::Destination(RouteAddress::Inet(Ipv4Addr::new(10, 244, 1, 5))), RouteAttribute::Oif(dev)];
    let mut rule = RuleMessage::default();
    rule.header.family = AddressFamily::Inet;
    rule.attributes = vec![RuleAttribute::Priority(100), RuleAttribute::Table(7)];
    let mut neigh = NeighbourMessage::default();
    neigh.header.family = AddressFamily::Inet;
    neigh.header.ifindex = dev;
    neigh.attributes = vec![NeighbourAttribute::Destination(NeighbourAddress::Inet(Ipv4Addr::new(10, 244, 1, 5)))];
    vec![
        M::NewLink(link.clone()),
        M::NewAddress(addr),
        M::NewRoute(route),
        M::NewRoute(route4.clone()),
        M::DelRoute(route4),
        M::NewRule(rule),
        M::NewNeighbour(neigh),
        M::DelLink(link),
    ]
}

fn bytes_of(msg: M) -> Vec<u8> {
    let mut nl = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(RtMessage::Route(msg)));
    nl.finalize();
    let mut buf = vec![0; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

/// A message after edits: (position, operation, byte) — flip, drop or insert.
fn mutated(seed: usize, edits: &[(usize, u8, u8)], dev: u32) -> Vec<u8> {
    let all = seeds(dev);
    let mut b = bytes_of(all[seed % all.len()].clone());
    for &(at, op, byte) in edits {
        let at = at % b.len().max(1);
        match op % 3 {
            0 if !b.is_empty() => b[at] ^= byte | 1,
            1 if !b.is_empty() => {
                b.remove(at);
            }
            _ => b.insert(at, byte),
        }
    }
    b
}

/// Decodes `bytes` as the mirror's socket does and applies whatever comes out.
fn feed(mirror: &mut Mirror, bytes: &[u8]) {
    let Ok(msg) = NetlinkMessage::<RtMessage>::deserialize(bytes) else { return };
    if let NetlinkPayload::InnerMessage(m) = &msg.payload {
        let _ = mirror.apply(m, msg.header.flags & netlink_packet_core::NLM_F_REPLACE != 0);
    }
}

fn lookups(mirror: &Mirror) {
    let _ = mirror.present_links();
    for dst in [IpAddr::V4(Ipv4Addr::new(10, 244, 1, 5)), IpAddr::V6(Ipv6Addr::new(0xfd00, 0x244, 0, 0, 0, 0, 0, 5))] {
        let flow = Flow { dst, src: None, iif: Some("cali0000000000a"), oif: None, tos: 0, proto: 6, sport: 1, dport: 2 };
        let _ = mirror.route_get(&flow);
    }
}

#[test]
fn seeds_decode_as_the_socket_would() {
    for m in seeds(10) {
        let b = bytes_of(m.clone());
        let msg = NetlinkMessage::<RtMessage>::deserialize(&b).expect("a seed decodes");
        assert!(matches!(msg.payload, NetlinkPayload::InnerMessage(RtMessage::Route(_))), "{m:?}");
    }
    let mut mirror = Mirror::default();
    feed(&mut mirror, &bytes_of(seeds(10).remove(0)));
    assert_eq!(mirror.links.name(10), Some("cali0000000000a"), "a fed link is mirrored");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_notifications_never_panic(
        steps in vec((any::<usize>(), vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..6), 1u32..16), 1..12),
        junk in vec(any::<u8>(), 0..300),
    ) {
        let mut mirror = Mirror::default();
        for (seed, edits, dev) in &steps {
            feed(&mut mirror, &mutated(*seed, edits, *dev));
            lookups(&mirror);
        }
        feed(&mut mirror, &junk);
        lookups(&mirror);
    }
}
