//! ARP_UNANSWERED: a pod's ARP request on a traced cali that the node does not answer, found
//! in `--drops`/`--summary` mode from the ARP frames the TC programs send there
//! (`tc_flags::ARP`). The kernel frees such a request with `consume_skb` (not a drop), and the
//! pod's own NEIGH_FAILED comes only after its probes run out (3 s), so this is how drop
//! hunting sees the fault within a second.
//!
//! A request the mirror says the node will not proxy (the cali down, forwarding or proxy_arp
//! off, no route to the target, the target routed back out the cali, rp_filter with no route
//! back to the pod) is reported at once; one the node should answer is reported when the pod
//! asks again and no reply went out in between ("nobody answered").

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
};

use tracer_common::{arp_op, dir};

use super::cause::{Cause, CauseCode};
use crate::{
    events::PacketEvent,
    mirror::{Mirror, fib::Resolution, prefix::Family, routes::RouteKind, rules::Flow},
    packet::{Arp, PacketView},
};

/// The reason name of the finding.
pub(crate) const REASON: &str = "ARP_UNANSWERED";
/// Calico's gateway for every pod: a link-local address the node answers by proxy ARP.
pub(crate) const CALICO_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// A request repeated this soon after the last one is the kernel's own retransmission timing
/// at the earliest (`retrans_time_ms`, 1 s by default): the node had time to answer.
const ANSWER_TIME_NS: u64 = 200_000_000;

/// Why the node does not answer the pod's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unanswered {
    CaliDown,
    ForwardingOff,
    ProxyArpOff,
    NoRoute,
    RoutedBack,
    NoRouteBack,
    /// The node should have answered and did not.
    Nobody,
}

/// An unanswered request: who asked whom on which interface, and why nobody answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub spa: Ipv4Addr,
    pub tpa: Ipv4Addr,
    pub why: Unanswered,
}

impl Finding {
    /// The cause in the node's terms, `dev` being the cali's name.
    pub(crate) fn cause(&self, dev: &str) -> Cause {
        use CauseCode as C;
        let whom = if self.tpa == CALICO_GATEWAY { format!("its gateway {}", self.tpa) } else { self.tpa.to_string() };
        let (code, why) = match self.why {
            Unanswered::CaliDown => (C::ArpCaliDown, format!("{dev} is down")),
            Unanswered::ForwardingOff => (C::ArpForwardingOff, format!("forwarding is off on {dev}")),
            Unanswered::ProxyArpOff => (C::ArpProxyArpOff, format!("proxy_arp is off on {dev}")),
            Unanswered::NoRoute => (C::ArpNoRoute, format!("the node has no route to {}", self.tpa)),
            Unanswered::RoutedBack => (C::ArpRoutedBack, format!("the node routes {} back out {dev}", self.tpa)),
            Unanswered::NoRouteBack => {
                (C::ArpNoRouteBack, format!("rp_filter on {dev} and no route back to {} through it", self.spa))
            }
            Unanswered::Nobody => (C::ArpNobodyAnswered, "nobody answered".to_owned()),
        };
        Cause::new(code, format!("pod {} got no ARP reply for {whom} on {dev}: {why}", self.spa))
    }
}

/// Why the node would not answer `arp` (a request received on `dev`), from the mirror: the
/// checks arp_process makes before a proxy reply. `None`: it would answer.
pub(crate) fn proxy_verdict(mirror: &Mirror, dev: u32, arp: &Arp) -> Option<Unanswered> {
    let link = mirror.links.get(dev)?;
    if !link.up {
        return Some(Unanswered::CaliDown);
    }
    let to_target = match mirror.route_get(&flow(arp.tpa, Some(arp.spa), Some(&link.name))) {
        Resolution::Route { route, nexthop } => (route.kind, nexthop.map(|n| n.dev)),
        _ => return Some(Unanswered::NoRoute),
    };
    match to_target {
        // The node's own address: answered without proxying.
        (RouteKind::Local, _) => return None,
        (RouteKind::Unicast, Some(out)) if out == dev => return Some(Unanswered::RoutedBack),
        (RouteKind::Unicast, _) => {}
        _ => return Some(Unanswered::NoRoute),
    }
    if mirror.sysctls.forwarding(Family::V4, dev) == Some(false) {
        return Some(Unanswered::ForwardingOff);
    }
    if mirror.sysctls.proxy_arp(dev) == Some(false) {
        return Some(Unanswered::ProxyArpOff);
    }
    let back = match mirror.route_get(&flow(arp.spa, None, None)) {
        Resolution::Route { nexthop: Some(n), .. } => n.dev == dev,
        _ => false,
    };
    (mirror.sysctls.rp_filter(dev).unwrap_or(0) != 0 && !back).then_some(Unanswered::NoRouteBack)
}

/// An IPv4 route lookup's flow.
fn flow(dst: Ipv4Addr, src: Option<Ipv4Addr>, iif: Option<&str>) -> Flow<'_> {
    Flow { dst: IpAddr::V4(dst), src: src.map(IpAddr::V4), iif, oif: None, tos: 0, proto: 0, sport: 0, dport: 0 }
}

/// Requests waiting for the node's reply, per (interface, target).
#[derive(Debug, Default)]
pub(crate) struct ArpWatch {
    waiting: HashMap<(u32, Ipv4Addr), u64>,
    /// The last unanswered request per interface: what a pod-side NEIGH_FAILED waited for.
    last: HashMap<u32, Finding>,
}

impl ArpWatch {
    /// Looks at one ARP frame TC saw on a traced interface; a finding when it is a request
    /// the node leaves unanswered.
    pub(crate) fn observe(&mut self, mirror: &Mirror, ev: &PacketEvent) -> Option<Finding> {
        let arp = PacketView(&ev.packet).arp()?;
        let key = (ev.ifindex, arp.tpa);
        match (ev.dir, arp.op) {
            // The node's reply going out to the pod.
            (dir::EGRESS, arp_op::REPLY) => {
                self.waiting.remove(&(ev.ifindex, arp.spa));
                self.last.remove(&ev.ifindex);
                None
            }
            // A pod's request (not a gratuitous ARP or an address probe).
            (dir::INGRESS, arp_op::REQUEST) if !arp.spa.is_unspecified() && arp.spa != arp.tpa => {
                let why = match proxy_verdict(mirror, ev.ifindex, &arp) {
                    Some(why) => Some(why),
                    None => self
                        .waiting
                        .insert(key, ev.header.ts_ns)
                        .filter(|&t| ev.header.ts_ns.saturating_sub(t) >= ANSWER_TIME_NS)
                        .map(|_| Unanswered::Nobody),
                };
                let finding = Finding { spa: arp.spa, tpa: arp.tpa, why: why? };
                self.last.insert(ev.ifindex, finding.clone());
                Some(finding)
            }
            _ => None,
        }
    }

    /// The last request on `dev` the node left unanswered, if no reply followed it.
    pub(crate) fn last_unanswered(&self, dev: u32) -> Option<&Finding> {
        self.last.get(&dev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_speak_of_the_pod_and_the_cali() {
        let f = Finding { spa: Ipv4Addr::new(10, 244, 1, 5), tpa: CALICO_GATEWAY, why: Unanswered::ProxyArpOff };
        assert_eq!(
            f.cause("calia").to_string(),
            "pod 10.244.1.5 got no ARP reply for its gateway 169.254.1.1 on calia: proxy_arp is off on calia"
        );
        assert_eq!(f.cause("calia").code, CauseCode::ArpProxyArpOff);
        let f = Finding { tpa: Ipv4Addr::new(10, 99, 0, 1), why: Unanswered::Nobody, ..f };
        assert_eq!(
            f.cause("calia").to_string(),
            "pod 10.244.1.5 got no ARP reply for 10.99.0.1 on calia: nobody answered"
        );
    }

    fn arp_event(dir: u8, op: u16, spa: [u8; 4], tpa: [u8; 4], ts_ns: u64) -> PacketEvent {
        let mut ev = PacketEvent { ifindex: 7, dir, ..Default::default() };
        ev.header.ts_ns = ts_ns;
        ev.packet.valid = tracer_common::valid::L2 | tracer_common::valid::ARP_OP | tracer_common::valid::ARP;
        (ev.packet.arp_op, ev.packet.arp_spa, ev.packet.arp_tpa) = (op, spa, tpa);
        ev
    }

    /// With an empty mirror the interface is unknown (no verdict): a request is reported only
    /// when the pod asks again with no reply in between, and a reply clears it.
    #[test]
    fn a_repeated_request_without_a_reply_is_unanswered() {
        let mirror = Mirror::default();
        let mut w = ArpWatch::default();
        let (pod, gw) = ([10, 244, 1, 5], [169, 254, 1, 1]);
        assert_eq!(w.observe(&mirror, &arp_event(dir::INGRESS, 1, pod, gw, 0)), None);
        let f = w.observe(&mirror, &arp_event(dir::INGRESS, 1, pod, gw, 1_000_000_000)).expect("finding");
        assert_eq!(f.why, Unanswered::Nobody);
        assert!(w.last_unanswered(7).is_some());
        assert_eq!(w.observe(&mirror, &arp_event(dir::EGRESS, 2, gw, pod, 1_000_000_100)), None);
        assert!(w.last_unanswered(7).is_none());
        assert_eq!(w.observe(&mirror, &arp_event(dir::INGRESS, 1, pod, gw, 2_000_000_000)), None);
        // A gratuitous ARP is no question.
        assert_eq!(w.observe(&mirror, &arp_event(dir::INGRESS, 1, pod, pod, 9_000_000_000)), None);
    }
}
