//! Naming a drop: the kernel's reason and location by name, the route/neighbour annotation of
//! its packet, and the cause in words (node side: [`super::cause`]; pod side:
//! [`super::podside`]).

use tracer_common::dropf;

use super::{
    DropNames,
    arpwatch::Finding,
    cause::{self, DropFacts},
    podside,
};
use crate::{
    annotate,
    events::{DropEvent, NamedDrop, annotation::Annotation},
    mirror::Mirror,
};

/// Names a drop: reason, location, route/neighbour annotation, cause, with the last ARP
/// request the node left unanswered on the drop's interface (what a pod-side NEIGH_FAILED was
/// waiting for).
pub(crate) fn name_with(
    names: &DropNames,
    mirror: &Mirror,
    ev: &DropEvent,
    dev: Option<&str>,
    unanswered: Option<&Finding>,
) -> NamedDrop {
    let reason = names.reason(ev);
    let pod_side = ev.flags & dropf::POD_SIDE != 0;
    // The node's routes and neighbours say nothing about a packet that never left the pod.
    let annotation = if pod_side { Annotation::default() } else { annotate::annotate(mirror, &ev.as_packet()) };
    let symbol = names.symbol(ev);
    let facts = DropFacts { ev, reason: reason.as_deref(), symbol, dev, mirror, annotation: &annotation };
    let (cause, pod_dev) = if pod_side {
        (podside::describe(&facts, unanswered), Some(ev.pod_dev_name()))
    } else {
        (cause::describe(&facts), None)
    };
    NamedDrop { ev: *ev, reason, location: names.location(ev), cause, annotation, pod_dev, finding: false, policy: None }
}

#[cfg(test)]
pub(crate) mod tests {
    use tracer_common::{DropSection, valid};

    use super::*;
    use crate::kernel::{drop_reason::DropReasons, kallsyms::Kallsyms};

    /// Names a drop: reason, location, route/neighbour annotation, cause.
    pub(crate) fn name(names: &DropNames, mirror: &Mirror, ev: &DropEvent, dev: Option<&str>) -> NamedDrop {
        name_with(names, mirror, ev, dev, None)
    }

    pub(crate) fn names() -> DropNames {
        DropNames {
            reasons: DropReasons::from_values([("SKB_DROP_REASON_IP_INNOROUTES".to_owned(), 88)]),
            kallsyms: Kallsyms::parse("ffffffff81a00000 t ip_error\n"),
        }
    }

    pub(crate) fn drop_event() -> DropEvent {
        let mut ev = DropEvent {
            drop: DropSection {
                reason: 88,
                location: 0xffff_ffff_81a0_0042,
                ifindex: 3,
                len: 84,
                flags: dropf::HAS_REASON | dropf::BY_DEV,
                ..Default::default()
            },
            ..Default::default()
        };
        ev.packet.valid = valid::L2 | valid::IPV4;
        ev.packet.ethertype = 0x0800;
        ev.packet.ip_proto = 1;
        ev.packet.src_ip[..4].copy_from_slice(&[10, 244, 1, 5]);
        ev.packet.dst_ip[..4].copy_from_slice(&[10, 77, 0, 1]);
        ev
    }
}
