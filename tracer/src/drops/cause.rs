//! A drop's cause in plain words, from its reason (or, on kernels without reasons, the
//! function that dropped it) and the node's state in the mirror.

use std::net::IpAddr;

use tracer_common::iff;


pub(crate) use crate::events::drop::{Cause, CauseCode};
use crate::{
    events::{DropEvent, annotation::Annotation},
    mirror::{Mirror, fib::Resolution, neigh::NeighState, routes::RouteKind, rules::Flow},
    packet::{Mac, PacketView},
};

/// Drops grouped by what a user would do about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    NoRoute,
    Neighbour,
    Netfilter,
    RpFilter,
    TooBig,
    Device,
    NoSocket,
    BadHeader,
    OtherHost,
    TcProgram,
    /// Kernels without reasons: a list of packets freed (`kfree_skb_list`), a device cause only
    /// when the device is down or has no carrier.
    DeviceIfDown,
    /// Kernels without reasons: the input route lookup refused the packet (`ip_rcv_finish_core`);
    /// the mirror tells whether the reverse-path filter did.
    InputRoute,
    NotSpecified,
    Other,
}

/// The class of a drop reason (`NEIGH_FAILED`), or of the dropping function when the kernel
/// gives no reason (older kernels, or `NOT_SPECIFIED`).
pub(crate) fn classify(reason: Option<&str>, symbol: Option<&str>) -> Class {
    let by_reason = reason.map(|r| match r {
        "IP_INNOROUTES" | "IP_OUTNOROUTES" => Class::NoRoute,
        "NEIGH_FAILED" | "NEIGH_QUEUEFULL" | "NEIGH_DEAD" | "NEIGH_CREATEFAIL" => Class::Neighbour,
        "NETFILTER_DROP" => Class::Netfilter,
        "IP_RPFILTER" => Class::RpFilter,
        "PKT_TOO_BIG" => Class::TooBig,
        "DEV_READY" | "QDISC_DROP" | "DEV_HDR" => Class::Device,
        "NO_SOCKET" => Class::NoSocket,
        "IP_INHDR" | "IP_CSUM" | "PKT_TOO_SMALL" | "HDR_TRUNC" | "IPV6_BAD_EXTHDR" => Class::BadHeader,
        "OTHERHOST" => Class::OtherHost,
        "TC_INGRESS" | "TC_EGRESS" | "TC_DROP" => Class::TcProgram,
        "NOT_SPECIFIED" => Class::NotSpecified,
        _ => Class::Other,
    });
    match by_reason {
        Some(Class::NotSpecified) | None => match symbol.map(base_symbol) {
            Some("ip_error" | "ip6_pkt_discard" | "ip6_pkt_discard_out" | "ip6_pkt_drop") => Class::NoRoute,
            // Before drop reasons (5.10) a FAILED entry's queue goes through the protocol's
            // error_report, which frees each packet.
            Some("neigh_invalidate" | "__neigh_event_send" | "neigh_probe" | "arp_error_report" | "ndisc_error_report") => {
                Class::Neighbour
            }
            Some("nf_hook_slow" | "nft_do_chain" | "ipt_do_table" | "ip6t_do_table") => Class::Netfilter,
            Some("__dev_queue_xmit" | "veth_xmit" | "__dev_forward_skb" | "____dev_forward_skb" | "dev_forward_skb") => {
                Class::Device
            }
            // 5.10 frees what a qdisc refused (a device without carrier has the noop qdisc) as a
            // list; lists are freed elsewhere too, so only a down device explains it.
            Some("kfree_skb_list") if by_reason.is_none() => Class::DeviceIfDown,
            // The input route lookup failed: rp_filter, or another refusal of the source.
            Some("ip_rcv_finish_core" | "ip_rcv_finish" | "ip_list_rcv_finish" | "ip_sublist_rcv_finish") if by_reason.is_none() => {
                Class::InputRoute
            }
            _ => by_reason.unwrap_or(Class::NotSpecified),
        },
        Some(c) => c,
    }
}

/// `ip_rcv_finish_core.constprop.0` -> `ip_rcv_finish_core`: the compiler's clones drop
/// packets where their function does.
fn base_symbol(symbol: &str) -> &str {
    symbol.split_once('.').map_or(symbol, |(base, _)| base)
}

/// Everything the cause is built from.
#[derive(Clone, Copy)]
pub(crate) struct DropFacts<'a> {
    pub ev: &'a DropEvent,
    pub reason: Option<&'a str>,
    /// The dropping function.
    pub symbol: Option<&'a str>,
    /// `skb->dev`'s name (or `if<N>`), `None` without a device.
    pub dev: Option<&'a str>,
    pub mirror: &'a Mirror,
    pub annotation: &'a Annotation,
}

/// The cause in plain words.
pub(crate) fn describe(f: &DropFacts<'_>) -> Cause {
    use CauseCode as C;
    let view = PacketView(&f.ev.packet);
    let dev = f.dev.unwrap_or("an unknown device");
    let dst = view.dst_ip();
    match classify(f.reason, f.symbol) {
        Class::NoRoute => no_route(f, dst),
        Class::Neighbour => device_down(f, dev).unwrap_or_else(|| neighbour(f, dev, dst)),
        Class::Netfilter => Cause::new(C::Netfilter, format!("dropped by a netfilter rule (packet on {dev})")),
        Class::RpFilter => rp_filter(f, dev, view.src_ip()),
        Class::DeviceIfDown => device_down(f, dev).unwrap_or_else(|| no_reason(f)),
        Class::InputRoute => match view.src_ip() {
            Some(src) if rp_filter_refuses(f, src) => rp_filter(f, dev, Some(src)),
            _ => no_reason(f),
        },
        Class::TooBig => too_big(f, &view),
        Class::Device => device_down(f, dev).unwrap_or_else(|| match f.reason {
            Some("QDISC_DROP") => {
                Cause::new(C::QueueDrop, format!("dropped by the queueing discipline of {dev} (queue full or no qdisc)"))
            }
            _ => Cause::new(C::TransmitFailed, format!("{dev} could not transmit it")),
        }),
        Class::NoSocket => Cause::new(C::NoSocket, match (view.ip_proto(), view.ports()) {
            (Some(p), Some((_, dport))) => {
                format!("no socket on this host for {} port {dport}", crate::packet::proto_name(p))
            }
            _ => "no socket on this host takes it".to_owned(),
        }),
        Class::BadHeader => Cause::new(C::BadHeader, "malformed or truncated header"),
        Class::OtherHost => Cause::new(C::OtherHost, format!("frame addressed to another host's MAC {}", Mac(f.ev.packet.dst_mac))),
        Class::TcProgram => Cause::new(C::TcProgram, format!("dropped by a TC program on {dev}")),
        // Kernels before PKT_TOO_BIG (6.1) drop oversized DF packets in ip_forward unnamed.
        Class::NotSpecified
            if matches!(f.symbol, Some("ip_forward" | "ip6_forward"))
                && out_mtu(f).is_some_and(|mtu| f.ev.len > mtu) =>
        {
            too_big(f, &view)
        }
        Class::NotSpecified => no_reason(f),
        Class::Other => Cause::new(C::Kernel, match f.reason {
            Some(r) => format!("dropped by the kernel: {}", r.to_ascii_lowercase().replace('_', " ")),
            None => format!("dropped in {}", f.symbol.unwrap_or("an unknown function")),
        }),
    }
}

fn no_reason(f: &DropFacts<'_>) -> Cause {
    Cause::new(CauseCode::NoReason, match f.symbol {
        Some(s) => format!("the kernel gave no reason (dropped in {s})"),
        None => "the kernel gave no reason".to_owned(),
    })
}

/// Whether the reverse-path filter of the drop's device refuses `src`, as the mirror has it:
/// strict (1) wants the route back through that device, loose (2) any route back.
fn rp_filter_refuses(f: &DropFacts<'_>, src: IpAddr) -> bool {
    if !src.is_ipv4() || f.ev.flags & tracer_common::dropf::HAS_DEV == 0 {
        return false;
    }
    let mode = f.mirror.sysctls.rp_filter(f.ev.ifindex).unwrap_or(0);
    let flow = Flow { dst: src, src: None, iif: None, oif: None, tos: 0, proto: 0, sport: 0, dport: 0 };
    let back = match f.mirror.route_get(&flow) {
        Resolution::Route { route, nexthop: Some(nh) } if route.kind == RouteKind::Unicast => Some(nh.dev),
        _ => None,
    };
    match mode {
        1 => back != Some(f.ev.ifindex),
        2 => back.is_none(),
        _ => false,
    }
}

fn no_route(f: &DropFacts<'_>, dst: Option<IpAddr>) -> Cause {
    let Some(dst) = dst else { return Cause::new(CauseCode::NoRoute, "no route") };
    let a = f.annotation;
    let text = match (a.route_type, a.route_dst) {
        (Some(kind), Some(prefix)) if kind.is_refusal() => format!("no route to {dst} ({} route {prefix})", kind.name()),
        (Some(kind), None) if kind.is_refusal() => format!("no route to {dst} (a rule says {})", kind.name()),
        (None, _) => format!("no route to {dst} (no route matches)"),
        (Some(_), Some(prefix)) => format!("no route to {dst} at the time (the table now has {prefix})"),
        (Some(_), None) => format!("no route to {dst}"),
    };
    Cause::new(CauseCode::NoRoute, text)
}

fn neighbour(f: &DropFacts<'_>, dev: &str, dst: Option<IpAddr>) -> Cause {
    let a = f.annotation;
    let Some(ip) = a.neigh_ip.or(dst) else {
        return Cause::new(CauseCode::NeighbourUnanswered, format!("neighbour resolution failed on {dev}"));
    };
    // NEIGH_FAILED is the kernel's word at drop time, and so is a drop in neigh_invalidate or
    // the error_report it calls (kernels without reasons): the kernel runs them only for an
    // entry it has just made FAILED, and tells netlink after the queue is freed, so the mirror
    // may not have heard yet.
    let failed_by_function =
        f.symbol.map(base_symbol).is_some_and(|s| matches!(s, "neigh_invalidate" | "arp_error_report" | "ndisc_error_report"));
    let state = match f.reason {
        Some("NEIGH_FAILED") => NeighState::Failed,
        _ if failed_by_function => NeighState::Failed,
        _ => a.neigh_state.unwrap_or(NeighState::Failed),
    };
    let state = state.name().to_ascii_uppercase();
    let asked = if ip.is_ipv4() { "ARP" } else { "neighbour solicitation" };
    let dev = a.route_dev.map_or_else(|| dev.to_owned(), |d| d.to_string());
    Cause::new(CauseCode::NeighbourUnanswered, format!("{ip} never answered {asked} on {dev} (neighbour {state})"))
}

/// The device is administratively down or has no carrier (for a veth: its peer is down).
fn device_down(f: &DropFacts<'_>, dev: &str) -> Option<Cause> {
    const HAS_DEV: u8 = tracer_common::dropf::HAS_DEV;
    if f.ev.flags & HAS_DEV == 0 {
        return None;
    }
    let link = f.mirror.links.get(f.ev.ifindex);
    if f.ev.dev_flags & iff::UP == 0 {
        return Some(Cause::new(CauseCode::DeviceDown, format!("{dev} is down")));
    }
    if f.ev.dev_carrier != 0 {
        return None;
    }
    Some(if f.ev.flags & tracer_common::dropf::HAS_POD != 0 {
        let pod = f.ev.pod_dev_name();
        let state = if f.ev.pod_flags & iff::UP == 0 { "is down" } else { "has no carrier" };
        Cause::new(CauseCode::VethPeerDown, format!("veth peer is down (the pod's {pod} {state}: {dev} has no carrier)"))
    } else if link.is_some_and(|l| l.peer_index.is_some()) {
        Cause::new(CauseCode::VethPeerDown, format!("veth peer is down ({dev} has no carrier: its other end is down)"))
    } else {
        Cause::new(CauseCode::NoCarrier, format!("{dev} has no carrier"))
    })
}

fn rp_filter(f: &DropFacts<'_>, dev: &str, src: Option<IpAddr>) -> Cause {
    let Some(src) = src else { return Cause::new(CauseCode::RpFilter, format!("reverse-path filter on {dev}")) };
    let flow = Flow { dst: src, src: None, iif: None, oif: None, tos: 0, proto: 0, sport: 0, dport: 0 };
    let back = match f.mirror.route_get(&flow) {
        Resolution::Route { route, nexthop: Some(nh) } if route.kind == RouteKind::Unicast => {
            format!(" (routed back via {})", f.mirror.links.name(nh.dev).unwrap_or("another interface"))
        }
        _ => " (no route back)".to_owned(),
    };
    Cause::new(CauseCode::RpFilter, format!("reverse-path filter on {dev}: source {src} not routed back through {dev}{back}"))
}

/// MTU of the interface the route for the packet's destination leaves through.
fn out_mtu(f: &DropFacts<'_>) -> Option<u32> {
    f.annotation.route_dev.and_then(|d| f.mirror.links.get(d.index)).map(|l| l.mtu)
}

fn too_big(f: &DropFacts<'_>, view: &PacketView<'_>) -> Cause {
    let out = f.annotation.route_dev.map(|d| (d, f.mirror.links.get(d.index).map(|l| l.mtu)));
    let mtu = match out {
        Some((d, Some(mtu))) => format!(", MTU {mtu} on {d}"),
        Some((d, None)) => format!(", out of {d}"),
        None => String::new(),
    };
    let len = f.ev.len;
    let text = if view.is_ipv6() {
        format!("packet larger than MTU ({len} bytes{mtu}; IPv6 routers never fragment)")
    } else {
        format!("packet larger than MTU with DF set ({len} bytes{mtu})")
    };
    Cause::new(CauseCode::TooBig, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_locations_classify() {
        assert_eq!(classify(Some("NEIGH_FAILED"), None), Class::Neighbour);
        assert_eq!(classify(Some("IP_INNOROUTES"), Some("ip_error")), Class::NoRoute);
        assert_eq!(classify(Some("NOT_SPECIFIED"), Some("nf_hook_slow")), Class::Netfilter);
        assert_eq!(classify(None, Some("ip_error")), Class::NoRoute);
        assert_eq!(classify(None, Some("something_else")), Class::NotSpecified);
        assert_eq!(classify(Some("TCP_CSUM"), None), Class::Other);
        // 5.10: no reasons, the function alone (and its compiler clones).
        assert_eq!(classify(None, Some("arp_error_report")), Class::Neighbour);
        assert_eq!(classify(None, Some("__dev_forward_skb")), Class::Device);
        assert_eq!(classify(None, Some("ip_rcv_finish_core.constprop.0")), Class::InputRoute);
        assert_eq!(classify(None, Some("kfree_skb_list")), Class::DeviceIfDown);
        // With a reason the kernel's word stands.
        assert_eq!(classify(Some("IP_INHDR"), Some("ip_rcv_finish_core")), Class::BadHeader);
    }

    /// Without a reason, a drop in the input route lookup is the reverse-path filter only when
    /// the mirror says the filter is on for the device and the source is not routed back
    /// through it; otherwise it is said to have no reason.
    #[test]
    fn an_input_route_drop_is_rp_filter_only_when_the_mirror_says_so() {
        use crate::mirror::{prefix::Family, sysctl::{DevConf, NetconfMessage}};
        let mut mirror = Mirror::default();
        let a = Annotation::default();
        let mut ev = DropEvent::default();
        ev.packet.valid = tracer_common::valid::IPV4;
        ev.packet.src_ip[..4].copy_from_slice(&[10, 55, 0, 9]);
        ev.packet.dst_ip[..4].copy_from_slice(&[10, 244, 1, 6]);
        ev.flags = tracer_common::dropf::HAS_DEV;
        ev.dev_flags = iff::UP;
        ev.dev_carrier = 1;
        ev.ifindex = 7;
        let cause = |mirror: &Mirror| {
            describe(&DropFacts {
                ev: &ev,
                reason: None,
                symbol: Some("ip_rcv_finish_core.constprop.0"),
                dev: Some("calia"),
                mirror,
                annotation: &a,
            })
        };
        assert_eq!(cause(&mirror).code, CauseCode::NoReason);
        let rp = |v| NetconfMessage { family: Family::V4, ifindex: 7, conf: DevConf { rp_filter: Some(v), ..DevConf::default() } };
        mirror.sysctls.apply(rp(1));
        let c = cause(&mirror);
        assert_eq!(c.code, CauseCode::RpFilter);
        assert_eq!(c.text(), "reverse-path filter on calia: source 10.55.0.9 not routed back through calia (no route back)");
        // Loose mode refuses only a source with no route back at all: none here either.
        mirror.sysctls.apply(rp(2));
        assert_eq!(cause(&mirror).code, CauseCode::RpFilter);
        mirror.sysctls.apply(rp(0));
        assert_eq!(cause(&mirror).code, CauseCode::NoReason);
    }

    /// Without reasons (5.10) a drop in neigh_invalidate or arp_error_report is the kernel
    /// making the entry FAILED, whatever the mirror last heard (it is told afterwards).
    #[test]
    fn a_drop_in_neigh_invalidate_is_a_failed_neighbour_before_netlink_says_so() {
        let mirror = Mirror::default();
        let mut ev = DropEvent::default();
        ev.packet.valid = tracer_common::valid::IPV4;
        ev.packet.dst_ip[..4].copy_from_slice(&[10, 244, 1, 99]);
        let text = |symbol, state| {
            let a = Annotation { neigh_state: Some(state), ..Default::default() };
            let f = DropFacts { ev: &ev, reason: None, symbol: Some(symbol), dev: Some("calia"), mirror: &mirror, annotation: &a };
            describe(&f).to_string()
        };
        for symbol in ["neigh_invalidate", "arp_error_report", "neigh_invalidate.part.0"] {
            for state in [NeighState::None, NeighState::Incomplete] {
                assert_eq!(text(symbol, state), "10.244.1.99 never answered ARP on calia (neighbour FAILED)", "{symbol}");
            }
        }
        // Elsewhere on the path (a full queue in __neigh_event_send) the mirror's state stands.
        assert_eq!(text("__neigh_event_send", NeighState::Incomplete), "10.244.1.99 never answered ARP on calia (neighbour INCOMPLETE)");
    }

    fn facts_cause(reason: &str, ev: &DropEvent, mirror: &Mirror, a: &Annotation) -> Cause {
        describe(&DropFacts { ev, reason: Some(reason), symbol: None, dev: Some("calia"), mirror, annotation: a })
    }

    fn facts_text(reason: &str, ev: &DropEvent, mirror: &Mirror, a: &Annotation) -> String {
        facts_cause(reason, ev, mirror, a).to_string()
    }

    #[test]
    fn each_cause_has_its_code() {
        let mirror = Mirror::default();
        let a = Annotation::default();
        let mut ev = DropEvent::default();
        ev.packet.valid = tracer_common::valid::IPV4;
        ev.packet.dst_ip[..4].copy_from_slice(&[10, 77, 0, 1]);
        let code = |reason: &str, ev: &DropEvent| facts_cause(reason, ev, &mirror, &a).code;
        assert_eq!(code("IP_INNOROUTES", &ev), CauseCode::NoRoute);
        assert_eq!(code("NEIGH_FAILED", &ev), CauseCode::NeighbourUnanswered);
        assert_eq!(code("NETFILTER_DROP", &ev), CauseCode::Netfilter);
        assert_eq!(code("PKT_TOO_BIG", &ev), CauseCode::TooBig);
        assert_eq!(code("NO_SOCKET", &ev), CauseCode::NoSocket);
        assert_eq!(code("TCP_CSUM", &ev), CauseCode::Kernel);
        assert_eq!(code("QDISC_DROP", &ev), CauseCode::QueueDrop);
        ev.flags = tracer_common::dropf::HAS_DEV;
        ev.dev_flags = iff::UP;
        assert_eq!(code("QDISC_DROP", &ev), CauseCode::NoCarrier);
        ev.dev_flags = 0;
        assert_eq!(code("NEIGH_FAILED", &ev), CauseCode::DeviceDown);
    }

    /// 5.10 frees what the noop qdisc of a device without carrier refused in kfree_skb_list:
    /// a device cause when the device is down or without carrier, no reason otherwise.
    #[test]
    fn a_freed_list_is_a_device_cause_only_on_a_down_device() {
        let mirror = Mirror::default();
        let a = Annotation::default();
        let mut ev = DropEvent {
            drop: tracer_common::DropSection {
                flags: tracer_common::dropf::HAS_DEV,
                dev_flags: iff::UP,
                dev_carrier: 1,
                ..Default::default()
            },
            ..Default::default()
        };
        let code = |ev: &DropEvent| {
            let f = DropFacts { ev, reason: None, symbol: Some("kfree_skb_list"), dev: Some("calia"), mirror: &mirror, annotation: &a };
            describe(&f).code
        };
        assert_eq!(code(&ev), CauseCode::NoReason);
        ev.dev_carrier = 0;
        assert_eq!(code(&ev), CauseCode::NoCarrier);
        ev.dev_flags = 0;
        assert_eq!(code(&ev), CauseCode::DeviceDown);
    }

    #[test]
    fn causes_read_the_annotation() {
        let mirror = Mirror::default();
        let mut ev = DropEvent::default();
        ev.packet.valid = tracer_common::valid::IPV4;
        ev.packet.dst_ip[..4].copy_from_slice(&[10, 77, 0, 1]);
        ev.packet.src_ip[..4].copy_from_slice(&[10, 244, 1, 5]);
        let a = Annotation {
            route_type: Some(RouteKind::Unreachable),
            route_dst: Some(crate::mirror::prefix::Prefix::new("10.77.0.0".parse().unwrap(), 16)),
            ..Default::default()
        };
        assert_eq!(facts_text("IP_INNOROUTES", &ev, &mirror, &a), "no route to 10.77.0.1 (unreachable route 10.77.0.0/16)");
        let a = Annotation::default();
        assert_eq!(facts_text("IP_INNOROUTES", &ev, &mirror, &a), "no route to 10.77.0.1 (no route matches)");
        assert_eq!(
            facts_text("NEIGH_FAILED", &ev, &mirror, &a),
            "10.77.0.1 never answered ARP on calia (neighbour FAILED)"
        );
        assert_eq!(facts_text("NETFILTER_DROP", &ev, &mirror, &a), "dropped by a netfilter rule (packet on calia)");
        assert!(facts_text("IP_RPFILTER", &ev, &mirror, &a)
            .starts_with("reverse-path filter on calia: source 10.244.1.5 not routed back through calia"));
        ev.packet.ip_flags = tracer_common::ipf::DF;
        ev.len = 1400;
        assert_eq!(facts_text("PKT_TOO_BIG", &ev, &mirror, &a), "packet larger than MTU with DF set (1400 bytes)");
        ev.flags = tracer_common::dropf::HAS_DEV;
        ev.dev_flags = iff::UP;
        ev.dev_carrier = 0;
        assert_eq!(facts_text("QDISC_DROP", &ev, &mirror, &a), "calia has no carrier");
        ev.dev_flags = 0;
        assert_eq!(facts_text("NEIGH_FAILED", &ev, &mirror, &a), "calia is down");
        assert_eq!(facts_text("TCP_CSUM", &ev, &mirror, &a), "dropped by the kernel: tcp csum");
    }
}
