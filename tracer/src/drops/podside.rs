//! The pod end of a traced veth: the layout the drop program needs to find a veth's peer
//! (`struct veth_priv`, in vmlinux's BTF when veth is built in, else in the veth module's
//! split BTF), and what a pod-side drop means in the node's terms.
//!
//! Without the layout, pod-side drops are off; `vethtrace check` and the startup line say so.

use super::{
    arpwatch::{self, Finding, Unanswered},
    cause::{Cause, CauseCode, Class, DropFacts, classify},
};
use crate::kernel::btf::{BtfError, KernelBtf};

/// `NETDEV_ALIGN`: `netdev_priv()` is the device's private area, this far past the struct's
/// start rounded up.
const NETDEV_ALIGN: u32 = 32;

/// Where a veth's peer is, and where the BTF that told came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VethLayout {
    pub dev_link_ops: u32,
    pub link_ops_kind: u32,
    pub dev_priv: u32,
    pub veth_peer: u32,
    pub dev_name: u32,
    /// "vmlinux" or "the veth module".
    pub source: &'static str,
}

/// Why pod-side drops are off.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VethError {
    #[error("veth is neither built in nor loaded with BTF (no struct veth_priv in vmlinux, no /sys/kernel/btf/veth)")]
    NoVeth,
    #[error("{0}")]
    Btf(#[from] BtfError),
}

impl VethLayout {
    /// The layout of the running kernel.
    pub(crate) fn find(vmlinux: &KernelBtf) -> Result<Self, VethError> {
        let module;
        let (btf, source) = if vmlinux.struct_size("veth_priv").is_ok() {
            (vmlinux, "vmlinux")
        } else {
            module = vmlinux.module("veth").ok_or(VethError::NoVeth)?;
            (&module, "the veth module")
        };
        let size = vmlinux.struct_size("net_device")?;
        Ok(Self {
            dev_link_ops: vmlinux.member_offset("net_device", "rtnl_link_ops")?,
            link_ops_kind: vmlinux.member_offset("rtnl_link_ops", "kind")?,
            dev_priv: size.div_ceil(NETDEV_ALIGN) * NETDEV_ALIGN,
            veth_peer: btf.member_offset("veth_priv", "peer")?,
            dev_name: vmlinux.member_offset("net_device", "name")?,
            source,
        })
    }

    /// Sets the drop program's veth fields.
    pub(crate) fn apply(&self, cfg: &mut tracer_common::DropConfig) {
        cfg.veth = 1;
        cfg.dev_link_ops = self.dev_link_ops;
        cfg.link_ops_kind = self.link_ops_kind;
        cfg.dev_priv = self.dev_priv;
        cfg.veth_peer = self.veth_peer;
        cfg.dev_name = self.dev_name;
    }
}

/// The line `vethtrace check` and the trace's startup print.
pub(crate) fn status(found: &Result<VethLayout, VethError>) -> Result<String, String> {
    match found {
        Ok(l) => Ok(format!("on (struct veth_priv from {}): drops on the pod end of a traced veth are kept", l.source)),
        Err(e) => Err(format!("off: {e}")),
    }
}

/// The cause of a drop on the pod end of the veth, in the node's terms: `f.dev` is the cali.
/// `unanswered` is the pod's last ARP request the node left unanswered on that cali.
pub(crate) fn describe(f: &DropFacts<'_>, unanswered: Option<&Finding>) -> Cause {
    use CauseCode as C;
    let cali = f.dev.unwrap_or("its cali");
    let pod_dev = f.ev.pod_dev_name();
    let ev = f.ev;
    let class = classify(f.reason, f.symbol);
    if matches!(class, Class::Neighbour | Class::Device) {
        if ev.dev_flags & tracer_common::iff::UP == 0 {
            return Cause::new(C::PodDeviceDown, format!("the pod's {pod_dev} is down (pod end of {cali})"));
        }
        if ev.dev_carrier == 0 {
            return Cause::new(C::PodNoCarrier, format!("the pod's {pod_dev} has no carrier ({cali} is down)"));
        }
    }
    match class {
        Class::Neighbour => {
            let spa = match crate::packet::PacketView(&ev.packet).src_ip() {
                Some(std::net::IpAddr::V4(a)) => a,
                _ => {
                    let text = format!("the pod's neighbour resolution failed on its {pod_dev} (pod end of {cali})");
                    return Cause::new(C::PodNeighbourFailed, text);
                }
            };
            let finding = unanswered.cloned().unwrap_or_else(|| {
                let arp = crate::packet::Arp {
                    op: 1,
                    sha: crate::packet::Mac([0; 6]),
                    spa,
                    tha: crate::packet::Mac([0; 6]),
                    tpa: arpwatch::CALICO_GATEWAY,
                };
                let why = arpwatch::proxy_verdict(f.mirror, ev.ifindex, &arp).unwrap_or(Unanswered::Nobody);
                Finding { spa, tpa: arpwatch::CALICO_GATEWAY, why }
            });
            finding.cause(cali)
        }
        Class::NoRoute => Cause::new(
            C::PodNoRoute,
            match crate::packet::PacketView(&ev.packet).dst_ip() {
                Some(dst) => format!("the pod has no route to {dst} (pod end of {cali})"),
                None => format!("the pod has no route (pod end of {cali})"),
            },
        ),
        Class::Device => match f.reason {
            Some("QDISC_DROP") => Cause::new(
                C::PodQueueDrop,
                format!("the pod's {pod_dev} queue dropped it (queue full or no qdisc; pod end of {cali})"),
            ),
            _ => Cause::new(
                C::PodTransmitFailed,
                format!("the pod's {pod_dev} could not transmit it (pod end of {cali})"),
            ),
        },
        _ => {
            let inner = super::cause::describe(&super::cause::DropFacts { dev: Some(&pod_dev), ..*f });
            let text = format!("in the pod behind {cali}: {inner}");
            inner.reworded(text)
        }
    }
}

/// An ARP_UNANSWERED finding as a drop on the cali: the pod's request is the frame, no
/// kernel reason or location (the kernel consumed the request; it did not drop it).
pub(crate) fn finding_drop(
    ev: &crate::events::PacketEvent,
    f: &arpwatch::Finding,
    cali: &str,
) -> crate::events::NamedDrop {
    use tracer_common::{DropSection, dropf, proto::ETH_P_ARP};
    let drop = DropSection {
        ifindex: ev.ifindex,
        len: ev.len,
        protocol: ETH_P_ARP,
        flags: dropf::BY_DEV,
        ..Default::default()
    };
    crate::events::NamedDrop {
        ev: crate::events::DropEvent { header: ev.header, drop, packet: ev.packet },
        reason: Some(arpwatch::REASON.to_owned()),
        location: "-".to_owned(),
        cause: f.cause(cali),
        annotation: crate::events::annotation::Annotation::default(),
        pod_dev: None,
        finding: true,
        policy: None,
    }
}

/// What a healthy pod's own stack frees with kfree_skb as a matter of course, left out:
/// - echo replies (ICMP or ICMPv6) `ping_rcv` frees as NO_SOCKET: the kernel hands every echo
///   reply to the raw sockets and to `ping_rcv`, which frees it when no ICMP datagram socket
///   wants it — every raw-socket ping in a pod does this for every reply;
/// - ICMPv6 messages `icmpv6_rcv` has handled, freed without a reason on 6.1 (later kernels
///   consume them): every echo request a pod answers.
pub(crate) fn is_pod_noise(names: &super::DropNames, ev: &crate::events::DropEvent) -> bool {
    use tracer_common::proto::{IPPROTO_ICMP, IPPROTO_ICMPV6};
    if ev.flags & tracer_common::dropf::POD_SIDE == 0 {
        return false;
    }
    let view = crate::packet::PacketView(&ev.packet);
    let reason = names.reason(ev);
    let echo_reply = matches!(
        (view.ip_proto(), view.icmp()),
        (Some(IPPROTO_ICMP), Some((0, _))) | (Some(IPPROTO_ICMPV6), Some((129, _)))
    );
    let unnamed = matches!(reason.as_deref(), None | Some("NOT_SPECIFIED"));
    (echo_reply && reason.as_deref() == Some("NO_SOCKET"))
        || (unnamed && view.ip_proto() == Some(IPPROTO_ICMPV6) && names.symbol(ev) == Some("icmpv6_rcv"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running kernel's BTF is the fixture (veth built in here, a module in the 6.1 VM).
    #[test]
    fn finds_the_veth_peer_behind_the_device() {
        let btf = KernelBtf::load().expect("kernel BTF");
        let l = VethLayout::find(&btf).expect("veth layout");
        assert_eq!(l.dev_priv % NETDEV_ALIGN, 0);
        let size = btf.struct_size("net_device").unwrap();
        assert!(l.dev_priv >= size && l.dev_priv < size + NETDEV_ALIGN, "{l:?} for {size} bytes");
        // peer is veth_priv's first member on every kernel since veth_priv has existed.
        assert_eq!(l.veth_peer, 0);
        let mut cfg = tracer_common::DropConfig::DISABLED;
        l.apply(&mut cfg);
        assert_eq!((cfg.veth, cfg.dev_name), (1, btf.member_offset("net_device", "name").unwrap()));
        assert!(status(&Ok(l)).unwrap().starts_with("on (struct veth_priv from "));
    }

    /// The pod's own routine frees are set aside; the same frees on the node's side are not.
    #[test]
    fn a_healthy_pods_routine_frees_are_noise() {
        use crate::kernel::{drop_reason::DropReasons, kallsyms::Kallsyms};
        use tracer_common::{dropf, proto::IPPROTO_ICMPV6, valid};
        let names = super::super::DropNames {
            reasons: DropReasons::from_values([
                ("SKB_DROP_REASON_NOT_SPECIFIED".to_owned(), 1),
                ("SKB_DROP_REASON_NO_SOCKET".to_owned(), 3),
            ]),
            kallsyms: Kallsyms::parse("ffffffff81a00000 t ping_rcv\nffffffff81b00000 t icmpv6_rcv\n"),
        };
        let flags = dropf::HAS_REASON | dropf::POD_SIDE | dropf::HAS_POD | dropf::BY_DEV;
        let drop = tracer_common::DropSection { flags, ..Default::default() };
        let mut ev = crate::events::DropEvent { drop, ..Default::default() };
        ev.packet.valid = valid::L2 | valid::IPV6 | valid::ICMP;
        (ev.packet.ip_proto, ev.packet.icmp_type) = (IPPROTO_ICMPV6, 129);
        (ev.reason, ev.location) = (3, 0xffff_ffff_81a0_0010);
        assert!(is_pod_noise(&names, &ev), "an echo reply ping_rcv did not want");
        (ev.packet.icmp_type, ev.reason, ev.location) = (128, 1, 0xffff_ffff_81b0_0010);
        assert!(is_pod_noise(&names, &ev), "6.1's icmpv6_rcv freeing a handled echo request");
        ev.reason = 3;
        assert!(!is_pod_noise(&names, &ev), "NO_SOCKET for an echo request is no routine free");
        (ev.packet.icmp_type, ev.location) = (129, 0xffff_ffff_81a0_0010);
        ev.flags &= !dropf::POD_SIDE;
        assert!(!is_pod_noise(&names, &ev), "the node's side");
    }
}
